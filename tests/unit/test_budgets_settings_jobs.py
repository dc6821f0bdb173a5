"""The sidecar's service takes the typed settings: which jobs it builds from them."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from gpucost.budgets.service import build_jobs
from gpucost.budgets.settings import PriceSyncSchedule, SidecarConfig, SlackSettings
from gpucost.budgets.state import SidecarState
from gpucost_testing.budgets_flags import clear_environment_defaults, one_line_error, serve_config


@pytest.fixture(autouse=True)
def _no_environment_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_environment_defaults(monkeypatch)


def _hand_built_sidecar(**changes: object) -> SidecarConfig:
    """A SidecarConfig built without argparse: the service needs nothing else."""
    return dataclasses.replace(serve_config("--web.listen-address=127.0.0.1:0", "--prometheus.url=http://127.0.0.1:9"),
                               **changes)  # type: ignore[arg-type]


def test_without_clouds_or_slack_the_sidecar_runs_only_enforcement() -> None:
    jobs = build_jobs(_hand_built_sidecar(), SidecarState())
    assert [(job.name, job.provider, job.feature) for job in jobs] == [("enforcement", "kubernetes", "enforcement")]


def test_the_export_flags_add_the_finance_export_job(tmp_path: Path) -> None:
    config = _hand_built_sidecar(finance_export=serve_config("--export.format=parquet",
                                                             f"--export.out={tmp_path}").finance_export)
    jobs = build_jobs(config, SidecarState())
    assert [(job.name, job.provider, job.feature) for job in jobs] == [
        ("enforcement", "kubernetes", "enforcement"), ("finance export", "finance", "export")]


def test_the_export_job_without_the_finance_extra_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from gpucost import extras

    monkeypatch.setitem(extras.EXTRAS, "finance", ("gpucost_no_such_module",))
    line = one_line_error(["serve", "--export.format=parquet", f"--export.out={tmp_path}"], capsys)
    assert line == ("gpucost-budgets: --export.format parquet needs the 'finance' extra (missing: "
                    "gpucost_no_such_module): pip install 'gpucost[finance]'")


def test_an_overrides_file_adds_the_price_sync_job_and_a_token_the_digest(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("xoxb-not-a-real-token\n")
    config = _hand_built_sidecar(
        price_sync=PriceSyncSchedule(overrides_file=tmp_path / "prices.yaml", interval=dt.timedelta(hours=1)),
        slack=SlackSettings(bot_token_file=token),
    )
    jobs = build_jobs(config, SidecarState())
    assert [job.name for job in jobs] == ["price sync", "enforcement", "slack digest"]
