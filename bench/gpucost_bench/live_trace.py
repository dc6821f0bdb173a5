"""A generated trace of one 8-GPU node as Kubernetes shows it: the input of the live-node benchmark.

One p4de.24xlarge (8 x A100-SXM4-80GB): five exclusive GPUs, one time-sliced
into 4 replicas, one carved into three MIG slices (one seventh left uncarved),
and one held for the whole trace by an abandoned pod at 0 % busy.  Pods take
turns on each slot (a GPU, a replica or a slice): most run 10-90 s, a few run
for many minutes.  Each pod's utilization of its device is piecewise constant.
The kubelet names the devices in every form `device_ids.py` maps: `GPU-<uuid>`,
`GPU-<uuid>::N`, GKE's `nvidia<minor>`, `MIG-<uuid>` and the pre-R470
`MIG-GPU-<uuid>/<gi>/<ci>`.

Each pod goes through the events a real node shows, at times off the second
grid: created in the API server and admitted by the kubelet (listed with its
device) 0.5-3 s before its container starts; `running` with `startedAt` visible
0.5-1 s after the start; `terminated` with `finishedAt` 0.5-1 s after the end;
marked for deletion 0-15 s after the end and gone from the API server 0.2-1 s
later; no longer listed by the kubelet about 10 s after that.  Consecutive pods
of a slot are at least `MIN_SLOT_GAP_SECONDS` apart, so a device is never listed
for two pods at once.  The same seed always gives the same trace.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from gpucost.model import GpuDevice

__all__ = [
    "EVENT_ORDER",
    "NODE_LABELS",
    "NODE_NAME",
    "EventKind",
    "LiveNodeTrace",
    "LivePod",
    "LiveSlot",
    "NodeEvent",
    "PodKind",
    "TraceShape",
    "generate_live_node",
]

NODE_NAME = "ip-10-0-42-17.ec2.internal"
NODE_LABELS: Mapping[str, str] = {
    "node.kubernetes.io/instance-type": "p4de.24xlarge",
    "topology.kubernetes.io/region": "us-east-1",
    "topology.kubernetes.io/zone": "us-east-1b",
    "eks.amazonaws.com/capacityType": "ON_DEMAND",
}
GPU_MODEL = "NVIDIA A100-SXM4-80GB"
GPU_MEMORY_BYTES = 80 * 10**9
PARENT_SLICES = 7
GPU_RESOURCE = "nvidia.com/gpu"
# Wider than the longest tail (1 s to `terminated`, 15 s to deletion, 1 s to removal,
# 10.5 s to unlisting) plus the longest admission lead (3 s).
MIN_SLOT_GAP_SECONDS = 32.0
START_MARGIN_SECONDS = 5.0
SHORT_POD_SECONDS = (10.0, 90.0)

PodKind = Literal["short", "long", "abandoned"]
EventKind = Literal["admitted", "running", "terminated", "deleting", "removed", "unlisted"]
# A pod's events in lifecycle order: breaks ties between events at the same instant.
EVENT_ORDER: tuple[EventKind, ...] = ("admitted", "running", "terminated", "deleting", "removed", "unlisted")


@dataclass(frozen=True, slots=True)
class TraceShape:
    horizon_seconds: float
    short_pods: int
    long_pods: int
    long_pod_seconds: tuple[float, float]


FULL_SHAPE = TraceShape(2 * 3600.0, short_pods=272, long_pods=15, long_pod_seconds=(300.0, 1800.0))
QUICK_SHAPE = TraceShape(600.0, short_pods=22, long_pods=1, long_pod_seconds=(120.0, 240.0))


@dataclass(frozen=True, slots=True)
class LiveSlot:
    """What one pod holds: a GPU, one replica of a time-sliced GPU or a MIG slice, as the kubelet names it."""

    device_uuid: str  # the NVML device: a GPU or a MIG slice
    device_id: str  # what the kubelet lists
    resource: str
    share: float  # of the NVML device
    id_form: str


@dataclass(frozen=True, slots=True)
class _Team:
    name: str
    team_label_key: str  # "" when only the namespace carries the team
    models: tuple[str, ...]
    cost_center: str
    weight: float


_TEAMS = (
    _Team("research", "", ("llama-70b", "llama-8b"), "cc-1001", 4.0),
    _Team("search", "app.kubernetes.io/team", ("ranker", "embedder"), "cc-2002", 3.0),
    _Team("ads", "team", ("ctr",), "cc-3003", 2.0),
    _Team("speech", "app.kubernetes.io/team", ("whisper-ft",), "cc-4004", 1.0),
)
_NAMESPACE_LABELS: Mapping[str, Mapping[str, str]] = {
    "research": {"team": "research"},
    "search": {},
    "ads": {},
    "speech": {},
}


@dataclass(frozen=True, slots=True)
class LivePod:
    """One pod: its container runs over [start, end) on `slot`; the rest is when the node shows what."""

    name: str
    namespace: str
    uid: str
    kind: PodKind
    slot: LiveSlot
    labels: Mapping[str, str]
    start: float
    end: float
    phases: tuple[tuple[float, float], ...]  # (from, busy fraction of the device) until the next phase
    event_times: Mapping[EventKind, float]

    @property
    def life_seconds(self) -> float:
        return self.end - self.start

    @property
    def truth_gpu_seconds(self) -> float:
        return self.slot.share * self.life_seconds

    def utilization_at(self, t: float) -> float:
        if not self.start <= t < self.end:
            return 0.0
        value = 0.0
        for begin, busy in self.phases:
            if begin > t:
                break
            value = busy
        return value

    def boundaries(self) -> list[float]:
        return [self.start, *(begin for begin, _ in self.phases[1:]), self.end]

    def busy_seconds(self) -> float:
        """The integral of the pod's utilization over its life."""
        ends = [begin for begin, _ in self.phases[1:]] + [self.end]
        return sum(busy * (end - begin) for (begin, busy), end in zip(self.phases, ends, strict=True))


