"""On-prem total cost of ownership of a GPU node, as an hourly price.

hourly node cost = (purchase_price_usd / amortization_months + overhead_usd_per_month) / HOURS_PER_MONTH
                   + watts / 1000 * usd_per_kwh * pue

The purchase is spread evenly over the amortization period; power is the
node's average draw at the wall, scaled by the data centre's PUE to include
cooling; overhead covers rack space, support contracts and staff time.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HOURS_PER_MONTH", "OnPremCost"]

# 8760 hours a year / 12: the average month, so twelve months cost exactly a year.
HOURS_PER_MONTH = 730.0


@dataclass(frozen=True, slots=True)
class OnPremCost:
    purchase_price_usd: float
    amortization_months: int
    watts: float
    usd_per_kwh: float
    pue: float = 1.0
    overhead_usd_per_month: float = 0.0
    gpus_per_node: int | None = None

    @property
    def node_usd_per_hour(self) -> float:
        monthly = self.purchase_price_usd / self.amortization_months + self.overhead_usd_per_month
        energy = self.watts / 1000.0 * self.usd_per_kwh * self.pue
        return monthly / HOURS_PER_MONTH + energy

    def describe(self) -> str:
        return (
            f"on-prem TCO: {self.purchase_price_usd:g} USD over {self.amortization_months} months"
            f" + {self.overhead_usd_per_month:g} USD/month + {self.watts:g} W x {self.usd_per_kwh:g} USD/kWh"
            f" x PUE {self.pue:g}"
        )
