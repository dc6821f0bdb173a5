"""Prometheus HTTP API answers parsed into typed values, and malformed ones named by their first bad member."""

from __future__ import annotations

import math

import pytest

from gpucost.promapi.answers import (
    Alert,
    MalformedAnswer,
    Matrix,
    Point,
    Rule,
    RuleGroup,
    Sample,
    Scalar,
    Series,
    String,
    Vector,
    parse_alerts,
    parse_instant,
    parse_label_values,
    parse_matrix,
    parse_rule_groups,
    parse_series_labels,
)


def test_vector_samples_unpack_as_labels_and_value_with_special_floats() -> None:
    data = {
        "resultType": "vector",
        "result": [
            {"metric": {"team": "nlp"}, "value": [1700000000.5, "12.25"]},
            {"metric": {"team": "vision"}, "value": [1700000000.5, "NaN"]},
            {"metric": {}, "value": [1700000000.5, "+Inf"]},
        ],
    }
    vector = parse_instant(data)
    assert isinstance(vector, Vector)
    (labels, value), nan, inf = vector
    assert (labels, value) == ({"team": "nlp"}, 12.25)
    assert nan.labels == {"team": "vision"} and math.isnan(nan.value)
    assert inf == Sample({}, math.inf)
    assert len(vector) == 3


def test_matrix_keeps_every_point_in_order() -> None:
    data = {"resultType": "matrix", "result": [{"metric": {"uuid": "GPU-1"}, "values": [[10, "1"], [25.5, "2.5"]]}]}
    expected = Matrix((Series({"uuid": "GPU-1"}, (Point(10.0, 1.0), Point(25.5, 2.5))),))
    assert parse_instant(data) == expected
    assert parse_matrix(data) == expected


def test_scalar_and_string_results() -> None:
    assert parse_instant({"resultType": "scalar", "result": [5, "0.5"]}) == Scalar(5.0, 0.5)
    assert parse_instant({"resultType": "string", "result": [5, "hello"]}) == String(5.0, "hello")


def test_label_values_and_series_accept_null_as_none() -> None:
    assert parse_label_values(["a", "b"]) == ("a", "b")
    assert parse_label_values(None) == ()
    assert parse_series_labels([{"__name__": "up", "job": "x"}]) == ({"__name__": "up", "job": "x"},)
    assert parse_series_labels(None) == ()


def test_alerts_and_vmalert_null_alerts() -> None:
    data = {
        "alerts": [
            {
                "labels": {"alertname": "GpucostBudget80", "team": "nlp"},
                "annotations": {"summary": "80 %"},
                "state": "firing",
                "activeAt": "2026-01-01T00:00:00Z",
                "value": "8.2e-01",
            }
        ]
    }
    assert parse_alerts(data) == (
        Alert({"alertname": "GpucostBudget80", "team": "nlp"}, {"summary": "80 %"}, "firing",
              "2026-01-01T00:00:00Z", "8.2e-01"),
    )
    assert parse_alerts({"alerts": None}) == ()


def test_rule_groups_with_their_rules() -> None:
    data = {
        "groups": [
            {
                "name": "gpucost.cost",
                "file": "/etc/rules.yaml",
                "interval": 30,
                "lastEvaluation": "2026-01-01T00:00:00Z",
                "evaluationTime": 0.002,
                "rules": [
                    {"name": "team:x:rate5m", "type": "recording", "query": "sum(x)", "health": "ok", "lastError": ""}
                ],
            }
        ]
    }
    assert parse_rule_groups(data) == (
        RuleGroup("gpucost.cost", "/etc/rules.yaml", 30.0, "2026-01-01T00:00:00Z", 0.002,
                  (Rule("team:x:rate5m", "recording", "sum(x)", "ok", ""),)),
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("<html>", "data is '<html>', not an object"),
        ({"resultType": "histogram", "result": []},
         "data.resultType is 'histogram', not vector, matrix, scalar or string"),
        ({"resultType": "vector", "result": None}, "data.result is None, not a list"),
        ({"resultType": "vector", "result": [{"metric": {}, "value": [1, "x"]}]},
         "data.result[0].value[1] is 'x', not a number"),
        ({"resultType": "vector", "result": [{"metric": {}, "value": [1]}]},
         "data.result[0].value is [1], not a [time, value] pair"),
        ({"resultType": "vector", "result": [{"metric": {"team": 3}, "value": [1, "1"]}]},
         "data.result[0].metric.team is 3, not a string"),
        ({"resultType": "vector", "result": [{"value": [1, "1"]}]}, "data.result[0].metric is None, not an object"),
        ({"resultType": "matrix", "result": [{"metric": {}, "values": [[True, "1"]]}]},
         "data.result[0].values[0][0] is True, not a number"),
        ({"resultType": "scalar", "result": "1"}, "data.result is '1', not a [time, value] pair"),
    ],
)
def test_malformed_instant_answers_name_the_first_bad_member(data: object, message: str) -> None:
    with pytest.raises(MalformedAnswer) as caught:
        parse_instant(data)
    assert str(caught.value) == message


def test_a_vector_is_not_taken_for_a_matrix() -> None:
    with pytest.raises(MalformedAnswer, match=r"^data.resultType is 'vector', not matrix$"):
        parse_matrix({"resultType": "vector", "result": []})


def test_malformed_rules_and_alerts_are_named() -> None:
    with pytest.raises(MalformedAnswer, match=r"^data.groups is None, not a list$"):
        parse_rule_groups({})
    with pytest.raises(MalformedAnswer, match=r"^data.alerts\[0\].state is None, not a string$"):
        parse_alerts({"alerts": [{"labels": {}}]})
    with pytest.raises(MalformedAnswer, match=r"^data\[1\] is 2, not a string$"):
        parse_label_values(["a", 2])
