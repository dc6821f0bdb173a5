"""The sidecar's flags become typed settings once: defaults, each group of flags, and bad flags as one line."""

from __future__ import annotations

import dataclasses
import datetime as dt
import socket
from pathlib import Path

import pytest

from gpucost.budgets.cli import build_parser, main
from gpucost.budgets.gcp_billing_export import ExportTable
from gpucost.budgets.service import build_jobs
from gpucost.budgets.settings import (
    AwsSettings,
    BillingExportSettings,
    BudgetSyncConfig,
    CloudSettings,
    CommandConfig,
    DigestConfig,
    EnforcementSettings,
    GcpSettings,
    JobSchedule,
    PriceSyncConfig,
    PriceSyncSchedule,
    PrometheusSettings,
    ReconcileConfig,
    ReconciliationSettings,
    SidecarConfig,
    SlackSettings,
    config_from_args,
)
from gpucost.budgets.state import SidecarState
from gpucost.finance.job import EXPORT_FLAGS, ExportJobSettings
from gpucost.finance.sink import SinkSettings

NO_CLOUDS = CloudSettings(
    aws=AwsSettings(enabled=False, account_id="", region="us-east-1", shared_credentials_file=None),
    gcp=GcpSettings(
        billing_account="", projects=(), pubsub_topic="", api_endpoint=None, region="us-central1", credentials_file=None
    ),
)


@pytest.fixture(autouse=True)
def _no_environment_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    # --aws.region defaults to AWS_REGION; a token in the environment turns on serve's digest job.
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)


def _config(*argv: str) -> CommandConfig:
    return config_from_args(build_parser().parse_args(list(argv)))


def _serve(*argv: str) -> SidecarConfig:
    config = _config("serve", *argv)
    assert isinstance(config, SidecarConfig)
    return config


def _one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


# --- defaults -------------------------------------------------------------------------------------------


def test_serve_without_flags_is_the_documented_defaults() -> None:
    assert _serve() == SidecarConfig(
        budgets_file=Path("/etc/gpucost/budgets.yaml"),
        dry_run=False,
        listen_address=":9836",
        listen_on=("0.0.0.0", 9836),
        clouds=NO_CLOUDS,
        prometheus=PrometheusSettings(url="http://prometheus:9090"),
        slack=SlackSettings(bot_token_file=None),
        schedule=JobSchedule(
            reload_interval=dt.timedelta(seconds=10),
            sync_interval=dt.timedelta(hours=1),
            reconcile_hour=6,
            digest_weekday=0,
        ),
        reconciliation=ReconciliationSettings(lag_hours=24.0, gcp_billing_export=None),
        enforcement=EnforcementSettings(kubeconfig=None),
        price_sync=None,
        finance_export=None,
    )


def test_aws_region_defaults_to_the_aws_region_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert _serve().clouds.aws.region == "eu-west-1"


def test_settings_are_frozen() -> None:
    config = _serve()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.dry_run = True  # type: ignore[misc]


# --- each group ------------------------------------------------------------------------------------------


def test_aws_flags_form_the_aws_settings(tmp_path: Path) -> None:
    credentials = tmp_path / "aws-ini"
    config = _serve(
        "--aws.enabled",
        "--aws.account-id=123456789012",
        "--aws.region=ap-south-1",
        f"--aws.shared-credentials-file={credentials}",
    )
    assert config.clouds.aws == AwsSettings(
        enabled=True, account_id="123456789012", region="ap-south-1", shared_credentials_file=credentials
    )
    assert config.clouds.credential_files == (credentials,)


def test_gcp_flags_form_the_gcp_settings_with_the_project_list_split_and_trimmed(tmp_path: Path) -> None:
    key = tmp_path / "key.json"
    config = _serve(
        "--gcp.billing-account=0123-4567-89AB",
        "--gcp.projects= ml-prod, ,ml-dev,",
        "--gcp.pubsub-topic=projects/p/topics/t",
        "--gcp.api-endpoint=http://127.0.0.1:1",
        "--gcp.region=europe-west4",
        f"--gcp.credentials-file={key}",
    )
    assert config.clouds.gcp == GcpSettings(
        billing_account="0123-4567-89AB",
        projects=("ml-prod", "ml-dev"),
        pubsub_topic="projects/p/topics/t",
        api_endpoint="http://127.0.0.1:1",
        region="europe-west4",
        credentials_file=key,
    )
    assert config.clouds.gcp.budgets_enabled
    assert not NO_CLOUDS.gcp.budgets_enabled


