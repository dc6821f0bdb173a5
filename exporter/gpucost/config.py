"""The exporter's configuration: YAML file plus flags, validated on load.

Every problem is a `ConfigError` naming the file, the key path and the value;
the CLI prints it as one line and exits 2.  `gpucost validate-config FILE`
runs the same validation without starting anything.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import yaml

from gpucost.durations import DurationError, parse_duration
from gpucost.errors import ConfigError
from gpucost.model import ContainerRef, DeviceAllocation

__all__ = [
    "DEFAULT_LISTEN_ADDRESS",
    "ExporterConfig",
    "KubernetesConfig",
    "StaticAllocation",
    "load_config_file",
    "parse_config",
    "parse_listen_address",
]

DEFAULT_LISTEN_ADDRESS = ":9835"
DEFAULT_POD_RESOURCES_SOCKET = "/var/lib/kubelet/pod-resources/kubelet.sock"
DEFAULT_STATE_FILE = "/var/lib/gpucost/state.json"

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StaticAllocation:
    """A container holding a device, declared in the config (no Kubernetes needed)."""

    allocation: DeviceAllocation
    labels: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class KubernetesConfig:
    enabled: bool = False
    node_name: str = ""
    pod_resources_socket: str = DEFAULT_POD_RESOURCES_SOCKET
    pod_resources_interval_seconds: float = 10.0
    max_staleness_seconds: float = 300.0
    extra_resource_names: tuple[str, ...] = ()
    mps_resources: tuple[str, ...] = ()
    replicas_per_gpu: int | None = None
    kubeconfig: str = ""
    per_process: bool = False
    host_proc: str = "/proc"


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
    pricing_raw: Mapping[str, Any] = field(default_factory=dict)
    workload_labels_raw: Mapping[str, Any] | None = None
    static_allocations: tuple[StaticAllocation, ...] = ()
    kubernetes: KubernetesConfig = field(default_factory=KubernetesConfig)

    def with_overrides(self, **changes: Any) -> ExporterConfig:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


_TOP_KEYS = {
    "sample_interval", "checkpoint_interval", "retention", "max_gap", "state_file", "nvml", "pricing",
    "workload_labels", "allocations", "kubernetes", "web", "log",
}


class _Reader:
    """Typed access to a YAML mapping that reports file + key path on every error."""

    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, path: str, value: object, problem: str) -> ConfigError:
        return ConfigError(self.file, path, value, problem)

    def mapping(self, value: object, path: str, allowed: set[str]) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.fail(path, value, "must be a mapping")
        for key in value:
            if key not in allowed:
                where = f"{path}.{key}" if path else str(key)
                raise self.fail(where, key, f"unknown key (allowed: {', '.join(sorted(allowed))})")
        return value

    def typed(self, raw: Mapping[str, Any], key: str, path: str, kind: type[T], default: T) -> T:
        if key not in raw or raw[key] is None:
            return default
        value = raw[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise self.fail(self.join(path, key), value, f"must be a {kind.__name__}")
        return value

    def duration(self, raw: Mapping[str, Any], key: str, path: str, default: float, minimum: float = 0.0) -> float:
        if key not in raw or raw[key] is None:
            return default
        try:
            seconds = parse_duration(raw[key])
        except DurationError as exc:
            raise self.fail(self.join(path, key), raw[key], str(exc)) from None
        if seconds < minimum or (minimum > 0 and seconds == 0):
            raise self.fail(self.join(path, key), raw[key], f"must be at least {minimum:g}s")
        return seconds

    def string_list(self, raw: Mapping[str, Any], key: str, path: str) -> tuple[str, ...]:
        value = raw.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(self.join(path, key), value, "must be a list of non-empty strings")
        return tuple(value)

    @staticmethod
    def join(path: str, key: str) -> str:
        return f"{path}.{key}" if path else key


def parse_listen_address(address: str, source: str = "--web.listen-address") -> tuple[str, int]:
    """`host:port` or `:port` (all interfaces); raises ConfigError for anything else."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(source, "", address, "listen address must be [host]:port with port 0-65535")
    host = host.strip("[]")
    if host and any(c.isspace() for c in host):
        raise ConfigError(source, "", address, "listen address host is not valid")
    return host, int(port_text)


