"""The sidecar's jobs: a provider whose API hangs delays only its own jobs."""

from __future__ import annotations

import datetime as dt
import threading
import time

from gpucost.budgets.service import Job, start_job_threads
from gpucost.budgets.state import SidecarState


def _always(_now: dt.datetime) -> bool:
    return True


def test_a_hanging_provider_does_not_delay_the_others_and_a_failure_marks_only_its_provider_down() -> None:
    state = SidecarState()
    stop = threading.Event()
    release = threading.Event()
    gcp_ran = threading.Event()
    order: list[str] = []

    def hang(_now: dt.datetime) -> None:
        order.append("aws budgets started")
        release.wait(30)

    def aws_second(_now: dt.datetime) -> None:
        order.append("aws reconciliation")

    def gcp(_now: dt.datetime) -> None:
        gcp_ran.set()
        raise RuntimeError("gcp answered nonsense")  # a bug in one job: logged, provider down

    jobs = [
        Job("aws budget sync", "aws", "budgets", _always, hang),
        Job("aws reconciliation", "aws", "reconciliation", _always, aws_second),
        Job("gcp budget sync", "gcp", "budgets", _always, gcp),
    ]
    threads = start_job_threads(jobs, state, stop)
    try:
        assert sorted(t.name for t in threads) == ["jobs-aws", "jobs-gcp"]
        assert gcp_ran.wait(5), "gcp's job waited for aws's hanging call"
        deadline = time.monotonic() + 5
        while ("gcp", "budgets") not in state.snapshot().provider_up and time.monotonic() < deadline:
            time.sleep(0.05)
        assert state.snapshot().provider_up[("gcp", "budgets")] is False
        assert order == ["aws budgets started"], "the same provider's jobs run one after another"
        release.set()
        deadline = time.monotonic() + 5
        while "aws reconciliation" not in order and time.monotonic() < deadline:
            time.sleep(0.05)
        assert order[:2] == ["aws budgets started", "aws reconciliation"]
    finally:
        release.set()
        stop.set()
        for thread in threads:
            thread.join(10)
    assert not any(t.is_alive() for t in threads)
