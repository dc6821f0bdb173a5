"""The chart's values for the sidecar's finance export job (`budgets.financeExport`), rendered by the real helm
binary: off and invisible by default, flags the sidecar accepts, a writable volume for the day files on the
read-only root filesystem, and a schema that refuses a sink without its destination.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gpucost.budgets.cli import build_parser as budgets_parser
from gpucost_testing.helm_render import CHART, Manifest, one, render, run_helm

pytestmark = pytest.mark.integration

FINANCE_VALUES = CHART / "ci" / "budgets-finance-values.yaml"
SIDECAR_ON = ("budgets.enabled=true",)
TABLE = "ml-prod.finance.gpucost_cost"


def _pod(manifests: list[Manifest]) -> Manifest:
    pod: Manifest = one(manifests, "Deployment")["spec"]["template"]["spec"]
    return pod


def _args(pod: Manifest) -> list[str]:
    args: list[str] = pod["containers"][0]["args"]
    return args


def _export_args(pod: Manifest) -> list[str]:
    return [a for a in _args(pod) if a.startswith("--export.")]


def _render_error(*sets: str) -> str:
    args = ["template", "gpucost", str(CHART)]
    for assignment in (*SIDECAR_ON, *sets):
        args += ["--set", assignment]
    result = run_helm(args)
    assert result.returncode != 0, "helm rendered values the schema should refuse"
    return result.stderr


def test_an_empty_format_renders_exactly_what_the_chart_renders_without_the_values() -> None:
    # The same manifests, byte for byte after parsing, whatever the other finance values say.
    baseline = render(sets=SIDECAR_ON)
    assert "financeExport" not in str(baseline)
    off = render(sets=(*SIDECAR_ON, "budgets.financeExport.format=",
                       "budgets.financeExport.persistentVolumeClaim=gpucost-finance",
                       f"budgets.financeExport.bigqueryTable={TABLE}"))
    assert off == baseline
    pod = _pod(baseline)
    assert _export_args(pod) == []
    assert "fsGroup" not in pod["securityContext"]
    assert {v["name"] for v in pod["volumes"]} == {"budgets", "tmp"}


def test_parquet_on_a_claim_passes_the_flags_and_mounts_the_claim_at_out() -> None:
    pod = _pod(render(FINANCE_VALUES))
    assert _export_args(pod) == [
        "--export.format=parquet",
        "--export.interval=10m",
        "--export.out=/var/lib/gpucost/finance",
    ]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["finance-export"]["persistentVolumeClaim"] == {"claimName": "gpucost-finance"}
    [mount] = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "finance-export"]
    assert mount == {"name": "finance-export", "mountPath": "/var/lib/gpucost/finance"}
    # The root filesystem stays read-only: the day files can only land on the mounted volume.
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    # A fresh claim is root-owned: the non-root sidecar writes to it through its group.
    context = pod["securityContext"]
    assert context["fsGroup"] == context["runAsGroup"] == 65534
    parsed = budgets_parser().parse_args(_args(pod))
    assert (parsed.export_format, parsed.export_out, parsed.export_interval) == (
        "parquet", Path("/var/lib/gpucost/finance"), "10m")


def test_csv_without_a_claim_uses_an_emptydir_at_the_chosen_directory() -> None:
    pod = _pod(render(sets=(*SIDECAR_ON, "budgets.financeExport.format=csv", "budgets.financeExport.out=/data",
                            "budgets.financeExport.interval=30m", "budgets.podSecurityContext.fsGroup=2000")))
    assert _export_args(pod) == ["--export.format=csv", "--export.interval=30m", "--export.out=/data"]
    assert {v["name"]: v for v in pod["volumes"]}["finance-export"]["emptyDir"] == {}
    assert {"name": "finance-export", "mountPath": "/data"} in pod["containers"][0]["volumeMounts"]
    assert pod["securityContext"]["fsGroup"] == 2000, "a chosen fsGroup is kept"


def test_bigquery_passes_the_table_and_the_sidecars_gcp_credentials_and_mounts_nothing() -> None:
    pod = _pod(render(sets=(*SIDECAR_ON, "budgets.financeExport.format=bigquery",
                            f"budgets.financeExport.bigqueryTable={TABLE}",
                            "budgets.financeExport.bigqueryEndpoint=https://bigquery.p.googleapis.com",
                            "budgets.gcp.existingSecret=gpucost-gcp")))
    assert _export_args(pod) == [
        "--export.format=bigquery",
        "--export.interval=10m",
        f"--export.bigquery-table={TABLE}",
        "--export.bigquery-endpoint=https://bigquery.p.googleapis.com",
    ]
    assert "--gcp.credentials-file=/var/run/secrets/gcp/credentials.json" in _args(pod)
    assert "finance-export" not in {v["name"] for v in pod["volumes"]}
    assert "fsGroup" not in pod["securityContext"]
    parsed = budgets_parser().parse_args(_args(pod))
    assert (parsed.export_bigquery_table, parsed.export_out) == (TABLE, None)


def test_bigquery_without_a_table_fails_schema_validation_naming_the_value() -> None:
    stderr = _render_error("budgets.financeExport.format=bigquery")
    assert "/budgets/financeExport/bigqueryTable" in stderr, stderr


def test_a_file_format_without_a_directory_fails_schema_validation_naming_the_value() -> None:
    stderr = _render_error("budgets.financeExport.format=parquet", "budgets.financeExport.out=")
    assert "/budgets/financeExport/out" in stderr, stderr


@pytest.mark.parametrize(("key", "value"), [
    ("format", "json"),
    ("bigqueryTable", "not a table"),
    ("interval", "10 minutes"),
    ("out", "relative/dir"),
])
def test_the_schema_refuses_a_malformed_value(key: str, value: str) -> None:
    stderr = _render_error(f"budgets.financeExport.{key}={value}")
    assert f"/budgets/financeExport/{key}" in stderr, stderr


def test_helm_lint_strict_passes_with_the_finance_values() -> None:
    for extra in ((), ("--set", "budgets.financeExport.format=bigquery",
                       "--set", f"budgets.financeExport.bigqueryTable={TABLE}")):
        result = run_helm(["lint", "--strict", str(CHART), "-f", str(FINANCE_VALUES), *extra])
        assert result.returncode == 0, result.stdout + result.stderr
