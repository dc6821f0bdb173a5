"""Opt-in enforcement: freeze GPU requests with a ResourceQuota once a budget passes its hard threshold.

For a budget with `enforce: quota`, when month-to-date spend reaches
`hard_threshold_percent` of the month's amount, each of its namespaces gets the
ResourceQuota `gpucost-budget-<name>` capping `requests.nvidia.com/gpu` at the
GPUs requested by running pods now (running work continues, nothing new
scales up).  The quota is removed when the month rolls over or the budget is
raised above the spend.  Dry-run logs and counts the same actions without
writing.  `decide` is pure; `QuotaEnforcer` talks to the API server.

The sidecar writes only quotas it created: ours carry the managed-by label,
the budget's label and the month annotation.  Ownership is read again by a
fresh GET right before each write, and a delete carries that read's uid and
resourceVersion as preconditions, so a quota someone else made (or swapped
in meanwhile) under the same name is never modified or deleted.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from gpucost.budgets.spec import Budget, BudgetFile, Month
from gpucost.budgets.state import SidecarState
from gpucost.errors import SourceUnavailable

__all__ = [
    "BUDGET_LABEL",
    "MANAGED_BY",
    "MONTH_ANNOTATION",
    "EnforcementAction",
    "KubernetesUnavailable",
    "QuotaEnforcer",
    "decide",
    "load_core_v1",
    "quota_name",
    "spend_query",
]

log = logging.getLogger(__name__)

MANAGED_BY = "gpucost"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
BUDGET_LABEL = "gpucost.io/budget"
MONTH_ANNOTATION = "gpucost.io/budget-month"
GPU_RESOURCE = "requests.nvidia.com/gpu"
Decision = Literal["apply_quota", "remove_quota", "none"]


class KubernetesUnavailable(SourceUnavailable):
    """No API server to talk to: neither in a cluster nor given a kubeconfig (a dry run on a laptop)."""


@dataclass(frozen=True, slots=True)
class EnforcementAction:
    budget: str
    namespace: str
    action: Decision
    gpus: int | None = None
    reason: str = ""


def quota_name(budget: Budget) -> str:
    return f"gpucost-budget-{budget.name}"


def spend_query(budget: Budget) -> str:
    """The PromQL for a budget's month-to-date spend, at the narrowest recorded level its scope needs."""
    matchers = [f'team="{_escape(budget.scope.team)}"']
    level = "team"
    if budget.scope.namespace:
        matchers.append(f'namespace="{_escape(budget.scope.namespace)}"')
        level = "namespace_team"
    if budget.scope.model:
        matchers.append(f'model="{_escape(budget.scope.model)}"')
        level += "_model"
    return f"sum({level}:gpucost_spend_usd:month_to_date{{{','.join(matchers)}}})"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def decide(
    budget: Budget, spend_usd: float, month: Month, existing_quota_month: str | None
) -> tuple[Decision, str]:
    """What to do in one namespace given spend and the quota found there (its month, or None)."""
    amount = budget.amount_for(month)
    hard = budget.enforcement_threshold_percent()
    over = amount is not None and spend_usd >= amount * hard / 100.0
    if existing_quota_month is None:
        if over:
            return "apply_quota", f"spend {spend_usd:,.2f} USD passed {hard:g} % of {amount:,.2f} USD"
        return "none", ""
    if existing_quota_month != str(month):
        return "remove_quota", f"month rolled over ({existing_quota_month} -> {month})"
    if not over:
        return "remove_quota", "spend is below the hard threshold (budget raised)"
    return "none", ""


def load_core_v1(kubeconfig: str | None = None) -> Any:
    """The CoreV1 client: the in-cluster service account, else `kubeconfig`, else the default kubeconfig.

    Raises KubernetesUnavailable (one line) when none of them is there.
    """
    from kubernetes import client, config

    try:
        if kubeconfig:
            config.load_kube_config(config_file=kubeconfig)
        else:
            try:
                config.load_incluster_config()
            except config.ConfigException:
                config.load_kube_config()
    except (config.ConfigException, OSError) as err:
        where = f"--kubeconfig {kubeconfig}" if kubeconfig else "no in-cluster service account and no kubeconfig"
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise KubernetesUnavailable(f"no Kubernetes API access ({where}: {detail}); pass --kubeconfig") from err
    return client.CoreV1Api()


