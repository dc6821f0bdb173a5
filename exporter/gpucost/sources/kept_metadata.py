"""Decode API server objects into only what the exporter keeps, with every kept value capped.

A pod object carries much that the exporter never reads (spec, status,
managedFields, a last-applied-configuration annotation) and, from a hostile or
broken client, labels or annotations of any size.  What is kept per object:

- name, namespace, uid (each at most MAX_VALUE_CHARS);
- the label and annotation keys in its `KeySelection` (for pods: the keys the
  workload-label mapping reads plus the labels the owner inference reads; for
  namespaces: the mapping's keys for the namespace fallback; for the node:
  every label, which the price book reads), values cut to MAX_VALUE_CHARS;
- the owning workload, inferred from the full metadata before anything is
  dropped (the CronJob rule compares every label and annotation value);
- for pods, the lifetime the status gives (`pod_lifetime`): the earliest
  container start, the latest container end once all have ended, and the
  deletion timestamp; the rest of the status is dropped;
- for pods, each container's cpu, memory and ephemeral-storage requests
  (`container_requests`: app containers and native sidecars, whose names are
  capped like every kept value); for the node, its allocatable cpu, memory and
  ephemeral-storage (`node_allocatable`).  Quantities are parsed on the way in
  (`gpucost.quantity`); one that is not a quantity is dropped and
  counted as (source, invalid_quantity).  The rest of the spec is dropped.

Objects are pruned by the JSON decoder's object hook, so a page of 500 pods
never exists as 500 full dictionaries; and the raw bytes pass through
`LongStringCutter` first, so no string longer than MAX_RAW_STRING_BYTES is
ever decoded.  Both cuts are counted in a `TruncationCounter`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from gpucost.quantity import parse_quantity
from gpucost.sources.json_cut import LongStringCutter
from gpucost.sources.owners import OWNER_LABEL_KEYS, infer_owner
from gpucost.sources.workload_labels import WorkloadLabelConfig, parse_source_key
from gpucost.truncation import INVALID_QUANTITY, LONG_VALUE, OVERSIZED_STRING, TruncationCounter

__all__ = [
    "EVERY_KEY",
    "MAX_RAW_STRING_BYTES",
    "MAX_VALUE_CHARS",
    "NODE_KEYS",
    "RESOURCE_NAMES",
    "KeptKeys",
    "KeySelection",
    "KubeObject",
    "PodLifetime",
    "container_requests",
    "decode_objects",
    "kube_object_from_raw",
    "node_allocatable",
    "object_hook",
    "parse_kube_time",
    "pod_lifetime",
]

# Kubernetes label values are at most 63 characters and names 253; 256 keeps
# every valid one whole and bounds what a hostile annotation can cost per key.
MAX_VALUE_CHARS = 256
# Kubernetes rejects objects whose annotations add up to more than 256 KiB, so
# no string of a real object is longer; anything longer is cut while reading.
MAX_RAW_STRING_BYTES = 256 * 1024
# Kubernetes resource names -> the `NODE_RESOURCES` names whole-node cost splits.
RESOURCE_NAMES: Mapping[str, str] = MappingProxyType(
    {"cpu": "cpu", "memory": "memory", "ephemeral-storage": "storage"}
)


@dataclass(frozen=True, slots=True)
class KeySelection:
    """Which label and annotation keys of an object are kept; None keeps every key."""

    labels: frozenset[str] | None = None
    annotations: frozenset[str] | None = None


EVERY_KEY = KeySelection()
# The price book reads node labels (instance type, region, capacity type, ...); no annotations.
NODE_KEYS = KeySelection(labels=None, annotations=frozenset())


@dataclass(frozen=True, slots=True)
class KeptKeys:
    """Key selections for pods and namespaces; the default keeps every key (no mapping known)."""

    pods: KeySelection = EVERY_KEY
    namespaces: KeySelection = EVERY_KEY

    @classmethod
    def for_workload_labels(cls, config: WorkloadLabelConfig) -> KeptKeys:
        sources = [parse_source_key(key) for name in config.label_names for key in config.sources.get(name, ())]
        labels = {source.key for source in sources if source.kind == "label"}
        annotations = {source.key for source in sources if source.kind == "annotation"}
        # The namespace fallback looks every key up, prefix removed, among the namespace's labels.
        namespace_labels = {source.key for source in sources} if config.namespace_fallback else set()
        return cls(
            pods=KeySelection(frozenset(labels | set(OWNER_LABEL_KEYS)), frozenset(annotations)),
            namespaces=KeySelection(frozenset(namespace_labels), frozenset()),
        )


_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class KubeObject:
    """The kept part of one pod, namespace or node."""

    name: str
    namespace: str = ""
    uid: str = ""
    resource_version: str = ""
    labels: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    annotations: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    owner_kind: str = ""
    owner_name: str = ""
    started_at: float | None = None
    finished_at: float | None = None
    deleted_at: float | None = None
    container_requests: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: _EMPTY_REQUESTS)
    allocatable: Mapping[str, float] = field(default_factory=lambda: _EMPTY_AMOUNTS)


_EMPTY_REQUESTS: Mapping[str, Mapping[str, float]] = MappingProxyType({})
_EMPTY_AMOUNTS: Mapping[str, float] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class PodLifetime:
    """When a pod's containers ran, in unix seconds; None where the object does not say."""

    started_at: float | None = None
    finished_at: float | None = None
    deleted_at: float | None = None


