"""A node's hourly price split into GPU, CPU, memory and local-storage parts.

The GPU part is never decided here: it is the sum of the GPU prices the price
book already gives the node's devices, so the GPU cost contract is unchanged.
What remains of the node's price (node price - GPU part) is divided between
CPU, memory and storage by weights, the first of these that describes the node
(`SPLIT_ORDER`, docs/node-cost.md):

1. config-family    `pricing.node_split.families.<prefix>` (longest prefix of the instance type)
2. catalog          the provider's own component prices (`catalog/node_parts.yaml` instance_types)
3. config-on-prem   `pricing.node_split.on_prem`, for a node priced by the on-prem TCO
4. default-family   the shipped family table: GiB per vCPU at the reference vCPU and GiB rates
5. config-default   `pricing.node_split.default`
6. default          the shipped default family (4 GiB per vCPU)

The parts always add up to the node's price: the part with the largest weight
is whatever the others leave, computed exactly, so `math.fsum` of the four
parts is the node price to within one unit in the last place
(tests/unit/test_node_parts.py proves it with hypothesis).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from gpucost.model import NodeInfo
from gpucost.pricing.catalog import SHIPPED_CATALOG_DIR, Catalog
from gpucost.pricing.node_labels import (
    PRICE_OVERRIDE_LABEL,
    capacity_type_from_labels,
    cloud_from_instance_type,
    instance_type_from_labels,
    region_from_labels,
)
from gpucost.pricing.overrides import OverridePrices
from gpucost.pricing.resolve import NodeFacts, Resolver
from gpucost.pricing.settings import NodeSplitSettings, PartWeights, PricingSettings
from gpucost.yamlfields import (
    child_path,
    load_yaml_file,
    optional_float,
    read_as_of,
    read_float,
    read_str,
    reject_unknown_keys,
    require_mapping,
)

__all__ = [
    "NODE_PARTS_FILE",
    "RESOURCES",
    "SPLIT_ORDER",
    "ComponentPrices",
    "ListedParts",
    "NodePartsBook",
    "NodePartsTable",
    "NodePriceParts",
    "choose_weights",
    "load_node_parts_table",
    "shipped_node_parts_table",
    "split_node_price",
]

NODE_PARTS_FILE = SHIPPED_CATALOG_DIR / "node_parts.yaml"
RESOURCES: tuple[str, ...] = ("gpu", "cpu", "memory", "storage")
SPLIT_ORDER: tuple[str, ...] = (
    "config-family",
    "catalog",
    "config-on-prem",
    "default-family",
    "config-default",
    "default",
)
_Value = TypeVar("_Value")
# Price rules whose quote is per GPU: they say nothing about the rest of the node.
_PER_GPU_RULES = ("node-label", "config-gpu-model", "gpu-model-reference", "unpriced")


@dataclass(frozen=True, slots=True)
class ComponentPrices:
    """A provider's list price per vCPU-hour and per GiB-hour of memory (and of local disk)."""

    usd_per_vcpu_hour: float
    usd_per_gib_hour: float
    source: str
    as_of: str
    usd_per_local_gib_hour: float = 0.0

    def weights(self, vcpus: float, memory_gib: float, local_gib: float = 0.0) -> PartWeights:
        return PartWeights(
            cpu=vcpus * self.usd_per_vcpu_hour,
            memory=memory_gib * self.usd_per_gib_hour,
            storage=local_gib * self.usd_per_local_gib_hour,
        )


@dataclass(frozen=True, slots=True)
class ListedParts:
    """An instance type whose price list gives its parts: its vCPUs and memory at component prices."""

    prices: ComponentPrices
    vcpus: float
    memory_gib: float
    local_storage_gib: float = 0.0

    def weights(self) -> PartWeights:
        return self.prices.weights(self.vcpus, self.memory_gib, self.local_storage_gib)


@dataclass(frozen=True, slots=True)
class NodePartsTable:
    """The shipped `node_parts.yaml`: reference rates, family memory-per-vCPU, listed instance types."""

    reference: ComponentPrices
    default_gib_per_vcpu: float
    families: Mapping[str, float]
    instance_types: Mapping[str, ListedParts]
    as_of: str
    file: str

    def family_weights(self, gib_per_vcpu: float) -> PartWeights:
        return self.reference.weights(1.0, gib_per_vcpu)


@dataclass(frozen=True, slots=True)
class NodePriceParts:
    """A node's hourly price in parts; `split` names the rule of `SPLIT_ORDER` that gave the weights."""

    node_usd_per_hour: float
    gpu_usd_per_hour: float
    cpu_usd_per_hour: float
    memory_usd_per_hour: float
    storage_usd_per_hour: float
    split: str
    detail: str

    def by_resource(self) -> dict[str, float]:
        """`resource` label value -> USD per hour, in `RESOURCES` order."""
        return {
            "gpu": self.gpu_usd_per_hour,
            "cpu": self.cpu_usd_per_hour,
            "memory": self.memory_usd_per_hour,
            "storage": self.storage_usd_per_hour,
        }


