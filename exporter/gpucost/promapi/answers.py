"""Prometheus HTTP API answers as typed values (vector, matrix, scalar, string, alerts, rules); no I/O.

Each `parse_*` takes the answer's `data` member (the client has already checked
`status`) and raises `MalformedAnswer` naming the first member that is not what
the API documents, so a proxy's HTML page or a truncated body is reported, not
half-read.  Sample values arrive as strings ("NaN", "+Inf" included) and are
returned as floats.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

__all__ = [
    "Alert",
    "InstantResult",
    "MalformedAnswer",
    "Matrix",
    "Point",
    "Rule",
    "RuleGroup",
    "Sample",
    "Scalar",
    "Series",
    "String",
    "Vector",
    "parse_alerts",
    "parse_instant",
    "parse_label_values",
    "parse_matrix",
    "parse_rule_groups",
    "parse_series_labels",
]


class MalformedAnswer(ValueError):
    """The answer is not shaped as the Prometheus HTTP API documents; the text names the member."""


class Sample(NamedTuple):
    """One series of an instant vector; unpacks as `labels, value`."""

    labels: Mapping[str, str]
    value: float


class Point(NamedTuple):
    at: float
    """Unix seconds."""
    value: float


class Series(NamedTuple):
    """One series of a range vector: its raw samples, or a range query's steps."""

    labels: Mapping[str, str]
    points: tuple[Point, ...]


@dataclass(frozen=True, slots=True)
class Vector:
    samples: tuple[Sample, ...]

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def __len__(self) -> int:
        return len(self.samples)


@dataclass(frozen=True, slots=True)
class Matrix:
    series: tuple[Series, ...]

    def __iter__(self) -> Iterator[Series]:
        return iter(self.series)

    def __len__(self) -> int:
        return len(self.series)


@dataclass(frozen=True, slots=True)
class Scalar:
    at: float
    value: float


@dataclass(frozen=True, slots=True)
class String:
    at: float
    value: str


InstantResult = Vector | Matrix | Scalar | String


@dataclass(frozen=True, slots=True)
class Alert:
    """An active alert as `/api/v1/alerts` lists it (pending or firing)."""

    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    state: str
    active_at: str
    value: str


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    kind: str
    """`recording` or `alerting`."""
    query: str
    health: str
    last_error: str


@dataclass(frozen=True, slots=True)
class RuleGroup:
    name: str
    file: str
    interval_seconds: float
    last_evaluation: str
    """RFC 3339; Prometheus reports 0001-01-01T00:00:00Z before the first evaluation."""
    evaluation_seconds: float
    rules: tuple[Rule, ...]


def parse_instant(data: object) -> InstantResult:
    """The `data` of `/api/v1/query`: whichever result type the expression has."""
    answer = _mapping(data, "data")
    result_type = answer.get("resultType")
    result = answer.get("result")
    if result_type == "vector":
        samples = _list(result, "data.result")
        return Vector(tuple(_sample(item, f"data.result[{i}]") for i, item in enumerate(samples)))
    if result_type == "matrix":
        return parse_matrix(answer)
    if result_type == "scalar":
        at, value = _pair(result, "data.result")
        return Scalar(at, _number(value, "data.result[1]"))
    if result_type == "string":
        at, value = _pair(result, "data.result")
        return String(at, str(value))
    raise MalformedAnswer(f"data.resultType is {_short(result_type)}, not vector, matrix, scalar or string")


def parse_matrix(data: object) -> Matrix:
    """The `data` of `/api/v1/query_range`, or of `/api/v1/query` over a range selector."""
    answer = _mapping(data, "data")
    if answer.get("resultType") != "matrix":
        raise MalformedAnswer(f"data.resultType is {_short(answer.get('resultType'))}, not matrix")
    result = _list(answer.get("result"), "data.result")
    return Matrix(tuple(_series(item, f"data.result[{i}]") for i, item in enumerate(result)))


def parse_label_values(data: object) -> tuple[str, ...]:
    """The `data` of `/api/v1/label/<name>/values` (VictoriaMetrics answers `null` for none)."""
    return tuple(_text(value, f"data[{i}]") for i, value in enumerate(_list(data if data is not None else [], "data")))


