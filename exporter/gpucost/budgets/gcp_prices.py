"""GCP GPU prices from the Cloud Billing Catalog API (Compute Engine SKUs).

GCP bills GPUs per GPU-hour as separate SKUs ("Nvidia Tesla A100 GPU running in
Americas"); the price of an accelerator-optimized machine type's GPUs is
gpu_count x that SKU.  The vCPU and memory part of the machine is not included
(the exporter prices GPUs).  `parse_sku_price` is pure.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gpucost.budgets.gcp_budgets import gcp_call_errors, gcp_rest_client_options
from gpucost.budgets.prices_file import PriceEntry
from gpucost.errors import SourceUnavailable

__all__ = [
    "COMPUTE_ENGINE_SERVICE",
    "GCP_GPU_SKUS",
    "GCP_MACHINE_TYPES",
    "GcpPriceSource",
    "SkuPrice",
    "make_catalog_client",
    "parse_sku_price",
]

COMPUTE_ENGINE_SERVICE = "services/6F81-5844-456A"

# GPU model key -> pattern of its SKU description.
GCP_GPU_SKUS: Mapping[str, re.Pattern[str]] = {
    "A100-40GB": re.compile(r"^Nvidia Tesla A100 GPU\b"),
    "A100-80GB": re.compile(r"^Nvidia Tesla A100 80GB GPU\b"),
    "H100-80GB": re.compile(r"^Nvidia H100 80GB GPU\b"),
    "L4": re.compile(r"^Nvidia L4 GPU\b"),
    "T4": re.compile(r"^Nvidia Tesla T4 GPU\b"),
}

_PREEMPTIBLE_PREFIX = re.compile(r"^(Spot )?Preemptible ")

# Machine type -> (GPU model, GPUs per machine).
GCP_MACHINE_TYPES: Mapping[str, tuple[str, int]] = {
    "a2-highgpu-1g": ("A100-40GB", 1),
    "a2-highgpu-8g": ("A100-40GB", 8),
    "a2-ultragpu-1g": ("A100-80GB", 1),
    "a2-ultragpu-8g": ("A100-80GB", 8),
    "a3-highgpu-8g": ("H100-80GB", 8),
    "g2-standard-4": ("L4", 1),
    "g2-standard-96": ("L4", 8),
}


@dataclass(frozen=True, slots=True)
class SkuPrice:
    gpu_model: str
    spot: bool
    usd_per_gpu_hour: float


def make_catalog_client(
    api_endpoint: str | None = None, anonymous: bool = False, credentials: Any = None
) -> Any:
    from google.cloud import billing_v1

    return billing_v1.CloudCatalogClient(**gcp_rest_client_options(api_endpoint, anonymous, credentials))


def parse_sku_price(sku: Any, region: str) -> SkuPrice | None:
    """A GPU SKU offered in `region` -> its USD per GPU-hour; None for any other SKU."""
    if region not in list(sku.service_regions) or sku.category.resource_group != "GPU":
        return None
    usage_type = str(sku.category.usage_type)
    if usage_type not in ("OnDemand", "Preemptible"):
        return None
    # Spot GPU SKUs read "Spot Preemptible Nvidia L4 GPU running in Americas" (older ones "Preemptible ...").
    description = _PREEMPTIBLE_PREFIX.sub("", str(sku.description))
    model = next((key for key, pattern in GCP_GPU_SKUS.items() if pattern.match(description)), None)
    if model is None or not sku.pricing_info:
        return None
    expression = sku.pricing_info[0].pricing_expression
    if expression.usage_unit != "h" or not expression.tiered_rates:
        return None
    money = expression.tiered_rates[-1].unit_price
    if money.currency_code and money.currency_code != "USD":
        return None
    return SkuPrice(model, usage_type == "Preemptible", float(money.units) + float(money.nanos) / 1e9)


class GcpPriceSource:
    def __init__(
        self, client: Any, region: str, *, clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    ) -> None:
        self._client = client
        self._region = region
        self._clock = clock

    def gpu_prices(self) -> dict[tuple[str, bool], float]:
        prices: dict[tuple[str, bool], float] = {}
        try:
            # currency_code is not a flattened argument of list_skus: it goes in the request.
            request = {"parent": COMPUTE_ENGINE_SERVICE, "currency_code": "USD"}
            for sku in self._client.list_skus(request=request):
                parsed = parse_sku_price(sku, self._region)
                if parsed is not None:
                    prices[(parsed.gpu_model, parsed.spot)] = parsed.usd_per_gpu_hour
        except gcp_call_errors() as err:
            raise SourceUnavailable(f"GCP Cloud Catalog list_skus failed: {err}") from err
        return prices

    def entries(self) -> list[PriceEntry]:
        now = self._clock()
        prices = self.gpu_prices()
        entries: list[PriceEntry] = []
        for machine_type, (model, count) in sorted(GCP_MACHINE_TYPES.items()):
            on_demand = prices.get((model, False))
            if on_demand is None:
                continue
            spot = prices.get((model, True))
            entries.append(
                PriceEntry(
                    cloud="gcp",
                    region=self._region,
                    instance_type=machine_type,
                    on_demand_usd_per_hour=on_demand * count,
                    spot_usd_per_hour=spot * count if spot is not None else None,
                    gpu_model=model,
                    gpu_count=count,
                    source=f"gcp-cloud-catalog:{COMPUTE_ENGINE_SERVICE}",
                    as_of=now,
                )
            )
        return entries
