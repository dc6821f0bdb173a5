"""The sidecar's flags as typed, frozen settings: each command's flags parsed and checked once, here.

`cli.build_parser` declares the flags; `config_from_args` turns the parsed flags of one command into that
command's config (`SidecarConfig` for `serve`, `BudgetSyncConfig`, `ReconcileConfig`, `DigestConfig`,
`PriceSyncConfig` for the one-shot commands), built from the groups the flags form (`CloudSettings`,
`PrometheusSettings`, `SlackSettings`, `JobSchedule`, ...).  Every check of a flag's value, and of flags
taken together, happens while building: a bad one is a `UserInputError` naming the flag, which the CLI
prints as one line with exit code 2, before any server, thread or cloud client exists.

Files are only named here: `gpucost.credentials` reads the credential files (and `digest` asks for
a Slack token unless `--dry-run`, since SLACK_BOT_TOKEN may supply it), the spec module the budgets file.
No cloud library is imported at module level, so `--help` keeps working without the `budgets` extra.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gpucost.budgets.server import parse_listen_address
from gpucost.durations import DurationError, parse_simple_duration
from gpucost.errors import UserInputError

if TYPE_CHECKING:
    from gpucost.budgets.gcp_billing_export import ExportTable
    from gpucost.finance.job import ExportJobSettings

__all__ = [
    "DEFAULT_SPOT_WINDOW",
    "AwsSettings",
    "BillingExportSettings",
    "BudgetSyncConfig",
    "CloudSettings",
    "CommandConfig",
    "DigestConfig",
    "EnforcementSettings",
    "GcpSettings",
    "JobSchedule",
    "PriceSyncConfig",
    "PriceSyncSchedule",
    "PrometheusSettings",
    "ReconcileConfig",
    "ReconciliationSettings",
    "SidecarConfig",
    "SlackSettings",
    "config_from_args",
    "parse_duration",
]

# `serve` has no --spot.window: its daily price sync uses the one-shot command's default window.
DEFAULT_SPOT_WINDOW = dt.timedelta(days=7)


# --- the groups the flags form ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AwsSettings:
    """`--aws.*`: AWS Budgets, anomaly detection, Cost Explorer and the Pricing API."""

    enabled: bool
    account_id: str  # "" asks STS for the caller's account
    region: str
    shared_credentials_file: Path | None  # None: the standard chain (IRSA, profile)


@dataclass(frozen=True, slots=True)
class GcpSettings:
    """`--gcp.*` for GCP budgets and prices; both are on when a billing account is named."""

    billing_account: str
    projects: tuple[str, ...]  # empty: every project of the billing account
    pubsub_topic: str
    api_endpoint: str | None  # None: Google's own endpoints
    region: str
    credentials_file: Path | None  # None: Workload Identity / Application Default Credentials

    @property
    def budgets_enabled(self) -> bool:
        return bool(self.billing_account)


@dataclass(frozen=True, slots=True)
class CloudSettings:
    aws: AwsSettings
    gcp: GcpSettings

    @property
    def credential_files(self) -> tuple[Path, ...]:
        return tuple(p for p in (self.aws.shared_credentials_file, self.gcp.credentials_file) if p is not None)


@dataclass(frozen=True, slots=True)
class BillingExportSettings:
    """`--gcp.billing-export-table` and its companions: the source of GCP's billed cost per team."""

    table: ExportTable
    label_key: str
    job_project: str  # the project the BigQuery job runs in
    endpoint: str


@dataclass(frozen=True, slots=True)
class ReconciliationSettings:
    lag_hours: float  # a day is final this long after its end
    gcp_billing_export: BillingExportSettings | None  # None: no GCP reconciliation

    def enabled_for(self, clouds: CloudSettings) -> bool:
        return clouds.aws.enabled or self.gcp_billing_export is not None


@dataclass(frozen=True, slots=True)
class PrometheusSettings:
    url: str


@dataclass(frozen=True, slots=True)
class SlackSettings:
    bot_token_file: Path | None  # None: SLACK_BOT_TOKEN (development), else no Slack


@dataclass(frozen=True, slots=True)
class JobSchedule:
    """When `serve` runs its jobs."""

    reload_interval: dt.timedelta  # re-reading the budgets file
    sync_interval: dt.timedelta  # cloud budget sync, anomaly detection and enforcement
    reconcile_hour: int  # UTC hour of the daily reconciliation
    digest_weekday: int  # 0 = Monday


@dataclass(frozen=True, slots=True)
class PriceSyncSchedule:
    """`serve`'s periodic price sync, on when `--price-sync.overrides-file` is given."""

    overrides_file: Path
    interval: dt.timedelta