def parse_series_labels(data: object) -> tuple[Mapping[str, str], ...]:
    """The `data` of `/api/v1/series`: each matching series' label set."""
    return tuple(_labels(item, f"data[{i}]") for i, item in enumerate(_list(data if data is not None else [], "data")))


def parse_alerts(data: object) -> tuple[Alert, ...]:
    """The `data` of `/api/v1/alerts` (vmalert answers `"alerts": null` when none is active)."""
    alerts = _mapping(data, "data").get("alerts")
    return tuple(_alert(item, f"data.alerts[{i}]") for i, item in enumerate(_list(alerts or [], "data.alerts")))


def parse_rule_groups(data: object) -> tuple[RuleGroup, ...]:
    """The `data` of `/api/v1/rules`."""
    groups = _list(_mapping(data, "data").get("groups"), "data.groups")
    return tuple(_rule_group(group, f"data.groups[{i}]") for i, group in enumerate(groups))


def _sample(item: object, where: str) -> Sample:
    series = _mapping(item, where)
    _at, value = _pair(series.get("value"), f"{where}.value")
    return Sample(_labels(series.get("metric"), f"{where}.metric"), _number(value, f"{where}.value[1]"))


def _series(item: object, where: str) -> Series:
    series = _mapping(item, where)
    values = _list(series.get("values"), f"{where}.values")
    points = []
    for i, pair in enumerate(values):
        at, value = _pair(pair, f"{where}.values[{i}]")
        points.append(Point(at, _number(value, f"{where}.values[{i}][1]")))
    return Series(_labels(series.get("metric"), f"{where}.metric"), tuple(points))


def _alert(item: object, where: str) -> Alert:
    alert = _mapping(item, where)
    return Alert(
        labels=_labels(alert.get("labels"), f"{where}.labels"),
        annotations=_labels(alert.get("annotations") or {}, f"{where}.annotations"),
        state=_text(alert.get("state"), f"{where}.state"),
        active_at=str(alert.get("activeAt", "")),
        value=str(alert.get("value", "")),
    )


def _rule_group(item: object, where: str) -> RuleGroup:
    group = _mapping(item, where)
    rules = _list(group.get("rules"), f"{where}.rules")
    return RuleGroup(
        name=_text(group.get("name"), f"{where}.name"),
        file=str(group.get("file", "")),
        interval_seconds=_number(group.get("interval", 0), f"{where}.interval"),
        last_evaluation=str(group.get("lastEvaluation", "")),
        evaluation_seconds=_number(group.get("evaluationTime", 0), f"{where}.evaluationTime"),
        rules=tuple(_rule(rule, f"{where}.rules[{i}]") for i, rule in enumerate(rules)),
    )


def _rule(item: object, where: str) -> Rule:
    rule = _mapping(item, where)
    return Rule(
        name=_text(rule.get("name"), f"{where}.name"),
        kind=_text(rule.get("type"), f"{where}.type"),
        query=_text(rule.get("query"), f"{where}.query"),
        health=str(rule.get("health", "")),
        last_error=str(rule.get("lastError", "")),
    )


def _mapping(value: object, where: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise MalformedAnswer(f"{where} is {_short(value)}, not an object")
    return value


def _list(value: object, where: str) -> Sequence[object]:
    if not isinstance(value, list):
        raise MalformedAnswer(f"{where} is {_short(value)}, not a list")
    return value


def _labels(value: object, where: str) -> Mapping[str, str]:
    labels = _mapping(value, where)
    return {str(name): _text(text, f"{where}.{name}") for name, text in labels.items()}


def _pair(value: object, where: str) -> tuple[float, object]:
    """A `[unix seconds, "value"]` pair."""
    if not isinstance(value, list) or len(value) != 2:
        raise MalformedAnswer(f"{where} is {_short(value)}, not a [time, value] pair")
    return _number(value[0], f"{where}[0]"), value[1]


def _number(value: object, where: str) -> float:
    # bool is an int subclass; a JSON true is never a sample value.
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise MalformedAnswer(f"{where} is {_short(value)}, not a number")
    try:
        return float(value)
    except ValueError:
        raise MalformedAnswer(f"{where} is {_short(value)}, not a number") from None


def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise MalformedAnswer(f"{where} is {_short(value)}, not a string")
    return value


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