def _static_allocations(reader: _Reader, value: object) -> tuple[StaticAllocation, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise reader.fail("allocations", value, "must be a list")
    allowed = {"uuid", "namespace", "pod", "container", "share", "labels", "pod_uid"}
    result: list[StaticAllocation] = []
    for index, item in enumerate(value):
        path = f"allocations[{index}]"
        raw = reader.mapping(item, path, allowed)
        for required in ("uuid", "namespace", "pod"):
            if not isinstance(raw.get(required), str) or not raw[required]:
                raise reader.fail(f"{path}.{required}", raw.get(required), "is required and must be a string")
        share = reader.typed(raw, "share", path, float, 1.0)
        if not 0.0 < share <= 1.0:
            raise reader.fail(f"{path}.share", share, "must be in (0, 1]")
        labels = raw.get("labels") or {}
        if not isinstance(labels, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
        ):
            raise reader.fail(f"{path}.labels", labels, "must map label names to string values")
        container = reader.typed(raw, "container", path, str, "main")
        ref = ContainerRef(raw["namespace"], raw["pod"], container)
        allocation = DeviceAllocation(raw["uuid"], ref, share, pod_uid=reader.typed(raw, "pod_uid", path, str, ""))
        result.append(StaticAllocation(allocation, dict(labels)))
    return tuple(result)


def _kubernetes(reader: _Reader, value: object) -> KubernetesConfig:
    allowed = {"enabled", "node_name", "pod_resources_socket", "pod_resources_interval", "max_staleness",
               "extra_resource_names", "mps_resources", "replicas_per_gpu", "kubeconfig", "per_process",
               "host_proc"}
    raw = reader.mapping(value, "kubernetes", allowed)
    path = "kubernetes"
    replicas = raw.get("replicas_per_gpu")
    if replicas is not None and (not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 1):
        raise reader.fail("kubernetes.replicas_per_gpu", replicas, "must be a positive integer")
    return KubernetesConfig(
        enabled=reader.typed(raw, "enabled", path, bool, False),
        node_name=reader.typed(raw, "node_name", path, str, ""),
        pod_resources_socket=reader.typed(raw, "pod_resources_socket", path, str, DEFAULT_POD_RESOURCES_SOCKET),
        pod_resources_interval_seconds=reader.duration(raw, "pod_resources_interval", path, 10.0, minimum=0.1),
        max_staleness_seconds=reader.duration(raw, "max_staleness", path, 300.0),
        extra_resource_names=reader.string_list(raw, "extra_resource_names", path),
        mps_resources=reader.string_list(raw, "mps_resources", path),
        replicas_per_gpu=replicas,
        kubeconfig=reader.typed(raw, "kubeconfig", path, str, ""),
        per_process=reader.typed(raw, "per_process", path, bool, False),
        host_proc=reader.typed(raw, "host_proc", path, str, "/proc"),
    )


def parse_config(raw: object, file: str) -> ExporterConfig:
    """Validate a parsed YAML document; raises ConfigError on the first problem."""
    reader = _Reader(file)
    top = reader.mapping(raw, "", _TOP_KEYS)
    nvml = reader.mapping(top.get("nvml"), "nvml", {"backend", "scenario", "speed"})
    backend = reader.typed(nvml, "backend", "nvml", str, "nvml")
    if backend not in ("nvml", "simulated"):
        raise reader.fail("nvml.backend", backend, "must be nvml or simulated")
    speed = nvml.get("speed")
    if speed is not None and (isinstance(speed, bool) or not isinstance(speed, int | float) or speed <= 0):
        raise reader.fail("nvml.speed", speed, "must be a positive number")
    web = reader.mapping(top.get("web"), "web", {"listen_address", "telemetry_path", "config_file"})
    listen = reader.typed(web, "listen_address", "web", str, DEFAULT_LISTEN_ADDRESS)
    if "listen_address" in web:
        try:
            parse_listen_address(listen, file)
        except ConfigError:
            raise reader.fail("web.listen_address", listen, "must be [host]:port with port 0-65535") from None
    telemetry_path = reader.typed(web, "telemetry_path", "web", str, "/metrics")
    if not telemetry_path.startswith("/"):
        raise reader.fail("web.telemetry_path", telemetry_path, "must start with /")
    log = reader.mapping(top.get("log"), "log", {"level", "format"})
    level = reader.typed(log, "level", "log", str, "info")
    if level not in ("debug", "info", "warn", "error"):
        raise reader.fail("log.level", level, "must be debug, info, warn or error")
    log_format = reader.typed(log, "format", "log", str, "logfmt")
    if log_format not in ("logfmt", "json"):
        raise reader.fail("log.format", log_format, "must be logfmt or json")
    pricing = top.get("pricing") or {}
    if not isinstance(pricing, Mapping):
        raise reader.fail("pricing", pricing, "must be a mapping")
    workload_labels = top.get("workload_labels")
    if workload_labels is not None and not isinstance(workload_labels, Mapping):
        raise reader.fail("workload_labels", workload_labels, "must be a mapping")
    config = ExporterConfig(
        file=file,
        listen_address=listen,
        telemetry_path=telemetry_path,
        web_config_file=reader.typed(web, "config_file", "web", str, ""),
        nvml_backend=backend,
        scenario_file=reader.typed(nvml, "scenario", "nvml", str, ""),
        simulate_speed=float(speed) if speed is not None else None,
        sample_interval_seconds=reader.duration(top, "sample_interval", "", 1.0, minimum=0.05),
        checkpoint_interval_seconds=reader.duration(top, "checkpoint_interval", "", 30.0, minimum=1.0),
        retention_seconds=reader.duration(top, "retention", "", 600.0),
        max_gap_seconds=reader.duration(top, "max_gap", "", 300.0),
        state_file=reader.typed(top, "state_file", "", str, DEFAULT_STATE_FILE),
        log_level=level,
        log_format=log_format,
        pricing_raw=dict(pricing),
        workload_labels_raw=dict(workload_labels) if workload_labels is not None else None,
        static_allocations=_static_allocations(reader, top.get("allocations")),
        kubernetes=_kubernetes(reader, top.get("kubernetes")),
    )
    _validate_sections(config)
    return config


def _validate_sections(config: ExporterConfig) -> None:
    """Sections owned by other modules validate themselves (same error style)."""
    validators: list[Callable[[ExporterConfig], object]] = [_pricing_settings, _workload_label_config]
    for validate in validators:
        validate(config)


def _pricing_settings(config: ExporterConfig) -> object:
    from gpucost.pricing.settings import parse_pricing_settings

    return parse_pricing_settings(config.pricing_raw, config.file)


def _workload_label_config(config: ExporterConfig) -> object:
    from gpucost.sources.workload_labels import DEFAULT_WORKLOAD_LABEL_CONFIG, parse_workload_label_config

    if config.workload_labels_raw is None:
        return DEFAULT_WORKLOAD_LABEL_CONFIG
    return parse_workload_label_config(config.workload_labels_raw, config.file)


def load_config_file(path: str) -> ExporterConfig:
    """Read and validate a config file; unreadable or unparsable files are ConfigErrors too."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(path, "", path, f"cannot read config file: {exc.strerror or exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(path, where, text[:40], f"not valid YAML: {getattr(exc, 'problem', exc)}") from None
    return parse_config(raw if raw is not None else {}, path)


def node_name_from_env(config: ExporterConfig) -> str:
    return config.kubernetes.node_name or os.environ.get("NODE_NAME", "")
