"""The share integrator: each request in flight accrues dt / n, exactly, with an injected clock."""

from __future__ import annotations

import pytest

from gpucost.instrument.share import ShareIntegrator


class ManualClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_lone_request_gets_its_whole_wall_time() -> None:
    clock = ManualClock()
    integrator = ShareIntegrator(clock)
    mark = integrator.start()
    clock.now += 2.5
    assert integrator.finish(mark) == 2.5
    assert integrator.busy_seconds() == 2.5


def test_overlapping_requests_split_each_interval_by_the_number_in_flight() -> None:
    clock = ManualClock()
    integrator = ShareIntegrator(clock)
    first = integrator.start()  # t=0: A alone
    clock.now += 1.0
    second = integrator.start()  # t=1: A and B
    clock.now += 2.0
    third = integrator.start()  # t=3: A, B and C
    clock.now += 3.0
    share_a = integrator.finish(first)  # t=6
    clock.now += 4.0
    share_b = integrator.finish(second)  # t=10
    clock.now += 1.0
    share_c = integrator.finish(third)  # t=11

    assert share_a == pytest.approx(1.0 + 2.0 / 2 + 3.0 / 3, abs=1e-12)
    assert share_b == pytest.approx(2.0 / 2 + 3.0 / 3 + 4.0 / 2, abs=1e-12)
    assert share_c == pytest.approx(3.0 / 3 + 4.0 / 2 + 1.0, abs=1e-12)
    assert share_a + share_b + share_c == pytest.approx(11.0, abs=1e-12)
    assert integrator.busy_seconds() == pytest.approx(11.0, abs=1e-12)
    assert integrator.in_flight == 0


def test_ten_concurrent_requests_share_the_busy_time_instead_of_each_paying_it() -> None:
    clock = ManualClock()
    integrator = ShareIntegrator(clock)
    marks = [integrator.start() for _ in range(10)]
    clock.now += 0.5
    shares = [integrator.finish(mark) for mark in marks]
    assert shares == [pytest.approx(0.05, abs=1e-12)] * 10
    assert sum(shares) == pytest.approx(0.5, abs=1e-12)


def test_idle_time_between_requests_is_not_charged_to_any_request() -> None:
    clock = ManualClock()
    integrator = ShareIntegrator(clock)
    mark = integrator.start()
    clock.now += 1.0
    assert integrator.finish(mark) == 1.0
    clock.now += 60.0  # idle
    mark = integrator.start()
    clock.now += 0.25
    assert integrator.finish(mark) == 0.25
    assert integrator.busy_seconds() == 1.25


def test_a_clock_that_steps_back_never_yields_negative_shares() -> None:
    clock = ManualClock()
    integrator = ShareIntegrator(clock)
    mark = integrator.start()
    clock.now -= 5.0
    assert integrator.finish(mark) == 0.0


def test_job_selector_matches_the_job_controllers_pod_names_only() -> None:
    import re

    from gpucost.instrument.costquery import PodSelector

    pattern = re.compile(PodSelector.for_job("research", "llama-ft").pod_regex)
    assert pattern.fullmatch("llama-ft-7x2kq")
    assert pattern.fullmatch("llama-ft-3-7x2kq")  # indexed Job
    assert not pattern.fullmatch("llama-ft-eval-7x2kq")  # another Job whose name starts the same
