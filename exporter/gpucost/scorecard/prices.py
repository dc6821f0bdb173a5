"""What the price catalog says about alternatives: cheaper GPUs for right-sizing, spot prices."""

from __future__ import annotations

from gpucost.pricing.catalog import Catalog, Cloud
from gpucost.pricing.gpu_models import GpuModelTable
from gpucost.scorecard.levers import GpuCandidate

__all__ = ["MIG_PROFILES", "candidates_for", "spot_price_ratio"]

# Compute sevenths of the MIG profiles of a 7-slice GPU -> their share of its memory
# (1g.10gb, 2g.20gb, 3g.40gb, 4g.40gb on an A100-80GB).
MIG_PROFILES: dict[int, float] = {1: 1 / 8, 2: 2 / 8, 3: 4 / 8, 4: 4 / 8}


def candidates_for(gpu_model: str | None, table: GpuModelTable) -> list[GpuCandidate]:
    """Cheaper GPU models (by reference price) and MIG slices of `gpu_model` itself.

    Prices are compared on the model table's reference prices (one basis for
    every model), so the ratio does not depend on which cloud sold the node.
    """
    if gpu_model is None:
        return []
    current = table.get(gpu_model)
    if current is None or not current.reference_usd_per_gpu_hour:
        return []
    current_price = current.reference_usd_per_gpu_hour
    found: list[GpuCandidate] = []
    for key in table.keys:
        model = table.get(key)
        if model is None or model.key == current.key or not model.reference_usd_per_gpu_hour:
            continue
        ratio = model.reference_usd_per_gpu_hour / current_price
        if ratio < 1.0:
            found.append(GpuCandidate(model.key, float(model.memory_gib), ratio))
    if current.mig_slices >= 7:
        for slices, memory_share in MIG_PROFILES.items():
            fraction = slices / 7
            found.append(GpuCandidate(f"{current.key} MIG {slices}g", current.memory_gib * memory_share,
                                      fraction, compute_fraction=fraction))
    return found


def spot_price_ratio(catalog: Catalog, instance_type: str, region: str,
                     cloud: Cloud | None = None) -> tuple[float, bool] | None:
    """(spot / on-demand, True when from a listed spot price) for a type and region; None when unknown.

    Without a listed spot price the cloud's default discount applies (False).
    """
    entry = catalog.instance_type(cloud, instance_type) if instance_type else None
    if entry is None:
        return None
    price = entry.regions.get(region)
    if price is not None and price.spot_usd_per_hour is not None and price.on_demand_usd_per_hour > 0:
        return price.spot_usd_per_hour / price.on_demand_usd_per_hour, True
    discount = catalog.spot_discounts.get(entry.cloud)
    if discount is None:
        return None
    return 1.0 - discount.percent / 100.0, False
