"""`gpucost-exporter`: the node exporter's command line.

Prometheus-style flags; flags override the config file.  User errors print one
line and exit 2; SIGTERM writes a final checkpoint and exits 0; SIGHUP reloads
the price overrides file.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from gpucost import __version__
from gpucost.command_exit import fail
from gpucost.config import (
    ExporterConfig,
    check_kubeconfig_in_use,
    load_config_file,
    parse_config,
    parse_listen_address,
)
from gpucost.durations import DurationError, parse_duration
from gpucost.errors import ConfigError, UserInputError
from gpucost.extras import MissingExtra, require_extra
from gpucost.kubeconfig_check import check_pod_resources_socket
from gpucost.logs import LOG_FORMATS, LOG_LEVELS, setup_logging
from gpucost.sources.gpu_backend import BACKEND_NAMES

__all__ = ["build_parser", "main"]

log = logging.getLogger("gpucost.exporter")


class _ArgumentError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """Usage errors become one line and exit 2 through `main`, like every other user error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _ArgumentError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gpucost-exporter",
        description="Publish exact GPU cost metrics per GPU, container, team and model for Prometheus.",
        epilog="Docs: docs/configuration.md (config file), docs/metrics.md (metrics).",
    )
    add = parser.add_argument
    add("--config.file", dest="config_file", default="", help="YAML config file (see docs/configuration.md)")
    add("--web.listen-address", dest="listen_address", default=None,
        help="address to serve metrics on (default :9835)")
    add("--web.telemetry-path", dest="telemetry_path", default=None, help="metrics path (default /metrics)")
    add("--web.config.file", dest="web_config_file", default=None,
        help="exporter-toolkit style web config: TLS and basic auth")
    add("--nvml.backend", dest="nvml_backend", choices=BACKEND_NAMES, default=None,
        help="GPU backend: nvml (real GPUs), simulated (scenario file) or none (a node without GPUs); "
             "default nvml")
    add("--simulate.scenario", dest="scenario_file", default=None, help="scenario YAML for --nvml.backend=simulated")
    add("--simulate.speed", dest="simulate_speed", type=float, default=None,
        help="scenario seconds per wall second (demo time compression)")
    add("--sample.interval", dest="sample_interval", default=None, help="sampling interval (default 1s)")
    add("--state.file", dest="state_file", default=None,
        help="ledger checkpoint file (default /var/lib/gpucost/state.json)")
    add("--state.checkpoint-interval", dest="checkpoint_interval", default=None, help="default 30s")
    add("--retention", dest="retention", default=None,
        help="how long a gone container's series stay exported (default 10m)")
    add("--kubernetes.enabled", dest="kubernetes_enabled", action="store_true", default=None,
        help="attribute GPUs to pods through the kubelet and API server")
    add("--kubernetes.node-name", dest="node_name", default=None, help="this node's name (default $NODE_NAME)")
    add("--kubernetes.kubeconfig", dest="kubeconfig", default=None,
        help="kubeconfig for development (default: in-cluster config)")
    add("--kubelet.pod-resources-socket", dest="pod_resources_socket", default=None,
        help="kubelet pod-resources socket (default /var/lib/kubelet/pod-resources/kubelet.sock)")
    add("--kubelet.poll-interval", dest="pod_resources_interval", default=None,
        help="how often to call the kubelet's List (default 2s; it is rate limited)")
    add("--kubelet.max-staleness", dest="max_staleness", default=None,
        help="how long the last good allocation is kept when the kubelet is unreachable (default 5m)")
    add("--host.proc", dest="host_proc", default=None, help="host /proc mount for per-process split")
    add("--log.level", dest="log_level", choices=LOG_LEVELS, default=None, help="default info")
    add("--log.format", dest="log_format", choices=LOG_FORMATS, default=None, help="default logfmt")
    add("--version", action="version", version=f"gpucost-exporter {__version__}")
    return parser


def _duration_flag(name: str, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except DurationError as exc:
        raise ConfigError(name, "", value, str(exc)) from None


def resolve_config(args: argparse.Namespace) -> ExporterConfig:
    config = load_config_file(args.config_file) if args.config_file else parse_config({}, "")
    k8s = config.kubernetes
    from dataclasses import replace

    k8s = replace(
        k8s,
        **{
            key: value
            for key, value in {
                "enabled": args.kubernetes_enabled,
                "node_name": args.node_name,
                "kubeconfig": args.kubeconfig,
                "pod_resources_socket": args.pod_resources_socket,
                "pod_resources_interval_seconds": _duration_flag("--kubelet.poll-interval",
                                                                 args.pod_resources_interval),
                "max_staleness_seconds": _duration_flag("--kubelet.max-staleness", args.max_staleness),
                "host_proc": args.host_proc,
            }.items()
            if value is not None
        },
    )
    config = config.with_overrides(
        listen_address=args.listen_address,
        telemetry_path=args.telemetry_path,
        web_config_file=args.web_config_file,
        nvml_backend=args.nvml_backend,
        scenario_file=args.scenario_file,
        simulate_speed=args.simulate_speed,
        sample_interval_seconds=_duration_flag("--sample.interval", args.sample_interval),
        checkpoint_interval_seconds=_duration_flag("--state.checkpoint-interval", args.checkpoint_interval),
        retention_seconds=_duration_flag("--retention", args.retention),
        state_file=args.state_file,
        log_level=args.log_level,
        log_format=args.log_format,
        kubernetes=k8s,
    )
    parse_listen_address(config.listen_address)
    if config.sample_interval_seconds <= 0:
        raise ConfigError("--sample.interval", "", config.sample_interval_seconds, "must be positive")
    if config.telemetry_path and not config.telemetry_path.startswith("/"):
        raise ConfigError("--web.telemetry-path", "", config.telemetry_path, "must start with /")
    if config.nvml_backend == "simulated" and not config.scenario_file:
        raise ConfigError("--simulate.scenario", "", "", "is required with --nvml.backend=simulated")
    if args.pod_resources_socket is not None:
        check_pod_resources_socket(args.pod_resources_socket, "--kubelet.pod-resources-socket", "")
    if config.kubernetes.enabled:
        # Before anything imports grpc or the kubernetes client: a bare install gets one line, not a traceback.
        require_extra("k8s", "Kubernetes attribution (--kubernetes.enabled)")
    check_kubeconfig_in_use(config, "--kubernetes.kubeconfig" if args.kubeconfig is not None else "")
    return config


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        config = resolve_config(args)
        setup_logging(config.log_level, config.log_format)
        from gpucost.app import build_exporter

        exporter = build_exporter(config)
    except _ArgumentError as exc:
        return fail(f"gpucost-exporter: {exc}")
    except (UserInputError, MissingExtra) as exc:
        return fail(f"gpucost-exporter: {exc.one_line()}")
    except OSError as exc:
        return fail(f"gpucost-exporter: cannot start: {exc}")

    stopping = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            exporter.reload()
            return
        stopping.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    exporter.start()
    # The bound port, not the configured one: with port 0 the kernel picks it and only the log tells.
    host, _ = parse_listen_address(config.listen_address)
    shown_host = f"[{host}]" if ":" in host else host
    log.info("gpucost-exporter %s listening on %s:%d%s (backend %s)", __version__, shown_host,
             exporter.server.port, config.telemetry_path, config.nvml_backend)
    while not stopping.wait(1.0):
        pass
    log.info("stopping: writing the final checkpoint")
    exporter.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
