"""One price-sync run: collect entries from every enabled provider and rewrite the overrides file.

A provider that fails keeps its previous entries (read back from the current
file) so one cloud's outage never drops the other's prices.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from gpucost.budgets.prices_file import PriceEntry, write_overrides
from gpucost.budgets.state import SidecarState
from gpucost.errors import ConfigError, SourceUnavailable
from gpucost.yamlfields import load_yaml_file

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
    """The entries of the current file; an unreadable file or entry is skipped, never fatal.

    The file is about to be rewritten, so a broken one only costs the prices of
    a provider that also fails this run.
    """
    if not path.exists():
        return []
    try:
        document = load_yaml_file(path)
    except ConfigError as err:
        log.warning("%s; rewriting it from this run's prices", err.one_line())
        return []
    items = document.get("prices") if isinstance(document, dict) else None
    if not isinstance(items, list):
        return []
    return [entry for entry in map(_entry_from, items) if entry is not None]


def _entry_from(item: object) -> PriceEntry | None:
    if not isinstance(item, dict):
        return None
    try:
        as_of = dt.datetime.fromisoformat(str(item["as_of"]).replace("Z", "+00:00"))
        entry = PriceEntry(
            cloud=str(item["cloud"]),
            region=str(item["region"]),
            instance_type=str(item["instance_type"]),
            on_demand_usd_per_hour=float(item["on_demand_usd_per_hour"]),
            source=str(item["source"]),
            as_of=as_of if as_of.tzinfo else as_of.replace(tzinfo=dt.UTC),
            spot_usd_per_hour=float(item["spot_usd_per_hour"]) if "spot_usd_per_hour" in item else None,
            gpu_model=str(item.get("gpu_model", "")),
            gpu_count=int(item["gpu_count"]) if "gpu_count" in item else None,
        )
    except (KeyError, TypeError, ValueError, OverflowError):
        # OverflowError: 10**400 has no float.
        return None
    prices = (entry.on_demand_usd_per_hour, entry.spot_usd_per_hour or 0.0)
    # Written back as is, a nan or negative price would make the exporter refuse the whole file.
    return entry if all(math.isfinite(price) and price >= 0 for price in prices) else None
