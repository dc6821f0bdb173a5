"""AWS Cost Explorer in a moto server, answering GetCostAndUsage with one day's cost per tag value.

moto has no data behind Cost Explorer: its /moto-api/static/ce/cost-and-usage-results endpoint
queues the results the next GetCostAndUsage call returns.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from gpucost_testing.servers import start_moto_server

__all__ = ["cost_explorer_client"]


@contextmanager
def cost_explorer_client(workdir: Path, day: dt.date, unblended_usd: Mapping[str, str]) -> Iterator[Any]:
    """A boto3 Cost Explorer client (no retries) of a moto server whose next GetCostAndUsage answer is `day`,
    final, grouped by tag: `unblended_usd` maps a group key such as "team$research" to its USD amount."""
    with start_moto_server(workdir) as proc:
        groups = [{"Keys": [key], "Metrics": {"UnblendedCost": {"Amount": amount, "Unit": "USD"}}}
                  for key, amount in unblended_usd.items()]
        period = {"Start": day.isoformat(), "End": (day + dt.timedelta(days=1)).isoformat()}
        results = {"results": [{"ResultsByTime": [{"TimePeriod": period, "Total": {}, "Estimated": False,
                                                   "Groups": groups}]}]}
        request = urllib.request.Request(
            proc.base_url + "/moto-api/static/ce/cost-and-usage-results",
            data=json.dumps(results).encode(),
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(request, timeout=10).close()
        yield boto3.client(
            "ce",
            endpoint_url=proc.base_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )
