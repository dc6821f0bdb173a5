"""Wire the exporter together from a validated config: sources, price book, sampler, server."""

from __future__ import annotations

import logging

from gpucost.attribution import (
    Providers,
    ScenarioAllocationProvider,
    ScenarioMetadataProvider,
    ScenarioNodeResourceProvider,
    ScenarioPidOwners,
    StaticAllocationProvider,
    StaticMetadataProvider,
)
from gpucost.config import ExporterConfig, node_name_from_env, parse_listen_address
from gpucost.errors import ConfigError
from gpucost.model import DeviceAllocation, NodeInfo, PodMeta
from gpucost.pricing.book import PriceBook
from gpucost.sampler import GpuSource, Sampler, SamplerSettings
from gpucost.server import ExporterServer, load_web_config
from gpucost.sources.gpu_backend import make_backend
from gpucost.sources.simulated import SimulatedGpuBackend
from gpucost.sources.workload_labels import WorkloadLabelMapper
from gpucost.state import StateFile, StateFileLocked

__all__ = ["Exporter", "build_exporter"]

log = logging.getLogger("gpucost.app")


class Exporter:
    def __init__(self, sampler: Sampler, server: ExporterServer, prices: PriceBook) -> None:
        self.sampler = sampler
        self.server = server
        self._prices = prices

    def start(self) -> None:
        self.sampler.start()
        self.server.start()

    def stop(self) -> None:
        self.server.stop()
        self.sampler.stop()

    def reload(self) -> None:
        """SIGHUP: re-read the price overrides file now."""
        changed = self._prices.reload_overrides_if_changed()
        log.info("SIGHUP: price overrides %s", "reloaded" if changed else "unchanged")


def _providers(config: ExporterConfig, backend: GpuSource) -> Providers:
    if config.kubernetes.enabled:
        from gpucost.kube import kubernetes_providers

        return kubernetes_providers(config, backend)
    if isinstance(backend, SimulatedGpuBackend) and not config.static_allocations:
        source = backend.allocation_source()
        return Providers(ScenarioAllocationProvider(source), ScenarioMetadataProvider(source),
                         ScenarioPidOwners(source), ScenarioNodeResourceProvider(source))
    allocations: list[DeviceAllocation] = [s.allocation for s in config.static_allocations]
    pods = {}
    for static in config.static_allocations:
        ref = static.allocation.container
        pods[(ref.namespace, ref.pod)] = PodMeta(ref.namespace, ref.pod, static.allocation.pod_uid,
                                                  labels=dict(static.labels))
    node = NodeInfo(node_name_from_env(config), {})
    if isinstance(backend, SimulatedGpuBackend):
        node = backend.allocation_source().node_info()
    # Static pods declare no requests: the node's CPU, memory and storage cost stays unallocated.
    return Providers(StaticAllocationProvider(allocations), StaticMetadataProvider(list(pods.values()), node))


def _locked_state_file(config: ExporterConfig, node_name: str) -> StateFile | None:
    """The checkpoint, locked for this process's lifetime; a second exporter on it is a user error."""
    if not config.state_file:
        return None
    state = StateFile(config.state_file, node_name=node_name)
    try:
        state.lock()
    except StateFileLocked as exc:
        raise ConfigError("--state.file", "", config.state_file, str(exc)) from None
    except OSError as exc:
        # Not fatal: the checkpoint writes will fail too and show in the health metrics.
        log.warning("cannot lock %s: %s; running without the single-writer check", state.lock_path, exc)
    return state


def build_exporter(config: ExporterConfig) -> Exporter:
    """Build everything; raises ConfigError for user errors and OSError when the port is taken."""
    prices = PriceBook.from_settings(config.pricing)
    web = load_web_config(config.web_config_file) if config.web_config_file else None
    backend = make_backend(config.nvml_backend, config.scenario_file or None, config.simulate_speed)
    providers = _providers(config, backend)
    settings = SamplerSettings(
        workload_label_names=config.workload_labels.label_names,
        sample_interval_seconds=config.sample_interval_seconds,
        checkpoint_interval_seconds=config.checkpoint_interval_seconds,
        retention_seconds=config.retention_seconds,
        max_gap_seconds=config.max_gap_seconds,
    )
    # The node name before the first API server answer: the metadata provider's (scenario, static)
    # or the configured one ($NODE_NAME); the checkpoint is refused when written on another node.
    state = _locked_state_file(config, providers.metadata.node().name or node_name_from_env(config))
    # The node's parts are priced from the same settings, catalog and overrides file as its GPUs.
    sampler = Sampler(settings, backend, providers.allocations, providers.metadata, prices,
                      WorkloadLabelMapper(config.workload_labels), state, pid_owners=providers.pid_owners,
                      node_resources=providers.node_resources, node_prices=prices.node_parts())
    host, port = parse_listen_address(config.listen_address)
    try:
        server = ExporterServer(host, port, sampler.snapshot, sampler.readiness_problems,
                                config.telemetry_path, web)
    except OSError as exc:
        if state is not None:
            state.release()
        raise ConfigError("--web.listen-address", "", config.listen_address,
                          f"cannot listen: {exc.strerror or exc}") from None
    return Exporter(sampler, server, prices)