def split_node_price(
    node_usd_per_hour: float | None,
    gpu_usd_per_hour: float,
    weights: PartWeights,
    split: str,
    detail: str = "",
) -> NodePriceParts:
    """Split the node's price around its GPU part; the four parts add up to the node's price.

    `node_usd_per_hour` None means only per-GPU prices are known (a node label,
    a per-model price): the node is then its GPUs, with nothing for CPU or
    memory.  A node price below the GPU part (prices from two sources that
    disagree) is raised to the GPU part: the GPU contract wins.
    """
    gpu = _non_negative(gpu_usd_per_hour)
    if node_usd_per_hour is None:
        return NodePriceParts(gpu, gpu, 0.0, 0.0, 0.0, "gpu-only", detail or "no whole-node price known")
    node = _non_negative(node_usd_per_hour)
    if node <= gpu:
        why = detail or f"node price {node:.6g} USD/h does not exceed its GPUs' {gpu:.6g} USD/h"
        return NodePriceParts(gpu, gpu, 0.0, 0.0, 0.0, split, why)
    rest = node - gpu
    total_weight = weights.total
    cpu = rest * (weights.cpu / total_weight)
    memory = rest * (weights.memory / total_weight)
    storage = rest * (weights.storage / total_weight)
    cpu, memory, storage = _close_on(node, gpu, cpu, memory, storage, weights)
    return NodePriceParts(node, gpu, cpu, memory, storage, split, detail)


def _close_on(
    node: float, gpu: float, cpu: float, memory: float, storage: float, weights: PartWeights
) -> tuple[float, float, float]:
    """Let the part with the largest weight take what the others leave, computed exactly (`math.fsum`).

    The sum of the four parts is then the node price to the last bit, except
    when the exact remainder falls on a rounding tie: then it is one unit in
    the last place off (5e-15 of a 40 USD/h node).
    """
    parts = [cpu, memory, storage]
    largest = max(range(3), key=lambda index: (weights.cpu, weights.memory, weights.storage)[index])
    others = [part for index, part in enumerate(parts) if index != largest]
    parts[largest] = max(math.fsum([node, -gpu, *(-part for part in others)]), 0.0)
    return parts[0], parts[1], parts[2]


def _non_negative(value: float) -> float:
    return value if math.isfinite(value) and value > 0.0 else 0.0


def choose_weights(
    instance_type: str,
    on_prem: bool,
    settings: NodeSplitSettings,
    table: NodePartsTable,
) -> tuple[PartWeights, str, str]:
    """The weights for a node, the `SPLIT_ORDER` rule that gave them, and a line saying why."""
    key = instance_type.casefold()
    configured = _longest_prefix(key, settings.families)
    if configured is not None:
        prefix, weights = configured
        return weights, "config-family", f"pricing.node_split.families.{prefix}"
    listed = table.instance_types.get(key)
    if listed is not None:
        return listed.weights(), "catalog", (
            f"{instance_type}: {listed.vcpus:g} vCPU, {listed.memory_gib:g} GiB at {listed.prices.source}"
        )
    if on_prem and settings.on_prem is not None:
        return settings.on_prem, "config-on-prem", "pricing.node_split.on_prem"
    family = _longest_prefix(key, table.families)
    if family is not None:
        prefix, gib_per_vcpu = family
        return table.family_weights(gib_per_vcpu), "default-family", (
            f"family {prefix}: {gib_per_vcpu:g} GiB per vCPU at the reference rates"
        )
    if settings.default is not None:
        return settings.default, "config-default", "pricing.node_split.default"
    return table.family_weights(table.default_gib_per_vcpu), "default", (
        f"{table.default_gib_per_vcpu:g} GiB per vCPU at the reference rates"
    )


def _longest_prefix(key: str, table: Mapping[str, _Value]) -> tuple[str, _Value] | None:
    matches = [prefix for prefix in table if prefix and key.startswith(prefix)]
    if not matches:
        return None
    best = max(matches, key=len)
    return best, table[best]


