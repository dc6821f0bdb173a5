"""The price book: a cached per-device price for the sampler, and explanations for `gpucost price`.

The sampler calls `quote` once per device per tick, so a quote is cached per
(price-relevant node labels, device model and MIG share, GPUs on the node);
the cache is dropped when the overrides file brings new prices.  An unpriced
device is logged once per distinct reason, not once per tick.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from gpucost.model import GpuDevice, NodeInfo, PriceQuote
from gpucost.pricing.catalog import Catalog, Cloud, shipped_catalog
from gpucost.pricing.node_labels import (
    INSTANCE_TYPE_LABEL,
    PRICE_OVERRIDE_LABEL,
    PRICE_RELEVANT_LABELS,
    REGION_LABEL,
    CapacityType,
    capacity_type_from_labels,
    cloud_from_instance_type,
    instance_type_from_labels,
    region_from_labels,
)
from gpucost.pricing.node_parts import NodePartsBook
from gpucost.pricing.overrides import OverridePrices, OverridesFile
from gpucost.pricing.resolve import RESOLUTION_ORDER, NodeFacts, Resolution, Resolver
from gpucost.pricing.settings import PricingSettings

__all__ = ["PriceBook"]

log = logging.getLogger(__name__)

# Nodes x GPU models x MIG profiles stays far below this; the bound only
# guards against a label that changes every tick.
_CACHE_LIMIT = 4096

_CacheKey = tuple[tuple[str | None, ...], str, int, int, int]


class PriceBook:
    def __init__(
        self,
        settings: PricingSettings,
        catalog: Catalog,
        overrides_file: OverridesFile | None = None,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self._overrides_file = overrides_file
        self._resolver = Resolver(settings, catalog, self.current_overrides)
        self._cache: dict[_CacheKey, PriceQuote] = {}
        self._reported: set[str] = set()

    @classmethod
    def from_settings(cls, settings: PricingSettings, catalog: Catalog | None = None) -> PriceBook:
        """A price book over the shipped catalog (or `catalog`), with the overrides file read once."""
        known = catalog or shipped_catalog()
        overrides = OverridesFile(settings.overrides_file, known) if settings.overrides_file else None
        if overrides is not None:
            overrides.reload_if_changed()
        return cls(settings, known, overrides)

    @property
    def catalog_as_of(self) -> str:
        return self.catalog.as_of

    @property
    def catalog_source(self) -> str:
        return "gpucost catalog " + ",".join(self.catalog.files)

    def node_parts(self) -> NodePartsBook:
        """A whole-node price book over this book's settings, catalog and overrides file.

        It reads the overrides through this book, so a reloaded overrides file
        (SIGHUP, or the sampler's poll) prices the node's parts as it prices its GPUs.
        """
        return NodePartsBook(self.settings, self.catalog, self.current_overrides)

    def reload_overrides_if_changed(self) -> bool:
        """Poll the overrides file (one stat when unchanged); True when new prices took effect."""
        if self._overrides_file is None or not self._overrides_file.reload_if_changed():
            return False
        # A new dict rather than clear(): a sampler thread reading the old one is unaffected.
        self._cache = {}
        return True

    def quote(self, node: NodeInfo, device: GpuDevice, gpus_on_node: int) -> PriceQuote:
        """The hourly price of `device` on `node`; the same object for the same inputs until prices change."""
        labels = node.labels
        key: _CacheKey = (
            tuple(labels.get(label) for label in PRICE_RELEVANT_LABELS),
            device.model,
            device.mig_slices,
            device.parent_slices,
            gpus_on_node,
        )
        cache = self._cache
        cached = cache.get(key)
        if cached is not None:
            return cached
        quote = self._price_device(node, device, gpus_on_node)
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[key] = quote
        return quote

    def _price_device(self, node: NodeInfo, device: GpuDevice, gpus_on_node: int) -> PriceQuote:
        gpu_model = self.catalog.gpu_models.key_for(device.model)
        resolution = self._resolver.resolve(self._facts(node), gpu_model, gpus_on_node)
        quote = resolution.quote
        self._report_once(resolution)
        if device.price_fraction != 1.0 and quote.is_priced:
            quote = replace(
                quote,
                price_per_hour_usd=quote.price_per_hour_usd * device.price_fraction,
                detail=(
                    f"{quote.detail}; MIG {device.mig_profile or '?'} is "
                    f"{device.mig_slices}/{device.parent_slices} of the GPU"
                ),
            )
        return quote

    def _facts(self, node: NodeInfo, capacity: CapacityType | None = None) -> NodeFacts:
        labels = node.labels
        settings = self.settings
        instance_type = instance_type_from_labels(labels) or settings.instance_type
        cloud: Cloud | None = settings.cloud or cloud_from_instance_type(instance_type)
        return NodeFacts(
            cloud=cloud,
            region=region_from_labels(labels) or settings.region,
            instance_type=instance_type,
            capacity=capacity or capacity_type_from_labels(labels) or settings.capacity_type or "on_demand",
            price_label=labels.get(PRICE_OVERRIDE_LABEL),
        )

    def _report_once(self, resolution: Resolution) -> None:
        detail = resolution.quote.detail
        if resolution.rule not in ("unpriced", "gpu-model-reference") or detail in self._reported:
            return
        self._reported.add(detail)
        if resolution.rule == "unpriced":
            log.warning('GPU left unpriced (exported with pricing="unpriced"): %s', detail)
        else:
            log.info("GPU priced by model reference, a rough figure: %s", detail)

    def current_overrides(self) -> OverridePrices:
        """The overrides file's prices as last (re)loaded; the node parts book reads the same ones."""
        return self._overrides_file.prices if self._overrides_file is not None else OverridePrices()

    def explain(self, query: str) -> list[str]:
        """Human-readable lines for `gpucost price QUERY`: an instance type (`type@region`) or a GPU model."""
        name, _, region = query.strip().partition("@")
        name = name.strip()
        model_key = self.catalog.gpu_models.normalize(name)
        if model_key is not None or name in self.settings.gpu_models:
            lines = self._explain_model(model_key or name, name)
        else:
            lines = self._explain_instance_type(name, region.strip())
        lines.append(f"resolution order: {' > '.join(RESOLUTION_ORDER)}")
        return lines

    def _explain_model(self, model_key: str, asked: str) -> list[str]:
        lines = []
        model = self.catalog.gpu_models.get(model_key)
        if model is not None:
            alias = f" (from {asked!r})" if asked != model_key else ""
            lines.append(
                f"GPU model {model_key}{alias}: {model.memory_gib} GiB, {model.mig_slices} MIG slices"
            )
            if model.reference_usd_per_gpu_hour is not None:
                lines.append(
                    f"  reference price: {model.reference_usd_per_gpu_hour:.4f} USD per GPU-hour"
                    f" ({model.reference_basis}); source {model.source}; as_of {model.as_of}"
                )
        else:
            lines.append(f"GPU model {model_key}: not in the model table")
        types = sorted(
            entry.instance_type
            for entry in self.catalog.instance_types.values()
            if entry.gpu_model == model_key
        )
        if types:
            lines.append(f"  catalog instance types: {', '.join(types)}")
        facts = self._facts(NodeInfo())
        lines.extend(
            self._describe(f"a {model_key} GPU on this node", self._resolver.resolve(facts, model_key, 1))
        )
        return lines

    def _explain_instance_type(self, instance_type: str, region: str) -> list[str]:
        facts = self._facts(NodeInfo(labels={INSTANCE_TYPE_LABEL: instance_type}))
        entry = self.catalog.instance_type(facts.cloud, instance_type)
        cloud = facts.cloud or (entry.cloud if entry else None)
        if region:
            regions = [region]
        elif self.settings.region:
            regions = [self.settings.region]
        elif entry is not None:
            regions = sorted(entry.regions)
        else:
            regions = [""]
        lines = []
        if entry is not None:
            lines.append(f"{entry.instance_type} ({entry.cloud}): {entry.gpu_count} x {entry.gpu_model}")
        else:
            lines.append(f"{instance_type} ({cloud or 'unknown cloud'}): not in the catalog")
        gpu_model = entry.gpu_model if entry else ""
        gpus = entry.gpu_count if entry else 0
        for each_region in regions:
            labels = {INSTANCE_TYPE_LABEL: instance_type, REGION_LABEL: each_region}
            where = f"{instance_type}@{each_region or '?'}"
            on_demand = self._facts(NodeInfo(labels=labels), capacity="on_demand")
            lines.extend(self._describe(where, self._resolver.resolve(on_demand, gpu_model, gpus)))
            spot = self._facts(NodeInfo(labels=labels), capacity="spot")
            lines.extend(self._describe(f"{where} spot", self._resolver.resolve(spot, gpu_model, gpus)))
        return lines

    @staticmethod
    def _describe(what: str, resolution: Resolution) -> list[str]:
        quote = resolution.quote
        rank = f"rule {RESOLUTION_ORDER.index(resolution.rule) + 1} of {len(RESOLUTION_ORDER)}"
        if not quote.is_priced:
            return [f"{what}: unpriced ({quote.detail})", f"  won: unpriced ({rank})"]
        node = ""
        if resolution.node_usd_per_hour is not None:
            node = f", node {resolution.node_usd_per_hour:.4f} USD/h over {resolution.gpu_count} GPUs"
        return [
            f"{what}: {quote.price_per_hour_usd:.4f} USD per GPU-hour{node}, pricing {quote.pricing}",
            f"  won: {resolution.rule} ({rank}); source: {quote.source or '-'}; as_of: {quote.as_of or '-'}",
            f"  detail: {quote.detail}",
        ]
