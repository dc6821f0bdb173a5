"""`pip install gpucost` without extras: every command's help works, and a feature
whose libraries are missing says in one line which extra to install (exit 2).
The wheel holds the product and the simulated GPU backend, not the test kit, the
benchmarks or the demo (#18).

The package is built from a copy of this checkout into a wheel (the build's
own output is checked for packaging warnings) and installed with its core
dependencies only into a fresh virtualenv, once per test session.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gpucost_testing.servers import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]

SCENARIO = REPO_ROOT / "tests/fixtures/scenarios/eight_gpus_static.yaml"
BUDGETS = REPO_ROOT / "examples/budgets.yaml"
# What the checkout holds beside the product; `pip install .` must leave each out of the wheel.
OUTSIDE_THE_WHEEL = {"tests/gpucost_testing": "gpucost_testing", "bench/gpucost_bench": "gpucost_bench",
                     "examples/gpucost_demo": "gpucost_demo"}
# Where they lived inside the product package before #18.
FORMER_SUBPACKAGES = ("gpucost.testing", "gpucost.bench", "gpucost.demo")


@dataclass(frozen=True)
class BareInstall:
    bin: Path
    build_output: str
    workdir: Path
    wheel: Path

    def run(self, command: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.bin / command), *args], capture_output=True, text=True, check=False,
                              timeout=timeout, cwd=self.workdir, env=_clean_env())


def _clean_env() -> dict[str, str]:
    # Nothing may leak the checkout (or the development venv) into the bare install.
    return {key: value for key, value in os.environ.items()
            if key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}


def _checked(argv: list[str], cwd: Path) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=cwd, timeout=300,
                            env=_clean_env())
    assert result.returncode == 0, f"{' '.join(argv)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BareInstall]:
    root = tmp_path_factory.mktemp("bare-install")
    source = root / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, source / name)
    # A copy, so the build writes no build/ or egg-info into the checkout others are editing.
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    shutil.copytree(REPO_ROOT / "exporter", source / "exporter", ignore=ignore)
    # The packages that stay in the checkout, where they are in it: the build must leave them out.
    for folder in OUTSIDE_THE_WHEEL:
        shutil.copytree(REPO_ROOT / folder, source / folder, ignore=ignore)
    build_output = _checked([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                             "-w", str(root / "dist"), str(source)], root)
    wheels = list((root / "dist").glob("gpucost-*.whl"))
    assert len(wheels) == 1, wheels
    _checked([sys.executable, "-m", "venv", str(root / "venv")], root)
    python = root / "venv/bin/python"
    _checked([str(python), "-m", "pip", "install", "-q", "-c", str(REPO_ROOT / "constraints.txt"),
              str(wheels[0])], root)
    workdir = root / "work"
    workdir.mkdir()
    yield BareInstall(root / "venv/bin", build_output, workdir, wheels[0])


def test_the_install_really_is_bare(bare: BareInstall) -> None:
    probe = ("import importlib.util, gpucost; "
             "print(gpucost.__file__); "
             "print([m for m in ('httpx', 'httpx2', 'lightkube', 'grpc', 'kubernetes', 'rich', 'boto3', "
             "'mlflow', 'pyarrow') "
             "if importlib.util.find_spec(m)])")
    result = bare.run("python", "-c", probe)
    assert result.returncode == 0, result.stderr
    location, present = result.stdout.splitlines()
    assert str(REPO_ROOT) not in location
    assert present == "[]"


def test_the_wheel_holds_the_product_and_the_simulated_backend_only(bare: BareInstall) -> None:
    with zipfile.ZipFile(bare.wheel) as wheel:
        names = wheel.namelist()
    packages = {name.split("/", 1)[0] for name in names if not name.startswith("gpucost-")}  # less .dist-info
    assert packages == {"gpucost"}
    assert "gpucost/sources/simulated.py" in names
    assert any(name.startswith("gpucost/pricing/catalog/") and name.endswith(".yaml") for name in names)
    left_in = [name for name in names
               if any(name.startswith(module.replace(".", "/") + "/") for module in FORMER_SUBPACKAGES)]
    assert left_in == []


@pytest.mark.parametrize("module", [*FORMER_SUBPACKAGES, *OUTSIDE_THE_WHEEL.values()])
def test_the_test_kit_benchmarks_and_demo_are_not_installed(bare: BareInstall, module: str) -> None:
    result = bare.run("python", "-c", f"import {module}")
    assert result.returncode == 1
    assert f"ModuleNotFoundError: No module named '{module}'" in result.stderr


def test_the_build_prints_no_packaging_warning(bare: BareInstall) -> None:
    assert "project.license" not in bare.build_output
    assert "Warning" not in bare.build_output, bare.build_output


HELP = [
    ("gpucost", "--help"),
    ("gpucost", "-h"),
    ("gpucost", "budgets", "--help"),
    ("gpucost", "budgets", "-h"),
    ("gpucost", "budgets", "serve", "--help"),
    ("gpucost", "validate-config", "--help"),
    ("gpucost", "price", "--help"),
    ("gpucost", "scorecard", "--help"),
    ("gpucost", "training-cost", "--help"),
    ("gpucost", "export", "--help"),
    ("gpucost-exporter", "--help"),
    ("gpucost-budgets", "--help"),
    ("gpucost-budgets", "serve", "--help"),
    ("gpucost-budgets", "validate", "--help"),
    ("gpucost-budgets", "digest", "--help"),
]


@pytest.mark.parametrize("argv", HELP, ids=[" ".join(argv) for argv in HELP])
def test_every_help_works_without_extras(bare: BareInstall, argv: tuple[str, ...]) -> None:
    result = bare.run(*argv)
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout
    assert result.stderr == ""


def test_commands_without_optional_libraries_work(bare: BareInstall) -> None:
    price = bare.run("gpucost", "price", "A100-80GB")
    assert price.returncode == 0, price.stderr
    assert "USD per GPU-hour" in price.stdout
    validate = bare.run("gpucost-budgets", "validate", str(BUDGETS))
    assert validate.returncode == 0, validate.stderr


def test_the_simulated_exporter_serves_metrics_without_extras(bare: BareInstall) -> None:
    process = subprocess.Popen(
        [str(bare.bin / "gpucost-exporter"), "--nvml.backend=simulated", f"--simulate.scenario={SCENARIO}",
         "--web.listen-address=127.0.0.1:0", f"--state.file={bare.workdir / 'state.json'}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=bare.workdir, env=_clean_env())
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 60
        port = None
        while port is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line:
                break
            match = re.search(r"listening on 127\.0\.0\.1:(\d+)/metrics", line)
            port = int(match.group(1)) if match else None
        assert port, "the exporter never said which port it listens on"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            assert b"gpucost_" in response.read()
    finally:
        process.terminate()
        process.communicate(timeout=20)


MISSING_EXTRA = {
    "exporter_kubernetes": (
        ("gpucost-exporter", "--kubernetes.enabled", "--kubernetes.node-name=node-a", "--nvml.backend=simulated",
         f"--simulate.scenario={SCENARIO}", "--web.listen-address=127.0.0.1:0", "--state.file=state.json"),
        "k8s",
    ),
    "scorecard": (("gpucost", "scorecard", "--prometheus", "http://127.0.0.1:1"), "report"),
    "scorecard_serve": (("gpucost", "scorecard", "--prometheus", "http://127.0.0.1:1", "--serve",
                         "--web.listen-address=127.0.0.1:0"), "report"),
    "training_cost": (("gpucost", "training-cost", "--job", "research/llama", "--prometheus",
                       "http://127.0.0.1:1"), "mlflow"),
    "export": (("gpucost", "export", "--prometheus.url", "http://127.0.0.1:1", "--day", "2024-01-01"), "finance"),
    "budgets_serve": (("gpucost-budgets", "serve", f"--budgets.file={BUDGETS}",
                       "--web.listen-address=127.0.0.1:0"), "budgets"),
    "admin_budgets_serve": (("gpucost", "budgets", "serve", f"--budgets.file={BUDGETS}",
                             "--web.listen-address=127.0.0.1:0"), "budgets"),
}


@pytest.mark.parametrize("case", sorted(MISSING_EXTRA))
def test_a_feature_without_its_extra_names_the_extra_in_one_line(bare: BareInstall, case: str) -> None:
    argv, extra = MISSING_EXTRA[case]
    result = bare.run(*argv, timeout=30)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"pip install 'gpucost[{extra}]'" in lines[0]