class NodePartsBook:
    """Prices a whole node in parts, by the same resolution the price book uses for its GPUs."""

    def __init__(
        self,
        settings: PricingSettings,
        catalog: Catalog,
        overrides: Callable[[], OverridePrices] = OverridePrices,
        table: NodePartsTable | None = None,
    ) -> None:
        self.settings = settings
        self.table = table or shipped_node_parts_table()
        self._catalog = catalog
        self._resolver = Resolver(settings, catalog, overrides)

    def parts(
        self, node: NodeInfo, gpu_usd_per_hour: float, gpu_model: str = "", gpus_on_node: int = 0
    ) -> NodePriceParts:
        """The node's price in parts; `gpu_usd_per_hour` is what the exporter attributes to its GPUs.

        `gpu_model` may be a catalog key or the name NVML reports (`NVIDIA A100-SXM4-80GB`).
        """
        facts = self._facts(node)
        gpu_model = self._catalog.gpu_models.key_for(gpu_model) if gpu_model else ""
        node_price, rule = self._node_price(facts, gpu_model, gpus_on_node)
        on_prem = rule == "config-on-prem" or facts.cloud == "onprem"
        weights, split, why = choose_weights(facts.instance_type, on_prem, self.settings.node_split, self.table)
        if node_price is None:
            return split_node_price(None, gpu_usd_per_hour, weights, split, f"price rule {rule}: per GPU only")
        return split_node_price(node_price, gpu_usd_per_hour, weights, split, f"price rule {rule}; {why}")

    def _node_price(self, facts: NodeFacts, gpu_model: str, gpus_on_node: int) -> tuple[float | None, str]:
        if gpus_on_node > 0:
            resolution = self._resolver.resolve(facts, gpu_model, gpus_on_node)
            return resolution.node_usd_per_hour, resolution.rule
        # A node without GPUs: resolve as if it had one, which only matters when
        # a rule divides by the GPU count; the node price is all that is kept.
        resolution = self._resolver.resolve(facts, "", 1)
        if resolution.rule == "config-on-prem":
            # The TCO describes the GPU nodes; a CPU node needs its own instance type price.
            return None, "config-on-prem (describes GPU nodes)"
        if resolution.rule in _PER_GPU_RULES:
            return None, resolution.rule
        return resolution.node_usd_per_hour, resolution.rule

    def _facts(self, node: NodeInfo) -> NodeFacts:
        labels = node.labels
        settings = self.settings
        instance_type = instance_type_from_labels(labels) or settings.instance_type
        return NodeFacts(
            cloud=settings.cloud or cloud_from_instance_type(instance_type),
            region=region_from_labels(labels) or settings.region,
            instance_type=instance_type,
            capacity=capacity_type_from_labels(labels) or settings.capacity_type or "on_demand",
            price_label=labels.get(PRICE_OVERRIDE_LABEL),
        )


_TABLE_KEYS = ("as_of", "reference", "default_gib_per_vcpu", "families", "component_prices", "instance_types")
_PRICES_KEYS = ("usd_per_vcpu_hour", "usd_per_gib_hour", "usd_per_local_gib_hour", "source", "as_of")
_LISTED_KEYS = ("component_prices", "vcpus", "memory_gib", "local_storage_gib")


def load_node_parts_table(path: Path = NODE_PARTS_FILE) -> NodePartsTable:
    """Load and validate a node parts file; every problem is a ConfigError naming it."""
    file = str(path)
    top = require_mapping(load_yaml_file(path), file, "")
    reject_unknown_keys(top, _TABLE_KEYS, file, "")
    prices_raw = require_mapping(top.get("component_prices") or {}, file, "component_prices")
    prices = {
        name: _parse_component_prices(value, file, child_path("component_prices", name))
        for name, value in prices_raw.items()
    }
    families_raw = require_mapping(top.get("families") or {}, file, "families")
    families = {
        str(prefix).casefold(): read_float(families_raw, prefix, file, "families", positive=True)
        for prefix in families_raw
    }
    listed_raw = require_mapping(top.get("instance_types") or {}, file, "instance_types")
    listed = {
        name.casefold(): _parse_listed(value, file, child_path("instance_types", name), prices)
        for name, value in listed_raw.items()
    }
    return NodePartsTable(
        reference=_parse_component_prices(top.get("reference"), file, "reference"),
        default_gib_per_vcpu=read_float(top, "default_gib_per_vcpu", file, "", positive=True),
        families=families,
        instance_types=listed,
        as_of=read_as_of(top, "as_of", file, ""),
        file=file,
    )


@functools.cache
def shipped_node_parts_table() -> NodePartsTable:
    """The package's own node parts table, loaded once per process."""
    return load_node_parts_table()


def _parse_component_prices(raw: object, file: str, path: str) -> ComponentPrices:
    entry = require_mapping(raw, file, path)
    reject_unknown_keys(entry, _PRICES_KEYS, file, path)
    return ComponentPrices(
        usd_per_vcpu_hour=read_float(entry, "usd_per_vcpu_hour", file, path, positive=True),
        usd_per_gib_hour=read_float(entry, "usd_per_gib_hour", file, path, positive=True),
        usd_per_local_gib_hour=optional_float(entry, "usd_per_local_gib_hour", file, path) or 0.0,
        source=read_str(entry, "source", file, path),
        as_of=read_as_of(entry, "as_of", file, path),
    )


def _parse_listed(
    raw: object, file: str, path: str, prices: Mapping[str, ComponentPrices]
) -> ListedParts:
    entry = require_mapping(raw, file, path)
    reject_unknown_keys(entry, _LISTED_KEYS, file, path)
    name = read_str(entry, "component_prices", file, path, choices=tuple(prices))
    return ListedParts(
        prices=prices[name],
        vcpus=read_float(entry, "vcpus", file, path, positive=True),
        memory_gib=read_float(entry, "memory_gib", file, path, positive=True),
        local_storage_gib=optional_float(entry, "local_storage_gib", file, path) or 0.0,
    )
