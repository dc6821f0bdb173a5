"""Every file loader survives hostile bytes: one ConfigError naming the file, never another exception.

`load_yaml_file` gets hostile bytes and text (not UTF-8, alias bombs, deep
nesting, huge numbers, impossible dates) and must turn every one into a
ConfigError, quickly; every file loader reads through it.  The parsers behind
it are fuzzed in test_loader_fuzz.py.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpucost.alerting.teams import read_budget_teams
from gpucost.budgets.price_sync import run_price_sync
from gpucost.budgets.prices_file import PriceEntry
from gpucost.budgets.spec import load_budget_file
from gpucost.budgets.state import SidecarState
from gpucost.config import load_config_file
from gpucost.errors import ConfigError
from gpucost.pricing.catalog import SHIPPED_CATALOG_DIR, load_catalog
from gpucost.pricing.overrides import OverridesFile, parse_overrides
from gpucost.sources.scenario import load_scenario
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
