"""Start and stop real servers (Prometheus, Alertmanager, VictoriaMetrics, vmalert,
the gpucost exporter) as subprocesses on 127.0.0.1 with ephemeral ports and temp dirs.

Every helper returns a `ManagedProcess`; use it as a context manager or call
`stop()`.  Nothing here is a mock: these are the Debian binaries.  The tests use it
through `tests/gpucost_testing/servers.py`; the benchmarks use it directly.  It runs from a
checkout (`REPO_ROOT` is the checkout's root: the exporter is started from it).
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import yaml

from gpucost_testing.processes import ChildProcess, free_port, require_binary

__all__ = [
    "REPO_ROOT",
    "ManagedProcess",
    "free_port",
    "http_get_json",
    "http_post_json",
    "prom_query",
    "prom_scalar",
    "require_binary",
    "running",
    "start_alertmanager",
    "start_exporter",
    "start_moto_server",
    "start_prometheus",
    "start_victoria_metrics",
    "start_vmalert",
    "wait_for",
    "write_prometheus_config",
]

REPO_ROOT = Path(__file__).resolve().parents[2]


class ManagedProcess(ChildProcess):
    """The demo's `ChildProcess` with the tests' conveniences: a context manager, `stop()` returning the exit code."""

    @property
    def base_url(self) -> str:
        return self.url

    def wait_http(self, path: str = "/", timeout: float = 30.0, ok: Sequence[int] = (200,)) -> None:
        """Wait until GET base_url+path answers one of `ok`, or fail (StartupFailed, a RuntimeError) with the log."""
        self.wait_ready(path, timeout, ok)

    def signal(self, sig: int) -> None:
        if self.process is not None and self.alive():
            self.process.send_signal(sig)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM to the process group, SIGKILL after `timeout`; idempotent."""
        if self.process is None:
            return None
        self.terminate()
        self.wait_stopped(timeout)
        return self.process.returncode

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _launch(
    name: str,
    argv: Sequence[str],
    workdir: Path,
    port: int,
    ready_path: str,
    timeout: float,
    *,
    env: Mapping[str, str] | None = None,
) -> ManagedProcess:
    """Start `argv` logging to workdir/<name>.log and wait until GET ready_path answers 200."""
    process = ManagedProcess(name, list(argv), workdir / f"{name}.log", port=port, env=env).start()
    process.wait_http(ready_path, timeout=timeout)
    return process


# --- Prometheus ---------------------------------------------------------------


def write_prometheus_config(
    path: Path,
    *,
    scrape_targets: Sequence[str] = (),
    scrape_interval: str = "5s",
    evaluation_interval: str = "5s",
    rule_files: Sequence[Path] = (),
    alertmanager_url: str | None = None,
    extra_scrape_configs: Sequence[Mapping[str, Any]] = (),
    job_name: str = "gpucost-exporter",
    target_labels: Mapping[str, str] | None = None,
) -> Path:
    config: dict[str, Any] = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": evaluation_interval},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": [],
    }
    if scrape_targets:
        static: dict[str, Any] = {"targets": list(scrape_targets)}
        if target_labels:
            static["labels"] = dict(target_labels)
        config["scrape_configs"].append(
            {"job_name": job_name, "scrape_interval": scrape_interval, "static_configs": [static]}
        )
    config["scrape_configs"].extend(extra_scrape_configs)
    if alertmanager_url:
        hostport = alertmanager_url.removeprefix("http://")
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [hostport]}]}]}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def start_prometheus(
    workdir: Path, config_file: Path, *, extra_args: Sequence[str] = (), retention: str = "2d"
) -> ManagedProcess:
    """Start a real Prometheus with its TSDB under `workdir`; waits for /-/ready."""
    port = free_port()
    argv = [
        require_binary("prometheus"),
        f"--config.file={config_file}",
        f"--storage.tsdb.path={workdir / 'tsdb'}",
        f"--storage.tsdb.retention.time={retention}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
        "--web.enable-admin-api",
        *extra_args,
    ]
    return _launch("prometheus", argv, workdir, port, "/-/ready", 60)


