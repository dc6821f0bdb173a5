"""The exporter's endpoints: /healthz, /readyz, the telemetry path, TLS and basic auth."""

from __future__ import annotations

import base64
import contextlib
import http.client
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest

from gpucost_testing.servers import REPO_ROOT, ManagedProcess, free_port, start_exporter

SCENARIO = REPO_ROOT / "tests/fixtures/scenarios/eight_gpus_static.yaml"


def _get(url: str, *, auth: tuple[str, str] | None = None, context: ssl.SSLContext | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def test_custom_telemetry_path_health_and_readiness(tmp_path: Path) -> None:
    args = ["--nvml.backend=simulated", f"--simulate.scenario={SCENARIO}", f"--state.file={tmp_path / 's.json'}",
            "--web.telemetry-path=/cost-metrics"]
    with start_exporter(tmp_path, args) as exporter:
        assert _get(exporter.base_url + "/healthz")[0] == 200
        status, body = _get(exporter.base_url + "/readyz")
        assert status == 200, body
        status, body = _get(exporter.base_url + "/cost-metrics")
        assert status == 200
        assert b"gpucost_gpu_cost_usd_total" in body
        assert _get(exporter.base_url + "/metrics")[0] == 404


@contextlib.contextmanager
def _tls_exporter_with_basic_auth(tmp_path: Path) -> Iterator[tuple[str, ssl.SSLContext, ManagedProcess]]:
    """An exporter over TLS with user prometheus, password s3cret; yields (url, client context, process)."""
    openssl = shutil.which("openssl")
    assert openssl, "openssl is part of the base system"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-keyout", str(tmp_path / "server.key"), "-out", str(tmp_path / "server.crt")],
                   check=True, capture_output=True)
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    web_config = tmp_path / "web.yml"
    web_config.write_text(
        f"tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
        f"basic_auth_users:\n  prometheus: '{hashed}'\n"
    )
    port = free_port()
    args = ["--nvml.backend=simulated", f"--simulate.scenario={SCENARIO}", f"--state.file={tmp_path / 's.json'}",
            f"--web.config.file={web_config}"]
    context = ssl.create_default_context(cafile=str(tmp_path / "server.crt"))
    context.check_hostname = False
    argv = [sys.executable, "-m", "gpucost.cli.exporter", f"--web.listen-address=127.0.0.1:{port}", *args]
    with ManagedProcess("exporter-tls", argv, tmp_path / "exporter.log", port=port).start() as exporter:
        url = f"https://127.0.0.1:{port}"
        for _ in range(100):
            try:
                _get(url + "/", context=context)
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        else:
            pytest.fail(exporter.log_text())
        yield url, context, exporter


def test_tls_and_basic_auth_from_the_web_config_file(tmp_path: Path) -> None:
    with _tls_exporter_with_basic_auth(tmp_path) as (url, context, _):
        assert _get(url + "/metrics", context=context)[0] == 401
        assert _get(url + "/", context=context)[0] == 401
        assert _get(url + "/metrics", auth=("prometheus", "wrong"), context=context)[0] == 401
        assert _get(url + "/metrics", auth=("nobody", "s3cret"), context=context)[0] == 401
        status, body = _get(url + "/metrics", auth=("prometheus", "s3cret"), context=context)
        assert status == 200
        assert b"gpucost_gpu_info" in body
        assert _get(url + "/", auth=("prometheus", "s3cret"), context=context)[0] == 200


def test_kubelet_probes_need_no_basic_auth_but_still_tls(tmp_path: Path) -> None:
    """/healthz and /readyz answer without credentials (kubelet httpGet probes), over TLS only."""
    with _tls_exporter_with_basic_auth(tmp_path) as (url, context, _):
        assert _get(url + "/healthz", context=context) == (200, b"ok\n")
        status, body = _get(url + "/readyz", context=context)
        assert status == 200, body
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(url + "/metrics", timeout=5, context=context)
        with denied.value:
            assert denied.value.headers["WWW-Authenticate"] == 'Basic realm="gpucost"'
        # The probes are not served in plain text on the TLS port.
        with pytest.raises((urllib.error.URLError, ConnectionError, http.client.HTTPException)):
            urllib.request.urlopen(url.replace("https:", "http:") + "/healthz", timeout=5)


def test_bad_web_config_exits_2(tmp_path: Path) -> None:
    web_config = tmp_path / "web.yml"
    web_config.write_text("basic_auth_users:\n  prometheus: plaintext\n")
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from gpucost.cli.exporter import main;"
         f" sys.exit(main(['--nvml.backend=simulated', '--simulate.scenario={SCENARIO}',"
         f" '--web.config.file={web_config}', '--web.listen-address=127.0.0.1:0']))"],
        capture_output=True, text=True, check=False, cwd=REPO_ROOT,
    )
    assert result.returncode == 2, result.stderr
    assert "basic_auth_users.prometheus" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
