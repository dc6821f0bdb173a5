"""One duration grammar for every caller, each caller keeping its own error wording.

The tables list every form the callers' old parsers accepted or rejected (config
and exporter flags: `durations.parse_duration`; the rule generator's options:
`rulegen.duration_seconds`; the budgets sidecar's flags: `budgets.cli.parse_duration`).
Rows marked "bug" are the only ones whose outcome changed when the parsers became one.
"""

from __future__ import annotations

import datetime as dt
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpucost.budgets.cli import parse_duration as budgets_flag_duration
from gpucost.cli.exporter import main as exporter_main
from gpucost.config import parse_config
from gpucost.durations import DurationError, format_duration, parse_duration, parse_simple_duration
from gpucost.errors import ConfigError, UserInputError
from gpucost.rulegen import RuleOptions, duration_seconds

# --- config files, exporter flags and the benches: the full Prometheus-style grammar ---------

FLEXIBLE_ACCEPTED: list[tuple[str | int | float, float]] = [
    ("30s", 30.0),
    ("5m", 300.0),
    ("1h", 3600.0),
    ("1d", 86400.0),
    ("1w", 604800.0),
    ("500ms", 0.5),
    ("1h30m", 5400.0),
    ("1w2d3h4m5s6ms", 604800 + 2 * 86400 + 3 * 3600 + 4 * 60 + 5 + 0.006),
    ("30m1h", 5400.0),  # any order, like the old parser
    ("1s1s", 2.0),  # a unit twice adds up
    ("1.5h", 5400.0),
    ("0.1s0.2s", 0.3),  # bug: the float sum gave 0.30000000000000004
    ("0s", 0.0),
    ("007s", 7.0),
    (" 10s ", 10.0),  # surrounding whitespace is ignored
    ("5m\n", 300.0),
    (10, 10.0),  # YAML numbers are seconds
    (2.5, 2.5),
    (0, 0.0),
]

FLEXIBLE_REJECTED: list[str | int | float] = [
    "",
    "   ",
    "30",  # a bare number in a string has no unit
    "5x",
    "5M",
    "1y",
    "-1s",
    "+1s",
    "1.s",
    ".5s",
    "1 h",
    "1h 30m",
    "h",
    "ms",
    "1h-",
    "١s",  # bug: an Arabic-Indic digit was read as 1
    True,
    -1,
    -0.5,
    math.nan,  # bug: returned nan, which compares false with every bound
]


@pytest.mark.parametrize(("text", "seconds"), FLEXIBLE_ACCEPTED)
def test_flexible_duration_accepts(text: str | int | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", FLEXIBLE_REJECTED)
def test_flexible_duration_rejects(text: str | int | float) -> None:
    with pytest.raises(DurationError):
        parse_duration(text)


def test_flexible_duration_says_how_to_write_one() -> None:
    with pytest.raises(DurationError, match=r"^not a duration: '5x' \(use e.g. 500ms, 10s, 5m, 1h\)$"):
        parse_duration("5x")


@pytest.mark.parametrize("digits", [400, 10**6])
def test_a_string_too_long_for_a_float_is_infinite_for_the_caller_to_bound(digits: int) -> None:
    assert parse_duration("9" * digits + "h") == math.inf
    assert parse_duration("0." + "0" * digits + "1s") == 0.0


@pytest.mark.parametrize(("text", "seconds"), [(t, s) for t, s in FLEXIBLE_ACCEPTED if isinstance(t, str)])
def test_config_file_durations_follow_the_grammar(text: str, seconds: float) -> None:
    assert parse_config({"retention": text}, "c.yaml").retention_seconds == seconds


@pytest.mark.parametrize("text", [t for t in FLEXIBLE_REJECTED if isinstance(t, str) and t.strip()])
def test_config_file_names_file_key_and_value_of_a_bad_duration(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"retention": text}, "c.yaml")
    assert caught.value.one_line() == (
        f"c.yaml: retention: not a duration: {text!r} (use e.g. 500ms, 10s, 5m, 1h) (got {text!r})"
    )


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (-1, "must be a duration like 500ms, 10s, 5m, 1h"),
        (math.nan, "must be a duration like 500ms, 10s, 5m, 1h"),
        (10**400, "must be a duration of at most 400 days"),
        ("401d", "must be a duration of at most 400 days"),
        ("9" * 400 + "h", "must be a duration of at most 400 days"),
        ("", "empty duration"),
        (True, "not a duration: True"),
    ],
)
def test_config_file_keeps_its_own_wording_for_out_of_range_durations(value: object, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"retention": value}, "c.yaml")
    assert caught.value.problem == problem


