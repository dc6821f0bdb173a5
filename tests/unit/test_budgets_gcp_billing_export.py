"""The pure parts of the GCP billing-export source: table names, the SQL and its parameters, answer parsing."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from gpucost.budgets.gcp_billing_export import (
    ExportTable,
    build_query,
    check_project,
    google_error,
    parse_export_table,
    parse_result_pages,
    query_parameters,
    query_request,
)
from gpucost.errors import SourceUnavailable, UserInputError

TABLE = ExportTable("finops-prod", "billing", "gcp_billing_export_v1_0123AB_4567CD_89EF01")
SCHEMA = {"fields": [{"name": "team", "type": "STRING"}, {"name": "cost_usd", "type": "FLOAT"}]}


def _page(*rows: tuple[Any, Any], schema: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    answer: dict[str, Any] = {"schema": SCHEMA if schema is None else schema, "jobComplete": True, **extra}
    if rows:
        answer["rows"] = [{"f": [{"v": team}, {"v": usd}]} for team, usd in rows]
    return answer


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("p.d.t", ExportTable("p", "d", "t")),
        (str(TABLE), TABLE),
        ("example.com:finops.billing_2.export-table", ExportTable("example.com:finops", "billing_2", "export-table")),
    ],
)
def test_export_table_names_are_project_dataset_table(value: str, expected: ExportTable) -> None:
    assert parse_export_table(value) == expected
    assert str(parse_export_table(value)) == value


@pytest.mark.parametrize(
    "value",
    ["", "p.d", "p.d.t.x", "Finops.billing.t", "p.bill-ing.t", "p.d.t`; DROP TABLE x; --", "p.d.t ", "p.d.t\n", "p..t"],
)
def test_a_bad_table_name_is_a_user_error_naming_the_flag_and_value(value: str) -> None:
    with pytest.raises(UserInputError) as caught:
        parse_export_table(value)
    line = caught.value.one_line()
    assert line.startswith("--gcp.billing-export-table: must be PROJECT.DATASET.TABLE")
    assert repr(value)[:60] in line
    assert "\n" not in line


def test_job_project_is_checked_like_the_tables_project() -> None:
    assert check_project("finops-jobs") == "finops-jobs"
    with pytest.raises(UserInputError, match=r"--gcp.bigquery-project: .*\(got 'Finops Jobs'\)"):
        check_project("Finops Jobs")


def test_query_sums_cost_plus_credits_per_label_value_for_one_usd_day() -> None:
    sql = build_query(TABLE)
    assert f"FROM `{TABLE}`" in sql
    assert "UNNEST(labels) AS l WHERE l.key = @label_key" in sql
    assert "IFNULL((SELECT l.value" in sql and "'') AS team" in sql  # untagged rows group under ''
    assert "SUM(cost)" in sql and "SUM((SELECT SUM(c.amount) FROM UNNEST(credits) AS c))" in sql
    assert "AS cost_usd" in sql
    assert "usage_start_time >= @day_start AND usage_start_time < @day_end" in sql
    assert "currency = 'USD'" in sql
    assert sql.rstrip().endswith("GROUP BY team")


def test_parameters_are_the_utc_day_bounds_and_the_label_key() -> None:
    parameters = {p["name"]: p for p in query_parameters(dt.date(2026, 11, 27), "k8s-label/team")}
    assert parameters["label_key"] == {
        "name": "label_key",
        "parameterType": {"type": "STRING"},
        "parameterValue": {"value": "k8s-label/team"},
    }
    assert parameters["day_start"]["parameterType"] == {"type": "TIMESTAMP"}
    assert parameters["day_start"]["parameterValue"]["value"] == "2026-11-27 00:00:00+00:00"
    assert parameters["day_end"]["parameterValue"]["value"] == "2026-11-28 00:00:00+00:00"


def test_request_body_is_standard_sql_with_named_parameters() -> None:
    body = query_request(TABLE, dt.date(2026, 11, 27), "team", 30_000)
    assert body["useLegacySql"] is False
    assert body["parameterMode"] == "NAMED"
    assert body["timeoutMs"] == 30_000
    assert body["query"] == build_query(TABLE)
    assert [p["name"] for p in body["queryParameters"]] == ["label_key", "day_start", "day_end"]


def test_rows_are_read_by_schema_column_and_the_untagged_team_is_empty() -> None:
    # Columns in the other order: parsing follows the schema's names, not positions.
    swapped = {"fields": [{"name": "cost_usd", "type": "FLOAT"}, {"name": "team", "type": "STRING"}]}
    pages = [
        {"schema": swapped, "rows": [{"f": [{"v": "2640.5"}, {"v": "research"}]}, {"f": [{"v": "-3.5"}, {"v": ""}]}]},
        {"schema": swapped, "rows": [{"f": [{"v": "960"}, {"v": "search"}]}, {"f": [{"v": "1.5"}, {"v": None}]}]},
    ]
    assert parse_result_pages(pages) == {"research": 2640.5, "": -2.0, "search": 960.0}


def test_credits_are_already_in_the_sql_sum_so_a_negative_net_cost_is_kept() -> None:
    assert parse_result_pages([_page(("research", "-12.25"))]) == {"research": -12.25}


def test_a_team_repeated_across_pages_is_summed_and_an_empty_result_is_empty() -> None:
    assert parse_result_pages([_page(("a", "1.5")), _page(("a", "2"))]) == {"a": 3.5}
    assert parse_result_pages([_page()]) == {}
    assert parse_result_pages([]) == {}


@pytest.mark.parametrize(
    ("page", "message"),
    [
        (_page(("a", "1"), schema={"fields": [{"name": "team"}]}), r"schema has no field 'cost_usd'"),
        ({"rows": []}, r"no schema.fields"),
        (_page(("a", "lots")), r"'cost_usd' of row 1 is 'lots', not a number"),
        (_page(("a", None)), r"'cost_usd' of row 1 is None, not a number"),
        (_page(("a", "NaN")), r"'cost_usd' of row 1 is 'NaN', not a number"),
        (_page(("a", True)), r"'cost_usd' of row 1 is True, not a number"),
        (_page(("a", "1"), ("b", {"x": 1})), r"'cost_usd' of row 2 is \{'x': 1\}, not a number"),
        (_page((7, "1")), r"'team' of row 1 is 7, not a string"),
        ({"schema": SCHEMA, "rows": [{"f": [{"v": "a"}]}]}, r"row 1 has no cell 1"),
        ({"schema": SCHEMA, "rows": "nope"}, r"rows is 'nope', not a list"),
    ],
)
def test_a_malformed_answer_is_source_unavailable_naming_field_and_value(page: dict[str, Any], message: str) -> None:
    with pytest.raises(SourceUnavailable, match=message):
        parse_result_pages([page])


def test_google_json_errors_are_one_line_with_status_and_message() -> None:
    body = '{"error": {"code": 403, "message": "Access Denied: Table p:d.t", "status": "PERMISSION_DENIED"}}'
    assert google_error(403, body) == "HTTP 403 PERMISSION_DENIED: Access Denied: Table p:d.t"
    assert google_error(502, "<html>bad gateway</html>") == "HTTP 502: <html>bad gateway</html>"
