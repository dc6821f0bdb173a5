"""Node-to-price resolution: which rule prices a GPU, and how a node price becomes a per-GPU price.

Resolution order, first match wins (docs/pricing.md explains each):

1. node-label            `gpucost.io/price-per-gpu-hour` on the node (on-prem nodes)
2. config-instance-type  `pricing.instance_types.<type>` in the exporter config
3. config-gpu-model      `pricing.gpu_models.<model>` in the exporter config
4. config-on-prem        `pricing.on_prem` TCO, for nodes of cloud `onprem` or of no known cloud
5. overrides-file        the price sync's overrides file, by (cloud, region, instance type)
6. catalog               the shipped catalog, by (cloud, instance type, region)
7. gpu-model-reference   the model table's reference price (only with `allow_model_fallback`)
8. unpriced              price 0, pricing `unpriced`, the detail says why

Spot and commitment discounts apply to the list prices of rules 2, 5 and 6;
the per-GPU prices of rules 1, 3 and 7 are taken as written.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from gpucost.model import PriceQuote, PricingKind
from gpucost.pricing.catalog import Catalog, CatalogInstanceType, Cloud
from gpucost.pricing.node_labels import CapacityType
from gpucost.pricing.overrides import OverridePrice, OverridePrices
from gpucost.pricing.settings import InstanceTypePrice, PricingSettings

__all__ = ["RESOLUTION_ORDER", "NodeFacts", "Resolution", "Resolver"]

RESOLUTION_ORDER: tuple[str, ...] = (
    "node-label",
    "config-instance-type",
    "config-gpu-model",
    "config-on-prem",
    "overrides-file",
    "catalog",
    "gpu-model-reference",
    "unpriced",
)
MODEL_FALLBACK_DETAIL = "gpu-model reference price"


@dataclass(frozen=True, slots=True)
class NodeFacts:
    """What the price depends on, after labels and config have been combined."""

    cloud: Cloud | None
    region: str
    instance_type: str
    capacity: CapacityType
    price_label: str | None = None


@dataclass(frozen=True, slots=True)
class Resolution:
    """The winning rule and the price of one full GPU (a MIG slice's fraction is applied later)."""

    rule: str
    quote: PriceQuote
    node_usd_per_hour: float | None = None
    gpu_count: int | None = None
    gpu_model: str = ""


@dataclass(frozen=True, slots=True)
class _NodePrice:
    on_demand: float
    spot: float | None
    gpu_count: int | None
    gpu_model: str
    source: str
    as_of: str


def _user_price(
    entry: InstanceTypePrice | OverridePrice,
    catalog_entry: CatalogInstanceType | None,
    gpu_model: str,
    source: str,
    as_of: str,
) -> _NodePrice:
    """A price the user set (config or overrides file); GPU count and model it leaves out come from the catalog."""
    return _NodePrice(
        on_demand=entry.on_demand_usd_per_hour,
        spot=entry.spot_usd_per_hour,
        gpu_count=entry.gpu_count or (catalog_entry.gpu_count if catalog_entry else None),
        gpu_model=entry.gpu_model or (catalog_entry.gpu_model if catalog_entry else gpu_model),
        source=source,
        as_of=as_of,
    )


class Resolver:
    """Applies the resolution order; pure apart from reading the current overrides through a callable."""

    def __init__(
        self, settings: PricingSettings, catalog: Catalog, overrides: Callable[[], OverridePrices]
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self._overrides = overrides

    def resolve(self, node: NodeFacts, gpu_model: str, gpus_on_node: int) -> Resolution:
        if node.price_label is not None:
            return self._from_label(node.price_label)
        settings = self.settings
        catalog_entry = (
            self.catalog.instance_type(node.cloud, node.instance_type) if node.instance_type else None
        )
        configured = (
            settings.instance_types.get(node.instance_type.casefold()) if node.instance_type else None
        )
        if configured is not None:
            listed = _user_price(configured, catalog_entry, gpu_model, f"config {settings.config_file}".strip(), "")
            return self._from_node_price("config-instance-type", listed, node, gpus_on_node)
        if gpu_model in settings.gpu_models:
            price = settings.gpu_models[gpu_model]
            kind: PricingKind = "on_prem" if node.cloud in (None, "onprem") else "on_demand"
            quote = PriceQuote(
                price, kind, f"config {settings.config_file}".strip(), "", f"config-gpu-model: {gpu_model}"
            )
            return Resolution("config-gpu-model", quote, gpu_model=gpu_model)
        if settings.on_prem is not None and node.cloud in (None, "onprem"):
            return self._from_on_prem(gpu_model, gpus_on_node)
        if node.cloud is not None and node.instance_type and node.region:
            override = self._overrides().get(node.cloud, node.region, node.instance_type)
            if override is not None:
                listed = _user_price(override, catalog_entry, gpu_model, override.source, override.as_of)
                return self._from_node_price("overrides-file", listed, node, gpus_on_node)
        missing = self._describe_missing(node, catalog_entry is not None)
        if catalog_entry is not None:
            region_price = catalog_entry.regions.get(node.region)
            if region_price is not None:
                listed = _NodePrice(
                    on_demand=region_price.on_demand_usd_per_hour,
                    spot=region_price.spot_usd_per_hour,
                    gpu_count=catalog_entry.gpu_count,
                    gpu_model=catalog_entry.gpu_model,
                    source=region_price.source,
                    as_of=region_price.as_of,
                )
                cloud_node = NodeFacts(catalog_entry.cloud, node.region, node.instance_type, node.capacity)
                return self._from_node_price("catalog", listed, cloud_node, gpus_on_node)
        reference = self.catalog.gpu_models.get(gpu_model)
        if settings.allow_model_fallback and reference is not None and reference.reference_usd_per_gpu_hour:
            quote = PriceQuote(
                reference.reference_usd_per_gpu_hour,
                "on_demand",
                reference.source,
                reference.as_of,
                f"{MODEL_FALLBACK_DETAIL} ({reference.reference_basis}); {missing}",
            )
            return Resolution("gpu-model-reference", quote, gpu_model=gpu_model)
        if not settings.allow_model_fallback:
            why = f"{missing}; no price by GPU model {gpu_model or '?'}: allow_model_fallback: false"
        elif reference is None:
            why = f"{missing}; GPU model {gpu_model or '?'} is not in the model table"
        else:
            why = f"{missing}; GPU model {gpu_model} has no reference price"
        return _unpriced(why, gpu_model)

    def _from_label(self, value: str) -> Resolution:
        label = "gpucost.io/price-per-gpu-hour"
        try:
            price = float(value)
        except ValueError:
            price = math.nan
        if not math.isfinite(price) or price < 0:
            return _unpriced(
                f"node label {label}={value!r} is not a non-negative number of USD per GPU-hour", ""
            )
        return Resolution("node-label", PriceQuote(price, "on_prem", f"node label {label}", "", "node-label"))

    def _from_on_prem(self, gpu_model: str, gpus_on_node: int) -> Resolution:
        on_prem = self.settings.on_prem
        assert on_prem is not None  # checked by the caller; narrows the type
        gpu_count = on_prem.gpus_per_node or gpus_on_node
        if gpu_count <= 0:
            return _unpriced("config-on-prem: no GPU count (set pricing.on_prem.gpus_per_node)", gpu_model)
        node_price = on_prem.node_usd_per_hour
        per_gpu = node_price * self.settings.gpu_share_of_node_price / gpu_count
        detail = f"config-on-prem: {on_prem.describe()}, over {gpu_count} GPUs"
        quote = PriceQuote(per_gpu, "on_prem", f"config {self.settings.config_file}".strip(), "", detail)
        return Resolution("config-on-prem", quote, node_price, gpu_count, gpu_model)

    def _from_node_price(
        self, rule: str, listed: _NodePrice, node: NodeFacts, gpus_on_node: int
    ) -> Resolution:
        gpu_count = listed.gpu_count or gpus_on_node
        if gpu_count <= 0:
            return _unpriced(f"{rule}: {node.instance_type} has no known GPU count", listed.gpu_model)
        node_price, kind, how = self._apply_capacity(listed, node)
        per_gpu = node_price * self.settings.gpu_share_of_node_price / gpu_count
        share = self.settings.gpu_share_of_node_price
        split = f"{gpu_count} GPUs" if share == 1.0 else f"{gpu_count} GPUs at {share:g} of the node price"
        detail = f"{rule}: {node.instance_type} {node.region} {how}, {node_price:.6g} USD/h over {split}"
        quote = PriceQuote(per_gpu, kind, listed.source, listed.as_of, detail)
        return Resolution(rule, quote, node_price, gpu_count, listed.gpu_model)

    def _apply_capacity(self, listed: _NodePrice, node: NodeFacts) -> tuple[float, PricingKind, str]:
        if node.cloud == "onprem":
            return listed.on_demand, "on_prem", "on-prem price"
        if node.capacity == "spot":
            if listed.spot is not None:
                return listed.spot, "spot", "spot price"
            discount = self._spot_discount(node.cloud)
            if discount is None:
                return (
                    listed.on_demand,
                    "on_demand",
                    "spot node but no spot price or discount known: on-demand",
                )
            return (
                listed.on_demand * (1 - discount / 100),
                "spot",
                f"on-demand less {discount:g}% spot discount",
            )
        commitment = self.settings.commitment
        if commitment is not None:
            price = listed.on_demand * (1 - commitment.discount_percent / 100)
            return price, "commitment", f"on-demand less {commitment.discount_percent:g}% {commitment.kind}"
        return listed.on_demand, "on_demand", "on-demand"

    def _spot_discount(self, cloud: Cloud | None) -> float | None:
        if self.settings.spot_discount_percent is not None:
            return self.settings.spot_discount_percent
        catalog_discount = self.catalog.spot_discounts.get(cloud) if cloud is not None else None
        return catalog_discount.percent if catalog_discount is not None else None

    @staticmethod
    def _describe_missing(node: NodeFacts, type_known: bool) -> str:
        if not node.instance_type:
            return "node has no instance type"
        if not type_known:
            return f"instance type {node.instance_type} is not in the catalog"
        if not node.region:
            return f"node of instance type {node.instance_type} has no region"
        return f"no catalog price for {node.instance_type} in region {node.region}"


def _unpriced(reason: str, gpu_model: str) -> Resolution:
    return Resolution("unpriced", PriceQuote(0.0, "unpriced", "", "", reason), gpu_model=gpu_model)
