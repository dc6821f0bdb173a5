"""`gpucost budgets --help` is the budget CLI's help, as `gpucost --help` promises."""

from __future__ import annotations

import pytest

from gpucost.cli.admin import main


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_gpucost_budgets_help_prints_the_budget_commands(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["budgets", flag])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("serve", "validate", "plan", "reconcile", "digest", "price-sync"):
        assert command in out


def test_gpucost_budgets_subcommand_help_is_the_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["budgets", "serve", "--help"])
    assert exit_info.value.code == 0
    assert "--budgets.file" in capsys.readouterr().out


def test_gpucost_help_still_lists_budgets(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "budgets" in capsys.readouterr().out
