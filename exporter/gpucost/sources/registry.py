"""Every source the sampler reads, with the health name it reports under, its settings and its docs line.

The `collector` label of `gpucost_exporter_collector_success` and
`_duration_seconds` takes exactly these names: the sampler runs each step
through the health board under its source's `collector`, and each provider's
`name` is one of them.  The health table in docs/kubernetes.md is generated
from here (`python -m gpucost.sources.registry`); a test fails when they differ.

To add a source: add an entry here, give its provider `name = ENTRY.collector`,
run its step in `gpucost.sampler` through the health board, and regenerate the
docs table.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "APISERVER",
    "KUBELET_RESOURCE",
    "METADATA",
    "NVML",
    "PODRESOURCES",
    "PRICING",
    "PROCFS",
    "SCENARIO",
    "SOURCES",
    "STATE",
    "STATIC",
    "Setting",
    "SourceSpec",
    "collector_names",
    "render_health_rows",
    "source_for",
]


@dataclass(frozen=True, slots=True)
class Setting:
    """A config file key (dotted path) a source reads, and the flag that overrides it, if any."""

    key: str
    flag: str = ""


@dataclass(frozen=True, slots=True)
class SourceSpec:
    collector: str
    # One line for the health table: what success means for this source.
    description: str
    settings: tuple[Setting, ...] = ()
    # False for steps whose failure leaves the metrics right (the checkpoint write): /readyz ignores them.
    feeds_metrics: bool = True
    # False for a source whose absence only coarsens one part (CPU/memory usage): /readyz ignores it too.
    gates_readiness: bool = True


NVML = SourceSpec(
    "nvml",
    "1 when every device's last sample was read (the simulated backend reports under this name too); "
    "0 when the driver did not start or no device answered",
    (Setting("nvml.backend", "--nvml.backend"), Setting("nvml.scenario", "--simulate.scenario"),
     Setting("nvml.speed", "--simulate.speed")),
)
PODRESOURCES = SourceSpec(
    "podresources",
    "1 when the last kubelet poll succeeded, 0 while the kubelet is unreachable "
    "(the last good allocation is still used within the staleness bound)",
    (Setting("kubernetes.enabled", "--kubernetes.enabled"),
     Setting("kubernetes.pod_resources_socket", "--kubelet.pod-resources-socket"),
     Setting("kubernetes.pod_resources_interval", "--kubelet.poll-interval"),
     Setting("kubernetes.max_staleness", "--kubelet.max-staleness"),
     Setting("kubernetes.extra_resource_names"), Setting("kubernetes.mps_resources"),
     Setting("kubernetes.replicas_per_gpu")),
)
APISERVER = SourceSpec(
    "apiserver",
    "1 while the pod watch, the namespace watch and the node get are healthy, 0 during an outage",
    (Setting("kubernetes.enabled", "--kubernetes.enabled"), Setting("kubernetes.node_name", "--kubernetes.node-name"),
     Setting("kubernetes.kubeconfig", "--kubernetes.kubeconfig"), Setting("workload_labels")),
)
KUBELET_RESOURCE = SourceSpec(
    "kubelet_resource",
    "whole-node cost: 1 when the node's kubelet `/metrics/resource` was read, 0 while it is unreachable "
    "(CPU and memory are then charged by request alone; GPU cost is unaffected; not a readiness problem)",
    (Setting("kubernetes.kubelet_resource.enabled"), Setting("kubernetes.kubelet_resource.address"),
     Setting("kubernetes.kubelet_resource.insecure_skip_tls_verify")),
    gates_readiness=False,
)
PROCFS = SourceSpec(
    "procfs",
    "only with `per_process` (or a scenario): 1 when the sampled processes' pods were looked up "
    "(a process already gone or out of sight is no failure), 0 when reading `/proc` failed",
    (Setting("kubernetes.per_process"), Setting("kubernetes.host_proc", "--host.proc")),
)
SCENARIO = SourceSpec(
    "scenario",
    "without Kubernetes, on the simulated backend: the scenario's allocations were read",
    (Setting("nvml.scenario", "--simulate.scenario"),),
)
STATIC = SourceSpec(
    "static",
    "without Kubernetes: the allocations declared in the config file (`allocations`) were read",
    (Setting("allocations"),),
)
METADATA = SourceSpec(
    "metadata",
    "without Kubernetes: pod and node labels from the config file or the scenario were read",
    (Setting("allocations"), Setting("nvml.scenario", "--simulate.scenario")),
)
PRICING = SourceSpec(
    "pricing",
    "1 when every device got a price quote (overrides file re-read when it changed), 0 when quoting failed",
    (Setting("pricing"),),
)
STATE = SourceSpec(
    "state",
    "1 when the last checkpoint was written, 0 when writing it failed (counting goes on; not a readiness problem)",
    (Setting("state_file", "--state.file"), Setting("checkpoint_interval", "--state.checkpoint-interval")),
    feeds_metrics=False,
)

SOURCES: tuple[SourceSpec, ...] = (
    NVML, PODRESOURCES, APISERVER, KUBELET_RESOURCE, PROCFS, SCENARIO, STATIC, METADATA, PRICING, STATE,
)


def collector_names() -> tuple[str, ...]:
    return tuple(source.collector for source in SOURCES)


def source_for(collector: str) -> SourceSpec:
    """The registered source reporting under `collector`; KeyError names an unregistered one."""
    for source in SOURCES:
        if source.collector == collector:
            return source
    raise KeyError(f"no source reports under collector {collector!r}; register it in gpucost.sources.registry")


def _settings_text(settings: tuple[Setting, ...]) -> str:
    named = [f"`{s.key}` (`{s.flag}`)" if s.flag else f"`{s.key}`" for s in settings]
    return f". Set by {', '.join(named)}" if named else ""


def render_health_rows() -> str:
    """The health table's rows, one per collector, as docs/kubernetes.md holds them."""
    return "".join(
        f'| `gpucost_exporter_collector_success{{collector="{source.collector}"}}` | '
        f"{source.description}{_settings_text(source.settings)} |\n"
        for source in SOURCES
    )


if __name__ == "__main__":
    print(render_health_rows(), end="")
