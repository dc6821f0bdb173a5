"""Hostile files through every command that reads one: exit 2, one stderr line naming the file, no traceback.

The function-level fuzzing lives in tests/unit/test_loader_fuzz.py; here a few
fixed hostile payloads go through the real command lines as subprocesses, as a
user (or an attacker writing a ConfigMap) would feed them.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gpucost_testing.servers import REPO_ROOT

HUGE = str(10**400)

# Random bytes are seeded so a failure can be reproduced byte for byte.
_RANDOM_BYTES = random.Random(16).randbytes(4096)

_PAYLOADS: dict[str, bytes] = {
    "not_utf8": b"\xff\xfe" + "budgets: []\n".encode("utf-16-le"),
    "random_bytes": _RANDOM_BYTES,
    "deep_nesting": b"[" * 100_000,
    "alias_bomb": (
        "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        + "".join(
            f"{chr(98 + level)}: &{chr(98 + level)} [{', '.join(['*' + chr(97 + level)] * 9)}]\n"
            for level in range(8)
        )
    ).encode(),
}

# The huge number goes where each command's parser reads a number (or a name), so the
# parser, not the loader, has to refuse it.
_HUGE_NUMBER: dict[str, bytes] = {
    "config": f"nvml: {{speed: {HUGE}}}\n".encode(),
    "scenario": f"node: {{name: n}}\nspeed: {HUGE}\ngpus: []\n".encode(),
    "budgets": f"budgets: [{{name: a, scope: {{team: t}}, monthly_usd: {HUGE}}}]\n".encode(),
    "teams": f"budgets: [{{scope: {{team: {HUGE}}}}}]\n".encode(),
}


def _python(*args: str) -> list[str]:
    return [sys.executable, "-m", *args]


def _scenario_via_config(tmp_path: Path, scenario: Path) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(f"nvml:\n  backend: simulated\n  scenario: {scenario}\n")
    return config


# Each command: (what the file is, how to build the argv for a file path).
_COMMANDS: dict[str, tuple[str, Callable[[Path, Path], list[str]]]] = {
    "gpucost validate-config": ("config", lambda f, _t: _python("gpucost.cli.admin", "validate-config", str(f))),
    "gpucost-exporter --config.file": (
        "config",
        lambda f, _t: _python("gpucost.cli.exporter", f"--config.file={f}", "--web.listen-address=127.0.0.1:0"),
    ),
    "gpucost-exporter --simulate.scenario": (
        "scenario",
        lambda f, _t: _python(
            "gpucost.cli.exporter",
            "--nvml.backend=simulated",
            f"--simulate.scenario={f}",
            "--web.listen-address=127.0.0.1:0",
        ),
    ),
    "gpucost validate-config (scenario)": (
        "scenario",
        lambda f, t: _python("gpucost.cli.admin", "validate-config", str(_scenario_via_config(t, f))),
    ),
    "gpucost budgets validate": ("budgets", lambda f, _t: _python("gpucost.cli.admin", "budgets", "validate", str(f))),
    "gpucost-budgets validate": ("budgets", lambda f, _t: _python("gpucost.budgets.cli", "validate", str(f))),
    "alerting --teams-from": (
        "teams",
        lambda f, _t: _python("gpucost.alerting", "--teams-from", str(f), "--mode", "webhook"),
    ),
}


@pytest.mark.parametrize("command", sorted(_COMMANDS))
def test_hostile_files_exit_2_with_one_line_naming_the_file(tmp_path: Path, command: str) -> None:
    kind, argv_for = _COMMANDS[command]
    payloads = {**_PAYLOADS, "huge_number": _HUGE_NUMBER[kind]}
    for name, content in payloads.items():
        hostile = tmp_path / f"{name}.yaml"
        hostile.write_bytes(content)
        started = time.monotonic()
        result = subprocess.run(
            argv_for(hostile, tmp_path),
            capture_output=True,
            text=True,
            errors="replace",
            check=False,
            timeout=60,
            cwd=REPO_ROOT,
        )
        elapsed = time.monotonic() - started
        where = f"{command} with {name}: rc={result.returncode} stderr={result.stderr[-2000:]!r}"
        assert result.returncode == 2, where
        assert "Traceback" not in result.stderr, where
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, where
        assert str(hostile) in lines[0], where
        assert elapsed < 20, f"{where} took {elapsed:.1f}s"
