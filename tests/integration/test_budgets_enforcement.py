"""Quota enforcement against a real Kubernetes API HTTP server, through the official client and a kubeconfig."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gpucost.budgets.collector import build_registry
from gpucost.budgets.enforcement import QuotaEnforcer, load_core_v1, spend_query
from gpucost.budgets.spec import Budget, BudgetFile, parse_budget_file
from gpucost.budgets.state import SidecarState
from gpucost_testing.fake_apiserver import FakeApiServer

pytestmark = pytest.mark.integration

NOVEMBER_28 = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
DECEMBER_1 = dt.datetime(2026, 12, 1, 0, 30, tzinfo=dt.UTC)
QUOTA = "gpucost-budget-platform-inference"


def _budgets(monthly_usd: float) -> BudgetFile:
    return parse_budget_file(
        {
            "budgets": [
                {
                    "name": "platform-inference",
                    "scope": {"team": "platform", "namespace": "inference"},
                    "monthly_usd": monthly_usd,
                    "enforce": "quota",
                    "hard_threshold_percent": 100,
                },
                {"name": "research", "scope": {"team": "research", "namespace": "research"}, "monthly_usd": 10},
            ]
        },
        "budgets.yaml",
    )


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[FakeApiServer, Any]]:
    with FakeApiServer() as server:
        for name, gpus, phase in (("llm-0", "4", "Running"), ("llm-1", "2", "Pending"), ("old", "8", "Succeeded")):
            server.put(
                "pods",
                {
                    "metadata": {"name": name, "namespace": "inference"},
                    "spec": {
                        "containers": [
                            {"name": "main", "resources": {"limits": {"nvidia.com/gpu": gpus}}},
                            {"name": "sidecar", "resources": {"requests": {"cpu": "100m"}}},
                        ]
                    },
                    "status": {"phase": phase},
                },
            )
        server.put("pods", _gpu_pod("research", "train-0", "8"))
        yield server, load_core_v1(str(server.write_kubeconfig(tmp_path / "kubeconfig")))


def _gpu_pod(namespace: str, name: str, gpus: str) -> dict[str, Any]:
    resources = {"requests": {"nvidia.com/gpu": gpus}, "limits": {"nvidia.com/gpu": gpus}}
    return {
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"containers": [{"name": "main", "resources": resources}]},
        "status": {"phase": "Running"},
    }


def _counts(state: SidecarState) -> dict[tuple[str, str], int]:
    return state.snapshot().enforcement_actions


def test_dry_run_plans_the_quota_but_writes_nothing(cluster: tuple[FakeApiServer, Any]) -> None:
    server, core_v1 = cluster
    state = SidecarState()
    actions = QuotaEnforcer(core_v1, state, dry_run=True).run(_budgets(1000), lambda b: 1200.0, NOVEMBER_28)
    assert [(a.namespace, a.action, a.gpus) for a in actions] == [("inference", "apply_quota", 6)]
    assert server.get("resourcequotas", QUOTA, "inference") is None
    assert not [r for r in server.requests if r.method != "GET"]
    assert _counts(state) == {("platform-inference", "apply_quota_dry_run"): 1}


def test_quota_freezes_gpus_in_use_stays_while_over_and_goes_at_month_rollover(
    cluster: tuple[FakeApiServer, Any],
) -> None:
    server, core_v1 = cluster
    state = SidecarState()
    enforcer = QuotaEnforcer(core_v1, state, dry_run=False)
    assert enforcer.run(_budgets(1000), lambda b: 999.0, NOVEMBER_28) == []  # below 100 %: nothing
    assert server.get("resourcequotas", QUOTA, "inference") is None

    enforcer.run(_budgets(1000), lambda b: 1000.0, NOVEMBER_28)
    quota = server.get("resourcequotas", QUOTA, "inference")
    assert quota is not None
    assert quota["spec"] == {"hard": {"requests.nvidia.com/gpu": "6"}}  # 4 running + 2 pending; finished pods free
    assert quota["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "gpucost"
    assert quota["metadata"]["annotations"] == {"gpucost.io/budget-month": "2026-11"}
    assert server.get("resourcequotas", "gpucost-budget-research", "research") is None  # enforce: off

    server.put("pods", _gpu_pod("inference", "llm-2", "1"))  # scaling up does not move the frozen cap
    assert enforcer.run(_budgets(1000), lambda b: 1500.0, NOVEMBER_28) == []
    assert server.get("resourcequotas", QUOTA, "inference")["spec"]["hard"] == {"requests.nvidia.com/gpu": "6"}  # type: ignore[index]

    removed = enforcer.run(_budgets(1000), lambda b: 0.0, DECEMBER_1)
    assert [(a.action, a.reason) for a in removed] == [("remove_quota", "month rolled over (2026-11 -> 2026-12)")]
    assert server.get("resourcequotas", QUOTA, "inference") is None
    assert _counts(state) == {("platform-inference", "apply_quota"): 1, ("platform-inference", "remove_quota"): 1}
    exposition = build_registry(state).get_sample_value(
        "gpucost_enforcement_actions_total", {"budget": "platform-inference", "action": "remove_quota"}
    )
    assert exposition == 1.0
    assert state.snapshot().provider_up[("kubernetes", "enforcement")] is True


def test_raising_the_budget_above_spend_removes_the_quota(cluster: tuple[FakeApiServer, Any]) -> None:
    server, core_v1 = cluster
    state = SidecarState()
    enforcer = QuotaEnforcer(core_v1, state, dry_run=False)
    enforcer.run(_budgets(1000), lambda b: 1100.0, NOVEMBER_28)
    assert server.get("resourcequotas", QUOTA, "inference") is not None
    actions = enforcer.run(_budgets(2000), lambda b: 1100.0, NOVEMBER_28)
    assert [a.action for a in actions] == ["remove_quota"]
    assert server.get("resourcequotas", QUOTA, "inference") is None


def test_a_quota_of_the_same_name_not_managed_by_gpucost_is_never_touched(cluster: tuple[FakeApiServer, Any]) -> None:
    server, core_v1 = cluster
    server.put(
        "resourcequotas",
        {"metadata": {"name": QUOTA, "namespace": "inference"}, "spec": {"hard": {"requests.nvidia.com/gpu": "64"}}},
    )
    state = SidecarState()
    assert QuotaEnforcer(core_v1, state, dry_run=False).run(_budgets(1000), lambda b: 5000.0, NOVEMBER_28) == []
    assert server.get("resourcequotas", QUOTA, "inference")["spec"]["hard"] == {"requests.nvidia.com/gpu": "64"}  # type: ignore[index]
    assert _counts(state) == {}


def test_api_outage_marks_enforcement_down(cluster: tuple[FakeApiServer, Any]) -> None:
    server, core_v1 = cluster
    state = SidecarState()
    server.outage(True)
    from gpucost.errors import SourceUnavailable

    with pytest.raises(SourceUnavailable, match="platform-inference in inference failed: 503"):
        QuotaEnforcer(core_v1, state, dry_run=False).run(_budgets(1000), lambda b: 5000.0, NOVEMBER_28)
    assert state.snapshot().provider_up[("kubernetes", "enforcement")] is False


def test_spend_query_uses_the_narrowest_recorded_series_of_the_scope() -> None:
    by_name: dict[str, Budget] = {b.name: b for b in _budgets(1000).budgets}
    assert spend_query(by_name["platform-inference"]) == (
        'sum(namespace_team:gpucost_spend_usd:month_to_date{team="platform",namespace="inference"})'
    )
    model = parse_budget_file(
        {"budgets": [{"name": "m", "scope": {"team": "r", "model": "llama-70b"}, "monthly_usd": 1}]}, "f"
    ).budgets[0]
    assert spend_query(model) == 'sum(team_model:gpucost_spend_usd:month_to_date{team="r",model="llama-70b"})'
