"""Bad input never starts the exporter: one line naming file, key and value, exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gpucost_testing.servers import REPO_ROOT

SCENARIO = REPO_ROOT / "tests/fixtures/scenarios/eight_gpus_static.yaml"


def _run(*args: str, module: str = "gpucost.cli.exporter") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
    )


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gpucost.yaml"
    path.write_text(text)
    return path


CASES = {
    "unknown_key": ("sample_intervall: 1s\n", ["sample_intervall", "unknown key"]),
    "bad_type": ("kubernetes:\n  enabled: 'yes'\n", ["kubernetes.enabled", "'yes'"]),
    "negative_price": ("pricing:\n  gpu_models:\n    A100-80GB: -2.5\n", ["pricing.gpu_models", "-2.5"]),
    "missing_price_for_gpu_model": (
        "pricing:\n  allow_model_fallback: false\n  required_gpu_models: [Z999-1TB]\n",
        ["Z999-1TB"],
    ),
    "bad_duration": ("sample_interval: 5 minutes\n", ["sample_interval", "5 minutes"]),
    "bad_listen_address_in_file": ("web:\n  listen_address: localhost\n", ["web.listen_address", "localhost"]),
    "bad_static_allocation_share": (
        "allocations:\n  - {uuid: GPU-1, namespace: a, pod: b, share: 2}\n",
        ["allocations[0].share", "2"],
    ),
    "not_yaml": ("pricing: [unclosed\n", ["not valid YAML"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_config_file_exits_2_with_one_line_naming_file_key_and_value(tmp_path: Path, case: str) -> None:
    text, expected = CASES[case]
    config = _write(tmp_path, text)
    for result in (
        _run(f"--config.file={config}", "--nvml.backend=simulated", f"--simulate.scenario={SCENARIO}",
             "--web.listen-address=127.0.0.1:0"),
        _run("validate-config", str(config), module="gpucost.cli.admin"),
    ):
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert "Traceback" not in result.stderr
        assert str(config) in lines[0]
        for fragment in expected:
            assert fragment in lines[0], lines[0]


def test_unreadable_config_file_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    result = _run(f"--config.file={missing}")
    assert result.returncode == 2
    assert str(missing) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_scenario_exits_2_naming_the_scenario_key(tmp_path: Path) -> None:
    import yaml

    document = yaml.safe_load(SCENARIO.read_text())
    document["gpus"][2]["timeline"][0]["utilization"] = 7
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(document))
    result = _run("--nvml.backend=simulated", f"--simulate.scenario={scenario}", "--web.listen-address=127.0.0.1:0")
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1
    assert str(scenario) in line
    assert "gpus[2].timeline[0].utilization" in line


@pytest.mark.parametrize("address", ["localhost", "127.0.0.1:99999", "127.0.0.1:port"])
def test_bad_listen_address_flag_exits_2(address: str) -> None:
    result = _run("--nvml.backend=simulated", f"--simulate.scenario={SCENARIO}", f"--web.listen-address={address}")
    assert result.returncode == 2
    assert address in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_listen_address_already_in_use_exits_2() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _run("--nvml.backend=simulated", f"--simulate.scenario={SCENARIO}",
                      f"--web.listen-address=127.0.0.1:{port}")
    assert result.returncode == 2
    assert "cannot listen" in result.stderr


def test_unknown_flag_exits_2_with_one_line() -> None:
    result = _run("--no-such-flag")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1


def test_help_lists_the_prometheus_style_flags() -> None:
    result = _run("--help")
    assert result.returncode == 0
    for flag in ("--web.listen-address", "--web.telemetry-path", "--config.file", "--nvml.backend",
                 "--simulate.scenario", "--sample.interval", "--state.file", "--log.level", "--log.format",
                 "--web.config.file", "--kubelet.pod-resources-socket"):
        assert flag in result.stdout
