"""Build the cloud adapters from the sidecar's typed settings (clients, account ids, endpoints).

Clients use the standard credential chains (IRSA, Workload Identity), or the
files named by `--aws.shared-credentials-file` and `--gcp.credentials-file`
(read by `gpucost.credentials`); `AWS_ENDPOINT_URL` (honoured by
boto3), `--gcp.api-endpoint` and `--gcp.bigquery-endpoint` point them elsewhere,
e.g. at local test servers (with `GPUCOST_GCP_ANONYMOUS` set for GCP).
"""

from __future__ import annotations

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
from gpucost.budgets.settings import (
    AwsSettings,
    BillingExportSettings,
    CloudSettings,
    GcpSettings,
    PrometheusSettings,
    ReconciliationSettings,
)
from gpucost.budgets.spec import BudgetFile, Month
from gpucost.budgets.state import SidecarState
from gpucost.errors import SourceUnavailable

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


def aws_client(aws: AwsSettings, service: str, region: str) -> Any:
    """A client of its own Session (sessions are not thread-safe and the jobs run in threads).

    `--aws.shared-credentials-file` is handed to botocore as the Session's `credentials_file`, in place of
    ~/.aws/credentials; it is never exported to the environment.
    """
    import boto3
    import botocore.session

    core = botocore.session.get_session()
    if aws.shared_credentials_file is not None:
        core.set_config_variable("credentials_file", str(_checked_aws_credentials_file(aws.shared_credentials_file)))
    return boto3.Session(botocore_session=core).client(service, region_name=region, config=aws_client_config())


@functools.cache
def _checked_aws_credentials_file(path: Path) -> Path:
    from gpucost.credentials import check_aws_credentials_file

    return check_aws_credentials_file(path)


def check_credential_files(clouds: CloudSettings) -> None:
    """Read the credential files the flags name now, so that a bad one is one line and exit 2 before any job."""
    if clouds.aws.shared_credentials_file is not None:
        _checked_aws_credentials_file(clouds.aws.shared_credentials_file)
    gcp_credentials(clouds.gcp)


def gcp_credentials(gcp: GcpSettings) -> Any:
    """Credentials from `--gcp.credentials-file`, or None for Application Default Credentials."""
    if gcp.credentials_file is None:
        return None
    return _gcp_key_file_credentials(gcp.credentials_file)


@functools.cache
def _gcp_key_file_credentials(path: Path) -> Any:
    from gpucost.credentials import load_gcp_credentials

    return load_gcp_credentials(path)


def aws_account_id(aws: AwsSettings) -> str:
    if aws.account_id:
        return aws.account_id
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return str(aws_client(aws, "sts", aws.region).get_caller_identity()["Account"])
    except (BotoCoreError, ClientError) as err:
        raise SourceUnavailable(f"AWS STS get_caller_identity failed (set --aws.account-id?): {err}") from err


def make_aws_budget_sync(aws: AwsSettings, state: SidecarState | None = None) -> AwsBudgetSync:
    # AWS Budgets is a global service served from us-east-1.
    return AwsBudgetSync(aws_client(aws, "budgets", "us-east-1"), aws_account_id(aws), state=state)


def make_aws_anomaly_sync(aws: AwsSettings) -> AwsAnomalySync:
    # Cost Explorer (and its anomaly detection) is served from us-east-1.
    return AwsAnomalySync(aws_client(aws, "ce", "us-east-1"))


def _anonymous() -> bool:
    return bool(os.environ.get("GPUCOST_GCP_ANONYMOUS"))


def make_gcp_budget_sync(gcp: GcpSettings) -> GcpBudgetSync:
    client = make_budget_client(gcp.api_endpoint, anonymous=_anonymous(), credentials=gcp_credentials(gcp))
    return GcpBudgetSync(client, gcp.billing_account, pubsub_topic=gcp.pubsub_topic)


def plan_and_apply(clouds: CloudSettings, budget_file: BudgetFile, month: Month, *, apply: bool) -> Iterator[str]:
    if clouds.aws.enabled:
        aws = make_aws_budget_sync(clouds.aws)
        aws_plan = aws.plan(budget_file, month)
        yield aws_plan.render()
        if apply:
            aws.apply(aws_plan)
        if budget_file.anomaly_detection is not None:
            anomaly = make_aws_anomaly_sync(clouds.aws)
            anomaly_plan = anomaly.plan(budget_file)
            yield anomaly_plan.render()
            if apply:
                anomaly.apply(anomaly_plan)
    if clouds.gcp.budgets_enabled:
        gcp = make_gcp_budget_sync(clouds.gcp)
        gcp_plan = gcp.plan(budget_file, month, clouds.gcp.projects)
        yield gcp_plan.render()
        if apply:
            gcp.apply(gcp_plan)


def make_billing_export_source(export: BillingExportSettings, gcp: GcpSettings) -> BillingExportSource:
    """The GCP billing-export source; its flags were checked when the settings were built."""
    from gpucost.budgets.gcp_billing_export import BillingExportSource, make_session

    return BillingExportSource(
        export.table,
        label_key=export.label_key,
        job_project=export.job_project,
        endpoint=export.endpoint,
        session_factory=functools.partial(make_session, _anonymous(), gcp_credentials(gcp)),
    )


def make_reconcilers(
    clouds: CloudSettings,
    reconciliation: ReconciliationSettings,
    prometheus: PrometheusSettings,
    state: SidecarState | None = None,
) -> list[Reconciler]:
    """One Reconciler per enabled cloud (AWS, then GCP), sharing one Prometheus estimate source and one state.

    Results and health are keyed by provider in the state, so the clouds never overwrite each other.
    """
    from gpucost.budgets.aws_cost_explorer import CostExplorerSource
    from gpucost.budgets.prometheus_api import PrometheusEstimateSource
    from gpucost.promapi import PrometheusClient

    sources: list[ActualCostSource] = []
    if clouds.aws.enabled:
        # Cost Explorer is served from us-east-1 whatever the workload region.
        sources.append(CostExplorerSource(aws_client(clouds.aws, "ce", "us-east-1")))
    if reconciliation.gcp_billing_export is not None:
        sources.append(make_billing_export_source(reconciliation.gcp_billing_export, clouds.gcp))
    estimate = PrometheusEstimateSource(PrometheusClient(prometheus.url))
    shared = state or SidecarState()
    return [Reconciler(source, estimate, shared, lag_hours=reconciliation.lag_hours) for source in sources]


def price_providers(clouds: CloudSettings, spot_window: dt.timedelta) -> dict[str, PriceProvider]:
    providers: dict[str, PriceProvider] = {}
    if clouds.aws.enabled:
        from gpucost.budgets.aws_prices import AwsPriceSource

        # The Pricing API has endpoints in us-east-1 and a few others only; prices are per region anyway.
        aws = AwsPriceSource(
            aws_client(clouds.aws, "pricing", "us-east-1"),
            aws_client(clouds.aws, "ec2", clouds.aws.region),
            clouds.aws.region,
            spot_window=spot_window,
        )
        providers["aws"] = aws.entries
    if clouds.gcp.budgets_enabled:
        from gpucost.budgets.gcp_prices import GcpPriceSource, make_catalog_client

        gcp = GcpPriceSource(
            make_catalog_client(clouds.gcp.api_endpoint, _anonymous(), gcp_credentials(clouds.gcp)), clouds.gcp.region
        )
        providers["gcp"] = gcp.entries
    return providers