def test_the_billing_export_runs_its_job_in_the_tables_project_unless_one_is_named() -> None:
    table = ExportTable("finops-prod", "billing", "gcp_billing_export_v1_X")
    implied = _serve(f"--gcp.billing-export-table={table}", "--reconcile.lag-hours=36")
    assert implied.reconciliation == ReconciliationSettings(
        lag_hours=36.0,
        gcp_billing_export=BillingExportSettings(
            table=table, label_key="team", job_project="finops-prod", endpoint="https://bigquery.googleapis.com"
        ),
    )
    named = _serve(
        f"--gcp.billing-export-table={table}",
        "--gcp.billing-export-label=k8s-label/team",
        "--gcp.bigquery-project=finops-jobs",
    ).reconciliation.gcp_billing_export
    assert named is not None
    assert (named.label_key, named.job_project) == ("k8s-label/team", "finops-jobs")


def test_serve_schedule_enforcement_slack_and_price_sync_flags(tmp_path: Path) -> None:
    token = tmp_path / "token"
    overrides = tmp_path / "prices.yaml"
    config = _serve(
        "--reload.interval=30s",
        "--sync.interval=15m",
        "--reconcile.hour=3",
        "--digest.weekday=4",
        "--kubeconfig=/home/me/.kube/config",
        f"--slack.bot-token-file={token}",
        f"--price-sync.overrides-file={overrides}",
        "--price-sync.interval=12h",
        "--prometheus.url=http://127.0.0.1:9090",
        "--web.listen-address=127.0.0.1:0",
        "--dry-run",
    )
    assert config.schedule == JobSchedule(
        reload_interval=dt.timedelta(seconds=30),
        sync_interval=dt.timedelta(minutes=15),
        reconcile_hour=3,
        digest_weekday=4,
    )
    assert config.enforcement == EnforcementSettings(kubeconfig="/home/me/.kube/config")
    assert config.slack == SlackSettings(bot_token_file=token)
    assert config.price_sync == PriceSyncSchedule(overrides_file=overrides, interval=dt.timedelta(hours=12))
    assert config.prometheus == PrometheusSettings(url="http://127.0.0.1:9090")
    assert (config.listen_on, config.dry_run) == (("127.0.0.1", 0), True)


@pytest.mark.parametrize(
    ("argv", "apply"),
    [(["plan"], False), (["sync"], True), (["sync", "--dry-run"], False), (["plan", "--dry-run"], False)],
)
def test_only_sync_without_dry_run_applies(argv: list[str], apply: bool) -> None:
    config = _config(*argv, "--aws.enabled", "--budgets.file=b.yaml")
    assert config == BudgetSyncConfig(
        budgets_file=Path("b.yaml"), clouds=dataclasses.replace(NO_CLOUDS, aws=_aws_enabled()), apply=apply
    )


def test_reconcile_takes_the_date_or_leaves_it_to_run_time() -> None:
    config = _config("reconcile", "--aws.enabled", "--date=2026-11-27", "--reconcile.lag-hours=48")
    assert config == ReconcileConfig(
        clouds=dataclasses.replace(NO_CLOUDS, aws=_aws_enabled()),
        prometheus=PrometheusSettings(url="http://prometheus:9090"),
        reconciliation=ReconciliationSettings(lag_hours=48.0, gcp_billing_export=None),
        day=dt.date(2026, 11, 27),
    )
    yesterday_at_run_time = _config("reconcile", "--aws.enabled")
    assert isinstance(yesterday_at_run_time, ReconcileConfig)
    assert yesterday_at_run_time.day is None


def test_digest_flags() -> None:
    assert _config(
        "digest", "--team=research", "--slack.channel=#finops", "--slack.base-url=http://127.0.0.1:1/api/", "--dry-run"
    ) == DigestConfig(
        budgets_file=Path("/etc/gpucost/budgets.yaml"),
        dry_run=True,
        prometheus=PrometheusSettings(url="http://prometheus:9090"),
        slack=SlackSettings(bot_token_file=None),
        team="research",
        channel="#finops",
        slack_base_url="http://127.0.0.1:1/api/",
    )
    plain = _config("digest", "--team=research")
    assert isinstance(plain, DigestConfig)
    assert (plain.channel, plain.slack_base_url) == ("", None)


def test_price_sync_spot_window_defaults_to_a_week() -> None:
    assert _config("price-sync", "--gcp.billing-account=A", "--price-sync.overrides-file=p.yaml") == PriceSyncConfig(
        clouds=dataclasses.replace(NO_CLOUDS, gcp=dataclasses.replace(NO_CLOUDS.gcp, billing_account="A")),
        overrides_file=Path("p.yaml"),
        spot_window=dt.timedelta(days=7),
    )


