"""The price overrides file the exporter reads: its entries, rendering and atomic write.

The format is a contract with the exporter's pricing reader; keep it exactly:
`generated_by`, `generated_at` and a `prices` list whose entries carry
cloud, region, instance_type, on_demand_usd_per_hour, optional
spot_usd_per_hour / gpu_model / gpu_count, and the required source and as_of.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["GENERATED_BY", "PriceEntry", "format_timestamp", "render_overrides", "write_overrides"]

GENERATED_BY = "gpucost-budgets price-sync"


@dataclass(frozen=True, slots=True)
class PriceEntry:
    cloud: str
    region: str
    instance_type: str
    on_demand_usd_per_hour: float
    source: str
    as_of: dt.datetime
    spot_usd_per_hour: float | None = None
    gpu_model: str = ""
    gpu_count: int | None = None

    def as_yaml(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "cloud": self.cloud,
            "region": self.region,
            "instance_type": self.instance_type,
            "on_demand_usd_per_hour": round(self.on_demand_usd_per_hour, 6),
        }
        if self.spot_usd_per_hour is not None:
            entry["spot_usd_per_hour"] = round(self.spot_usd_per_hour, 6)
        if self.gpu_model:
            entry["gpu_model"] = self.gpu_model
        if self.gpu_count is not None:
            entry["gpu_count"] = self.gpu_count
        entry["source"] = self.source
        entry["as_of"] = format_timestamp(self.as_of)
        return entry


def format_timestamp(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("timestamps in the overrides file must be timezone-aware")
    return moment.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def render_overrides(entries: Iterable[PriceEntry], generated_at: dt.datetime) -> str:
    ordered = sorted(entries, key=lambda e: (e.cloud, e.region, e.instance_type))
    document = {
        "generated_by": GENERATED_BY,
        "generated_at": format_timestamp(generated_at),
        "prices": [entry.as_yaml() for entry in ordered],
    }
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False)


def write_overrides(path: Path, entries: Iterable[PriceEntry], generated_at: dt.datetime) -> None:
    """Write atomically: a temp file in the same directory, fsync, then rename over the old file."""
    text = render_overrides(entries, generated_at)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as temp:
            temp.write(text)
            temp.flush()
            os.fsync(temp.fileno())
        os.chmod(temp_name, 0o644)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
