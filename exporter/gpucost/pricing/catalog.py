"""The shipped price catalog: list prices per cloud, instance type and region, with source and date.

The catalog is package data (`catalog/aws.yaml`, `gcp.yaml`, `azure.yaml` and
the GPU model table `gpus.yaml`).  It is validated on load as strictly as a
user's file: a broken catalog is a ConfigError naming the catalog file, never
a silent gap in prices.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, cast

from gpucost.errors import ConfigError
from gpucost.pricing.gpu_models import GpuModelTable, parse_gpu_model_table
from gpucost.yamlfields import (
    child_path,
    load_yaml_file,
    optional_float,
    optional_str,
    read_as_of,
    read_float,
    read_int,
    read_str,
    reject_unknown_keys,
    require_mapping,
)

__all__ = [
    "CLOUDS",
    "CLOUD_CATALOG_FILES",
    "GPU_MODEL_FILE",
    "SHIPPED_CATALOG_DIR",
    "Catalog",
    "CatalogInstanceType",
    "Cloud",
    "ListPrice",
    "SpotDiscount",
    "load_catalog",
    "shipped_catalog",
]

Cloud = Literal["aws", "gcp", "azure", "onprem"]
CLOUDS: tuple[Cloud, ...] = ("aws", "gcp", "azure", "onprem")

SHIPPED_CATALOG_DIR = Path(__file__).resolve().parent / "catalog"
CLOUD_CATALOG_FILES = ("aws.yaml", "gcp.yaml", "azure.yaml")
GPU_MODEL_FILE = "gpus.yaml"


@dataclass(frozen=True, slots=True)
class ListPrice:
    """The hourly price of one whole instance in one region, and where it was read."""

    on_demand_usd_per_hour: float
    source: str
    as_of: str
    spot_usd_per_hour: float | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class CatalogInstanceType:
    cloud: Cloud
    instance_type: str
    gpu_model: str
    gpu_count: int
    regions: Mapping[str, ListPrice] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SpotDiscount:
    """A cloud's default spot discount, used when no spot price is known for a type."""

    percent: float
    basis: str
    source: str
    as_of: str


@dataclass(frozen=True, slots=True)
class Catalog:
    instance_types: Mapping[tuple[Cloud, str], CatalogInstanceType]
    spot_discounts: Mapping[Cloud, SpotDiscount]
    gpu_models: GpuModelTable
    as_of: str
    files: tuple[str, ...]

    def instance_type(self, cloud: Cloud | None, instance_type: str) -> CatalogInstanceType | None:
        """The entry for a type; with cloud None, the first cloud that lists it."""
        key = instance_type.casefold()
        clouds = (cloud,) if cloud is not None else CLOUDS
        for candidate in clouds:
            entry = self.instance_types.get((candidate, key))
            if entry is not None:
                return entry
        return None


_CLOUD_FILE_KEYS = ("cloud", "as_of", "source", "spot", "instance_types")
_SPOT_KEYS = ("discount_percent", "basis", "source", "as_of")
_TYPE_KEYS = ("gpu_model", "gpu_count", "regions")
_PRICE_KEYS = ("on_demand_usd_per_hour", "spot_usd_per_hour", "source", "as_of", "note")


def load_catalog(directory: Path = SHIPPED_CATALOG_DIR) -> Catalog:
    """Load and validate the catalog files in `directory` (the shipped ones by default)."""
    gpu_file = directory / GPU_MODEL_FILE
    models = parse_gpu_model_table(load_yaml_file(gpu_file), str(gpu_file))
    instance_types: dict[tuple[Cloud, str], CatalogInstanceType] = {}
    spot_discounts: dict[Cloud, SpotDiscount] = {}
    dates: list[str] = []
    files = [GPU_MODEL_FILE]
    seen_clouds: set[Cloud] = set()
    for name in CLOUD_CATALOG_FILES:
        path = directory / name
        if not path.exists():
            continue
        cloud, as_of, spot, entries = _parse_cloud_file(load_yaml_file(path), str(path), models)
        if cloud in seen_clouds:
            raise ConfigError(str(path), "cloud", cloud, "a second catalog file for the same cloud")
        seen_clouds.add(cloud)
        if spot is not None:
            spot_discounts[cloud] = spot
        for entry in entries:
            instance_types[(cloud, entry.instance_type.casefold())] = entry
        dates.append(as_of)
        files.append(name)
    return Catalog(
        instance_types=instance_types,
        spot_discounts=spot_discounts,
        gpu_models=models,
        as_of=max(dates, default=""),
        files=tuple(files),
    )


@functools.cache
def shipped_catalog() -> Catalog:
    """The package's own catalog, loaded once per process."""
    return load_catalog()


def _parse_cloud_file(
    raw: object, file: str, models: GpuModelTable
) -> tuple[Cloud, str, SpotDiscount | None, list[CatalogInstanceType]]:
    top = require_mapping(raw, file, "")
    reject_unknown_keys(top, _CLOUD_FILE_KEYS, file, "")
    cloud = cast(Cloud, read_str(top, "cloud", file, "", choices=CLOUDS))
    as_of = read_as_of(top, "as_of", file, "")
    spot = _parse_spot(top["spot"], file) if top.get("spot") is not None else None
    types_raw = require_mapping(top.get("instance_types"), file, "instance_types")
    entries = [_parse_instance_type(cloud, name, value, file, models) for name, value in types_raw.items()]
    return cloud, as_of, spot, entries


def _parse_spot(raw: object, file: str) -> SpotDiscount:
    spot = require_mapping(raw, file, "spot")
    reject_unknown_keys(spot, _SPOT_KEYS, file, "spot")
    return SpotDiscount(
        percent=read_float(spot, "discount_percent", file, "spot", maximum=100),
        basis=read_str(spot, "basis", file, "spot"),
        source=read_str(spot, "source", file, "spot"),
        as_of=read_as_of(spot, "as_of", file, "spot"),
    )


def _parse_instance_type(
    cloud: Cloud, name: str, raw: object, file: str, models: GpuModelTable
) -> CatalogInstanceType:
    path = child_path("instance_types", name)
    entry = require_mapping(raw, file, path)
    reject_unknown_keys(entry, _TYPE_KEYS, file, path)
    gpu_model = read_str(entry, "gpu_model", file, path)
    if models.get(gpu_model) is None:
        raise ConfigError(
            file, child_path(path, "gpu_model"), gpu_model, f"not a GPU model key of {GPU_MODEL_FILE}"
        )
    regions_path = child_path(path, "regions")
    regions_raw = require_mapping(entry.get("regions"), file, regions_path)
    if not regions_raw:
        raise ConfigError(file, regions_path, regions_raw, "needs at least one region with a price")
    regions = {
        region: parse_list_price(value, file, child_path(regions_path, region))
        for region, value in regions_raw.items()
    }
    return CatalogInstanceType(
        cloud=cloud,
        instance_type=name,
        gpu_model=gpu_model,
        gpu_count=read_int(entry, "gpu_count", file, path),
        regions=regions,
    )


def parse_list_price(raw: object, file: str, path: str) -> ListPrice:
    price = require_mapping(raw, file, path)
    reject_unknown_keys(price, _PRICE_KEYS, file, path)
    return ListPrice(
        on_demand_usd_per_hour=read_float(price, "on_demand_usd_per_hour", file, path, positive=True),
        spot_usd_per_hour=optional_float(price, "spot_usd_per_hour", file, path, positive=True),
        source=read_str(price, "source", file, path),
        as_of=read_as_of(price, "as_of", file, path),
        note=optional_str(price, "note", file, path),
    )
