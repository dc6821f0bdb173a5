"""Quota enforcement writes only the ResourceQuotas it created: a fresh GET checks ownership before every write,
and a quota of the same name that someone else made, or swapped in meanwhile, is never modified or deleted."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gpucost.budgets.enforcement import QuotaEnforcer, load_core_v1
from gpucost.budgets.spec import BudgetFile, parse_budget_file
from gpucost.budgets.state import SidecarState
from gpucost_testing.fake_apiserver import FakeApiServer

pytestmark = pytest.mark.integration

NOVEMBER_28 = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
DECEMBER_1 = dt.datetime(2026, 12, 1, 0, 30, tzinfo=dt.UTC)
QUOTA = "gpucost-budget-platform-inference"
FOREIGN_HARD = {"requests.nvidia.com/gpu": "64"}


def _budgets() -> BudgetFile:
    budget = {
        "name": "platform-inference",
        "scope": {"team": "platform", "namespace": "inference"},
        "monthly_usd": 1000,
        "enforce": "quota",
        "hard_threshold_percent": 100,
    }
    return parse_budget_file({"budgets": [budget]}, "budgets.yaml")


def _foreign_quota(labels: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"name": QUOTA, "namespace": "inference", "labels": labels}, "spec": {"hard": FOREIGN_HARD}}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[FakeApiServer, Any]]:
    with FakeApiServer() as server:
        yield server, load_core_v1(str(server.write_kubeconfig(tmp_path / "kubeconfig")))


def _writes(server: FakeApiServer) -> list[str]:
    return [f"{r.method} {r.path}" for r in server.requests if r.method not in ("GET",)]


@pytest.mark.parametrize("spend", [0.0, 5000.0])
def test_a_quota_merely_labelled_managed_by_gpucost_is_not_ours(
    cluster: tuple[FakeApiServer, Any], spend: float, caplog: pytest.LogCaptureFixture
) -> None:
    """The generic label alone is no proof: only the quota carrying our budget and month was made by us."""
    server, core_v1 = cluster
    server.put("resourcequotas", _foreign_quota({"app.kubernetes.io/managed-by": "gpucost"}))
    state = SidecarState()
    with caplog.at_level(logging.WARNING, logger="gpucost.budgets.enforcement"):
        assert QuotaEnforcer(core_v1, state, dry_run=False).run(_budgets(), lambda b: spend, NOVEMBER_28) == []
    assert server.get("resourcequotas", QUOTA, "inference")["spec"]["hard"] == FOREIGN_HARD  # type: ignore[index]
    assert _writes(server) == []
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"ResourceQuota {QUOTA} in inference is not managed by gpucost-budgets" in warning
    assert state.snapshot().enforcement_actions == {}


class _SwapsTheQuotaAfterTheFirstRead:
    """The Kubernetes client, except that another actor replaces the quota right after our GET number `after`."""

    def __init__(self, core_v1: Any, server: FakeApiServer, after: int = 1,
                 labels: dict[str, str] | None = None) -> None:
        self._core_v1 = core_v1
        self._server = server
        self._after = after
        self._labels = labels if labels is not None else {"team": "platform-admins"}
        self.reads = 0

    def read_namespaced_resource_quota(self, name: str, namespace: str) -> Any:
        answer = self._core_v1.read_namespaced_resource_quota(name, namespace)
        self.reads += 1
        if self.reads == self._after:
            self._server.delete("resourcequotas", name, namespace)
            replacement = _foreign_quota(self._labels)
            replacement["metadata"]["annotations"] = {"gpucost.io/budget-month": "2026-11"}
            self._server.put("resourcequotas", replacement)
        return answer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._core_v1, name)


def test_ownership_is_checked_again_right_before_the_delete(cluster: tuple[FakeApiServer, Any]) -> None:
    server, core_v1 = cluster
    QuotaEnforcer(core_v1, SidecarState(), dry_run=False).run(_budgets(), lambda b: 1500.0, NOVEMBER_28)
    assert server.get("resourcequotas", QUOTA, "inference") is not None  # ours, frozen in November

    swapping = _SwapsTheQuotaAfterTheFirstRead(core_v1, server)
    state = SidecarState()
    QuotaEnforcer(swapping, state, dry_run=False).run(_budgets(), lambda b: 0.0, DECEMBER_1)
    assert swapping.reads == 2  # the decision's read, then the fresh read before the write
    survivor = server.get("resourcequotas", QUOTA, "inference")
    assert survivor is not None and survivor["spec"]["hard"] == FOREIGN_HARD
    assert not [r for r in server.requests if r.method == "DELETE"]
    assert state.snapshot().enforcement_actions == {}


def test_our_own_quota_is_still_removed_with_preconditions(cluster: tuple[FakeApiServer, Any]) -> None:
    server, core_v1 = cluster
    enforcer = QuotaEnforcer(core_v1, SidecarState(), dry_run=False)
    enforcer.run(_budgets(), lambda b: 1500.0, NOVEMBER_28)
    created = server.get("resourcequotas", QUOTA, "inference")
    assert created is not None
    assert created["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "gpucost",
        "gpucost.io/budget": "platform-inference",
    }
    [removed] = enforcer.run(_budgets(), lambda b: 0.0, DECEMBER_1)
    assert removed.action == "remove_quota"
    assert server.get("resourcequotas", QUOTA, "inference") is None


def test_a_quota_replaced_after_the_fresh_read_is_not_deleted(cluster: tuple[FakeApiServer, Any]) -> None:
    """The delete carries the fresh read's uid and resourceVersion: a quota recreated in between, even one that
    copies every mark of ours, makes the API server refuse the delete (409) and it stays."""
    server, core_v1 = cluster
    QuotaEnforcer(core_v1, SidecarState(), dry_run=False).run(_budgets(), lambda b: 1500.0, NOVEMBER_28)
    ours = {"app.kubernetes.io/managed-by": "gpucost", "gpucost.io/budget": "platform-inference"}
    swapping = _SwapsTheQuotaAfterTheFirstRead(core_v1, server, after=2, labels=ours)
    QuotaEnforcer(swapping, SidecarState(), dry_run=False).run(_budgets(), lambda b: 0.0, DECEMBER_1)
    assert swapping.reads == 2
    deletes = [r for r in server.requests if r.method == "DELETE"]
    assert len(deletes) == 1, "the delete was sent, with preconditions"
    survivor = server.get("resourcequotas", QUOTA, "inference")
    assert survivor is not None and survivor["spec"]["hard"] == FOREIGN_HARD