class QuotaEnforcer:
    def __init__(self, core_v1: Any, state: SidecarState, *, dry_run: bool = True) -> None:
        self._api = core_v1
        self._state = state
        self._dry_run = dry_run

    def run(
        self, budget_file: BudgetFile, spend_of: Callable[[Budget], float], now: dt.datetime
    ) -> list[EnforcementAction]:
        month = Month.of(now.astimezone(dt.UTC).date())
        actions: list[EnforcementAction] = []
        enforced = [budget for budget in budget_file.budgets if budget.enforce == "quota"]
        for budget in enforced:
            spend = spend_of(budget)
            for namespace in budget.enforcement_namespaces():
                actions.append(self._enforce(budget, namespace, spend, month))
        return [action for action in actions if action.action != "none"]

    def _enforce(self, budget: Budget, namespace: str, spend: float, month: Month) -> EnforcementAction:
        from kubernetes.client.exceptions import ApiException

        try:
            quota = self._read_quota(budget, namespace)
            if quota is not None and not _owned(quota, budget):
                return self._leave_foreign(budget, namespace)
            decision, reason = decide(budget, spend, month, _quota_month(quota) if quota is not None else None)
            gpus: int | None = None
            if decision == "apply_quota":
                gpus = self._gpus_in_use(namespace)
                if not self._dry_run and not self._create(budget, namespace, gpus, month):
                    return self._leave_foreign(budget, namespace)
            elif decision == "remove_quota" and not self._dry_run and not self._delete_owned(budget, namespace):
                return self._leave_foreign(budget, namespace)
        except ApiException as err:
            self._state.set_provider_up("kubernetes", "enforcement", False)
            raise SourceUnavailable(
                f"enforcement of {budget.name} in {namespace} failed: {err.status} {err.reason}"
            ) from err
        self._state.set_provider_up("kubernetes", "enforcement", True)
        if decision != "none":
            counted = decision + ("_dry_run" if self._dry_run else "")
            self._state.count_enforcement(budget.name, counted)
            log.warning(
                "enforcement%s: %s ResourceQuota %s in %s (%s)%s",
                " (dry-run, nothing written)" if self._dry_run else "",
                decision,
                quota_name(budget),
                namespace,
                reason,
                f", {GPU_RESOURCE}={gpus}" if gpus is not None else "",
            )
        return EnforcementAction(budget.name, namespace, decision, gpus, reason)

    def _leave_foreign(self, budget: Budget, namespace: str) -> EnforcementAction:
        log.warning(
            "enforcement: ResourceQuota %s in %s is not managed by gpucost-budgets "
            "(it lacks %s=%s, %s=%s or %s); left alone",
            quota_name(budget),
            namespace,
            MANAGED_BY_LABEL,
            MANAGED_BY,
            BUDGET_LABEL,
            budget.name,
            MONTH_ANNOTATION,
        )
        self._state.set_provider_up("kubernetes", "enforcement", True)
        return EnforcementAction(budget.name, namespace, "none", None, "foreign quota")

    def _read_quota(self, budget: Budget, namespace: str) -> Any | None:
        from kubernetes.client.exceptions import ApiException

        try:
            return self._api.read_namespaced_resource_quota(quota_name(budget), namespace)
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    def _create(self, budget: Budget, namespace: str, gpus: int, month: Month) -> bool:
        """Create our quota; False when a quota of that name exists by now (it is never replaced)."""
        from kubernetes.client.exceptions import ApiException

        if self._read_quota(budget, namespace) is not None:  # the fresh GET before the write
            return False
        try:
            self._api.create_namespaced_resource_quota(namespace, self._quota_body(budget, gpus, month))
        except ApiException as err:
            if err.status == 409:  # created by someone else between our GET and our POST
                return False
            raise
        return True

    def _delete_owned(self, budget: Budget, namespace: str) -> bool:
        """Delete our quota; False when the quota there now is not ours.

        The fresh GET proves ownership; its uid and resourceVersion as preconditions make the API server
        refuse the delete (409) if the object was replaced or changed after that GET.
        """
        from kubernetes.client.exceptions import ApiException

        quota = self._read_quota(budget, namespace)
        if quota is None:
            return True  # already gone, which is what the action wanted
        if not _owned(quota, budget):
            return False
        preconditions = {"uid": quota.metadata.uid, "resourceVersion": quota.metadata.resource_version}
        try:
            self._api.delete_namespaced_resource_quota(
                quota_name(budget), namespace, body={"preconditions": preconditions}
            )
        except ApiException as err:
            if err.status == 404:
                return True
            if err.status == 409:
                return False
            raise
        return True

    def _gpus_in_use(self, namespace: str) -> int:
        pods = self._api.list_namespaced_pod(namespace)
        total = 0
        for pod in pods.items:
            if pod.status is not None and pod.status.phase in ("Succeeded", "Failed"):
                continue
            for container in pod.spec.containers or []:
                requests = (container.resources.requests or {}) if container.resources else {}
                limits = (container.resources.limits or {}) if container.resources else {}
                total += int(requests.get("nvidia.com/gpu", limits.get("nvidia.com/gpu", 0)))
        return total

    @staticmethod
    def _quota_body(budget: Budget, gpus: int, month: Month) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {
                "name": quota_name(budget),
                "labels": {MANAGED_BY_LABEL: MANAGED_BY, BUDGET_LABEL: budget.name},
                "annotations": {MONTH_ANNOTATION: str(month)},
            },
            "spec": {"hard": {GPU_RESOURCE: str(gpus)}},
        }


def _owned(quota: Any, budget: Budget) -> bool:
    """Whether this is a quota the sidecar created for `budget`: all three of its marks, not the generic label alone."""
    labels: Mapping[str, str] = quota.metadata.labels or {}
    annotations: Mapping[str, str] = quota.metadata.annotations or {}
    return (
        labels.get(MANAGED_BY_LABEL) == MANAGED_BY
        and labels.get(BUDGET_LABEL) == budget.name
        and bool(annotations.get(MONTH_ANNOTATION))
    )


def _quota_month(quota: Any) -> str:
    annotations: Mapping[str, str] = quota.metadata.annotations or {}
    return annotations.get(MONTH_ANNOTATION, "")
