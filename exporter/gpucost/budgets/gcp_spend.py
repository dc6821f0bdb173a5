"""GCP budget spend from Cloud Billing's Pub/Sub budget notifications (push subscription payloads).

The Budget API returns no spend.  Cloud Billing publishes, several times a day,
a JSON message per budget with `costAmount` and `budgetAmount` to the budget's
Pub/Sub topic; a push subscription delivers it to the sidecar's
`/gcp/budget-notifications`.  `parse_push` is pure; the HTTP server stores the result.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from gpucost.budgets.gcp_budgets import GCP_BUDGET_PREFIX
from gpucost.errors import UserInputError

__all__ = ["GcpBudgetNotification", "parse_push"]


@dataclass(frozen=True, slots=True)
class GcpBudgetNotification:
    display_name: str
    cost_usd: float
    budget_usd: float
    cost_interval_start: str

    @property
    def gpucost_name(self) -> str:
        return self.display_name.removeprefix(GCP_BUDGET_PREFIX)


def parse_push(body: bytes) -> GcpBudgetNotification:
    """A Pub/Sub push envelope ({"message": {"data": base64 JSON, ...}}) -> the budget notification."""
    try:
        envelope = json.loads(body)
        data = base64.b64decode(envelope["message"]["data"], validate=True)
        payload = json.loads(data)
        currency = str(payload.get("currencyCode", "USD"))
        if currency != "USD":
            raise UserInputError(
                "pubsub", "message.data.currencyCode", currency, "only USD budgets are supported"
            )
        return GcpBudgetNotification(
            display_name=str(payload["budgetDisplayName"]),
            cost_usd=float(payload["costAmount"]),
            budget_usd=float(payload["budgetAmount"]),
            cost_interval_start=str(payload.get("costIntervalStart", "")),
        )
    except (ValueError, KeyError, TypeError, binascii.Error) as err:
        raise UserInputError(
            "pubsub", "message.data", body[:80], f"not a budget notification ({err})"
        ) from err
