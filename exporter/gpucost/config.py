"""The exporter's configuration: YAML file plus flags, validated on load.

Every problem is a `ConfigError` naming the file, the key path and the value;
the CLI prints it as one line and exits 2.  `gpucost validate-config FILE`
runs the same validation without starting anything.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gpucost import listen_address
from gpucost.durations import DurationError, parse_duration
from gpucost.errors import ConfigError
from gpucost.kubeconfig_check import check_kubeconfig, check_pod_resources_socket
from gpucost.model import ContainerRef, DeviceAllocation
from gpucost.pricing.settings import PricingSettings, parse_pricing_settings
from gpucost.sources.gpu_backend import BACKEND_NAMES
from gpucost.sources.kubelet_resource import DEFAULT_CA_FILE, DEFAULT_TOKEN_FILE, KUBELET_PORT
from gpucost.sources.workload_labels import (
    DEFAULT_WORKLOAD_LABEL_CONFIG,
    WorkloadLabelConfig,
    parse_workload_label_config,
)
from gpucost.yamlfields import (
    child_path,
    load_yaml_file,
    optional_float,
    optional_int,
    optional_str,
    read_bool,
    read_str,
    reject_unknown_keys,
    require_mapping,
)

__all__ = [
    "DEFAULT_LISTEN_ADDRESS",
    "NODE_IP_ENV",
    "ExporterConfig",
    "KubeletResourceConfig",
    "KubernetesConfig",
    "StaticAllocation",
    "check_kubeconfig_in_use",
    "load_config_file",
    "parse_config",
    "parse_listen_address",
]

DEFAULT_LISTEN_ADDRESS = ":9835"
DEFAULT_POD_RESOURCES_SOCKET = "/var/lib/kubelet/pod-resources/kubelet.sock"
DEFAULT_STATE_FILE = "/var/lib/gpucost/state.json"
# The node's IP from the downward API (status.hostIP): the kubelet's address when none is configured.
NODE_IP_ENV = "NODE_IP"

@dataclass(frozen=True, slots=True)
class StaticAllocation:
    """A container holding a device, declared in the config (no Kubernetes needed)."""

    allocation: DeviceAllocation
    labels: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class KubeletResourceConfig:
    """Whole-node cost: where the node's kubelet serves `/metrics/resource` (docs/node-cost.md).

    `enabled` None follows `kubernetes.enabled`; `address` "" is `https://$NODE_IP:10250`.
    """

    enabled: bool | None = None
    address: str = ""
    insecure_skip_tls_verify: bool = False
    token_file: str = DEFAULT_TOKEN_FILE
    ca_file: str = DEFAULT_CA_FILE

    def wanted(self, kubernetes_enabled: bool) -> bool:
        """Whether the kubelet is to be read: only with Kubernetes attribution, and not turned off."""
        return kubernetes_enabled and self.enabled is not False

    def url(self, environ: Mapping[str, str] = os.environ) -> str:
        """The kubelet's base URL: the configured address, else the node IP's port 10250; "" when neither."""
        if self.address:
            return self.address
        node_ip = environ.get(NODE_IP_ENV, "").strip()
        if not node_ip:
            return ""
        host = f"[{node_ip}]" if ":" in node_ip else node_ip
        return f"https://{host}:{KUBELET_PORT}"


@dataclass(frozen=True, slots=True)
class KubernetesConfig:
    enabled: bool = False
    node_name: str = ""
    pod_resources_socket: str = DEFAULT_POD_RESOURCES_SOCKET
    # 2 s: 1 request a second (List + GetAllocatableResources) of the 100 the kubelet allows
    # all its clients; it sets how long a tick waits to be booked (docs/kubernetes.md).
    pod_resources_interval_seconds: float = 2.0
    max_staleness_seconds: float = 300.0
    extra_resource_names: tuple[str, ...] = ()
    mps_resources: tuple[str, ...] = ()
    replicas_per_gpu: int | None = None
    kubeconfig: str = ""
    per_process: bool = False
    host_proc: str = "/proc"
    kubelet_resource: KubeletResourceConfig = field(default_factory=KubeletResourceConfig)


@dataclass(frozen=True, slots=True)
class ExporterConfig:
    file: str = ""
    listen_address: str = DEFAULT_LISTEN_ADDRESS
    telemetry_path: str = "/metrics"
    web_config_file: str = ""
    nvml_backend: str = "nvml"
    scenario_file: str = ""
    simulate_speed: float | None = None
    sample_interval_seconds: float = 1.0
    checkpoint_interval_seconds: float = 30.0
    retention_seconds: float = 600.0
    max_gap_seconds: float = 300.0
    state_file: str = DEFAULT_STATE_FILE
    log_level: str = "info"
    log_format: str = "logfmt"
    pricing: PricingSettings = field(default_factory=PricingSettings)
    workload_labels: WorkloadLabelConfig = DEFAULT_WORKLOAD_LABEL_CONFIG
    static_allocations: tuple[StaticAllocation, ...] = ()
    kubernetes: KubernetesConfig = field(default_factory=KubernetesConfig)

    def with_overrides(self, **changes: Any) -> ExporterConfig:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


_TOP_KEYS = (
    "sample_interval", "checkpoint_interval", "retention", "max_gap", "state_file", "nvml", "pricing",
    "workload_labels", "allocations", "kubernetes", "web", "log",
)


def _section(raw: Mapping[str, object], key: str, file: str, path: str, allowed: Sequence[str]) -> Mapping[str, object]:
    """A nested mapping (absent means empty) whose keys must all be known."""
    value = raw.get(key)
    if value is None:
        return {}
    key_path = child_path(path, key)
    section = require_mapping(value, file, key_path)
    reject_unknown_keys(section, allowed, file, key_path)
    return section


# A year and then some: longer intervals are typos, and sleeping "9" * 400 hours overflows.
_MAX_DURATION_SECONDS = 400 * 86400


def _duration(raw: Mapping[str, object], key: str, file: str, path: str, default: float, minimum: float = 0.0) -> float:
    value = raw.get(key)
    if value is None:
        return default
    key_path = child_path(path, key)
    if not isinstance(value, str | int | float):
        raise ConfigError(file, key_path, value, "must be a duration like 500ms, 10s, 5m, 1h")
    too_long = f"must be a duration of at most {_MAX_DURATION_SECONDS // 86400} days"
    # Checked before parsing: 10**400 has no float, and nan compares false with everything.
    if not isinstance(value, str | bool) and not 0 <= value <= _MAX_DURATION_SECONDS:
        problem = too_long if value > 0 else "must be a duration like 500ms, 10s, 5m, 1h"
        raise ConfigError(file, key_path, value, problem)
    try:
        seconds = parse_duration(value)
    except DurationError as exc:
        raise ConfigError(file, key_path, value, str(exc)) from None
    if not seconds <= _MAX_DURATION_SECONDS:
        raise ConfigError(file, key_path, value, too_long)
    if seconds < minimum or (minimum > 0 and seconds == 0):
        raise ConfigError(file, key_path, value, f"must be at least {minimum:g}s")
    return seconds


def _string_list(raw: Mapping[str, object], key: str, file: str, path: str) -> tuple[str, ...]:
    value = raw.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(file, child_path(path, key), value, "must be a list of non-empty strings")
    return tuple(value)


def parse_listen_address(address: str, source: str = "--web.listen-address") -> tuple[str, int]:
    """`host:port`, `[host]:port` or `:port` (all interfaces); raises ConfigError naming `source` otherwise."""
    try:
        return listen_address.parse_listen_address(address)
    except listen_address.ListenAddressError as exc:
        raise ConfigError(source, "", address, str(exc)) from None


def _static_allocations(value: object, file: str) -> tuple[StaticAllocation, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(file, "allocations", value, "must be a list")
    allowed = ("uuid", "namespace", "pod", "container", "share", "labels", "pod_uid")
    result: list[StaticAllocation] = []
    for index, item in enumerate(value):
        path = child_path("allocations", index)
        raw = require_mapping(item, file, path)
        reject_unknown_keys(raw, allowed, file, path)
        uuid, namespace, pod = (read_str(raw, key, file, path) for key in ("uuid", "namespace", "pod"))
        share = optional_float(raw, "share", file, path, positive=True, maximum=1.0)
        labels = raw.get("labels") or {}
        if not isinstance(labels, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
        ):
            raise ConfigError(file, child_path(path, "labels"), labels, "must map label names to string values")
        ref = ContainerRef(namespace, pod, optional_str(raw, "container", file, path) or "main")
        allocation = DeviceAllocation(uuid, ref, 1.0 if share is None else share,
                                      pod_uid=optional_str(raw, "pod_uid", file, path))
        result.append(StaticAllocation(allocation, dict(labels)))
    return tuple(result)


def _kubelet_address(raw: Mapping[str, object], file: str, path: str) -> str:
    address = optional_str(raw, "address", file, path)
    if not address:
        return ""
    parsed = urllib.parse.urlsplit(address)
    try:
        port_ok = parsed.port is None or parsed.port > 0
    except ValueError:
        port_ok = False
    if parsed.scheme not in ("https", "http") or not parsed.hostname or not port_ok or parsed.path not in ("", "/"):
        raise ConfigError(file, child_path(path, "address"), address,
                          "must be the kubelet's base URL, https://HOST:PORT (for example https://10.0.0.5:10250)")
    return address.rstrip("/")


def _kubelet_resource(k8s: Mapping[str, object], file: str) -> KubeletResourceConfig:
    path = "kubernetes.kubelet_resource"
    raw = _section(k8s, "kubelet_resource", file, "kubernetes",
                   ("enabled", "address", "insecure_skip_tls_verify", "token_file", "ca_file"))
    enabled = raw.get("enabled")
    return KubeletResourceConfig(
        enabled=None if enabled is None else read_bool(raw, "enabled", file, path, default=False),
        address=_kubelet_address(raw, file, path),
        insecure_skip_tls_verify=read_bool(raw, "insecure_skip_tls_verify", file, path, default=False),
        token_file=optional_str(raw, "token_file", file, path) or DEFAULT_TOKEN_FILE,
        ca_file=optional_str(raw, "ca_file", file, path) or DEFAULT_CA_FILE,
    )


def _kubernetes(top: Mapping[str, object], file: str) -> KubernetesConfig:
    allowed = ("enabled", "node_name", "pod_resources_socket", "pod_resources_interval", "max_staleness",
               "extra_resource_names", "mps_resources", "replicas_per_gpu", "kubeconfig", "per_process",
               "host_proc", "kubelet_resource")
    raw = _section(top, "kubernetes", file, "", allowed)
    path = "kubernetes"
    socket = optional_str(raw, "pod_resources_socket", file, path)
    if socket:
        check_pod_resources_socket(socket, file, "kubernetes.pod_resources_socket")
    return KubernetesConfig(
        enabled=read_bool(raw, "enabled", file, path, default=False),
        node_name=optional_str(raw, "node_name", file, path),
        pod_resources_socket=socket or DEFAULT_POD_RESOURCES_SOCKET,
        pod_resources_interval_seconds=_duration(raw, "pod_resources_interval", file, path, 2.0, minimum=0.1),
        max_staleness_seconds=_duration(raw, "max_staleness", file, path, 300.0),
        extra_resource_names=_string_list(raw, "extra_resource_names", file, path),
        mps_resources=_string_list(raw, "mps_resources", file, path),
        replicas_per_gpu=optional_int(raw, "replicas_per_gpu", file, path, minimum=1),
        kubeconfig=optional_str(raw, "kubeconfig", file, path),
        per_process=read_bool(raw, "per_process", file, path, default=False),
        host_proc=optional_str(raw, "host_proc", file, path) or "/proc",
        kubelet_resource=_kubelet_resource(raw, file),
    )


def parse_config(raw: object, file: str) -> ExporterConfig:
    """Validate a parsed YAML document; raises ConfigError on the first problem."""
    top = require_mapping(raw, file, "")
    reject_unknown_keys(top, _TOP_KEYS, file, "")
    nvml = _section(top, "nvml", file, "", ("backend", "scenario", "speed"))
    backend = optional_str(nvml, "backend", file, "nvml", choices=BACKEND_NAMES) or "nvml"
    speed = optional_float(nvml, "speed", file, "nvml", positive=True)
    web = _section(top, "web", file, "", ("listen_address", "telemetry_path", "config_file"))
    listen = optional_str(web, "listen_address", file, "web") or DEFAULT_LISTEN_ADDRESS
    try:
        parse_listen_address(listen, file)
    except ConfigError:
        raise ConfigError(file, "web.listen_address", listen,
                          "must be [host]:port with port 0-65535") from None
    telemetry_path = optional_str(web, "telemetry_path", file, "web") or "/metrics"
    if not telemetry_path.startswith("/"):
        raise ConfigError(file, "web.telemetry_path", telemetry_path, "must start with /")
    log = _section(top, "log", file, "", ("level", "format"))
    pricing = top.get("pricing") or {}
    if not isinstance(pricing, Mapping):
        raise ConfigError(file, "pricing", pricing, "must be a mapping")
    workload_labels = top.get("workload_labels")
    if workload_labels is not None and not isinstance(workload_labels, Mapping):
        raise ConfigError(file, "workload_labels", workload_labels, "must be a mapping")
    # Arguments are evaluated in order, so the first error reported stays the same: other modules'
    # sections (pricing, workload_labels) are parsed last, once, and kept typed.
    return ExporterConfig(
        file=file,
        listen_address=listen,
        telemetry_path=telemetry_path,
        web_config_file=optional_str(web, "config_file", file, "web"),
        nvml_backend=backend,
        scenario_file=optional_str(nvml, "scenario", file, "nvml"),
        simulate_speed=speed,
        sample_interval_seconds=_duration(top, "sample_interval", file, "", 1.0, minimum=0.05),
        checkpoint_interval_seconds=_duration(top, "checkpoint_interval", file, "", 30.0, minimum=1.0),
        retention_seconds=_duration(top, "retention", file, "", 600.0),
        max_gap_seconds=_duration(top, "max_gap", file, "", 300.0),
        state_file=optional_str(top, "state_file", file, "") or DEFAULT_STATE_FILE,
        log_level=optional_str(log, "level", file, "log", choices=("debug", "info", "warn", "error")) or "info",
        log_format=optional_str(log, "format", file, "log", choices=("logfmt", "json")) or "logfmt",
        static_allocations=_static_allocations(top.get("allocations"), file),
        kubernetes=_kubernetes(top, file),
        pricing=parse_pricing_settings(dict(pricing), file),
        workload_labels=parse_workload_label_config(
            dict(workload_labels) if workload_labels is not None else None, file),
    )


def load_config_file(path: str) -> ExporterConfig:
    """Read and validate a config file; unreadable or unparsable files are ConfigErrors too."""
    raw = load_yaml_file(Path(path))
    return parse_config(raw if raw is not None else {}, path)


def check_kubeconfig_in_use(config: ExporterConfig, flag: str = "") -> None:
    """Check the kubeconfig the exporter will load, if any; `flag` names it when a flag set it.

    Not part of `parse_config`: a flag may still replace the file's kubeconfig
    or turn Kubernetes on, so the check runs on the merged settings.
    """
    k8s = config.kubernetes
    if not (k8s.enabled and k8s.kubeconfig):
        return
    if flag:
        check_kubeconfig(k8s.kubeconfig, flag, "")
    else:
        check_kubeconfig(k8s.kubeconfig, config.file, "kubernetes.kubeconfig")


def node_name_from_env(config: ExporterConfig) -> str:
    return config.kubernetes.node_name or os.environ.get("NODE_NAME", "")