def test_exporter_flag_duration_error_is_one_line_naming_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert exporter_main(["--retention=5x"]) == 2
    assert capsys.readouterr().err == (
        "gpucost-exporter: --retention: not a duration: '5x' (use e.g. 500ms, 10s, 5m, 1h) (got '5x')\n"
    )


# --- rule generator options and budgets flags: one whole number and s, m, h or d --------------

SIMPLE_ACCEPTED: list[tuple[str, int]] = [
    ("30s", 30),
    ("5m", 300),
    ("1h", 3600),
    ("7d", 7 * 86400),
    ("05m", 300),
    ("90s", 90),
]

SIMPLE_REJECTED: list[str] = [
    "",
    "5",
    "s",
    "1w",
    "500ms",
    "1h30m",
    "1.5h",
    " 5m",
    "5m ",
    "5M",
    "-5m",
    "+5m",
    "5m\n",  # bug in rulegen: `$` matched before a trailing newline, which went into the rules
    "٥m",  # bug in rulegen and budgets: an Arabic-Indic digit was read as 5
]


@pytest.mark.parametrize(("text", "seconds"), [*SIMPLE_ACCEPTED, ("0s", 0)])
def test_simple_duration_accepts(text: str, seconds: int) -> None:
    assert parse_simple_duration(text) == seconds
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize("text", [*SIMPLE_REJECTED, "9" * 5000 + "s"])
def test_simple_duration_rejects(text: str) -> None:
    with pytest.raises(DurationError):
        parse_simple_duration(text)


@pytest.mark.parametrize("text", SIMPLE_REJECTED)
def test_rule_options_reject_what_prometheus_rule_files_may_not_hold(text: str) -> None:
    with pytest.raises(ValueError, match=r"must be a number followed by s, m, h or d$"):
        RuleOptions(budget_for=text)


def test_rule_options_accept_a_zero_for_duration() -> None:
    assert RuleOptions(budget_for="0s").budget_for == "0s"


def test_a_zero_rate_window_is_a_clear_error() -> None:
    # bug: 3600 % 0 raised ZeroDivisionError out of the generator's command line
    with pytest.raises(ValueError, match="rate_window must divide 1h and be at most 5m"):
        RuleOptions(rate_window="0s")


@pytest.mark.parametrize(("text", "seconds"), SIMPLE_ACCEPTED)
def test_budgets_flag_durations(text: str, seconds: int) -> None:
    assert budgets_flag_duration(text, "--sync.interval") == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "text",
    [
        *SIMPLE_REJECTED,
        "0s",
        "00m",
        "²s",  # bug: isdigit() took it and int() raised ValueError, a traceback
        "9" * 5000 + "d",  # bug: int() refused more than 4300 digits, a traceback
        "99999999999d",  # bug: more days than a timedelta holds raised OverflowError, a traceback
    ],
)
def test_budgets_flag_rejects_with_the_flag_named(text: str) -> None:
    with pytest.raises(UserInputError) as caught:
        budgets_flag_duration(text, "--spot.window")
    assert caught.value.file == "--spot.window"
    assert caught.value.problem == "must be a positive duration like 30s, 10m, 1h or 7d"


# --- printing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.5, "500ms"),
        (30, "30s"),
        (300, "5m"),
        (5400, "1h30m"),
        (86400, "1d"),
        (604800 + 3600, "1w1h"),
        (1234567, "2w6h56m7s"),  # bug: printed 1.23457e+06s, which no parser reads
        (61.25, "1m1s250ms"),
    ],
)
def test_format_duration_writes_the_largest_units_first(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_duration_refuses_what_no_duration_is() -> None:
    for seconds in (-1.0, math.nan, math.inf):
        with pytest.raises(DurationError):
            format_duration(seconds)


@given(st.integers(min_value=0, max_value=10**15))
def test_format_then_parse_gives_back_every_whole_millisecond(milliseconds: int) -> None:
    seconds = milliseconds / 1000
    assert parse_duration(format_duration(seconds)) == seconds


@given(st.integers(min_value=0, max_value=10**12), st.sampled_from(["s", "m", "h", "d"]))
def test_simple_durations_read_as_the_flexible_parser_reads_them(count: int, unit: str) -> None:
    text = f"{count}{unit}"
    assert parse_simple_duration(text) == parse_duration(text)
