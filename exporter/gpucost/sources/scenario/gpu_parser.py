"""Reading a scenario's `gpus`: GPUs, MIG slices, device timelines, and the device ids pods may hold."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from gpucost.sources.scenario.field_reader import FieldReader
from gpucost.sources.scenario.parts import (
    DEFAULT_IDLE_POWER_WATTS,
    DEFAULT_MAX_POWER_WATTS,
    DEFAULT_PARENT_SLICES,
    REPLICA_SEPARATOR,
    MigSlice,
    ScenarioGpu,
    Timeline,
    TimelinePoint,
)

__all__ = ["DeviceCatalog", "GpuReader"]

# ASCII digits only: `\d` also matches digits such as "٣" and runs of any length.
_MIG_PROFILE = re.compile(r"([0-9]{1,2})g\.([0-9]{1,5})gb(\+me)?")


class GpuReader(FieldReader):
    """Reads the `gpus` list and timelines; `_ScenarioParser` (parser.py) builds on it for the rest."""

    def gpu(self, value: object, key_path: str) -> ScenarioGpu:
        item = self.mapping(
            value,
            key_path,
            (
                "uuid",
                "index",
                "model",
                "memory",
                "minor_number",
                "timeline",
                "repeat_every",
                "sharing",
                "replicas",
                "mig",
                "idle_power_watts",
                "max_power_watts",
            ),
        )
        uuid = self.text(item.get("uuid"), f"{key_path}.uuid")
        if not uuid.startswith("GPU-"):
            raise self.fail(f"{key_path}.uuid", uuid, "a GPU uuid starts with GPU- as NVML reports it")
        index = self.integer(item.get("index"), f"{key_path}.index")
        minor = self.integer(item.get("minor_number", index), f"{key_path}.minor_number")
        model = self.text(item.get("model"), f"{key_path}.model")
        memory_total = self.memory(item.get("memory"), f"{key_path}.memory")
        idle_power = self.number(
            item.get("idle_power_watts", DEFAULT_IDLE_POWER_WATTS), f"{key_path}.idle_power_watts"
        )
        max_power = self.number(
            item.get("max_power_watts", max(idle_power, DEFAULT_MAX_POWER_WATTS)),
            f"{key_path}.max_power_watts",
        )
        if max_power < idle_power:
            raise self.fail(f"{key_path}.max_power_watts", max_power, "must not be below idle_power_watts")
        timeline = self.optional_timeline(item, key_path, memory_total)

        sharing = item.get("sharing", "exclusive")
        if sharing not in ("exclusive", "time_slicing", "mps"):
            raise self.fail(f"{key_path}.sharing", sharing, "must be exclusive, time_slicing or mps")
        replicas = 0
        if sharing != "exclusive":
            replicas = self.integer(item.get("replicas"), f"{key_path}.replicas", minimum=2)
        elif "replicas" in item:
            raise self.fail(
                f"{key_path}.replicas", item["replicas"], "replicas need sharing: time_slicing or mps"
            )

        mig_slices: tuple[MigSlice, ...] = ()
        parent_slices = DEFAULT_PARENT_SLICES
        if "mig" in item:
            if sharing != "exclusive":
                raise self.fail(f"{key_path}.sharing", sharing, "a MIG-enabled GPU cannot also be shared")
            mig = self.mapping(item["mig"], f"{key_path}.mig", ("parent_slices", "slices"))
            parent_slices = self.integer(
                mig.get("parent_slices", DEFAULT_PARENT_SLICES), f"{key_path}.mig.parent_slices", 1
            )
            slice_items = self.sequence(mig.get("slices"), f"{key_path}.mig.slices")
            if not slice_items:
                raise self.fail(f"{key_path}.mig.slices", slice_items, "must list at least one MIG slice")
            mig_slices = tuple(
                self.mig_slice(slice_item, f"{key_path}.mig.slices[{position}]")
                for position, slice_item in enumerate(slice_items)
            )
            carved = sum(mig.slices for mig in mig_slices)
            if carved > parent_slices:
                raise self.fail(
                    f"{key_path}.mig.slices",
                    carved,
                    f"slices add up to more than parent_slices ({parent_slices})",
                )
            seen_instances: set[int] = set()
            for position, mig_slice in enumerate(mig_slices):
                if mig_slice.gpu_instance_id in seen_instances:
                    raise self.fail(
                        f"{key_path}.mig.slices[{position}].gpu_instance_id",
                        mig_slice.gpu_instance_id,
                        "GPU-instance ids must be unique on one GPU",
                    )
                seen_instances.add(mig_slice.gpu_instance_id)
        return ScenarioGpu(
            uuid=uuid,
            index=index,
            model=model,
            memory_total_bytes=memory_total,
            minor_number=minor,
            timeline=timeline,
            replicas=replicas,
            sharing="mig" if mig_slices else sharing,
            mig_slices=mig_slices,
            parent_slices=parent_slices,
            idle_power_watts=idle_power,
            max_power_watts=max_power,
        )

    def mig_slice(self, value: object, key_path: str) -> MigSlice:
        item = self.mapping(
            value,
            key_path,
            (
                "uuid",
                "profile",
                "gpu_instance_id",
                "compute_instance_id",
                "memory",
                "timeline",
                "repeat_every",
            ),
        )
        uuid = self.text(item.get("uuid"), f"{key_path}.uuid")
        if not uuid.startswith("MIG-"):
            raise self.fail(f"{key_path}.uuid", uuid, "a MIG device uuid starts with MIG- as NVML reports it")
        profile = self.text(item.get("profile"), f"{key_path}.profile")
        match = _MIG_PROFILE.fullmatch(profile)
        if match is None:
            raise self.fail(f"{key_path}.profile", profile, "must be a MIG profile like 3g.40gb or 1g.10gb")
        slices = int(match.group(1))
        memory_total = (
            self.memory(item["memory"], f"{key_path}.memory")
            if "memory" in item
            else int(match.group(2)) * 2**30
        )
        return MigSlice(
            uuid=uuid,
            profile=profile,
            gpu_instance_id=self.integer(item.get("gpu_instance_id"), f"{key_path}.gpu_instance_id"),
            compute_instance_id=self.integer(
                item.get("compute_instance_id", 0), f"{key_path}.compute_instance_id"
            ),
            slices=slices,
            memory_total_bytes=memory_total,
            timeline=self.optional_timeline(item, key_path, memory_total),
        )

    def optional_timeline(
        self, item: Mapping[str, object], key_path: str, memory_total: int
    ) -> Timeline | None:
        if "timeline" not in item:
            if "repeat_every" in item:
                raise self.fail(
                    f"{key_path}.repeat_every", item["repeat_every"], "repeat_every needs a timeline"
                )
            return None
        repeat_every = (
            self.positive(item["repeat_every"], f"{key_path}.repeat_every")
            if "repeat_every" in item
            else None
        )
        return self.timeline(
            item["timeline"],
            f"{key_path}.timeline",
            repeat_every=repeat_every,
            repeat_key=f"{key_path}.repeat_every",
            memory_total=memory_total,
        )

    def timeline(
        self,
        value: object,
        key_path: str,
        *,
        repeat_every: float | None,
        repeat_key: str,
        memory_total: int | None,
        allowed: Sequence[str] = ("at", "utilization", "memory_used", "power_watts", "ramp"),
    ) -> Timeline:
        items = self.sequence(value, key_path)
        if not items:
            raise self.fail(key_path, items, "must list at least one point")
        points: list[TimelinePoint] = []
        for position, raw in enumerate(items):
            where = f"{key_path}[{position}]"
            point = self.mapping(raw, where, allowed)
            at = self.number(point.get("at"), f"{where}.at")
            if points and at <= points[-1].at:
                raise self.fail(f"{where}.at", at, "points must be in increasing time order")
            ramp = point.get("ramp", "step")
            if ramp not in ("step", "linear"):
                raise self.fail(f"{where}.ramp", ramp, "must be step or linear")
            memory_used = None
            if "memory_used" in point:
                memory_used = self.memory(point["memory_used"], f"{where}.memory_used")
                if memory_total is not None and memory_used > memory_total:
                    raise self.fail(
                        f"{where}.memory_used", point["memory_used"], "exceeds the device's memory"
                    )
            points.append(
                TimelinePoint(
                    at=at,
                    utilization=(
                        self.number(point["utilization"], f"{where}.utilization", 0.0, 1.0)
                        if "utilization" in point
                        else None
                    ),
                    memory_used_bytes=memory_used,
                    power_watts=self.number(point["power_watts"], f"{where}.power_watts")
                    if "power_watts" in point
                    else None,
                    linear=ramp == "linear",
                )
            )
        for name, key in (
            ("utilization", "utilization"),
            ("memory_used_bytes", "memory_used"),
            ("power_watts", "power_watts"),
        ):
            present = [getattr(point, name) is not None for point in points]
            if any(present) and not all(present):
                position = present.index(False)
                raise self.fail(
                    f"{key_path}[{position}].{key}", None, f"{key} must be given in every point or in none"
                )
        if repeat_every is not None and repeat_every <= points[-1].at:
            raise self.fail(repeat_key, repeat_every, "must be longer than the last point's `at`")
        return Timeline(points=tuple(points), repeat_every=repeat_every)

    def check_unique_devices(self, gpus: Sequence[ScenarioGpu]) -> None:
        seen_uuids: set[str] = set()
        seen_indexes: set[int] = set()
        seen_minors: set[int] = set()
        for position, gpu in enumerate(gpus):
            for device in gpu.devices():
                if device.uuid in seen_uuids:
                    raise self.fail(f"gpus[{position}].uuid", device.uuid, "device uuids must be unique")
                seen_uuids.add(device.uuid)
            for key, number, seen in (
                ("index", gpu.index, seen_indexes),
                ("minor_number", gpu.minor_number, seen_minors),
            ):
                if number in seen:
                    raise self.fail(f"gpus[{position}].{key}", number, f"GPU {key} values must be unique")
                seen.add(number)


class DeviceCatalog:
    """The device ids a container may request, by kind."""

    def __init__(self, gpus: Sequence[ScenarioGpu]) -> None:
        self.device_uuids = {device.uuid for gpu in gpus for device in gpu.devices()}
        self.gpus = {gpu.uuid: gpu for gpu in gpus}
        self.mig_uuids = {mig.uuid for gpu in gpus for mig in gpu.mig_slices}

    def problem_with(self, device_id: str) -> str:
        """Why a container cannot request `device_id` ("" when it can)."""
        uuid, separator, replica = device_id.partition(REPLICA_SEPARATOR)
        if uuid in self.mig_uuids and not separator:
            return ""
        gpu = self.gpus.get(uuid)
        if gpu is None:
            return "no GPU or MIG device with this uuid"
        if gpu.mig_enabled:
            return "MIG is enabled on this GPU: request one of its MIG slices"
        if not separator:
            if gpu.replicas:
                return f"this GPU is shared: request a replica id {uuid}::<0..{gpu.replicas - 1}>"
            return ""
        if not gpu.replicas:
            return "replica ids (::N) need sharing: time_slicing or mps on the GPU"
        # isascii and the length keep int() from refusing digits such as "²" or 5,000 of them.
        if not (replica.isascii() and replica.isdigit() and len(replica) <= 10) or int(replica) >= gpu.replicas:
            return f"replica must be 0..{gpu.replicas - 1}"
        return ""