def start_alertmanager(workdir: Path, config_file: Path, *, extra_args: Sequence[str] = ()) -> ManagedProcess:
    """Start a real Alertmanager (Debian binary `prometheus-alertmanager`), gossip off."""
    port = free_port()
    argv = [
        require_binary("prometheus-alertmanager"),
        f"--config.file={config_file}",
        f"--storage.path={workdir / 'am-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        *extra_args,
    ]
    return _launch("alertmanager", argv, workdir, port, "/-/ready", 60)


# --- VictoriaMetrics -------------------------------------------------------------


def start_victoria_metrics(workdir: Path, *, retention: str = "1d", extra_args: Sequence[str] = ()) -> ManagedProcess:
    """Start single-node VictoriaMetrics (Debian `victoria-metrics`), data under `workdir`; waits for /health."""
    port = free_port()
    argv = [
        require_binary("victoria-metrics"),
        f"-httpListenAddr=127.0.0.1:{port}",
        f"-storageDataPath={workdir / 'vm-data'}",
        f"-retentionPeriod={retention}",
        *extra_args,
    ]
    return _launch("victoria-metrics", argv, workdir, port, "/health", 120)


def start_vmalert(
    workdir: Path,
    vm: ManagedProcess,
    rule_files: Sequence[Path],
    *,
    evaluation_interval: str = "5s",
    extra_args: Sequence[str] = (),
) -> ManagedProcess:
    """Start vmalert on `vm` (queries, recorded series and alert state all there); waits for /health."""
    port = free_port()
    argv = [
        require_binary("vmalert"),
        *[f"-rule={path}" for path in rule_files],
        f"-datasource.url={vm.base_url}",
        f"-remoteWrite.url={vm.base_url}",
        f"-remoteRead.url={vm.base_url}",
        f"-evaluationInterval={evaluation_interval}",
        # 1.79 has no -notifier.blackhole; nothing listens here and vmalert only logs the failed sends.
        f"-notifier.url=http://127.0.0.1:{free_port()}",
        f"-httpListenAddr=127.0.0.1:{port}",
        *extra_args,
    ]
    return _launch("vmalert", argv, workdir, port, "/health", 60)


def start_exporter(
    workdir: Path,
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    name: str = "gpucost-exporter",
    port: int | None = None,
) -> ManagedProcess:
    """Start `gpucost-exporter` from this checkout with `args`; waits for /healthz."""
    port = port or free_port()
    argv = [
        sys.executable,
        "-m",
        "gpucost.cli.exporter",
        f"--web.listen-address=127.0.0.1:{port}",
        *args,
    ]
    return _launch(name, argv, workdir, port, "/healthz", 60, env=env)


def start_moto_server(workdir: Path) -> ManagedProcess:
    """Start moto in server mode (AWS APIs over HTTP) on a free port; waits for /moto-api/."""
    port = free_port()
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    return _launch("moto", argv, workdir, port, "/moto-api/", 30)


# --- Prometheus HTTP API --------------------------------------------------------


def http_get_json(url: str, params: Mapping[str, str] | None = None, timeout: float = 10.0) -> Any:
    if params:
        url = url + "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def http_post_json(url: str, body: Any, timeout: float = 10.0) -> Any:
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        raw = response.read()
        return json.loads(raw) if raw else None


def prom_query(prometheus: ManagedProcess, expr: str, at: float | None = None) -> list[dict[str, Any]]:
    """Instant query; returns the result vector (list of {metric, value})."""
    params = {"query": expr}
    if at is not None:
        params["time"] = f"{at:.3f}"
    answer = http_get_json(prometheus.base_url + "/api/v1/query", params)
    if answer.get("status") != "success":
        raise RuntimeError(f"query {expr!r} failed: {answer}")
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def prom_scalar(prometheus: ManagedProcess, expr: str, at: float | None = None) -> float:
    """Instant query that must return exactly one sample; returns its value."""
    result = prom_query(prometheus, expr, at)
    if len(result) != 1:
        raise AssertionError(f"{expr!r} returned {len(result)} series: {result}")
    return float(result[0]["value"][1])


def wait_for(predicate: Any, timeout: float, interval: float = 0.5, what: str = "condition") -> Any:
    """Poll `predicate()` until it returns a truthy value; return that value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last={last!r}")


@contextlib.contextmanager
def running(*processes: ManagedProcess) -> Iterator[None]:
    try:
        yield
    finally:
        for proc in reversed(processes):
            proc.stop()
