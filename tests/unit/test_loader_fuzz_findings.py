"""What fuzzing the parsers found (test_loader_fuzz.py), kept as plain regression tests:
each out-of-range or malformed value is one ConfigError naming its field.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import pytest

from gpucost.alerting.teams import parse_budget_teams
from gpucost.budgets.spec import parse_budget_file
from gpucost.config import parse_config
from gpucost.errors import ConfigError
from gpucost.pricing.settings import parse_pricing_settings
from gpucost.sources.scenario import parse_scenario
from gpucost.sources.workload_labels import parse_workload_label_config


def _budgets(**changes: object) -> dict[str, object]:
    return {"budgets": [{"name": "a", "scope": {"team": "t"}, "monthly_usd": 1, **changes}]}


@pytest.mark.parametrize(
    ("parse", "document", "fragment"),
    [
        (lambda d: parse_config(d, "c.yaml"), {"sample_interval": 10**400}, "sample_interval"),
        (lambda d: parse_config(d, "c.yaml"), {"retention": "9" * 400 + "h"}, "retention"),
        (lambda d: parse_config(d, "c.yaml"), {"max_gap": math.inf}, "max_gap"),
        (lambda d: parse_config(d, "c.yaml"), {"nvml": {"speed": 10**400}}, "nvml.speed"),
        (lambda d: parse_pricing_settings(d, "c.yaml"), {"gpu_models": {"A100-80GB": 10**400}}, "A100-80GB"),
        (lambda d: parse_workload_label_config(d, "c.yaml"), {1: "x"}, "workload_labels.1"),
        (lambda d: parse_budget_file(d, "b.yaml"), _budgets(monthly_usd=10**400), "monthly_usd"),
        (lambda d: parse_budget_file(d, "b.yaml"), _budgets(start_month="0000-01"), "start_month"),
        (lambda d: parse_budget_file(d, "b.yaml"), _budgets(name="a\n"), "name"),
        (
            lambda d: parse_budget_teams(d, file="b.yaml"),
            {"budgets": [{"name": "a", "scope": {"team": "t\n"}, "monthly_usd": 1}]},
            "scope.team",
        ),
    ],
)
def test_fuzz_findings_are_config_errors(parse: Callable[[object], object], document: object, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(document)
    assert fragment in caught.value.one_line()


def _scenario(**changes: object) -> dict[str, Any]:
    document: dict[str, Any] = {
        "node": {"name": "n"},
        "gpus": [{"uuid": "GPU-0", "index": 0, "model": "A100", "memory": "80GiB"}],
        "pods": [
            {
                "namespace": "a",
                "name": "p",
                "uid": "u",
                "start": 0,
                "end": 1,
                "repeat_every": 2,
                "containers": [{"name": "c", "devices": ["GPU-0"]}],
            }
        ],
    }
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node: Any = document
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[last] = value
    return document


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"duration": 10**400}, "duration"),
        ({"duration": math.inf}, "duration"),
        ({"duration": 1e12}, "pods[0].repeat_every"),
        ({"pods__0__end": 10**400}, "pods[0].end"),
        ({"gpus__0__memory": "1e999GiB"}, "gpus[0].memory"),
        ({"gpus__0__memory": "9" * 400 + "GiB"}, "gpus[0].memory"),
        ({"gpus__0__memory": 10**400}, "gpus[0].memory"),
        ({"gpus__0__index": 10**400}, "gpus[0].index"),
        ({"start_time": math.inf}, "start_time"),
    ],
)
def test_scenario_numbers_out_of_range_are_config_errors(changes: dict[str, object], fragment: str) -> None:
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        parse_scenario(_scenario(**changes), "s.yaml")
    assert time.monotonic() - started < 5
    assert fragment in caught.value.one_line()
