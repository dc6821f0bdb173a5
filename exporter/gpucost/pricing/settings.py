"""The `pricing:` section of the exporter's config file, parsed into a frozen `PricingSettings`.

Parsing is pure (no file or network I/O): the config loader hands over the
already-parsed YAML value and the file name, and every problem becomes a
ConfigError naming that file, the key path (`pricing.on_prem.pue`) and value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, cast

from gpucost.errors import ConfigError
from gpucost.pricing.catalog import CLOUDS, Catalog, Cloud, shipped_catalog
from gpucost.pricing.node_labels import CapacityType
from gpucost.pricing.on_prem import OnPremCost
from gpucost.yamlfields import (
    child_path,
    optional_float,
    optional_int,
    optional_str,
    read_bool,
    read_float,
    read_int,
    reject_unknown_keys,
    require_mapping,
)

__all__ = [
    "COMMITMENT_KINDS",
    "Commitment",
    "CommitmentKind",
    "InstanceTypePrice",
    "NodeSplitSettings",
    "PartWeights",
    "PricingSettings",
    "gpu_model_key",
    "parse_part_weights",
    "parse_pricing_settings",
    "validate_gpu_models_priced",
]

CommitmentKind = Literal["reserved", "savings_plan", "cud"]
COMMITMENT_KINDS: tuple[CommitmentKind, ...] = ("reserved", "savings_plan", "cud")
CAPACITY_TYPES: tuple[CapacityType, ...] = ("on_demand", "spot")

SECTION = "pricing"


@dataclass(frozen=True, slots=True)
class Commitment:
    """A reserved instance, savings plan or committed-use discount, as a percentage off on-demand."""

    kind: CommitmentKind
    discount_percent: float


@dataclass(frozen=True, slots=True)
class InstanceTypePrice:
    """A user's own price for an instance type; gpu model and count may come from the catalog."""

    on_demand_usd_per_hour: float
    gpu_model: str = ""
    gpu_count: int | None = None
    spot_usd_per_hour: float | None = None


@dataclass(frozen=True, slots=True)
class PartWeights:
    """How a node's non-GPU price divides between CPU, memory and local storage, as relative weights.

    Only the ratios matter (`{cpu: 2, memory: 1}` is the same as `{cpu: 0.667,
    memory: 0.333}`); at least one weight is above zero.
    """

    cpu: float
    memory: float
    storage: float = 0.0

    @property
    def total(self) -> float:
        return self.cpu + self.memory + self.storage


@dataclass(frozen=True, slots=True)
class NodeSplitSettings:
    """`pricing.node_split`: the user's own CPU / memory / storage weights (docs/node-cost.md).

    `families` maps an instance-type prefix (`m5`, `n2-standard`, `standard_e`;
    the longest matching prefix wins, case-insensitive) to weights; `on_prem`
    applies to nodes priced by the on-prem TCO; `default` to any node nothing
    else describes.
    """

    families: Mapping[str, PartWeights] = field(default_factory=dict)
    on_prem: PartWeights | None = None
    default: PartWeights | None = None


@dataclass(frozen=True, slots=True)
class PricingSettings:
    """Everything the price book needs from the config file; the defaults price cloud nodes by catalog."""

    config_file: str = ""
    cloud: Cloud | None = None
    region: str = ""
    instance_type: str = ""
    capacity_type: CapacityType | None = None
    # CPU and RAM of a GPU node exist to feed its GPUs, so by default the
    # whole node price is split over the GPUs; 0.9 leaves 10% unattributed.
    gpu_share_of_node_price: float = 1.0
    commitment: Commitment | None = None
    spot_discount_percent: float | None = None
    overrides_file: str = ""
    allow_model_fallback: bool = True
    instance_types: Mapping[str, InstanceTypePrice] = field(default_factory=dict)
    gpu_models: Mapping[str, float] = field(default_factory=dict)
    on_prem: OnPremCost | None = None
    required_gpu_models: tuple[str, ...] = ()
    node_split: NodeSplitSettings = field(default_factory=NodeSplitSettings)


