"""The sidecar's flags become typed settings once: defaults, each group of flags, and flags left unchecked where
unused. Bad flags as one line are in test_budgets_settings_bad_flags.py, the jobs the service builds from the
settings in test_budgets_settings_jobs.py."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from gpucost.budgets.gcp_billing_export import ExportTable
from gpucost.budgets.settings import (
    AwsSettings,
    BillingExportSettings,
    BudgetSyncConfig,
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
)
from gpucost.finance.job import EXPORT_FLAGS, ExportJobSettings
from gpucost.finance.sink import SinkSettings
from gpucost_testing.budgets_flags import NO_CLOUDS, clear_environment_defaults, config_of, serve_config


@pytest.fixture(autouse=True)
def _no_environment_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_environment_defaults(monkeypatch)


# --- defaults -------------------------------------------------------------------------------------------


def test_serve_without_flags_is_the_documented_defaults() -> None:
    assert serve_config() == SidecarConfig(
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
    assert serve_config().clouds.aws.region == "eu-west-1"


def test_settings_are_frozen() -> None:
    config = serve_config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.dry_run = True  # type: ignore[misc]


# --- each group ------------------------------------------------------------------------------------------


def test_aws_flags_form_the_aws_settings(tmp_path: Path) -> None:
    credentials = tmp_path / "aws-ini"
    config = serve_config(
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
    config = serve_config(
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
    implied = serve_config(f"--gcp.billing-export-table={table}", "--reconcile.lag-hours=36")
    assert implied.reconciliation == ReconciliationSettings(
        lag_hours=36.0,
        gcp_billing_export=BillingExportSettings(
            table=table, label_key="team", job_project="finops-prod", endpoint="https://bigquery.googleapis.com"
        ),
    )
    named = serve_config(
        f"--gcp.billing-export-table={table}",
        "--gcp.billing-export-label=k8s-label/team",
        "--gcp.bigquery-project=finops-jobs",
    ).reconciliation.gcp_billing_export
    assert named is not None
    assert (named.label_key, named.job_project) == ("k8s-label/team", "finops-jobs")


def test_serve_schedule_enforcement_slack_and_price_sync_flags(tmp_path: Path) -> None:
    token = tmp_path / "token"
    overrides = tmp_path / "prices.yaml"
    config = serve_config(
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
    config = config_of(*argv, "--aws.enabled", "--budgets.file=b.yaml")
    assert config == BudgetSyncConfig(
        budgets_file=Path("b.yaml"), clouds=dataclasses.replace(NO_CLOUDS, aws=_aws_enabled()), apply=apply
    )


def test_reconcile_takes_the_date_or_leaves_it_to_run_time() -> None:
    config = config_of("reconcile", "--aws.enabled", "--date=2026-11-27", "--reconcile.lag-hours=48")
    assert config == ReconcileConfig(
        clouds=dataclasses.replace(NO_CLOUDS, aws=_aws_enabled()),
        prometheus=PrometheusSettings(url="http://prometheus:9090"),
        reconciliation=ReconciliationSettings(lag_hours=48.0, gcp_billing_export=None),
        day=dt.date(2026, 11, 27),
    )
    yesterday_at_run_time = config_of("reconcile", "--aws.enabled")
    assert isinstance(yesterday_at_run_time, ReconcileConfig)
    assert yesterday_at_run_time.day is None


def test_digest_flags() -> None:
    assert config_of(
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
    plain = config_of("digest", "--team=research")
    assert isinstance(plain, DigestConfig)
    assert (plain.channel, plain.slack_base_url) == ("", None)


def test_price_sync_spot_window_defaults_to_a_week() -> None:
    assert config_of("price-sync", "--gcp.billing-account=A", "--price-sync.overrides-file=p.yaml") == PriceSyncConfig(
        clouds=dataclasses.replace(NO_CLOUDS, gcp=dataclasses.replace(NO_CLOUDS.gcp, billing_account="A")),
        overrides_file=Path("p.yaml"),
        spot_window=dt.timedelta(days=7),
    )


def _aws_enabled() -> AwsSettings:
    return dataclasses.replace(NO_CLOUDS.aws, enabled=True)


# --- flags that are not checked where they are not used (as before) ---------------------------------------


def test_serve_ignores_the_price_sync_interval_without_an_overrides_file() -> None:
    assert serve_config("--price-sync.interval=whenever").price_sync is None


def test_budget_sync_and_price_sync_ignore_the_billing_export_table_they_do_not_use() -> None:
    assert isinstance(config_of("plan", "--aws.enabled", "--gcp.billing-export-table=nope"), BudgetSyncConfig)
    assert isinstance(
        config_of("price-sync", "--aws.enabled", "--price-sync.overrides-file=p", "--gcp.billing-export-table=nope"),
        PriceSyncConfig,
    )


def test_export_flags_form_the_finance_export_settings(tmp_path: Path) -> None:
    files = serve_config("--export.format=csv", f"--export.out={tmp_path}", "--export.interval=30m")
    assert files.finance_export == ExportJobSettings(
        sink=SinkSettings(format="csv", out=tmp_path, bigquery_table="", flags=EXPORT_FLAGS),
        interval=dt.timedelta(minutes=30),
    )
    key = tmp_path / "key.json"
    table = serve_config("--export.format=bigquery", "--export.bigquery-table=my-project.finance.cost",
                         "--export.bigquery-endpoint=http://127.0.0.1:9", f"--gcp.credentials-file={key}")
    assert table.finance_export == ExportJobSettings(
        sink=SinkSettings(format="bigquery", out=Path("."), bigquery_table="my-project.finance.cost",
                          bigquery_endpoint="http://127.0.0.1:9", credentials_file=key, flags=EXPORT_FLAGS),
        interval=dt.timedelta(minutes=10),
    )