@dataclass(frozen=True, slots=True)
class EnforcementSettings:
    kubeconfig: str | None  # None: in-cluster service account, else the default kubeconfig


# --- one config per command -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SidecarConfig:
    """`serve`."""

    budgets_file: Path
    dry_run: bool
    listen_address: str  # as written, for the log
    listen_on: tuple[str, int]  # (host, port) to bind
    clouds: CloudSettings
    prometheus: PrometheusSettings
    slack: SlackSettings
    schedule: JobSchedule
    reconciliation: ReconciliationSettings
    enforcement: EnforcementSettings
    price_sync: PriceSyncSchedule | None
    finance_export: ExportJobSettings | None  # None: no export job (`--export.format` not given)


@dataclass(frozen=True, slots=True)
class BudgetSyncConfig:
    """`plan` (apply is False) and `sync` (apply unless --dry-run)."""

    budgets_file: Path
    clouds: CloudSettings
    apply: bool


@dataclass(frozen=True, slots=True)
class ReconcileConfig:
    clouds: CloudSettings
    prometheus: PrometheusSettings
    reconciliation: ReconciliationSettings
    day: dt.date | None  # None: yesterday (UTC) when the command runs


@dataclass(frozen=True, slots=True)
class DigestConfig:
    budgets_file: Path
    dry_run: bool
    prometheus: PrometheusSettings
    slack: SlackSettings
    team: str
    channel: str  # "": the team's channel from the budgets file
    slack_base_url: str | None  # None: Slack's own API


@dataclass(frozen=True, slots=True)
class PriceSyncConfig:
    clouds: CloudSettings
    overrides_file: Path
    spot_window: dt.timedelta


CommandConfig = SidecarConfig | BudgetSyncConfig | ReconcileConfig | DigestConfig | PriceSyncConfig


def config_from_args(args: argparse.Namespace) -> CommandConfig:
    """The config of the command `args` was parsed for (not `validate`, which takes a file and no flags)."""
    builders: dict[str, Callable[[argparse.Namespace], CommandConfig]] = {
        "serve": _sidecar_config,
        "plan": _budget_sync_config,
        "sync": _budget_sync_config,
        "reconcile": _reconcile_config,
        "digest": _digest_config,
        "price-sync": _price_sync_config,
    }
    return builders[args.command](args)


def parse_duration(text: str, flag: str) -> dt.timedelta:
    """A positive `30s`, `10m`, `1h` or `7d` flag value; UserInputError names the flag."""
    try:
        seconds = parse_simple_duration(text)
        if seconds > 0:
            return dt.timedelta(seconds=seconds)
    except (DurationError, OverflowError):  # OverflowError: more days than a timedelta holds
        pass
    raise UserInputError(flag, "", text, "must be a positive duration like 30s, 10m, 1h or 7d")


# --- builders: the only code that reads the argparse Namespace ---------------------------------------------


def _sidecar_config(args: argparse.Namespace) -> SidecarConfig:
    listen_address = str(args.listen_address)
    return SidecarConfig(
        budgets_file=Path(args.budgets_file),
        dry_run=bool(args.dry_run),
        listen_address=listen_address,
        listen_on=parse_listen_address(listen_address),
        clouds=_cloud_settings(args),
        prometheus=_prometheus_settings(args),
        slack=_slack_settings(args),
        schedule=_job_schedule(args),
        reconciliation=_reconciliation_settings(args),
        enforcement=EnforcementSettings(kubeconfig=_optional_text(args.kubeconfig)),
        price_sync=_price_sync_schedule(args),
        finance_export=_finance_export_settings(args),
    )


def _budget_sync_config(args: argparse.Namespace) -> BudgetSyncConfig:
    clouds = _cloud_settings(args)
    if not clouds.aws.enabled and not clouds.gcp.budgets_enabled:
        raise UserInputError("", "--aws.enabled/--gcp.billing-account", None, "enable at least one cloud")
    return BudgetSyncConfig(
        budgets_file=Path(args.budgets_file),
        clouds=clouds,
        apply=args.command == "sync" and not args.dry_run,
    )


def _reconcile_config(args: argparse.Namespace) -> ReconcileConfig:
    day = _reconcile_day(str(args.date))
    clouds = _cloud_settings(args)
    reconciliation = _reconciliation_settings(args)
    if not reconciliation.enabled_for(clouds):
        raise UserInputError(
            "", "--aws.enabled/--gcp.billing-export-table", None, "enable at least one cloud to reconcile"
        )
    return ReconcileConfig(
        clouds=clouds, prometheus=_prometheus_settings(args), reconciliation=reconciliation, day=day
    )