@dataclass(frozen=True, slots=True, order=True)
class NodeEvent:
    at: float
    order: int
    pod_index: int
    kind: EventKind


@dataclass(frozen=True, slots=True)
class LiveNodeTrace:
    seed: int
    shape: TraceShape
    devices: tuple[GpuDevice, ...]
    slots: tuple[LiveSlot, ...]
    pods: tuple[LivePod, ...]
    namespace_labels: Mapping[str, Mapping[str, str]]

    def events(self) -> list[NodeEvent]:
        """Every pod's events, in the order the node shows them."""
        return sorted(
            NodeEvent(at, EVENT_ORDER.index(kind), index, kind)
            for index, pod in enumerate(self.pods)
            for kind, at in pod.event_times.items()
        )

    def pods_on(self, device_uuid: str) -> list[LivePod]:
        return [pod for pod in self.pods if pod.slot.device_uuid == device_uuid]

    def allocatable(self) -> dict[str, list[str]]:
        """What GetAllocatableResources advertises: every slot's device id, by resource."""
        advertised: dict[str, list[str]] = {}
        for slot in self.slots:
            advertised.setdefault(slot.resource, []).append(slot.device_id)
        return advertised

    @property
    def last_event_seconds(self) -> float:
        return max(at for pod in self.pods for at in pod.event_times.values())


def _gpu_uuid(index: int) -> str:
    return f"GPU-5eed{index:04x}-a100-4000-8000-0000000000{index:02x}"


def _mig_uuid(gpu_instance: int) -> str:
    return f"MIG-5eed05{gpu_instance:02x}-a100-4000-8000-0000000005{gpu_instance:02x}"


# (profile, GPU-instance id, slices of 7, memory GB, kubelet id form) of the MIG GPU's slices.
_MIG_LAYOUT = (
    ("3g.40gb", 1, 3, 40, "mig-uuid"),
    ("2g.20gb", 5, 2, 20, "mig-legacy"),
    ("1g.10gb", 13, 1, 10, "mig-uuid"),
)
_TIME_SLICED_GPU, _GKE_GPU, _MIG_GPU, _ABANDONED_GPU = 3, 4, 5, 7
_REPLICAS = 4


