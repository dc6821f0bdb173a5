"""The digest's top saving: taken from the scorecard hook, cached per run, and left out when unavailable."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from gpucost.budgets.digest import gather_team_digest, render_blocks
from gpucost.budgets.top_saving import ScorecardTopSavings, TopSaving, top_saving
from gpucost.errors import SourceUnavailable
from gpucost.scorecard.combine import Scorecard, score_workloads
from gpucost.scorecard.levers import GpuCandidate, WorkloadUsage

NOW = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)


class FixedPrometheus:
    """The digest's Prometheus reads, answering every query with one value."""

    def query(self, expr: str, at: dt.datetime | None = None) -> list[tuple[dict[str, str], float]]:
        return [({"model": "llama-70b"}, 100.0)]


def no_candidates(_gpu_model: str | None) -> list[GpuCandidate]:
    return []


def scorecard(*usages: WorkloadUsage) -> Scorecard:
    return score_workloads(usages, no_candidates, 7 * 86400.0)


def test_scorecard_unavailable_sends_the_digest_without_top_saving_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[dt.datetime] = []

    def unavailable(at: dt.datetime) -> Scorecard:
        calls.append(at)
        raise SourceUnavailable("Prometheus at http://prometheus:9090 unavailable after 3 tries (HTTP 503)")

    top_savings = ScorecardTopSavings(unavailable)
    with caplog.at_level(logging.WARNING, logger="gpucost.budgets.top_saving"):
        digests = [
            gather_team_digest(FixedPrometheus(), team, None, NOW, top_savings=top_savings)  # type: ignore[arg-type]
            for team in ("platform", "research")
        ]
    assert [d.top_saving for d in digests] == [None, None]
    assert calls == [NOW]  # one attempt per digest run, not per team
    assert [r.getMessage() for r in caplog.records] == [
        "scorecard unavailable, digest goes out without the top saving: "
        "Prometheus at http://prometheus:9090 unavailable after 3 tries (HTTP 503)"
    ]
    _text, blocks = render_blocks(digests[1])
    assert digests[1].month_to_date_usd == 100.0
    assert not any("Top saving" in str(block) for block in blocks)
    assert blocks[-1]["type"] == "context"


def test_scorecard_is_recomputed_after_max_age_and_a_failure_is_retried_then() -> None:
    answers: list[Scorecard | None] = [None, scorecard(WorkloadUsage("research", "llama", 10.0, 6.0, 4.0))]

    def compute(_at: dt.datetime) -> Scorecard:
        answer = answers.pop(0)
        if answer is None:
            raise SourceUnavailable("down")
        return answer

    top_savings = ScorecardTopSavings(compute, max_age=dt.timedelta(hours=1))
    assert top_savings.for_team("research", NOW) is None
    assert top_savings.for_team("research", NOW + dt.timedelta(minutes=30)) is None
    later = top_savings.for_team("research", NOW + dt.timedelta(hours=2))
    assert later == TopSaving(
        "idle_release",
        pytest.approx(4.0 * 730),  # type: ignore[arg-type]
        "measured",
        "scale-to-zero adds cold-start latency; keep a minimum replica for latency-critical services",
    )


def test_top_saving_is_an_estimate_when_the_lever_rests_on_an_assumption() -> None:
    # An inference workload that is never idle: quantization (assumed 3x) is its largest lever.
    serving = WorkloadUsage("search", "ranker", 10.0, 10.0, 0.0, kind="inference", inference_share=1.0)
    found = top_saving("search", scorecard(serving))
    assert found is not None
    assert (found.lever, found.confidence) == ("quantization", "estimate")
    assert found.usd_per_month == pytest.approx(10.0 * 730 * (1 - 1 / 3))
    assert found.risk.startswith("accuracy loss")
    _text, blocks = render_blocks(
        gather_team_digest(FixedPrometheus(), "search", None, NOW,  # type: ignore[arg-type]
                           top_savings=ScorecardTopSavings(lambda _at: scorecard(serving)))
    )
    assert blocks[-2]["text"]["text"] == (
        "*Top saving:* `quantization` — $4,866.67/month (estimate) · risk: accuracy loss: "
        "evaluate the quantized model on your own task before serving it"
    )


def test_team_without_savings_gets_no_top_saving() -> None:
    assert top_saving("search", scorecard(WorkloadUsage("research", "llama", 10.0, 6.0, 4.0))) is None
