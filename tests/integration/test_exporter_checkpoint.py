"""The real exporter and its checkpoint: one owner per file, a corrupt file never stops a start,
and /readyz stays red while a source has never answered."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from gpucost_testing.servers import REPO_ROOT, free_port, start_exporter, wait_for

pytestmark = pytest.mark.integration

SCENARIO = REPO_ROOT / "tests/fixtures/scenarios/eight_gpus_static.yaml"
SIMULATED = ["--nvml.backend=simulated", f"--simulate.scenario={SCENARIO}", "--sample.interval=250ms"]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_a_second_exporter_on_the_same_checkpoint_exits_2_with_one_line(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with start_exporter(tmp_path, [*SIMULATED, f"--state.file={state}"], name="first") as first:
        second = subprocess.run(
            [sys.executable, "-m", "gpucost.cli.exporter", *SIMULATED, f"--state.file={state}",
             f"--web.listen-address=127.0.0.1:{free_port()}"],
            capture_output=True, text=True, timeout=60, cwd=REPO_ROOT, check=False,
        )
        assert second.returncode == 2, second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1, second.stderr
        assert "--state.file" in lines[0] and str(state) in lines[0] and "another running exporter" in lines[0]
        assert _get(first.base_url + "/healthz")[0] == 200, "the first exporter keeps running"


def test_an_exporter_starts_over_a_corrupt_checkpoint_and_moves_it_aside(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_bytes(b"\xff\xfe\x00 not a checkpoint " + b"[" * 200_000)
    with start_exporter(tmp_path, [*SIMULATED, f"--state.file={state}"]) as exporter:
        wait_for(lambda: _get(exporter.base_url + "/readyz")[0] == 200, timeout=30, what="a ready exporter")
    assert len(list(tmp_path.glob("state.json.corrupt-*"))) == 1


def test_readyz_is_503_while_the_kubelet_never_answered(tmp_path: Path) -> None:
    closed_port = free_port()  # nothing listens there either: no source of this node ever answers
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {"server": f"http://127.0.0.1:{closed_port}"}}],
        "users": [{"name": "test", "user": {"token": "t"}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
    }))
    args = [*SIMULATED, f"--state.file={tmp_path / 'state.json'}", "--kubernetes.enabled",
            "--kubernetes.node-name=node-a", f"--kubernetes.kubeconfig={kubeconfig}",
            f"--kubelet.pod-resources-socket={tmp_path / 'no-kubelet.sock'}"]
    with start_exporter(tmp_path, args) as exporter:
        def not_ready_body() -> str:
            status, body = _get(exporter.base_url + "/readyz")
            return body if status == 503 and "podresources: never answered" in body else ""

        body = wait_for(not_ready_body, timeout=30, what="/readyz naming the kubelet that never answered")
        def body_naming_the_api_server() -> str:
            # Re-read until the API server's first failed list shows too (it may come a tick later).
            latest = not_ready_body()
            return latest if "apiserver: never answered" in latest else ""

        body = wait_for(body_naming_the_api_server, timeout=30,
                        what="/readyz naming the API server that never answered")
    assert "no-kubelet.sock" in body, "the reason names the missing socket"
    assert "apiserver: never answered" in body, "an API server that never listed is not ready either"