def _aws_enabled() -> AwsSettings:
    return dataclasses.replace(NO_CLOUDS.aws, enabled=True)


# --- flags that are not checked where they are not used (as before) ---------------------------------------


def test_serve_ignores_the_price_sync_interval_without_an_overrides_file() -> None:
    assert _serve("--price-sync.interval=whenever").price_sync is None


def test_budget_sync_and_price_sync_ignore_the_billing_export_table_they_do_not_use() -> None:
    assert isinstance(_config("plan", "--aws.enabled", "--gcp.billing-export-table=nope"), BudgetSyncConfig)
    assert isinstance(
        _config("price-sync", "--aws.enabled", "--price-sync.overrides-file=p", "--gcp.billing-export-table=nope"),
        PriceSyncConfig,
    )


def test_export_flags_form_the_finance_export_settings(tmp_path: Path) -> None:
    files = _serve("--export.format=csv", f"--export.out={tmp_path}", "--export.interval=30m")
    assert files.finance_export == ExportJobSettings(
        sink=SinkSettings(format="csv", out=tmp_path, bigquery_table="", flags=EXPORT_FLAGS),
        interval=dt.timedelta(minutes=30),
    )
    key = tmp_path / "key.json"
    table = _serve("--export.format=bigquery", "--export.bigquery-table=my-project.finance.cost",
                   "--export.bigquery-endpoint=http://127.0.0.1:9", f"--gcp.credentials-file={key}")
    assert table.finance_export == ExportJobSettings(
        sink=SinkSettings(format="bigquery", out=Path("."), bigquery_table="my-project.finance.cost",
                          bigquery_endpoint="http://127.0.0.1:9", credentials_file=key, flags=EXPORT_FLAGS),
        interval=dt.timedelta(minutes=10),
    )


# --- bad flags: one line, exit 2, the words the sidecar always used ------------------------------------------

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
    assert _one_line_error(argv, capsys) == line


def test_serve_checks_its_flags_before_it_binds_the_port(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = _one_line_error(["serve", f"--web.listen-address=127.0.0.1:{port}", "--sync.interval=0s"], capsys)
    assert line == f"gpucost-budgets: --sync.interval: {POSITIVE} (got '0s')"


# --- the service takes the typed config -----------------------------------------------------------------


def _hand_built_sidecar(**changes: object) -> SidecarConfig:
    """A SidecarConfig built without argparse: the service needs nothing else."""
    return dataclasses.replace(_serve("--web.listen-address=127.0.0.1:0", "--prometheus.url=http://127.0.0.1:9"),
                               **changes)  # type: ignore[arg-type]


def test_without_clouds_or_slack_the_sidecar_runs_only_enforcement() -> None:
    jobs = build_jobs(_hand_built_sidecar(), SidecarState())
    assert [(job.name, job.provider, job.feature) for job in jobs] == [("enforcement", "kubernetes", "enforcement")]


def test_the_export_flags_add_the_finance_export_job(tmp_path: Path) -> None:
    config = _hand_built_sidecar(finance_export=_serve("--export.format=parquet",
                                                       f"--export.out={tmp_path}").finance_export)
    jobs = build_jobs(config, SidecarState())
    assert [(job.name, job.provider, job.feature) for job in jobs] == [
        ("enforcement", "kubernetes", "enforcement"), ("finance export", "finance", "export")]


def test_the_export_job_without_the_finance_extra_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from gpucost import extras

    monkeypatch.setitem(extras.EXTRAS, "finance", ("gpucost_no_such_module",))
    line = _one_line_error(["serve", "--export.format=parquet", f"--export.out={tmp_path}"], capsys)
    assert line == ("gpucost-budgets: --export.format parquet needs the 'finance' extra (missing: "
                    "gpucost_no_such_module): pip install 'gpucost[finance]'")


def test_an_overrides_file_adds_the_price_sync_job_and_a_token_the_digest(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("xoxb-not-a-real-token\n")
    config = _hand_built_sidecar(
        price_sync=PriceSyncSchedule(overrides_file=tmp_path / "prices.yaml", interval=dt.timedelta(hours=1)),
        slack=SlackSettings(bot_token_file=token),
    )
    jobs = build_jobs(config, SidecarState())
    assert [job.name for job in jobs] == ["price sync", "enforcement", "slack digest"]
