"""Every file loader survives hostile input: one ConfigError naming the file, never another exception.

Two layers are fuzzed.  `load_yaml_file` gets hostile bytes and text (not
UTF-8, alias bombs, deep nesting, huge numbers, impossible dates) and must turn
every one into a ConfigError, quickly.  The parsers behind it get documents
that are valid ones with random parts replaced by random values (non-string
keys, dates, None, bools, 10**400, nan/inf, nested lists and mappings) and may
raise nothing but ConfigError / UserInputError.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpucost.alerting.teams import parse_budget_teams, read_budget_teams
from gpucost.budgets.price_sync import run_price_sync
from gpucost.budgets.prices_file import PriceEntry
from gpucost.budgets.spec import load_budget_file, parse_budget_file
from gpucost.budgets.state import SidecarState
from gpucost.config import load_config_file, parse_config
from gpucost.errors import ConfigError, UserInputError
from gpucost.pricing.catalog import SHIPPED_CATALOG_DIR, load_catalog, parse_list_price
from gpucost.pricing.gpu_models import parse_gpu_model_table
from gpucost.pricing.overrides import OverridesFile, parse_overrides
from gpucost.pricing.settings import parse_pricing_settings
from gpucost.sources.scenario import load_scenario, parse_scenario
from gpucost.sources.workload_labels import parse_workload_label_config
from gpucost.yamlfields import MAX_YAML_FILE_BYTES, load_yaml_file

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"

NOT_UTF8 = b"\xff\xfe" + "budgets: []\n".encode("utf-16-le")
DEEP_NESTING = b"[" * 100_000
HUGE_NUMBER = b"value: " + str(10**400).encode() + b"\n"
# Nine levels of nine aliases: a few hundred bytes that expand to 9**9 (~387 million) nodes.
ALIAS_BOMB = (
    "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    + "".join(
        f"{chr(ord('b') + level)}: &{chr(ord('b') + level)} [{', '.join(['*' + chr(ord('a') + level)] * 9)}]\n"
        for level in range(8)
    )
).encode()


def _write(tmp_path: Path, content: bytes, name: str = "input.yaml") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def _load_error(path: Path) -> ConfigError:
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        load_yaml_file(path)
    assert time.monotonic() - started < 5, "a hostile file must be refused quickly"
    assert str(path) in caught.value.one_line()
    assert "\n" not in caught.value.one_line()
    return caught.value


# --------------------------------------------------------------------------
# load_yaml_file: the one place hostile bytes are turned into ConfigErrors
# --------------------------------------------------------------------------


def test_not_utf8_names_the_byte_offset(tmp_path: Path) -> None:
    error = _load_error(_write(tmp_path, NOT_UTF8))
    assert "not UTF-8 text at byte 0" in error.one_line()


def test_not_utf8_in_the_middle_names_its_offset(tmp_path: Path) -> None:
    error = _load_error(_write(tmp_path, b"budgets:\n  - name: caf\xe9\n"))
    assert "not UTF-8 text at byte 22" in error.one_line()


def test_a_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    assert load_yaml_file(_write(tmp_path, b"\xef\xbb\xbfa: 1\n")) == {"a": 1}


def test_deep_nesting_is_refused(tmp_path: Path) -> None:
    error = _load_error(_write(tmp_path, DEEP_NESTING))
    assert "nested too deeply" in error.one_line()


def test_deep_block_nesting_is_refused(tmp_path: Path) -> None:
    text = "".join(" " * depth + f"k{depth}:\n" for depth in range(2000)).encode()
    assert "nested too deeply" in _load_error(_write(tmp_path, text)).one_line()


def test_moderate_nesting_still_loads(tmp_path: Path) -> None:
    assert load_yaml_file(_write(tmp_path, b"[" * 40 + b"1" + b"]" * 40)) is not None


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    error = _load_error(_write(tmp_path, ALIAS_BOMB))
    assert "alias" in error.one_line()


def test_a_few_aliases_still_load(tmp_path: Path) -> None:
    text = b"base: &base {region: us-east-1}\nfirst: *base\nsecond: {<<: *base, zone: b}\n"
    assert load_yaml_file(_write(tmp_path, text)) == {
        "base": {"region": "us-east-1"},
        "first": {"region": "us-east-1"},
        "second": {"region": "us-east-1", "zone": "b"},
    }


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    assert "alias" in _load_error(_write(tmp_path, b"a: &a [1, *a]\n")).one_line()


def test_file_over_the_size_cap_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, b"#" * (MAX_YAML_FILE_BYTES + 1))
    assert "larger than" in _load_error(path).one_line()


def test_huge_decimal_number_loads_for_the_parser_to_judge(tmp_path: Path) -> None:
    assert load_yaml_file(_write(tmp_path, HUGE_NUMBER)) == {"value": 10**400}


@pytest.mark.parametrize(
    "text",
    [
        b"value: " + b"9" * 5000 + b"\n",  # more digits than Python converts
        b"value: 0x" + b"f" * 5000 + b"\n",  # hex is not limited by Python but cannot be printed
        b"value: " + b"1:" * 3000 + b"1\n",  # base 60
    ],
    ids=["decimal", "hex", "sexagesimal"],
)
def test_integers_too_long_to_handle_are_refused(tmp_path: Path, text: bytes) -> None:
    assert "line 1" in _load_error(_write(tmp_path, text)).one_line()


@pytest.mark.parametrize(
    "text",
    [
        b"as_of: 2025-13-45\n",
        b"as_of: 2025-01-01T00:00:00+99:00\n",
        b"value: !!float abc\n",
        b"value: !!int abc\n",
        b"value: !!timestamp abc\n",
        b"value: !!binary 'a'\n",
        b"? [a, b]\n: 1\n",
        b"{a: 1, <<: 5}\n",
        b"--- 1\n--- 2\n",
        b"a: \x00\n",
        b"a: *undefined\n",
    ],
)
def test_values_yaml_cannot_build_are_a_config_error_with_the_line(tmp_path: Path, text: bytes) -> None:
    _load_error(_write(tmp_path, text))


def test_a_directory_is_a_config_error(tmp_path: Path) -> None:
    assert "cannot read" in _load_error(tmp_path).one_line()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=300))
def test_random_bytes_load_or_raise_config_error(tmp_path: Path, content: bytes) -> None:
    path = _write(tmp_path, content)
    try:
        load_yaml_file(path)
    except ConfigError as error:
        assert str(path) in error.one_line()


_YAML_ALPHABET = st.sampled_from([*"[]{}:,-?!&*|>'\"#%@` \n\t\\abc019.xe+", "<<", "!!", "&a ", "*a", "---"])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pieces=st.lists(_YAML_ALPHABET, max_size=60))
def test_random_yaml_punctuation_loads_or_raises_config_error(tmp_path: Path, pieces: list[str]) -> None:
    path = _write(tmp_path, "".join(pieces).encode())
    try:
        load_yaml_file(path)
    except ConfigError as error:
        assert str(path) in error.one_line()


# --------------------------------------------------------------------------
# Every loader reads through load_yaml_file
# --------------------------------------------------------------------------

_FILE_LOADERS: dict[str, Callable[[Path], object]] = {
    "config": lambda path: load_config_file(str(path)),
    "budgets": load_budget_file,
    "scenario": load_scenario,
    "teams": read_budget_teams,
}


@pytest.mark.parametrize("loader", sorted(_FILE_LOADERS))
@pytest.mark.parametrize(
    "content",
    [NOT_UTF8, DEEP_NESTING, ALIAS_BOMB, HUGE_NUMBER, b"\x00\x01\x02garbage\xc3"],
    ids=["not_utf8", "deep", "alias_bomb", "huge_number", "binary"],
)
def test_every_file_loader_raises_one_config_error_naming_the_file(
    tmp_path: Path, loader: str, content: bytes
) -> None:
    path = _write(tmp_path, content)
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        _FILE_LOADERS[loader](path)
    assert time.monotonic() - started < 5
    assert str(path) in caught.value.one_line()


def test_non_utf8_scenario_named_by_a_config_is_a_config_error(tmp_path: Path) -> None:
    scenario = _write(tmp_path, NOT_UTF8, "scenario.yaml")
    config = load_config_file(str(_write(tmp_path, f"nvml: {{scenario: {scenario}}}\n".encode(), "c.yaml")))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_scenario(config.scenario_file)


def test_non_utf8_overrides_file_keeps_the_last_good_prices(tmp_path: Path) -> None:
    path = _write(tmp_path, (FIXTURES / "pricing" / "overrides_price_sync.yaml").read_bytes(), "prices.yaml")
    overrides = OverridesFile(path)
    assert overrides.reload_if_changed()
    good = overrides.prices
    path.write_bytes(NOT_UTF8 + b"# changed size")
    assert not overrides.reload_if_changed()
    assert overrides.prices is good
    assert overrides.last_error is not None and "not UTF-8" in overrides.last_error.one_line()


def test_catalog_directory_with_a_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    for name in ("gpus.yaml", "aws.yaml"):
        (tmp_path / name).write_bytes((SHIPPED_CATALOG_DIR / name).read_bytes())
    (tmp_path / "gcp.yaml").write_bytes(NOT_UTF8)
    with pytest.raises(ConfigError, match=r"gcp\.yaml: not UTF-8"):
        load_catalog(tmp_path)


@pytest.mark.parametrize("content", [NOT_UTF8, ALIAS_BOMB, DEEP_NESTING, b"prices: [{cloud: aws, as_of: 1e400}]"])
def test_price_sync_rewrites_an_unreadable_overrides_file(tmp_path: Path, content: bytes) -> None:
    path = _write(tmp_path, content, "overrides.yaml")
    fresh = PriceEntry(
        cloud="aws",
        region="us-east-1",
        instance_type="p4d.24xlarge",
        on_demand_usd_per_hour=21.96,
        source="test",
        as_of=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    )
    entries = run_price_sync(path, {"aws": lambda: [fresh]}, SidecarState(), dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
    assert entries == [fresh]
    assert parse_overrides(load_yaml_file(path), str(path)).get("aws", "us-east-1", "p4d.24xlarge") is not None


def test_price_sync_skips_previous_entries_with_out_of_range_numbers(tmp_path: Path) -> None:
    document = {
        "prices": [
            {
                "cloud": "gcp",
                "region": "r",
                "instance_type": "t",
                "on_demand_usd_per_hour": 10**400,
                "source": "s",
                "as_of": "2026-01-01T00:00:00Z",
            }
        ]
    }
    path = _write(tmp_path, yaml.safe_dump(document).encode(), "overrides.yaml")
    entries = run_price_sync(path, {}, SidecarState(), dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
    assert entries == []


# --------------------------------------------------------------------------
# The parsers: valid documents with random parts replaced
# --------------------------------------------------------------------------

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


# --------------------------------------------------------------------------
# Specific findings of the fuzzing, kept as plain regression tests
# --------------------------------------------------------------------------


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
