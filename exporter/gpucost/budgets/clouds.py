"""Build the cloud adapters from command-line flags (clients, account ids, endpoints).

Clients use the standard credential chains (IRSA, Workload Identity), or the
files named by `--aws.shared-credentials-file` and `--gcp.credentials-file`
(read by `gpucost.budgets.credentials`); `AWS_ENDPOINT_URL` (honoured by
boto3), `--gcp.api-endpoint` and `--gcp.bigquery-endpoint` point them elsewhere,
e.g. at local test servers (with `GPUCOST_GCP_ANONYMOUS` set for GCP).
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpucost.budgets.aws_anomaly import AwsAnomalySync
from gpucost.budgets.aws_budgets import AwsBudgetSync
from gpucost.budgets.gcp_budgets import GcpBudgetSync, make_budget_client
from gpucost.budgets.price_sync import PriceProvider
from gpucost.budgets.reconcile import ActualCostSource, Reconciler
from gpucost.budgets.retry import aws_client_config
from gpucost.budgets.spec import BudgetFile, Month
from gpucost.budgets.state import SidecarState
from gpucost.errors import SourceUnavailable, UserInputError

if TYPE_CHECKING:
    from gpucost.budgets.gcp_billing_export import BillingExportSource

__all__ = [
    "aws_client",
    "check_credential_files",
    "gcp_credentials",
    "make_aws_anomaly_sync",
    "make_aws_budget_sync",
    "make_billing_export_source",
    "make_gcp_budget_sync",
    "make_reconcilers",
    "plan_and_apply",
    "price_providers",
]


def aws_client(args: argparse.Namespace, service: str, region: str) -> Any:
    """A client of its own Session (sessions are not thread-safe and the jobs run in threads).

    `--aws.shared-credentials-file` is handed to botocore as the Session's `credentials_file`, in place of
    ~/.aws/credentials; it is never exported to the environment.
    """
    import boto3
    import botocore.session

    core = botocore.session.get_session()
    credentials_file: Path | None = getattr(args, "aws_shared_credentials_file", None)
    if credentials_file is not None:
        core.set_config_variable("credentials_file", str(_checked_aws_credentials_file(credentials_file)))
    return boto3.Session(botocore_session=core).client(service, region_name=region, config=aws_client_config())


@functools.cache
def _checked_aws_credentials_file(path: Path) -> Path:
    from gpucost.budgets.credentials import check_aws_credentials_file

    return check_aws_credentials_file(path)


def check_credential_files(args: argparse.Namespace) -> None:
    """Read the credential files the flags name now, so that a bad one is one line and exit 2 before any job."""
    if getattr(args, "aws_shared_credentials_file", None) is not None:
        _checked_aws_credentials_file(args.aws_shared_credentials_file)
    gcp_credentials(args)


def gcp_credentials(args: argparse.Namespace) -> Any:
    """Credentials from `--gcp.credentials-file`, or None for Application Default Credentials."""
    path: Path | None = getattr(args, "gcp_credentials_file", None)
    if path is None:
        return None
    return _gcp_key_file_credentials(path)


@functools.cache
def _gcp_key_file_credentials(path: Path) -> Any:
    from gpucost.budgets.credentials import load_gcp_credentials

    return load_gcp_credentials(path)


def aws_account_id(args: argparse.Namespace) -> str:
    if args.aws_account_id:
        return str(args.aws_account_id)
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return str(aws_client(args, "sts", args.aws_region).get_caller_identity()["Account"])
    except (BotoCoreError, ClientError) as err:
        raise SourceUnavailable(f"AWS STS get_caller_identity failed (set --aws.account-id?): {err}") from err


def make_aws_budget_sync(args: argparse.Namespace, state: SidecarState | None = None) -> AwsBudgetSync:
    # AWS Budgets is a global service served from us-east-1.
    return AwsBudgetSync(aws_client(args, "budgets", "us-east-1"), aws_account_id(args), state=state)


def make_aws_anomaly_sync(args: argparse.Namespace) -> AwsAnomalySync:
    # Cost Explorer (and its anomaly detection) is served from us-east-1.
    return AwsAnomalySync(aws_client(args, "ce", "us-east-1"))


def _anonymous() -> bool:
    return bool(os.environ.get("GPUCOST_GCP_ANONYMOUS"))


def make_gcp_budget_sync(args: argparse.Namespace) -> GcpBudgetSync:
    client = make_budget_client(
        args.gcp_api_endpoint or None, anonymous=_anonymous(), credentials=gcp_credentials(args)
    )
    return GcpBudgetSync(client, args.gcp_billing_account, pubsub_topic=args.gcp_pubsub_topic)


def _projects(args: argparse.Namespace) -> list[str]:
    return [p.strip() for p in str(args.gcp_projects).split(",") if p.strip()]


def plan_and_apply(
    args: argparse.Namespace, budget_file: BudgetFile, month: Month, *, apply: bool
) -> Iterator[str]:
    if args.aws_enabled:
        aws = make_aws_budget_sync(args)
        aws_plan = aws.plan(budget_file, month)
        yield aws_plan.render()
        if apply:
            aws.apply(aws_plan)
        if budget_file.anomaly_detection is not None:
            anomaly = make_aws_anomaly_sync(args)
            anomaly_plan = anomaly.plan(budget_file)
            yield anomaly_plan.render()
            if apply:
                anomaly.apply(anomaly_plan)
    if args.gcp_billing_account:
        gcp = make_gcp_budget_sync(args)
        gcp_plan = gcp.plan(budget_file, month, _projects(args))
        yield gcp_plan.render()
        if apply:
            gcp.apply(gcp_plan)


def make_billing_export_source(args: argparse.Namespace) -> BillingExportSource | None:
    """The GCP billing-export source when `--gcp.billing-export-table` is set; flags are checked before any call."""
    from gpucost.budgets.gcp_billing_export import (
        BillingExportSource,
        check_project,
        make_session,
        parse_export_table,
    )

    value = str(getattr(args, "gcp_billing_export_table", "") or "")
    if not value:
        return None
    table = parse_export_table(value)
    label_key = str(args.gcp_billing_export_label)
    if not label_key:
        raise UserInputError("--gcp.billing-export-label", "", label_key, "must be a label key, e.g. team")
    return BillingExportSource(
        table,
        label_key=label_key,
        job_project=check_project(args.gcp_bigquery_project) if args.gcp_bigquery_project else table.project,
        endpoint=args.gcp_bigquery_endpoint,
        session_factory=functools.partial(make_session, _anonymous(), gcp_credentials(args)),
    )


def make_reconcilers(args: argparse.Namespace, state: SidecarState | None = None) -> list[Reconciler]:
    """One Reconciler per enabled cloud (AWS, then GCP), sharing one Prometheus estimate source and one state.

    Results and health are keyed by provider in the state, so the clouds never overwrite each other.
    """
    from gpucost.budgets.aws_cost_explorer import CostExplorerSource
    from gpucost.budgets.prometheus_api import PrometheusClient, PrometheusEstimateSource

    gcp = make_billing_export_source(args)  # first: a bad flag is exit 2 before any client is built
    sources: list[ActualCostSource] = []
    if args.aws_enabled:
        # Cost Explorer is served from us-east-1 whatever the workload region.
        sources.append(CostExplorerSource(aws_client(args, "ce", "us-east-1")))
    if gcp is not None:
        sources.append(gcp)
    estimate = PrometheusEstimateSource(PrometheusClient(args.prometheus_url))
    shared = state or SidecarState()
    lag_hours = float(getattr(args, "lag_hours", 24.0))
    return [Reconciler(source, estimate, shared, lag_hours=lag_hours) for source in sources]


def price_providers(args: argparse.Namespace, spot_window: dt.timedelta) -> dict[str, PriceProvider]:
    providers: dict[str, PriceProvider] = {}
    if args.aws_enabled:
        from gpucost.budgets.aws_prices import AwsPriceSource

        # The Pricing API has endpoints in us-east-1 and a few others only; prices are per region anyway.
        aws = AwsPriceSource(
            aws_client(args, "pricing", "us-east-1"),
            aws_client(args, "ec2", args.aws_region),
            args.aws_region,
            spot_window=spot_window,
        )
        providers["aws"] = aws.entries
    if args.gcp_billing_account:
        from gpucost.budgets.gcp_prices import GcpPriceSource, make_catalog_client

        gcp = GcpPriceSource(
            make_catalog_client(args.gcp_api_endpoint or None, _anonymous(), gcp_credentials(args)), args.gcp_region
        )
        providers["gcp"] = gcp.entries
    return providers