_KEYS = (
    "cloud",
    "region",
    "instance_type",
    "capacity_type",
    "gpu_share_of_node_price",
    "commitment",
    "spot_discount_percent",
    "overrides_file",
    "allow_model_fallback",
    "instance_types",
    "gpu_models",
    "on_prem",
    "required_gpu_models",
    "node_split",
)
_NODE_SPLIT_KEYS = ("families", "on_prem", "default")
_WEIGHT_KEYS = ("cpu", "memory", "storage")
# Weights are ratios; the cap only keeps their sum finite.
_MAX_PART_WEIGHT = 1e9
_COMMITMENT_KEYS = ("kind", "discount_percent")
_INSTANCE_TYPE_KEYS = ("on_demand_usd_per_hour", "gpu_model", "gpu_count", "spot_usd_per_hour")
_ON_PREM_KEYS = (
    "purchase_price_usd",
    "amortization_months",
    "watts",
    "usd_per_kwh",
    "pue",
    "overhead_usd_per_month",
    "gpus_per_node",
)


def parse_pricing_settings(raw: object, file: str, catalog: Catalog | None = None) -> PricingSettings:
    """Validate the `pricing:` section (None or absent means all defaults)."""
    if raw is None:
        return PricingSettings(config_file=file)
    section = require_mapping(raw, file, SECTION)
    reject_unknown_keys(section, _KEYS, file, SECTION)
    models = catalog or shipped_catalog()
    share = (
        read_float(section, "gpu_share_of_node_price", file, SECTION, positive=True, maximum=1.0)
        if (section.get("gpu_share_of_node_price") is not None)
        else 1.0
    )
    capacity = optional_str(section, "capacity_type", file, SECTION, choices=CAPACITY_TYPES)
    cloud = optional_str(section, "cloud", file, SECTION, choices=CLOUDS)
    settings = PricingSettings(
        config_file=file,
        cloud=cast(Cloud, cloud) if cloud else None,
        region=optional_str(section, "region", file, SECTION),
        instance_type=optional_str(section, "instance_type", file, SECTION),
        capacity_type=cast(CapacityType, capacity) if capacity else None,
        gpu_share_of_node_price=share,
        commitment=_parse_commitment(section.get("commitment"), file),
        spot_discount_percent=optional_float(section, "spot_discount_percent", file, SECTION, maximum=100),
        overrides_file=optional_str(section, "overrides_file", file, SECTION),
        allow_model_fallback=read_bool(section, "allow_model_fallback", file, SECTION, default=True),
        instance_types=_parse_instance_types(section.get("instance_types"), file, models),
        gpu_models=_parse_gpu_models(section.get("gpu_models"), file, models),
        on_prem=_parse_on_prem(section.get("on_prem"), file),
        required_gpu_models=_parse_required_models(section.get("required_gpu_models"), file),
        node_split=_parse_node_split(section.get("node_split"), file),
    )
    validate_gpu_models_priced(settings, settings.required_gpu_models, file, models)
    return settings


def gpu_model_key(name: str, catalog: Catalog) -> str:
    """The table's key for a model key or NVML name; an unknown name stays as written."""
    return catalog.gpu_models.key_for(name)


def validate_gpu_models_priced(
    settings: PricingSettings, models: Iterable[str], file: str, catalog: Catalog | None = None
) -> None:
    """Raise ConfigError for the first model that neither the config nor the model table can price.

    A model counts as priced when `pricing.gpu_models` names it, or when the
    model table has a reference price for it and `allow_model_fallback` is on.
    """
    table = (catalog or shipped_catalog()).gpu_models
    for name in models:
        key = table.key_for(name)
        if key in settings.gpu_models:
            continue
        model = table.get(key)
        if settings.allow_model_fallback and model is not None and model.reference_usd_per_gpu_hour:
            continue
        raise ConfigError(
            file,
            child_path(child_path(SECTION, "gpu_models"), key),
            name,
            f"missing price for GPU model {key}: set pricing.gpu_models.{key} to its USD per GPU-hour",
        )


def _parse_commitment(raw: object, file: str) -> Commitment | None:
    if raw is None:
        return None
    path = child_path(SECTION, "commitment")
    entry = require_mapping(raw, file, path)
    reject_unknown_keys(entry, _COMMITMENT_KEYS, file, path)
    kind = optional_str(entry, "kind", file, path, choices=COMMITMENT_KINDS)
    if not kind:
        raise ConfigError(
            file, child_path(path, "kind"), None, f"is required ({', '.join(COMMITMENT_KINDS)})"
        )
    percent = read_float(entry, "discount_percent", file, path, maximum=100)
    if percent >= 100:
        raise ConfigError(file, child_path(path, "discount_percent"), percent, "must be below 100")
    return Commitment(kind=cast(CommitmentKind, kind), discount_percent=percent)


