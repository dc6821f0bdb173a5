"""What the exporter checks when it starts: the port it really got, and Kubernetes
settings that can never work (a relative kubelet socket, a broken kubeconfig),
which end the start with one line naming the flag or key and the value, exit 2,
instead of a retry loop that logs gRPC or client errors every poll.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from gpucost_testing.servers import REPO_ROOT

pytestmark = pytest.mark.integration

SCENARIO = REPO_ROOT / "tests/fixtures/scenarios/eight_gpus_static.yaml"


def _exporter_argv(tmp_path: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "gpucost.cli.exporter", "--nvml.backend=simulated",
            f"--simulate.scenario={SCENARIO}", "--web.listen-address=127.0.0.1:0",
            f"--state.file={tmp_path / 'state.json'}", *args]


def _run_expecting_exit(argv: list[str], cwd: Path, within: float = 15.0) -> tuple[int, str]:
    """Run the command; a process still running after `within` seconds failed the check it should have made."""
    with subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=cwd) as process:
        try:
            _, stderr = process.communicate(timeout=within)
        except subprocess.TimeoutExpired:
            process.terminate()
            _, stderr = process.communicate(timeout=20)
            pytest.fail(f"still running after {within:g}s instead of refusing to start; log:\n{stderr[-2000:]}")
    return process.returncode, stderr


def _assert_one_line_naming(returncode: int, stderr: str, *expected: str) -> None:
    assert returncode == 2, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    for text in expected:
        assert text in lines[0], lines[0]


def test_the_log_names_the_port_the_exporter_got_and_metrics_are_there(tmp_path: Path) -> None:
    process = subprocess.Popen(_exporter_argv(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, cwd=tmp_path)
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 60
        line = ""
        while "listening on" not in line and time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line:
                break
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)/metrics", line)
        assert match, f"no listening line: {line!r}"
        port = int(match.group(1))
        assert port != 0
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            assert b"gpucost_gpu_cost_usd_total" in response.read()
    finally:
        process.terminate()
        process.communicate(timeout=20)


def _kubernetes_args(kubeconfig: Path | str, socket: str = "/var/lib/kubelet/pod-resources/kubelet.sock") -> list[str]:
    return ["--kubernetes.enabled", "--kubernetes.node-name=node-a", f"--kubernetes.kubeconfig={kubeconfig}",
            f"--kubelet.pod-resources-socket={socket}"]


def _write_kubeconfig(path: Path, **changes: object) -> Path:
    document: dict[str, object] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "dev", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "dev",
    }
    document.update(changes)
    path.write_text(yaml.safe_dump({k: v for k, v in document.items() if v is not None}))
    return path


def test_a_relative_pod_resources_socket_flag_is_refused(tmp_path: Path) -> None:
    kubeconfig = _write_kubeconfig(tmp_path / "kubeconfig")
    code, stderr = _run_expecting_exit(_exporter_argv(tmp_path, *_kubernetes_args(kubeconfig, "kubelet.sock")),
                                       tmp_path)
    _assert_one_line_naming(code, stderr, "--kubelet.pod-resources-socket", "'kubelet.sock'", "absolute")


def test_a_relative_pod_resources_socket_in_the_file_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "exporter.yaml"
    config.write_text("kubernetes:\n  pod_resources_socket: pod-resources/kubelet.sock\n")
    code, stderr = _run_expecting_exit(_exporter_argv(tmp_path, f"--config.file={config}"), tmp_path)
    _assert_one_line_naming(code, stderr, str(config), "kubernetes.pod_resources_socket",
                            "'pod-resources/kubelet.sock'")
    validate = subprocess.run([sys.executable, "-m", "gpucost.cli.admin", "validate-config", str(config)],
                              capture_output=True, text=True, check=False, timeout=60, cwd=tmp_path)
    _assert_one_line_naming(validate.returncode, validate.stderr, "kubernetes.pod_resources_socket")


BROKEN_KUBECONFIGS = {
    "missing_file": (None, "cannot read"),
    "not_yaml": ("clusters: [unclosed\n", "not valid YAML"),
    "not_utf8": (b"\xff\xfeclusters: []\n", "not UTF-8"),
    "not_a_mapping": ("- just\n- a list\n", "not a kubeconfig"),
    "no_current_context": ({"current-context": None}, "no current-context"),
    "unknown_current_context": ({"current-context": "prod"}, "'prod'"),
    "context_without_cluster": ({"contexts": [{"name": "dev", "context": {"cluster": "gone", "user": "u"}}]},
                                "'gone'"),
}


@pytest.mark.parametrize("case", sorted(BROKEN_KUBECONFIGS))
def test_a_broken_kubeconfig_is_refused_at_start(tmp_path: Path, case: str) -> None:
    content, expected = BROKEN_KUBECONFIGS[case]
    path = tmp_path / "kubeconfig"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content)
    elif isinstance(content, dict):
        _write_kubeconfig(path, **content)
    code, stderr = _run_expecting_exit(_exporter_argv(tmp_path, *_kubernetes_args(path)), tmp_path)
    _assert_one_line_naming(code, stderr, "--kubernetes.kubeconfig", str(path), expected)


def test_a_broken_kubeconfig_named_in_the_file_names_the_file_and_key(tmp_path: Path) -> None:
    broken = tmp_path / "kubeconfig"
    broken.write_text("kind: Config\n")
    config = tmp_path / "exporter.yaml"
    config.write_text(f"kubernetes:\n  enabled: true\n  node_name: node-a\n  kubeconfig: {broken}\n")
    for argv in (_exporter_argv(tmp_path, f"--config.file={config}"),
                 [sys.executable, "-m", "gpucost.cli.admin", "validate-config", str(config)]):
        code, stderr = _run_expecting_exit(argv, tmp_path)
        _assert_one_line_naming(code, stderr, str(config), "kubernetes.kubeconfig", "no current-context")


def test_a_good_kubeconfig_and_absolute_socket_pass_validation(tmp_path: Path) -> None:
    kubeconfig = _write_kubeconfig(tmp_path / "kubeconfig")
    config = tmp_path / "exporter.yaml"
    config.write_text(f"kubernetes:\n  enabled: true\n  kubeconfig: {kubeconfig}\n"
                      "  pod_resources_socket: /var/lib/kubelet/pod-resources/kubelet.sock\n")
    result = subprocess.run([sys.executable, "-m", "gpucost.cli.admin", "validate-config", str(config)],
                            capture_output=True, text=True, check=False, timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{config}: ok"
