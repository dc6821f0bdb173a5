"""One price-sync run: collect entries from every enabled provider and rewrite the overrides file.

A provider that fails keeps its previous entries (read back from the current
file) so one cloud's outage never drops the other's prices.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import yaml

from gpucost.budgets.prices_file import PriceEntry, write_overrides
from gpucost.budgets.state import SidecarState
from gpucost.errors import SourceUnavailable

__all__ = ["PriceProvider", "run_price_sync"]

log = logging.getLogger(__name__)
PriceProvider = Callable[[], Sequence[PriceEntry]]


def run_price_sync(
    path: Path,
    providers: Mapping[str, PriceProvider],
    state: SidecarState,
    now: dt.datetime,
) -> list[PriceEntry]:
    entries: list[PriceEntry] = []
    previous = _previous_entries(path)
    for cloud, provider in providers.items():
        try:
            fresh = list(provider())
        except SourceUnavailable as err:
            log.error("price sync for %s failed, keeping its previous prices: %s", cloud, err)
            state.set_provider_up(cloud, "price_sync", False)
            entries.extend(entry for entry in previous if entry.cloud == cloud)
            continue
        state.set_provider_up(cloud, "price_sync", True)
        state.set_price_sync_success(cloud, now.timestamp())
        log.info("price sync for %s: %d instance types", cloud, len(fresh))
        entries.extend(fresh)
    entries.extend(entry for entry in previous if entry.cloud not in providers)
    write_overrides(path, entries, now)
    return entries


def _previous_entries(path: Path) -> list[PriceEntry]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return []
    result: list[PriceEntry] = []
    for item in document.get("prices", []) if isinstance(document, dict) else []:
        try:
            as_of = dt.datetime.fromisoformat(str(item["as_of"]).replace("Z", "+00:00"))
            result.append(
                PriceEntry(
                    cloud=str(item["cloud"]),
                    region=str(item["region"]),
                    instance_type=str(item["instance_type"]),
                    on_demand_usd_per_hour=float(item["on_demand_usd_per_hour"]),
                    source=str(item["source"]),
                    as_of=as_of if as_of.tzinfo else as_of.replace(tzinfo=dt.UTC),
                    spot_usd_per_hour=float(item["spot_usd_per_hour"])
                    if "spot_usd_per_hour" in item
                    else None,
                    gpu_model=str(item.get("gpu_model", "")),
                    gpu_count=int(item["gpu_count"]) if "gpu_count" in item else None,
                )
            )
        except (KeyError, TypeError, ValueError):
            continue
    return result
