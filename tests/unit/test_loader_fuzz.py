"""The parsers behind every file loader raise nothing but ConfigError / UserInputError.

They get documents that are valid ones with random parts replaced by random
values (non-string keys, dates, None, bools, 10**400, nan/inf, nested lists and
mappings).  The hostile bytes `load_yaml_file` refuses before any parser sees
them are in test_loader_hostile_yaml.py; the fuzzing's findings, kept as plain
regression tests, in test_loader_fuzz_findings.py.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from gpucost.alerting.teams import parse_budget_teams
from gpucost.budgets.spec import parse_budget_file
from gpucost.config import parse_config
from gpucost.errors import UserInputError
from gpucost.pricing.catalog import SHIPPED_CATALOG_DIR, parse_list_price
from gpucost.pricing.gpu_models import parse_gpu_model_table
from gpucost.pricing.overrides import parse_overrides
from gpucost.pricing.settings import parse_pricing_settings
from gpucost.sources.scenario import parse_scenario
from gpucost.sources.workload_labels import parse_workload_label_config

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"


_KEY_WORDS = sorted(
    {
        # config
        "sample_interval", "checkpoint_interval", "retention", "max_gap", "state_file", "nvml", "pricing",
        "workload_labels", "allocations", "kubernetes", "web", "log", "backend", "scenario", "speed",
        "listen_address", "telemetry_path", "config_file", "level", "format", "uuid", "namespace", "pod",
        "container", "share", "labels", "pod_uid", "enabled", "node_name", "replicas_per_gpu",
        "namespace_fallback", "annotation:team",
        # pricing
        "cloud", "region", "instance_type", "capacity_type", "gpu_share_of_node_price", "commitment", "kind",
        "discount_percent", "spot_discount_percent", "overrides_file", "allow_model_fallback",
        "instance_types", "gpu_models", "on_prem", "required_gpu_models", "on_demand_usd_per_hour",
        "gpu_model", "gpu_count", "spot_usd_per_hour", "purchase_price_usd", "amortization_months", "watts",
        "usd_per_kwh", "pue", "gpus_per_node", "source", "as_of", "prices", "generated_at", "models",
        "memory_gib", "mig_slices", "nvml_patterns", "reference_usd_per_gpu_hour", "reference_basis",
        # budgets
        "budgets", "fixed_costs", "anomaly_detection", "name", "scope", "team", "model", "monthly_usd",
        "thresholds_percent", "slack_channel", "owners", "start_month", "end_month", "monthly_overrides",
        "enforce", "hard_threshold_percent", "namespaces", "allocation", "monitor", "threshold_usd",
        "frequency", "subscribers",
        # scenario
        "node", "start_time", "duration", "gpus", "pods", "faults", "index", "memory", "minor_number",
        "timeline", "repeat_every", "sharing", "replicas", "mig", "parent_slices", "slices", "profile",
        "gpu_instance_id", "compute_instance_id", "at", "utilization", "memory_used", "power_watts", "ramp",
        "start", "end", "containers", "devices", "resource", "processes", "pid", "device", "from", "to",
        "message", "owner", "annotations", "idle_power_watts", "max_power_watts",
    }
)

_STRINGS = [
    "", " ", "1s", "500ms", "99999999999999999999999999999999999999999999999999999999999999h", "-1s",
    "GPU-0", "GPU-x::1", "GPU-x::99999999999999999999999", "MIG-1", "3g.40gb", "999999g.1gb", "80GiB",
    "1e999GiB", "9" * 400 + "GiB", "aws", "gcp", "onprem", "spot", "reserved", "A100-80GB", "2026-01",
    "0000-01", "9999-12", "2026-13", "2025-01-15", "2025-01-15T06:00:00", "2025-01-15T06:00:00Z",
    "#team-a", "a@b.co", "quota", "team:a", "nvml_error", "init_error", "linear", "time_slicing", "mps",
    "127.0.0.1:0", ":99999", "[::1]:80", "label:", "annotation:", "__x", "namespace", "(", "[", "é",
]
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([0, -1, 1, 7, 2**31, 2**63, 10**400, -(10**400)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, 5e-324, 0.5, 100.0]),
    st.sampled_from(_STRINGS),
    st.text(max_size=12),
    st.dates(min_value=dt.date(1, 1, 1)),
    st.datetimes(timezones=st.sampled_from([None, dt.UTC, dt.timezone(dt.timedelta(hours=-23))])),
    st.binary(max_size=4),
)
_KEYS = st.one_of(
    st.sampled_from(_KEY_WORDS),
    st.sampled_from(_STRINGS),
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([10**400, 1.5, math.inf]),
    st.dates(),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(_KEYS, children, max_size=4),
        st.dictionaries(st.sampled_from(_KEY_WORDS), children, max_size=4),
    ),
    max_leaves=12,
)


def _mutated(base: object, data: st.DataObject) -> object:
    """`base` with up to three random places replaced, removed or given an extra key."""
    document = copy.deepcopy(base)
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        holder: Any = None
        key: Any = None
        node: Any = document
        while isinstance(node, dict | list) and node and data.draw(st.booleans(), label="deeper"):
            holder = node
            key = data.draw(st.sampled_from(sorted(node, key=repr) if isinstance(node, dict) else range(len(node))))
            node = node[key]
        action = data.draw(st.sampled_from(["replace", "replace", "remove", "add"]), label="action")
        if holder is None:
            if action == "replace":
                document = data.draw(_VALUES, label="document")
            continue
        if action == "replace":
            holder[key] = data.draw(_VALUES, label="value")
        elif action == "remove" and isinstance(holder, dict):
            del holder[key]
        elif action == "remove":
            holder.pop(key)
        elif isinstance(node, dict):
            node[data.draw(_KEYS, label="new key")] = data.draw(_VALUES, label="new value")
        elif isinstance(node, list):
            node.append(data.draw(_VALUES, label="new item"))
    return document


def _yaml(path: Path) -> object:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


_CONFIG = {
    "sample_interval": "1s",
    "checkpoint_interval": "30s",
    "retention": "10m",
    "max_gap": 300,
    "state_file": "/tmp/state.json",
    "nvml": {"backend": "simulated", "scenario": "s.yaml", "speed": 2},
    "web": {"listen_address": "127.0.0.1:0", "telemetry_path": "/metrics"},
    "log": {"level": "info", "format": "json"},
    "pricing": {
        "cloud": "aws",
        "region": "us-east-1",
        "instance_type": "p4d.24xlarge",
        "capacity_type": "spot",
        "gpu_share_of_node_price": 0.9,
        "commitment": {"kind": "reserved", "discount_percent": 30},
        "spot_discount_percent": 60,
        "allow_model_fallback": False,
        "instance_types": {"my.type": {"on_demand_usd_per_hour": 10, "gpu_model": "A100-80GB", "gpu_count": 8}},
        "gpu_models": {"A100-80GB": 2.5, "NVIDIA B200": 6},
        "on_prem": {
            "purchase_price_usd": 250000,
            "amortization_months": 36,
            "watts": 6500,
            "usd_per_kwh": 0.12,
            "pue": 1.4,
            "overhead_usd_per_month": 800,
            "gpus_per_node": 8,
        },
        "required_gpu_models": ["A100-80GB"],
    },
    "workload_labels": {"namespace_fallback": True, "labels": {"team": ["team", "annotation:team"], "model": "m"}},
    "allocations": [{"uuid": "GPU-1", "namespace": "a", "pod": "b", "share": 0.5, "labels": {"team": "x"}}],
    "kubernetes": {
        "enabled": True,
        "node_name": "n",
        "pod_resources_interval": "10s",
        "max_staleness": "5m",
        "extra_resource_names": ["x.com/gpu"],
        "replicas_per_gpu": 4,
        "per_process": True,
    },
}

_BUDGETS = {
    **dict(_yaml(FIXTURES / "budgets" / "valid.yaml")),  # type: ignore[call-overload]
    "anomaly_detection": {"monitor": "team_tag", "threshold_usd": 100, "subscribers": ["a@b.co"]},
}


def _check(parse: Callable[[object], object], document: object) -> None:
    try:
        parse(document)
    except UserInputError as error:
        assert "\n" not in error.one_line()


_FUZZ = settings(max_examples=250, deadline=None)


def test_the_fuzz_bases_are_valid() -> None:
    parse_config(_CONFIG, "c.yaml")
    parse_budget_file(_BUDGETS, "b.yaml")
    for name in ("churn.yaml", "mig_and_timeslicing.yaml"):
        parse_scenario(_yaml(FIXTURES / "scenarios" / name), name)
    parse_overrides(_yaml(FIXTURES / "pricing" / "overrides_price_sync.yaml"), "o.yaml")
    assert parse_budget_teams(_BUDGETS, file="b.yaml")


@_FUZZ
@given(data=st.data())
def test_fuzz_parse_config(data: st.DataObject) -> None:
    _check(lambda document: parse_config(document, "c.yaml"), _mutated(_CONFIG, data))


@_FUZZ
@given(data=st.data())
def test_fuzz_pricing_settings(data: st.DataObject) -> None:
    _check(lambda document: parse_pricing_settings(document, "c.yaml"), _mutated(_CONFIG["pricing"], data))


@_FUZZ
@given(data=st.data())
def test_fuzz_workload_labels(data: st.DataObject) -> None:
    _check(lambda document: parse_workload_label_config(document, "c.yaml"), _mutated(_CONFIG["workload_labels"], data))


@_FUZZ
@given(data=st.data())
def test_fuzz_budget_file(data: st.DataObject) -> None:
    _check(lambda document: parse_budget_file(document, "b.yaml"), _mutated(_BUDGETS, data))


@_FUZZ
@given(data=st.data())
def test_fuzz_budget_teams(data: st.DataObject) -> None:
    _check(lambda document: parse_budget_teams(document, file="b.yaml"), _mutated(_BUDGETS, data))


_SCENARIOS = [_yaml(FIXTURES / "scenarios" / name) for name in ("churn.yaml", "mig_and_timeslicing.yaml")]


@_FUZZ
@given(data=st.data(), base=st.sampled_from(_SCENARIOS))
def test_fuzz_scenario(data: st.DataObject, base: object) -> None:
    _check(lambda document: parse_scenario(document, "s.yaml"), _mutated(base, data))


_OVERRIDES = _yaml(FIXTURES / "pricing" / "overrides_price_sync.yaml")


@_FUZZ
@given(data=st.data())
def test_fuzz_overrides(data: st.DataObject) -> None:
    _check(lambda document: parse_overrides(document, "o.yaml"), _mutated(_OVERRIDES, data))


_GPU_TABLE = _yaml(SHIPPED_CATALOG_DIR / "gpus.yaml")
_LIST_PRICE = {"on_demand_usd_per_hour": 32.77, "spot_usd_per_hour": 12.0, "source": "s", "as_of": "2026-01-01"}


@_FUZZ
@given(data=st.data())
def test_fuzz_catalog_parsers(data: st.DataObject) -> None:
    _check(lambda document: parse_gpu_model_table(document, "gpus.yaml"), _mutated(_GPU_TABLE, data))
    _check(lambda document: parse_list_price(document, "aws.yaml", "p"), _mutated(_LIST_PRICE, data))


@_FUZZ
@given(document=_VALUES)
def test_fuzz_every_parser_with_arbitrary_documents(document: object) -> None:
    parsers: list[Callable[[object], object]] = [
        lambda d: parse_config(d, "c.yaml"),
        lambda d: parse_pricing_settings(d, "c.yaml"),
        lambda d: parse_workload_label_config(d, "c.yaml"),
        lambda d: parse_budget_file(d, "b.yaml"),
        lambda d: parse_budget_teams(d, file="b.yaml"),
        lambda d: parse_scenario(d, "s.yaml"),
        lambda d: parse_overrides(d, "o.yaml"),
        lambda d: parse_gpu_model_table(d, "gpus.yaml"),
    ]
    for parse in parsers:
        _check(parse, document)