def _digest_config(args: argparse.Namespace) -> DigestConfig:
    return DigestConfig(
        budgets_file=Path(args.budgets_file),
        dry_run=bool(args.dry_run),
        prometheus=_prometheus_settings(args),
        slack=_slack_settings(args),
        team=str(args.team),
        channel=str(args.slack_channel),
        slack_base_url=_optional_text(args.slack_base_url),
    )


def _price_sync_config(args: argparse.Namespace) -> PriceSyncConfig:
    spot_window = parse_duration(str(args.spot_window), "--spot.window")
    clouds = _cloud_settings(args)
    if not clouds.aws.enabled and not clouds.gcp.budgets_enabled:
        raise UserInputError("", "--aws.enabled/--gcp.billing-account", None, "enable at least one cloud")
    return PriceSyncConfig(clouds=clouds, overrides_file=Path(args.overrides_file), spot_window=spot_window)


def _cloud_settings(args: argparse.Namespace) -> CloudSettings:
    aws = AwsSettings(
        enabled=bool(args.aws_enabled),
        account_id=str(args.aws_account_id),
        region=str(args.aws_region),
        shared_credentials_file=_optional_path(args.aws_shared_credentials_file),
    )
    gcp = GcpSettings(
        billing_account=str(args.gcp_billing_account),
        projects=tuple(p.strip() for p in str(args.gcp_projects).split(",") if p.strip()),
        pubsub_topic=str(args.gcp_pubsub_topic),
        api_endpoint=_optional_text(args.gcp_api_endpoint),
        region=str(args.gcp_region),
        credentials_file=_optional_path(args.gcp_credentials_file),
    )
    return CloudSettings(aws=aws, gcp=gcp)


def _reconciliation_settings(args: argparse.Namespace) -> ReconciliationSettings:
    return ReconciliationSettings(lag_hours=float(args.lag_hours), gcp_billing_export=_billing_export_settings(args))


def _billing_export_settings(args: argparse.Namespace) -> BillingExportSettings | None:
    """Checked only by the commands that reconcile (`serve`, `reconcile`), as before; the others ignore the flag."""
    value = str(args.gcp_billing_export_table or "")
    if not value:
        return None
    # Imported here: the module needs `requests` (the budgets extra), and `--help` must work without it.
    from gpucost.budgets.gcp_billing_export import check_project, parse_export_table

    table = parse_export_table(value)
    label_key = str(args.gcp_billing_export_label)
    if not label_key:
        raise UserInputError("--gcp.billing-export-label", "", label_key, "must be a label key, e.g. team")
    project = str(args.gcp_bigquery_project)
    return BillingExportSettings(
        table=table,
        label_key=label_key,
        job_project=check_project(project) if project else table.project,
        endpoint=str(args.gcp_bigquery_endpoint),
    )


def _job_schedule(args: argparse.Namespace) -> JobSchedule:
    return JobSchedule(
        reload_interval=parse_duration(str(args.reload_interval), "--reload.interval"),
        sync_interval=parse_duration(str(args.sync_interval), "--sync.interval"),
        reconcile_hour=int(args.reconcile_hour),
        digest_weekday=int(args.digest_weekday),
    )


def _price_sync_schedule(args: argparse.Namespace) -> PriceSyncSchedule | None:
    """None without an overrides file; `--price-sync.interval` is then unused and, as before, not checked."""
    overrides_file = _optional_path(args.overrides_file)
    if overrides_file is None:
        return None
    return PriceSyncSchedule(
        overrides_file=overrides_file,
        interval=parse_duration(str(args.price_sync_interval), "--price-sync.interval"),
    )


def _finance_export_settings(args: argparse.Namespace) -> ExportJobSettings | None:
    if not args.export_format:
        return None
    from gpucost.finance.job import export_job_settings

    return export_job_settings(
        str(args.export_format), out=_optional_path(args.export_out), table=str(args.export_bigquery_table),
        endpoint=str(args.export_bigquery_endpoint), credentials_file=_optional_path(args.gcp_credentials_file),
        interval=parse_duration(str(args.export_interval), "--export.interval"),
    )


def _reconcile_day(text: str) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError as err:
        raise UserInputError("--date", "", text, "must be a date YYYY-MM-DD") from err


def _prometheus_settings(args: argparse.Namespace) -> PrometheusSettings:
    return PrometheusSettings(url=str(args.prometheus_url))


def _slack_settings(args: argparse.Namespace) -> SlackSettings:
    return SlackSettings(bot_token_file=_optional_path(args.slack_bot_token_file))


def _optional_path(value: object) -> Path | None:
    return None if value is None else Path(str(value))


def _optional_text(value: object) -> str | None:
    """Flags whose empty default means "not set"."""
    return str(value) if value else None