def _devices() -> tuple[GpuDevice, ...]:
    devices: list[GpuDevice] = []
    for index in range(8):
        devices.append(GpuDevice(_gpu_uuid(index), str(index), GPU_MODEL, GPU_MEMORY_BYTES, minor_number=index))
        if index != _MIG_GPU:
            continue
        for profile, gpu_instance, slices, memory_gb, _ in _MIG_LAYOUT:
            devices.append(
                GpuDevice(
                    uuid=_mig_uuid(gpu_instance),
                    index=f"{index}/mig{gpu_instance}",
                    model=GPU_MODEL,
                    memory_total_bytes=memory_gb * 10**9,
                    minor_number=index,
                    parent_uuid=_gpu_uuid(index),
                    mig_profile=profile,
                    gpu_instance_id=gpu_instance,
                    compute_instance_id=0,
                    mig_slices=slices,
                    parent_slices=PARENT_SLICES,
                )
            )
    return tuple(devices)


def _slots() -> tuple[LiveSlot, ...]:
    """Every slot, the abandoned GPU's last."""
    slots: list[LiveSlot] = []
    for index in range(8):
        uuid = _gpu_uuid(index)
        if index == _TIME_SLICED_GPU:
            slots += [LiveSlot(uuid, f"{uuid}::{replica}", GPU_RESOURCE, 1.0 / _REPLICAS, "replica")
                      for replica in range(_REPLICAS)]
        elif index == _MIG_GPU:
            for profile, gpu_instance, _, _, form in _MIG_LAYOUT:
                device_id = f"MIG-{uuid}/{gpu_instance}/0" if form == "mig-legacy" else _mig_uuid(gpu_instance)
                slots.append(LiveSlot(_mig_uuid(gpu_instance), device_id, f"nvidia.com/mig-{profile}", 1.0, form))
        elif index == _GKE_GPU:
            slots.append(LiveSlot(uuid, f"nvidia{index}", GPU_RESOURCE, 1.0, "gke-minor"))
        elif index != _ABANDONED_GPU:
            slots.append(LiveSlot(uuid, uuid, GPU_RESOURCE, 1.0, "gpu-uuid"))
    slots.append(LiveSlot(_gpu_uuid(_ABANDONED_GPU), _gpu_uuid(_ABANDONED_GPU), GPU_RESOURCE, 1.0, "gpu-uuid"))
    return tuple(slots)


def _phases(rng: random.Random, start: float, end: float, most: int) -> tuple[tuple[float, float], ...]:
    kind = rng.random()
    if kind < 0.5:  # training: busy
        low, high = 0.55, 0.99
    elif kind < 0.8:  # inference: traffic-shaped
        low, high = 0.05, 0.6
    else:  # notebooks, stuck jobs
        low, high = 0.0, 0.12
    cuts = sorted(rng.uniform(start, end) for _ in range(rng.randint(1, most) - 1))
    return tuple((begin, round(rng.uniform(low, high), 4)) for begin in [start, *cuts])


# Pods still to place on a slot: (kind, seconds of life).
_Queue = list[tuple[PodKind, float]]


def _durations(rng: random.Random, shape: TraceShape) -> _Queue:
    short: list[tuple[PodKind, float]] = [("short", rng.uniform(*SHORT_POD_SECONDS)) for _ in range(shape.short_pods)]
    long: list[tuple[PodKind, float]] = [("long", rng.uniform(*shape.long_pod_seconds)) for _ in range(shape.long_pods)]
    return short + long


def _assign(rng: random.Random, durations: _Queue, slots: int) -> list[_Queue]:
    """Longest first onto the least-loaded slot, then each slot's pods in random order."""
    queues: list[_Queue] = [[] for _ in range(slots)]
    load = [0.0] * slots
    for kind, seconds in sorted(durations, key=lambda item: -item[1]):
        target = min(range(slots), key=lambda s: (load[s], rng.random()))
        queues[target].append((kind, seconds))
        load[target] += seconds + MIN_SLOT_GAP_SECONDS
    for queue in queues:
        rng.shuffle(queue)
    return queues


