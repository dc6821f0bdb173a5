"""The price overrides file the budget sidecar's price sync writes, re-read when it changes.

Format (shared with the sidecar; keep both sides in step):

    generated_by: gpucost-budgets price-sync    # optional
    generated_at: "2026-11-28T06:00:00Z"        # optional
    prices:
      - cloud: aws                 # aws|gcp|azure|onprem
        region: us-east-1
        instance_type: p4d.24xlarge
        on_demand_usd_per_hour: 32.7726
        spot_usd_per_hour: 12.5    # optional
        gpu_model: A100-40GB       # optional when the catalog knows the type
        gpu_count: 8               # optional when the catalog knows the type
        source: "https://pricing.us-east-1.amazonaws.com/..."   # required
        as_of: "2026-11-28T06:00:00Z"                           # required

A file that fails validation never replaces good prices: the last good set
stays in force and one error line names the file, key path and value.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from gpucost.errors import ConfigError
from gpucost.pricing.catalog import CLOUDS, Catalog, Cloud, shipped_catalog
from gpucost.yamlfields import (
    child_path,
    load_yaml_file,
    optional_float,
    optional_int,
    optional_str,
    read_as_of,
    read_float,
    read_str,
    reject_unknown_keys,
    require_mapping,
)

__all__ = ["OverridePrice", "OverridePrices", "OverridesFile", "parse_overrides"]

log = logging.getLogger(__name__)

PriceKey = tuple[Cloud, str, str]  # (cloud, region, instance type folded to lower case)

_TOP_KEYS = ("generated_by", "generated_at", "prices")
_PRICE_KEYS = (
    "cloud",
    "region",
    "instance_type",
    "on_demand_usd_per_hour",
    "spot_usd_per_hour",
    "gpu_model",
    "gpu_count",
    "source",
    "as_of",
)


@dataclass(frozen=True, slots=True)
class OverridePrice:
    cloud: Cloud
    region: str
    instance_type: str
    on_demand_usd_per_hour: float
    source: str
    as_of: str
    spot_usd_per_hour: float | None = None
    gpu_model: str = ""
    gpu_count: int | None = None


@dataclass(frozen=True, slots=True)
class OverridePrices:
    prices: Mapping[PriceKey, OverridePrice] = field(default_factory=dict)
    generated_by: str = ""
    generated_at: str = ""

    def get(self, cloud: Cloud, region: str, instance_type: str) -> OverridePrice | None:
        return self.prices.get((cloud, region, instance_type.casefold()))


def parse_overrides(raw: object, file: str, catalog: Catalog | None = None) -> OverridePrices:
    """Validate a parsed overrides document; an empty document means no overrides."""
    if raw is None:
        return OverridePrices()
    known = catalog or shipped_catalog()
    top = require_mapping(raw, file, "")
    reject_unknown_keys(top, _TOP_KEYS, file, "")
    prices_raw = top.get("prices") or []
    if not isinstance(prices_raw, list):
        raise ConfigError(file, "prices", prices_raw, "must be a list of price entries")
    prices: dict[PriceKey, OverridePrice] = {}
    for index, entry_raw in enumerate(prices_raw):
        price = _parse_price(entry_raw, file, child_path("prices", index), known)
        prices[(price.cloud, price.region, price.instance_type.casefold())] = price
    generated_at = read_as_of(top, "generated_at", file, "") if top.get("generated_at") is not None else ""
    return OverridePrices(
        prices=prices,
        generated_by=optional_str(top, "generated_by", file, ""),
        generated_at=generated_at,
    )


def _parse_price(raw: object, file: str, path: str, catalog: Catalog) -> OverridePrice:
    entry = require_mapping(raw, file, path)
    reject_unknown_keys(entry, _PRICE_KEYS, file, path)
    cloud = cast(Cloud, read_str(entry, "cloud", file, path, choices=CLOUDS))
    instance_type = read_str(entry, "instance_type", file, path)
    gpu_model = optional_str(entry, "gpu_model", file, path)
    gpu_count = optional_int(entry, "gpu_count", file, path)
    if catalog.instance_type(cloud, instance_type) is None:
        # Without the catalog's entry these two are the only way to split the node price.
        for key, value in (("gpu_model", gpu_model), ("gpu_count", gpu_count)):
            if not value:
                raise ConfigError(
                    file,
                    child_path(path, key),
                    None,
                    f"is required: the catalog does not know {cloud} instance type {instance_type}",
                )
    return OverridePrice(
        cloud=cloud,
        region=read_str(entry, "region", file, path),
        instance_type=instance_type,
        on_demand_usd_per_hour=read_float(entry, "on_demand_usd_per_hour", file, path, positive=True),
        spot_usd_per_hour=optional_float(entry, "spot_usd_per_hour", file, path, positive=True),
        gpu_model=(catalog.gpu_models.normalize(gpu_model) or gpu_model) if gpu_model else "",
        gpu_count=gpu_count,
        source=read_str(entry, "source", file, path),
        as_of=read_as_of(entry, "as_of", file, path),
    )


class OverridesFile:
    """An overrides file that may appear, change or break while the exporter runs.

    `reload_if_changed` costs one `stat` when nothing changed, so the caller
    can poll it every few seconds and on SIGHUP.
    """

    def __init__(self, path: str | Path, catalog: Catalog | None = None) -> None:
        self.path = Path(path)
        self._catalog = catalog
        self._signature: tuple[int, int, int] | None = None
        self._prices = OverridePrices()
        self.last_error: ConfigError | None = None

    @property
    def prices(self) -> OverridePrices:
        """The last good prices (empty until a valid file was read)."""
        return self._prices

    def reload_if_changed(self) -> bool:
        """Re-read the file when its inode, size or mtime changed; True when new prices took effect."""
        signature = self._stat()
        if signature == self._signature:
            return False
        self._signature = signature
        if signature is None:
            log.warning(
                "price overrides file %s is missing; keeping %d last good prices",
                self.path,
                len(self._prices.prices),
            )
            return False
        try:
            parsed = parse_overrides(load_yaml_file(self.path), str(self.path), self._catalog)
        except ConfigError as err:
            self.last_error = err
            log.error("%s; keeping the %d last good prices", err.one_line(), len(self._prices.prices))
            return False
        self.last_error = None
        self._prices = parsed
        log.info("loaded %d price overrides from %s", len(parsed.prices), self.path)
        return True

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (stat.st_ino, stat.st_size, stat.st_mtime_ns)
