"""The container image (`make image`, tests/tools/build-image.sh, the top-level Dockerfile) really runs:
the exporter entry point serves cost metrics for a mounted scenario, the budget sidecar's entry point
answers, the default user is not root, no compiler or test tool ships, and the OCI labels are set.

The image is built once per session by the same idempotent script `make image` runs (seconds when
nothing changed).  Missing tools fail the test, naming `make bootstrap`: `make test` installs them.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import tomllib
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gpucost_testing.servers import REPO_ROOT, ManagedProcess, free_port, wait_for

# A cold build debootstraps the Debian base and builds every wheel: a few minutes on 2 cores.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

SCENARIO = REPO_ROOT / "tests/fixtures/scenarios/eight_gpus_static.yaml"
BUILD_SCRIPT = REPO_ROOT / "tests/tools/build-image.sh"
VERSION = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
IMAGE = f"localhost/gpucost/gpucost:{VERSION}"
# What the image build and these runs need, all Debian packages that `make bootstrap` installs.
REQUIRED_TOOLS = ("podman", "buildah", "debootstrap", "runc")
NON_ROOT_UID = "65532"


def podman_run(*, name: str | None = None) -> list[str]:
    """`podman run` with the settings that work on any host, VMs and CI containers included.

    runc rather than crun: bookworm's crun refuses hybrid cgroup v1/v2 hosts.  Explicit ulimits:
    podman's defaults exceed the hard limits of hosts that deny CAP_SYS_RESOURCE, and then no
    container starts at all.
    """
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    argv = ["podman", "--runtime", "runc", "run", "--rm", "--ulimit", f"nofile={nofile}:{nofile}",
            "--ulimit", "nproc=4096:4096"]
    if name:
        argv += ["--name", name]
    return argv


def _run(argv: Sequence[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=timeout)


@pytest.fixture(scope="module")
def image() -> str:
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed: run `make bootstrap` (Debian packages for the image build)")
    built = _run([str(BUILD_SCRIPT)], timeout=840)
    assert built.returncode == 0, f"{BUILD_SCRIPT} failed:\n{built.stdout[-4000:]}\n{built.stderr[-4000:]}"
    return IMAGE


@pytest.fixture(scope="module")
def image_config(image: str) -> dict[str, Any]:
    inspected = _run(["podman", "image", "inspect", image])
    assert inspected.returncode == 0, inspected.stderr
    config: dict[str, Any] = json.loads(inspected.stdout)[0]["Config"]
    return config


@pytest.fixture
def containerised_exporter(image: str, tmp_path: Path) -> Iterator[ManagedProcess]:
    """The exporter from the image, as the chart runs it: read-only root, no capabilities."""
    port = free_port()
    name = f"gpucost-image-test-{uuid.uuid4().hex[:8]}"
    argv = [
        *podman_run(name=name),
        # The host's network, with the exporter bound to 127.0.0.1 only: no port publishing (and so no
        # iptables) needed, and nothing reachable from outside the machine.
        "--network", "host",
        "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--volume", f"{SCENARIO}:/etc/gpucost/scenario.yaml:ro",
        image,
        f"--web.listen-address=127.0.0.1:{port}",
        "--nvml.backend=simulated",
        "--simulate.scenario=/etc/gpucost/scenario.yaml",
        "--state.file=/tmp/state.json",
    ]
    process = ManagedProcess("gpucost-image", argv, tmp_path / "gpucost-image.log", port=port)
    try:
        process.start()
        process.wait_http("/healthz", timeout=90)
        yield process
    finally:
        process.stop(timeout=20)
        # --rm removes it on a clean exit; this covers a podman killed mid-way.
        _run(["podman", "rm", "--force", "--ignore", name])


def _cost_samples(url: str) -> dict[str, dict[str, float]]:
    """{metric family: {gpu uuid: value}} for the per-GPU cost families of one scrape."""
    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    samples: dict[str, dict[str, float]] = {"gpucost_gpu_cost_usd_total": {}, "gpucost_gpu_price_usd_per_hour": {}}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in samples:
                samples[sample.name][sample.labels.get("uuid", "")] = sample.value
    return samples


def test_exporter_entry_point_serves_cost_metrics_for_a_mounted_scenario(
        containerised_exporter: ManagedProcess) -> None:
    def accruing() -> dict[str, dict[str, float]] | None:
        samples = _cost_samples(containerised_exporter.base_url)
        costs = samples["gpucost_gpu_cost_usd_total"]
        return samples if len(costs) == 8 and all(cost > 0 for cost in costs.values()) else None

    samples = wait_for(accruing, timeout=30, what="8 GPUs accruing cost in the containerised exporter")
    prices = samples["gpucost_gpu_price_usd_per_hour"]
    assert len(prices) == 8, prices
    # Every A100 of the p4d.24xlarge has the same positive hourly price from the bundled catalog.
    assert len(set(prices.values())) == 1 and next(iter(prices.values())) > 0, prices


def test_budget_sidecar_entry_point(image: str) -> None:
    result = _run([*podman_run(), "--entrypoint", "gpucost-budgets", image, "--help"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: gpucost-budgets"), result.stdout


def test_default_user_is_not_root(image: str, image_config: dict[str, Any]) -> None:
    assert image_config["User"] == f"{NON_ROOT_UID}:{NON_ROOT_UID}"
    assert image_config["Entrypoint"] == ["gpucost-exporter"]
    result = _run([*podman_run(), "--entrypoint", "id", image, "-u"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == NON_ROOT_UID


def test_no_compiler_pip_or_test_tools_in_the_final_image(image: str) -> None:
    probe = ("for tool in gcc cc c++ g++ clang ld make pip pip3 pytest mypy ruff; do "
             "command -v $tool || true; done; ls /opt/gpucost/bin")
    result = _run([*podman_run(), "--entrypoint", "sh", image, "-c", probe])
    assert result.returncode == 0, result.stderr
    found = result.stdout.split()
    assert "gpucost-exporter" in found and "gpucost-budgets" in found, found
    shipped = [path for path in found if path.split("/")[-1] in
               {"gcc", "cc", "c++", "g++", "clang", "ld", "make", "pip", "pip3", "pytest", "mypy", "ruff"}]
    assert shipped == [], f"the final stage ships build or test tools: {shipped}"
    test_modules = ("pytest", "hypothesis", "moto", "mypy", "grpc_tools", "starlette")
    check = f"import importlib.util as u; print([m for m in {test_modules!r} if u.find_spec(m)])"
    result = _run([*podman_run(), "--entrypoint", "python3", image, "-c", check])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"test extras installed in the image: {result.stdout}"


def test_oci_labels(image_config: dict[str, Any]) -> None:
    labels = image_config["Labels"]
    assert labels["org.opencontainers.image.source"] == "https://github.com/gpucost/gpucost"
    assert labels["org.opencontainers.image.version"] == VERSION
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
