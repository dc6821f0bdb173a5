"""Bad flags of the gpucost-budgets sidecar: one line, exit 2, the words the sidecar always used."""

from __future__ import annotations

import socket

import pytest

from gpucost_testing.budgets_flags import clear_environment_defaults, one_line_error


@pytest.fixture(autouse=True)
def _no_environment_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_environment_defaults(monkeypatch)


ENABLE_A_CLOUD = "gpucost-budgets: <input>: --aws.enabled/--gcp.billing-account: enable at least one cloud (got None)"
POSITIVE = "must be a positive duration like 30s, 10m, 1h or 7d"


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["plan"], ENABLE_A_CLOUD),
        (["sync", "--gcp.projects=a"], ENABLE_A_CLOUD),
        (["price-sync", "--price-sync.overrides-file=p.yaml"], ENABLE_A_CLOUD),
        (
            ["price-sync", "--aws.enabled", "--price-sync.overrides-file=p.yaml", "--spot.window=0d"],
            f"gpucost-budgets: --spot.window: {POSITIVE} (got '0d')",
        ),
        (
            ["reconcile", "--gcp.billing-account=A"],
            "gpucost-budgets: <input>: --aws.enabled/--gcp.billing-export-table: enable at least one cloud to "
            "reconcile (got None)",
        ),
        (
            ["reconcile", "--aws.enabled", "--date=2026-13-01"],
            "gpucost-budgets: --date: must be a date YYYY-MM-DD (got '2026-13-01')",
        ),
        (
            ["reconcile", "--gcp.billing-export-table=p.d.t", "--gcp.billing-export-label="],
            "gpucost-budgets: --gcp.billing-export-label: must be a label key, e.g. team (got '')",
        ),
        (
            ["serve", "--gcp.billing-export-table=finops-prod.billing"],
            "gpucost-budgets: --gcp.billing-export-table: must be PROJECT.DATASET.TABLE (letters, digits, '_' and "
            "'-'; the billing export table) (got 'finops-prod.billing')",
        ),
        (
            ["serve", "--gcp.billing-export-table=p.d.t", "--gcp.bigquery-project=Finops Jobs"],
            "gpucost-budgets: --gcp.bigquery-project: must be a GCP project id (lower-case letters, digits and '-') "
            "(got 'Finops Jobs')",
        ),
        (["serve", "--sync.interval=0s"], f"gpucost-budgets: --sync.interval: {POSITIVE} (got '0s')"),
        (["serve", "--reload.interval=soon"], f"gpucost-budgets: --reload.interval: {POSITIVE} (got 'soon')"),
        (
            ["serve", "--price-sync.overrides-file=p.yaml", "--price-sync.interval=1y"],
            f"gpucost-budgets: --price-sync.interval: {POSITIVE} (got '1y')",
        ),
        (
            ["serve", "--export.format=parquet"],
            "gpucost-budgets: --export.out: is required with --export.format parquet (got None)",
        ),
        (
            ["serve", "--export.format=csv", "--export.out=/no/such/dir"],
            "gpucost-budgets: --export.out: is not a directory (got '/no/such/dir')",
        ),
        (
            ["serve", "--export.format=bigquery"],
            "gpucost-budgets: --export.bigquery-table: is required with --export.format bigquery (got '')",
        ),
        (
            ["serve", "--export.format=bigquery", "--export.bigquery-table=finance.cost"],
            "gpucost-budgets: --export.bigquery-table: must be PROJECT.DATASET.TABLE (got 'finance.cost')",
        ),
        (
            ["serve", "--export.format=parquet", "--export.out=.", "--export.interval=0s"],
            f"gpucost-budgets: --export.interval: {POSITIVE} (got '0s')",
        ),
        (
            ["serve", "--web.listen-address=nowhere"],
            "gpucost-budgets: --web.listen-address: must be [host]:port, e.g. :9836 (got 'nowhere')",
        ),
    ],
)
def test_bad_flags_are_one_line_and_exit_2(argv: list[str], line: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert one_line_error(argv, capsys) == line


def test_serve_checks_its_flags_before_it_binds_the_port(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_line_error(["serve", f"--web.listen-address=127.0.0.1:{port}", "--sync.interval=0s"], capsys)
    assert line == f"gpucost-budgets: --sync.interval: {POSITIVE} (got '0s')"
