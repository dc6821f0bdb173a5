"""Synthetic nodes for the exporter benchmarks: a snapshot in memory, and the same node as a scenario file.

8 GPUs, each held by `per_gpu` containers (1: exclusive; more: time-sliced
replicas), every pod carrying all five default workload labels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gpucost.engine.ledger import Ledger
from gpucost.engine.split import DeviceTick, Holder, split_device_cost
from gpucost.metrics.names import DEFAULT_WORKLOAD_LABELS
from gpucost.model import ContainerRef, GpuDevice, GpuSample, PriceQuote, SharingMode
from gpucost.snapshot import CollectorHealth, DeviceView, ExporterSnapshot, PodOwner

__all__ = ["GPUS", "bench_snapshot", "write_scenario"]

GPUS = 8
_MODEL = "NVIDIA A100-SXM4-80GB"
_TEAMS = ("research", "search", "ads", "vision")


def _uuid(gpu: int) -> str:
    return f"GPU-{gpu:08d}-0000-4000-8000-bench0000000"


def _labels(gpu: int, slot: int) -> dict[str, str]:
    team = _TEAMS[(gpu * 7 + slot) % len(_TEAMS)]
    return {
        "team": team,
        "model": f"{team}-model-{slot % 5}",
        "model_version": f"v{slot % 3 + 1}",
        "cost_center": f"cc-{1000 + gpu}",
        "business_unit": "ml-platform" if gpu % 2 else "applied-ml",
    }


def _pod(gpu: int, slot: int) -> ContainerRef:
    team = _labels(gpu, slot)["team"]
    return ContainerRef(team, f"{team}-worker-g{gpu}-s{slot}", "main")


def bench_snapshot(per_gpu: int, version: int = 1) -> ExporterSnapshot:
    """A snapshot as the sampler would publish after some hours: every counter non-zero."""
    ledger = Ledger(DEFAULT_WORKLOAD_LABELS, retention_seconds=600.0)
    devices: list[DeviceView] = []
    workload: dict[ContainerRef, tuple[str, ...]] = {}
    for gpu in range(GPUS):
        uuid = _uuid(gpu)
        holders = []
        for slot in range(per_gpu):
            ref = _pod(gpu, slot)
            labels = _labels(gpu, slot)
            workload[ref] = tuple(labels[name] for name in DEFAULT_WORKLOAD_LABELS)
            holders.append(Holder(ref, 1.0 / per_gpu, 0.9 / per_gpu * (1 + slot % 3) / 2))
        cost = split_device_cost(DeviceTick(uuid, 4.1, 3600.0 * 5 + gpu * 17.3, 0.73, holders))
        ledger.record(cost, workload, 1_700_000_000.0)
        ledger.add_energy(uuid, 5.4e6 + gpu * 1234.5)
        sample = GpuSample(uuid, 1_700_000_000.0, 0.73, 60 * 2**30, 80 * 2**30, 312.5, None)
        device = GpuDevice(uuid, str(gpu), _MODEL, 80 * 2**30, gpu)
        mode: SharingMode = "exclusive" if per_gpu == 1 else "time_slicing"
        devices.append(DeviceView(device, sample, PriceQuote(4.1, "on_demand", "aws", "2024-06-01"), mode))
    owners = tuple(PodOwner(ref.namespace, ref.pod, "Job", ref.pod.rsplit("-", 1)[0]) for ref in sorted(workload))
    health = tuple(CollectorHealth(name, True, 0.0012) for name in ("nvml", "kubelet", "apiserver", "pricing"))
    return ExporterSnapshot(
        version=version,
        workload_label_names=DEFAULT_WORKLOAD_LABELS,
        devices=tuple(devices),
        ledger=ledger.snapshot(),
        health=health,
        last_sample_timestamp=1_700_000_000.0,
        owners=owners,
        catalog_as_of="2024-06-01",
        catalog_source="aws-pricing-api",
        catalog_as_of_timestamp=1_717_200_000.0,
        build_version="bench",
    )


def write_scenario(path: Path, per_gpu: int) -> Path:
    """The same node as a scenario file for `--nvml.backend=simulated`."""
    gpus: list[dict[str, Any]] = []
    pods: list[dict[str, Any]] = []
    for gpu in range(GPUS):
        uuid = _uuid(gpu)
        entry: dict[str, Any] = {"uuid": uuid, "index": gpu, "model": _MODEL, "memory": "81920MiB"}
        if per_gpu > 1:
            entry.update({"sharing": "time_slicing", "replicas": per_gpu})
        gpus.append(entry)
        for slot in range(per_gpu):
            ref = _pod(gpu, slot)
            device_id = uuid if per_gpu == 1 else f"{uuid}::{slot}"
            pods.append(
                {
                    "namespace": ref.namespace,
                    "name": ref.pod,
                    "uid": f"00000000-0000-4000-8000-{gpu:04d}{slot:08d}",
                    "labels": _labels(gpu, slot),
                    "owner": {"kind": "Job", "name": ref.pod.rsplit("-", 1)[0]},
                    "containers": [
                        {
                            "name": ref.container,
                            "devices": [device_id],
                            "processes": [
                                {"pid": 50_000 + gpu * 1000 + slot, "device": uuid,
                                 "utilization": round(0.9 / per_gpu, 4)},
                            ],
                        }
                    ],
                }
            )
    document = {
        "node": {
            "name": "bench-node",
            "labels": {
                "node.kubernetes.io/instance-type": "p4d.24xlarge",
                "topology.kubernetes.io/region": "us-east-1",
                "eks.amazonaws.com/capacityType": "ON_DEMAND",
            },
        },
        "speed": 1,
        "gpus": gpus,
        "pods": pods,
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path
