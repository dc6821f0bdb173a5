"""AWS Cost Explorer as an `ActualCostSource`: yesterday's unblended cost grouped by the `team` tag.

Cost Explorer lags hours to a day and is for reconciliation only, never a live meter.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from gpucost.budgets.reconcile import ActualCosts
from gpucost.errors import SourceUnavailable

__all__ = ["CostExplorerSource", "parse_cost_and_usage"]


def parse_cost_and_usage(answer: dict[str, Any], tag_key: str, metric: str) -> ActualCosts:
    """`team$research` groups -> {"research": usd}; the `team$` group (untagged) maps to ""."""
    by_team: dict[str, float] = {}
    estimated = False
    for period in answer.get("ResultsByTime", []):
        estimated = estimated or bool(period.get("Estimated", False))
        for group in period.get("Groups", []):
            key = str(group["Keys"][0])
            team = key.split("$", 1)[1] if key.startswith(f"{tag_key}$") else key
            amount = float(group["Metrics"][metric]["Amount"])
            by_team[team] = by_team.get(team, 0.0) + amount
    return ActualCosts(by_team, estimated)


class CostExplorerSource:
    provider = "aws"

    def __init__(self, client: Any, tag_key: str = "team", metric: str = "UnblendedCost") -> None:
        self._client = client
        self._tag_key = tag_key
        self._metric = metric

    def actual_by_team(self, day: dt.date) -> ActualCosts:
        from botocore.exceptions import BotoCoreError, ClientError

        kwargs: dict[str, Any] = {
            "TimePeriod": {"Start": day.isoformat(), "End": (day + dt.timedelta(days=1)).isoformat()},
            "Granularity": "DAILY",
            "Metrics": [self._metric],
            "GroupBy": [{"Type": "TAG", "Key": self._tag_key}],
        }
        merged: dict[str, Any] = {"ResultsByTime": []}
        try:
            while True:
                answer = self._client.get_cost_and_usage(**kwargs)
                merged["ResultsByTime"].extend(answer.get("ResultsByTime", []))
                token = answer.get("NextPageToken")
                if not token:
                    break
                kwargs["NextPageToken"] = token
        except (ClientError, BotoCoreError) as err:
            raise SourceUnavailable(f"AWS Cost Explorer get_cost_and_usage failed: {err}") from err
        return parse_cost_and_usage(merged, self._tag_key, self._metric)