def parse_kube_time(value: object) -> float | None:
    """An RFC 3339 time as the API server writes it (`2025-11-28T10:00:00Z`), or None when it is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _container_states(statuses: object) -> Iterator[Mapping[str, Any]]:
    """Every `state` and `lastState` of the container statuses, as mappings."""
    if not isinstance(statuses, list):
        return
    for status in statuses:
        if not isinstance(status, Mapping):
            continue
        for key in ("state", "lastState"):
            state = status.get(key)
            if isinstance(state, Mapping):
                yield state


def _started_times(statuses: object) -> Iterator[float]:
    for state in _container_states(statuses):
        for phase in ("running", "terminated"):
            detail = state.get(phase)
            if isinstance(detail, Mapping) and (started := parse_kube_time(detail.get("startedAt"))) is not None:
                yield started


def _finished_at(statuses: object) -> float | None:
    """The latest end of the app containers once every one of them has ended; None while any has not."""
    if not isinstance(statuses, list) or not statuses:
        return None
    ends: list[float] = []
    for status in statuses:
        state = status.get("state") if isinstance(status, Mapping) else None
        terminated = state.get("terminated") if isinstance(state, Mapping) else None
        finished = parse_kube_time(terminated.get("finishedAt")) if isinstance(terminated, Mapping) else None
        if finished is None:
            return None
        ends.append(finished)
    return max(ends)


def pod_lifetime(raw: Mapping[str, Any]) -> PodLifetime:
    """The lifetime a pod object's status and metadata give; malformed times count as unknown.

    The start is the earliest `startedAt` of any container, init containers and
    the previous run of a restarted container (`lastState`) included, so a
    restart does not move it later; the end needs every app container terminated.
    """
    metadata = raw.get("metadata")
    status = raw.get("status")
    deleted_at = parse_kube_time(metadata.get("deletionTimestamp")) if isinstance(metadata, Mapping) else None
    if not isinstance(status, Mapping):
        return PodLifetime(deleted_at=deleted_at)
    containers = status.get("containerStatuses")
    starts = [*_started_times(containers), *_started_times(status.get("initContainerStatuses"))]
    return PodLifetime(min(starts, default=None), _finished_at(containers), deleted_at)


def _amounts(values: object, invalid: Callable[[], None]) -> dict[str, float]:
    """The cpu, memory and ephemeral-storage of a `requests` or `allocatable` mapping, parsed."""
    if not isinstance(values, Mapping):
        return {}
    amounts: dict[str, float] = {}
    for kube_name, name in RESOURCE_NAMES.items():
        if kube_name not in values:
            continue
        amount = parse_quantity(values[kube_name])
        if amount is None:
            invalid()
        else:
            amounts[name] = amount
    return amounts


def _sidecars(init_containers: object) -> list[object]:
    """Native sidecars: init containers with `restartPolicy: Always` run beside the app containers."""
    if not isinstance(init_containers, list):
        return []
    return [c for c in init_containers if isinstance(c, Mapping) and c.get("restartPolicy") == "Always"]


def container_requests(
    raw: Mapping[str, Any], capped: Callable[[object], str], invalid: Callable[[], None]
) -> Mapping[str, Mapping[str, float]]:
    """Each running container's `resources.requests` (cpu, memory, storage), by container name.

    Init containers that end before the app containers start are left out: they
    hold nothing while the pod runs (the scheduler's effective request can be
    larger while they run, which whole-node cost does not model).
    """
    spec = raw.get("spec")
    if not isinstance(spec, Mapping):
        return _EMPTY_REQUESTS
    containers = spec.get("containers")
    running = [*(containers if isinstance(containers, list) else ()), *_sidecars(spec.get("initContainers"))]
    requests: dict[str, Mapping[str, float]] = {}
    for container in running:
        if not isinstance(container, Mapping) or not container.get("name"):
            continue
        resources = container.get("resources")
        amounts = _amounts(resources.get("requests") if isinstance(resources, Mapping) else None, invalid)
        requests[capped(container["name"])] = MappingProxyType(amounts)
    return MappingProxyType(requests) if requests else _EMPTY_REQUESTS


def node_allocatable(raw: Mapping[str, Any], invalid: Callable[[], None]) -> Mapping[str, float]:
    """The node's `status.allocatable` cpu, memory and ephemeral-storage ("storage")."""
    status = raw.get("status")
    amounts = _amounts(status.get("allocatable") if isinstance(status, Mapping) else None, invalid)
    return MappingProxyType(amounts) if amounts else _EMPTY_AMOUNTS