def _starts(rng: random.Random, seconds: Sequence[float], horizon: float) -> list[float]:
    """Start times for pods of these lengths, in order, with random gaps of at least the minimum."""
    free = horizon - START_MARGIN_SECONDS - sum(seconds) - MIN_SLOT_GAP_SECONDS * len(seconds)
    if free < 0:
        raise ValueError(f"{len(seconds)} pods of {sum(seconds):.0f} s do not fit one slot of {horizon:.0f} s")
    weights = [rng.expovariate(1.0) for _ in range(len(seconds) + 1)]
    gaps = [free * w / sum(weights) for w in weights]
    starts, t = [], START_MARGIN_SECONDS + gaps[0]
    for length, gap in zip(seconds, gaps[1:], strict=True):
        starts.append(t)
        t += length + MIN_SLOT_GAP_SECONDS + gap
    return starts


def _event_times(rng: random.Random, start: float, end: float) -> dict[EventKind, float]:
    terminated = end + rng.uniform(0.5, 1.0)
    deleting = max(end + rng.uniform(0.0, 15.0), terminated)
    removed = deleting + rng.uniform(0.2, 1.0)
    return {
        "admitted": start - rng.uniform(0.5, 3.0),
        "running": start + rng.uniform(0.5, 1.0),
        "terminated": terminated,
        "deleting": deleting,
        "removed": removed,
        "unlisted": removed + rng.uniform(9.5, 10.5),
    }


def _labels(rng: random.Random, team: _Team) -> dict[str, str]:
    labels = {
        "model": rng.choice(team.models),
        "model-version": f"v{rng.randint(1, 4)}",
        "cost-center": team.cost_center,
    }
    if team.team_label_key:
        labels[team.team_label_key] = team.name
    return labels


def _uid(seed: int, name: str) -> str:
    digest = random.Random(f"{seed}/{name}").getrandbits(128)
    text = f"{digest:032x}"
    return f"{text[:8]}-{text[8:12]}-4{text[13:16]}-8{text[17:20]}-{text[20:]}"


def generate_live_node(seed: int, shape: TraceShape) -> LiveNodeTrace:
    rng = random.Random(seed)
    slots = _slots()
    busy_slots, abandoned_slot = slots[:-1], slots[-1]
    pods: list[LivePod] = []
    counter = itertools.count()
    for slot, queue in zip(busy_slots, _assign(rng, _durations(rng, shape), len(busy_slots)), strict=True):
        for (kind, seconds), start in zip(queue, _starts(rng, [s for _, s in queue], shape.horizon_seconds),
                                          strict=True):
            team = rng.choices(_TEAMS, weights=[t.weight for t in _TEAMS])[0]
            name = f"{team.name}-{'job' if kind == 'short' else 'train'}-{next(counter):03d}"
            end = start + seconds
            pods.append(LivePod(name, team.name, _uid(seed, name), kind, slot, _labels(rng, team), start, end,
                                _phases(rng, start, end, 3 if kind == "short" else 6),
                                _event_times(rng, start, end)))
    # Started before anyone looked and forgotten: holds its GPU to the end of the trace, never busy.
    start = START_MARGIN_SECONDS - rng.uniform(0.0, 1.0)
    research = _TEAMS[0]
    name = f"research-notebook-{next(counter):03d}"
    pods.append(LivePod(name, research.name, _uid(seed, name), "abandoned", abandoned_slot, _labels(rng, research),
                        start, shape.horizon_seconds, ((start, 0.0),),
                        _event_times(rng, start, shape.horizon_seconds)))
    pods.sort(key=lambda pod: pod.start)
    return LiveNodeTrace(seed, shape, _devices(), slots, tuple(pods), _NAMESPACE_LABELS)


def request_hours_samples(pod: LivePod, resolution_seconds: float = 60.0) -> int:
    """How many minute samples (at multiples of the resolution) see the pod running."""
    return math.ceil(pod.end / resolution_seconds) - math.ceil(pod.start / resolution_seconds)
