"""The synthetic fleet behind the rules-at-scale benchmark: nodes x 8 GPUs, pod slots, workloads, pods over time.

`SyntheticFleet` decides, deterministically, which pod holds which GPUs at any second;
`fleet_history` writes what its exporters would have exposed.  Serving pods (the
`Deployment` workloads, about two thirds of all pods) belong to a business unit.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

__all__ = ["BUSINESS_UNITS", "GPUS_PER_NODE", "NODE_POOLS", "SLOT_SIZES", "TEAMS", "Pod", "SyntheticFleet", "Workload",
           "workload_catalog"]

GPUS_PER_NODE = 8
# GPUs per pod slot on a node: two single-GPU pods, one 2-GPU pod, one 4-GPU pod.
SLOT_SIZES = (1, 1, 2, 4)
NODE_POOLS = (("h100-pool", "NVIDIA H100 80GB HBM3", 4.10), ("a100-pool", "NVIDIA A100-SXM4-80GB", 2.90),
              ("l4-pool", "NVIDIA L4", 0.80))
TEAMS = ("research", "search", "ads", "vision", "speech", "recsys", "nlp", "platform", "fraud", "maps",
         "robotics", "health")
JOB_KINDS = ("Job", "PyTorchJob", "Deployment")
WORKLOADS_PER_NODE = 4
BUSINESS_UNITS = ("consumer", "enterprise", "infra")


def _hash(*parts: object) -> int:
    return zlib.crc32("/".join(str(p) for p in parts).encode())


@dataclass(frozen=True, slots=True)
class Workload:
    namespace: str
    team: str
    model: str
    model_version: str
    cost_center: str
    business_unit: str
    owner_kind: str

    def labels(self) -> str:
        """The workload labels the exporter adds (namespace is one of the series' own labels)."""
        return (f'team="{self.team}",model="{self.model}",'
                f'model_version="{self.model_version}",cost_center="{self.cost_center}",'
                f'business_unit="{self.business_unit}"')


def workload_catalog() -> tuple[Workload, ...]:
    """12 teams x 2 namespaces x 3 models, plus one workload nobody labelled (team="")."""
    workloads = []
    for t, team in enumerate(TEAMS):
        for n in range(2):
            for m in range(3):
                workloads.append(Workload(
                    namespace=f"{team}-{('train', 'serve')[n]}", team=team, model=f"{team}-model-{m}",
                    model_version=f"v{1 + (t + m) % 3}", cost_center=f"cc-{100 + t}",
                    business_unit=BUSINESS_UNITS[t % len(BUSINESS_UNITS)],
                    owner_kind=JOB_KINDS[(n * 3 + m) % len(JOB_KINDS)] if n == 0 else "Deployment"))
    workloads.append(Workload("default", "", "unknown", "", "", "", "Pod"))
    return tuple(workloads)


@dataclass(frozen=True, slots=True)
class Pod:
    name: str
    workload: int
    owner_kind: str
    owner_name: str
    started: int
    utilization: float


class SyntheticFleet:
    """Deterministic fleet: every slot runs a pod for `pod_lifetime_seconds`, then a new one replaces it.

    About one generation in ten leaves the slot empty (unallocated).  Counters are exact
    closed forms or integrals over the written steps, so the file is what an exporter that
    never restarted would have exposed.
    """

    def __init__(self, nodes: int, start: int, pod_lifetime_seconds: int) -> None:
        self.nodes = nodes
        self.start = start
        self.lifetime = pod_lifetime_seconds
        self.workloads = workload_catalog()
        self.phase = [[_hash("phase", n, s) % pod_lifetime_seconds for s in range(len(SLOT_SIZES))]
                      for n in range(nodes)]
        self.node_name = [f"gpu-node-{n:04d}" for n in range(nodes)]
        self.pool = [NODE_POOLS[n % len(NODE_POOLS)] for n in range(nodes)]
        self.uuid = [[f"GPU-{_hash('uuid', n, g):08x}-{n:04x}-{g:04x}" for g in range(GPUS_PER_NODE)]
                     for n in range(nodes)]
        self.target = [f'job="gpucost-exporter",instance="{self.node_name[n]}:9400",node="{self.node_name[n]}",'
                       f'node_pool="{self.pool[n][0]}"' for n in range(nodes)]

    def slot_gpus(self, slot: int) -> range:
        first = sum(SLOT_SIZES[:slot])
        return range(first, first + SLOT_SIZES[slot])

    def pod_at(self, node: int, slot: int, t: int) -> Pod | None:
        generation = (t - self.start + self.phase[node][slot]) // self.lifetime
        h = _hash("pod", node, slot, generation)
        if h % 10 == 0:
            return None
        # A node serves a few workloads (its team's pools), so per-node workload counters stay few.
        index = (node * 3 + (h >> 8) % WORKLOADS_PER_NODE) % len(self.workloads)
        workload = self.workloads[index]
        started = max(self.start, self.start + generation * self.lifetime - self.phase[node][slot])
        # Unique by construction (a hash would collide at fleet size): one pod name per node, slot and
        # generation, as the API server guarantees; series without node labels would otherwise clash.
        uid = _base36((generation * self.nodes + node) * len(SLOT_SIZES) + slot)
        if workload.owner_kind == "Deployment":
            owner = f"{workload.model}-serve"
        elif workload.owner_kind == "Pod":
            owner = f"scratch-{uid}"
        else:
            owner = f"{workload.model}-run-{uid}"
        name = owner if workload.owner_kind == "Pod" else f"{owner}-{uid}-{h % 0xFFFFF:05x}"
        return Pod(name, index, workload.owner_kind, owner, started, 0.15 + (h % 80) / 100)


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, rest = divmod(number, 36)
        text = digits[rest] + text
        if number == 0:
            return text
