"""AWS GPU instance prices: on-demand from the Pricing API, spot from EC2 spot price history.

`parse_price_list_item` is pure (one PriceList JSON string -> instance type,
GPU count, USD/h); `AwsPriceSource` pages `get_products` for the
`GPU instance` family in one region and averages spot prices over a window.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gpucost.budgets.prices_file import PriceEntry
from gpucost.errors import SourceUnavailable

__all__ = ["AWS_GPU_MODELS", "AwsPriceSource", "OnDemandPrice", "parse_price_list_item"]

# Instance family -> GPU model key of the exporter's catalog; the Pricing API only gives a GPU count.
AWS_GPU_MODELS: Mapping[str, str] = {
    "p3": "V100-16GB",
    "p3dn": "V100-32GB",
    "p4d": "A100-40GB",
    "p4de": "A100-80GB",
    "p5": "H100-80GB",
    "p5e": "H200-141GB",
    "p5en": "H200-141GB",
    "g4dn": "T4",
    "g5": "A10G",
    "g6": "L4",
    "g6e": "L40S",
}


@dataclass(frozen=True, slots=True)
class OnDemandPrice:
    instance_type: str
    region: str
    usd_per_hour: float
    gpu_count: int | None


def parse_price_list_item(item: str) -> OnDemandPrice | None:
    """One PriceList entry; None when it has no hourly USD on-demand price (e.g. a reservation product)."""
    document = json.loads(item)
    attributes = document.get("product", {}).get("attributes", {})
    instance_type = str(attributes.get("instanceType", ""))
    if not instance_type:
        return None
    for term in document.get("terms", {}).get("OnDemand", {}).values():
        for dimension in term.get("priceDimensions", {}).values():
            price = dimension.get("pricePerUnit", {}).get("USD")
            if dimension.get("unit") == "Hrs" and price is not None and float(price) > 0:
                gpus = str(attributes.get("gpu", ""))
                return OnDemandPrice(
                    instance_type=instance_type,
                    region=str(attributes.get("regionCode", "")),
                    usd_per_hour=float(price),
                    gpu_count=int(gpus) if gpus.isdigit() else None,
                )
    return None


class AwsPriceSource:
    def __init__(
        self,
        pricing_client: Any,
        ec2_client: Any | None,
        region: str,
        *,
        spot_window: dt.timedelta = dt.timedelta(days=7),
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._pricing = pricing_client
        self._ec2 = ec2_client
        self._region = region
        self._spot_window = spot_window
        self._clock = clock

    def on_demand(self) -> dict[str, OnDemandPrice]:
        filters = [
            {"Type": "TERM_MATCH", "Field": "instanceFamily", "Value": "GPU instance"},
            {"Type": "TERM_MATCH", "Field": "regionCode", "Value": self._region},
            {"Type": "TERM_MATCH", "Field": "operatingSystem", "Value": "Linux"},
            {"Type": "TERM_MATCH", "Field": "tenancy", "Value": "Shared"},
            {"Type": "TERM_MATCH", "Field": "preInstalledSw", "Value": "NA"},
            {"Type": "TERM_MATCH", "Field": "capacitystatus", "Value": "Used"},
        ]
        prices: dict[str, OnDemandPrice] = {}
        kwargs: dict[str, Any] = {"ServiceCode": "AmazonEC2", "Filters": filters, "MaxResults": 100}
        while True:
            answer = self._call(self._pricing, "get_products", **kwargs)
            for item in answer.get("PriceList", []):
                parsed = parse_price_list_item(item)
                if parsed is not None and parsed.region in ("", self._region):
                    prices[parsed.instance_type] = parsed
            token = answer.get("NextToken")
            if not token:
                return prices
            kwargs["NextToken"] = token

    def spot_averages(self, instance_types: list[str]) -> dict[str, float]:
        """Mean spot price per instance type over the window, across availability zones."""
        if self._ec2 is None or not instance_types:
            return {}
        samples: dict[str, list[float]] = {}
        kwargs: dict[str, Any] = {
            "InstanceTypes": instance_types,
            "ProductDescriptions": ["Linux/UNIX"],
            "StartTime": self._clock() - self._spot_window,
            "EndTime": self._clock(),
        }
        while True:
            answer = self._call(self._ec2, "describe_spot_price_history", **kwargs)
            for point in answer.get("SpotPriceHistory", []):
                samples.setdefault(str(point["InstanceType"]), []).append(float(point["SpotPrice"]))
            token = answer.get("NextToken")
            if not token:
                break
            kwargs["NextToken"] = token
        return {instance_type: statistics.fmean(values) for instance_type, values in samples.items()}

    def entries(self) -> list[PriceEntry]:
        now = self._clock()
        on_demand = self.on_demand()
        spot = self.spot_averages(sorted(on_demand))
        entries: list[PriceEntry] = []
        for instance_type, price in sorted(on_demand.items()):
            family = instance_type.split(".", 1)[0]
            entries.append(
                PriceEntry(
                    cloud="aws",
                    region=self._region,
                    instance_type=instance_type,
                    on_demand_usd_per_hour=price.usd_per_hour,
                    spot_usd_per_hour=spot.get(instance_type),
                    gpu_model=AWS_GPU_MODELS.get(family, ""),
                    gpu_count=price.gpu_count,
                    source="aws-pricing-api:AmazonEC2",
                    as_of=now,
                )
            )
        return entries

    @staticmethod
    def _call(client: Any, operation: str, **kwargs: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer: dict[str, Any] = getattr(client, operation)(**kwargs)
        except (ClientError, BotoCoreError) as err:
            raise SourceUnavailable(f"AWS {operation} failed: {err}") from err
        return answer