def _parse_instance_types(raw: object, file: str, catalog: Catalog) -> Mapping[str, InstanceTypePrice]:
    if raw is None:
        return {}
    path = child_path(SECTION, "instance_types")
    entries = require_mapping(raw, file, path)
    prices: dict[str, InstanceTypePrice] = {}
    for instance_type, value in entries.items():
        entry_path = child_path(path, instance_type)
        entry = require_mapping(value, file, entry_path)
        reject_unknown_keys(entry, _INSTANCE_TYPE_KEYS, file, entry_path)
        model = optional_str(entry, "gpu_model", file, entry_path)
        prices[instance_type.casefold()] = InstanceTypePrice(
            on_demand_usd_per_hour=read_float(
                entry, "on_demand_usd_per_hour", file, entry_path, positive=True
            ),
            gpu_model=gpu_model_key(model, catalog) if model else "",
            gpu_count=optional_int(entry, "gpu_count", file, entry_path),
            spot_usd_per_hour=optional_float(entry, "spot_usd_per_hour", file, entry_path, positive=True),
        )
    return prices


def _parse_gpu_models(raw: object, file: str, catalog: Catalog) -> Mapping[str, float]:
    if raw is None:
        return {}
    path = child_path(SECTION, "gpu_models")
    entries = require_mapping(raw, file, path)
    return {
        gpu_model_key(name, catalog): read_float(entries, name, file, path, positive=True) for name in entries
    }


def _parse_on_prem(raw: object, file: str) -> OnPremCost | None:
    if raw is None:
        return None
    path = child_path(SECTION, "on_prem")
    entry = require_mapping(raw, file, path)
    reject_unknown_keys(entry, _ON_PREM_KEYS, file, path)
    pue = optional_float(entry, "pue", file, path)
    if pue is not None and pue < 1.0:
        raise ConfigError(
            file, child_path(path, "pue"), entry["pue"], "must be at least 1.0 (power at the wall)"
        )
    return OnPremCost(
        purchase_price_usd=read_float(entry, "purchase_price_usd", file, path, positive=True),
        amortization_months=read_int(entry, "amortization_months", file, path),
        watts=read_float(entry, "watts", file, path),
        usd_per_kwh=read_float(entry, "usd_per_kwh", file, path),
        pue=1.0 if pue is None else pue,
        overhead_usd_per_month=optional_float(entry, "overhead_usd_per_month", file, path) or 0.0,
        gpus_per_node=optional_int(entry, "gpus_per_node", file, path),
    )


def _parse_required_models(raw: object, file: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    path = child_path(SECTION, "required_gpu_models")
    if not isinstance(raw, list):
        raise ConfigError(file, path, raw, "must be a list of GPU model keys")
    for index, name in enumerate(raw):
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(
                file, child_path(path, index), name, "must be a GPU model key such as A100-80GB"
            )
    return tuple(cast(list[str], raw))


def _parse_node_split(raw: object, file: str) -> NodeSplitSettings:
    if raw is None:
        return NodeSplitSettings()
    path = child_path(SECTION, "node_split")
    section = require_mapping(raw, file, path)
    reject_unknown_keys(section, _NODE_SPLIT_KEYS, file, path)
    families_path = child_path(path, "families")
    families_raw = require_mapping(section.get("families") or {}, file, families_path)
    families = {
        prefix.casefold(): parse_part_weights(value, file, child_path(families_path, prefix))
        for prefix, value in families_raw.items()
    }
    return NodeSplitSettings(
        families=families,
        on_prem=_optional_weights(section.get("on_prem"), file, child_path(path, "on_prem")),
        default=_optional_weights(section.get("default"), file, child_path(path, "default")),
    )


def _optional_weights(raw: object, file: str, path: str) -> PartWeights | None:
    return None if raw is None else parse_part_weights(raw, file, path)


def parse_part_weights(raw: object, file: str, path: str) -> PartWeights:
    """`{cpu: 0.65, memory: 0.35}` (storage optional): non-negative numbers, not all zero."""
    entry = require_mapping(raw, file, path)
    reject_unknown_keys(entry, _WEIGHT_KEYS, file, path)
    weights = PartWeights(
        cpu=read_float(entry, "cpu", file, path, maximum=_MAX_PART_WEIGHT),
        memory=read_float(entry, "memory", file, path, maximum=_MAX_PART_WEIGHT),
        storage=optional_float(entry, "storage", file, path, maximum=_MAX_PART_WEIGHT) or 0.0,
    )
    if weights.total <= 0.0:
        raise ConfigError(file, path, dict(entry), "needs at least one weight above 0")
    return weights
