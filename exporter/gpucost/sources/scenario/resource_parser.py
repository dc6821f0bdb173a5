"""Reading a scenario's whole-node cost inputs: the node's allocatable, and each container's requests and usage.

Amounts are Kubernetes quantities, as a pod spec or a node's status writes them
(`cpu: 500m`, `memory: 64Gi`, `storage: 100Gi`), or plain numbers (cores, bytes):

    node: {allocatable: {cpu: 94, memory: 1100Gi, storage: 7Ti}}
    containers:
      - name: trainer
        requests: {cpu: "8", memory: 64Gi}
        usage:                                  # the kubelet's reading over scenario time
          - {at: 0, cpu: 6, memory: 40Gi}
          - {at: 600, cpu: 12, memory: 60Gi, ramp: linear}
        usage_repeat_every: 3600                # optional, as a GPU timeline's repeat_every

`usage` may also be one mapping, a constant reading.  Unlike the pod spec in a
cluster, a bad quantity here is a ConfigError naming the key path.
"""

from __future__ import annotations

from collections.abc import Mapping

from gpucost.model import NODE_RESOURCES
from gpucost.quantity import parse_quantity
from gpucost.sources.scenario.gpu_parser import GpuReader
from gpucost.sources.scenario.parts import Timeline, TimelinePoint

__all__ = ["ResourceReader"]

_QUANTITY_HINT = "must be a Kubernetes quantity like 500m, 2, 64Gi or 1e9 (not negative)"
_USAGE_KEYS = ("cpu", "memory")


class ResourceReader(GpuReader):
    """Reads `node.allocatable` and the containers' `requests` and `usage`; the scenario parser builds on it."""

    def quantity(self, value: object, key_path: str) -> float:
        amount = parse_quantity(value)
        if amount is None:
            raise self.fail(key_path, value, _QUANTITY_HINT)
        return amount

    def amounts(self, value: object, key_path: str, allowed: tuple[str, ...] = NODE_RESOURCES) -> dict[str, float]:
        """{cpu, memory, storage} -> amount, from a mapping of quantities (absent: empty)."""
        if value is None:
            return {}
        item = self.mapping(value, key_path, allowed)
        return {name: self.quantity(item[name], f"{key_path}.{name}") for name in allowed if name in item}

    def usage(self, container: Mapping[str, object], key_path: str) -> Timeline | None:
        """The container's `usage` timeline (cpu cores, memory bytes), or None when not given."""
        raw = container.get("usage")
        repeat_key = f"{key_path}.usage_repeat_every"
        repeat_every = (
            self.positive(container["usage_repeat_every"], repeat_key) if "usage_repeat_every" in container else None
        )
        if raw is None:
            if repeat_every is not None:
                raise self.fail(repeat_key, repeat_every, "usage_repeat_every needs a usage timeline")
            return None
        if isinstance(raw, Mapping):
            raw = [{"at": 0, **raw}]
        items = self.sequence(raw, f"{key_path}.usage")
        if not items:
            raise self.fail(f"{key_path}.usage", items, "must list at least one point")
        points: list[TimelinePoint] = []
        for position, item in enumerate(items):
            points.append(self._usage_point(item, f"{key_path}.usage[{position}]", points))
        for name, key in (("cpu_cores", "cpu"), ("memory_bytes", "memory")):
            present = [getattr(point, name) is not None for point in points]
            if any(present) and not all(present):
                where = f"{key_path}.usage[{present.index(False)}].{key}"
                raise self.fail(where, None, f"{key} must be given in every point or in none")
        if repeat_every is not None and repeat_every <= points[-1].at:
            raise self.fail(repeat_key, repeat_every, "must be longer than the last point's `at`")
        return Timeline(points=tuple(points), repeat_every=repeat_every)

    def _usage_point(self, value: object, where: str, earlier: list[TimelinePoint]) -> TimelinePoint:
        point = self.mapping(value, where, ("at", *_USAGE_KEYS, "ramp"))
        at = self.number(point.get("at"), f"{where}.at")
        if earlier and at <= earlier[-1].at:
            raise self.fail(f"{where}.at", at, "points must be in increasing time order")
        ramp = point.get("ramp", "step")
        if ramp not in ("step", "linear"):
            raise self.fail(f"{where}.ramp", ramp, "must be step or linear")
        amounts = self.amounts({k: v for k, v in point.items() if k in _USAGE_KEYS}, where, _USAGE_KEYS)
        if not amounts:
            raise self.fail(where, value, "a usage point needs cpu, memory or both")
        return TimelinePoint(
            at=at, linear=ramp == "linear", cpu_cores=amounts.get("cpu"), memory_bytes=amounts.get("memory")
        )