def kube_object_from_raw(
    raw: Mapping[str, Any], keys: KeySelection, counter: TruncationCounter, source: str
) -> KubeObject:
    """The kept part of a decoded object; cut values are counted as (source, long_value)."""
    metadata = raw.get("metadata")
    if not isinstance(metadata, Mapping):
        metadata = {}

    def capped(value: object) -> str:
        text = "" if value is None else str(value)
        if len(text) <= MAX_VALUE_CHARS:
            return text
        counter.add(source, LONG_VALUE)
        return text[:MAX_VALUE_CHARS]

    def invalid() -> None:
        counter.add(source, INVALID_QUANTITY)

    owner_kind, owner_name = infer_owner(metadata)
    lifetime = pod_lifetime(raw)
    return KubeObject(
        name=capped(metadata.get("name")),
        namespace=capped(metadata.get("namespace")),
        uid=capped(metadata.get("uid")),
        resource_version=str(metadata.get("resourceVersion") or ""),
        labels=_kept(metadata.get("labels"), keys.labels, capped),
        annotations=_kept(metadata.get("annotations"), keys.annotations, capped),
        owner_kind=capped(owner_kind),
        owner_name=capped(owner_name),
        started_at=lifetime.started_at,
        finished_at=lifetime.finished_at,
        deleted_at=lifetime.deleted_at,
        container_requests=container_requests(raw, capped, invalid),
        allocatable=node_allocatable(raw, invalid),
    )


def _kept(
    values: object, keys: frozenset[str] | None, capped: Callable[[object], str]
) -> Mapping[str, str]:
    if not isinstance(values, Mapping) or not values:
        return {}
    return {
        str(key): capped(value)
        for key, value in values.items()
        if value is not None and (keys is None or key in keys)
    }


def object_hook(
    keys: KeySelection, counter: TruncationCounter, source: str
) -> Callable[[dict[str, Any]], Any]:
    """A `json.loads` object hook that turns every named object into a `KubeObject`.

    The decoder calls it bottom-up, so an object's full labels exist only until
    its own dictionary is done.  List envelopes, bookmarks and Status objects
    (errors) carry no `metadata.name` and come back as they were.
    """

    def hook(decoded: dict[str, Any]) -> Any:
        metadata = decoded.get("metadata")
        if isinstance(metadata, dict) and "name" in metadata:
            return kube_object_from_raw(decoded, keys, counter, source)
        return decoded

    return hook


def decode_objects(
    chunks: Iterable[bytes], keys: KeySelection, counter: TruncationCounter, source: str
) -> Any:
    """Decode one JSON document read in chunks, long strings cut and named objects pruned."""
    cutter = LongStringCutter(MAX_RAW_STRING_BYTES)
    cut = bytearray()
    for chunk in chunks:
        cut += cutter.feed(chunk)
    cut += cutter.finish()
    counter.add(source, OVERSIZED_STRING, cutter.cut_count)
    text = cut.decode("utf-8")
    del cut  # the text is all the decoder needs; do not hold the bytes next to it
    return json.loads(text, object_hook=object_hook(keys, counter, source))
