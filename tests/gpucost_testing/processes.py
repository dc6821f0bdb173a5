"""Child processes of the demo and the integration tests: each in its own process group, stopped group and all.

A child that forks (Prometheus does not, but a wrapper script might) cannot
outlive the demo: `stop()` signals the whole group, then kills what is left.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

__all__ = ["ChildProcess", "PortInUse", "StartupFailed", "free_port", "require_binary", "reserve_port", "stop_all"]


class StartupFailed(RuntimeError):
    """A component did not come up; the message names it and ends with its log tail."""


class PortInUse(Exception):
    """A port the user asked for is taken."""

    def __init__(self, flag: str, port: int) -> None:
        super().__init__(f"port {port} ({flag}) is already in use; choose another or drop the flag for a free port")
        self.flag = flag
        self.port = port


def free_port() -> int:
    """An ephemeral TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def reserve_port(flag: str, requested: int) -> int:
    """`requested` when it is free (PortInUse when not); a free ephemeral port for 0."""
    if requested == 0:
        return free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", requested))
        except OSError:
            raise PortInUse(flag, requested) from None
    return requested


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise StartupFailed(f"{name} is not installed; `make demo` and `make bootstrap` install it (Debian package)")
    return path


@dataclass
class ChildProcess:
    """One server the demo (or a test, through `gpucost_testing.servers`) runs, with its log file."""

    name: str
    argv: Sequence[str]
    log_path: Path
    port: int = 0
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid if self.process is not None else 0

    def start(self) -> Self:
        environment = dict(os.environ)
        if self.env:
            environment.update(self.env)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                list(self.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
                cwd=self.cwd,
                # Its own session and process group: a Ctrl-C in the terminal reaches only the
                # demo, which then stops every child in order.
                start_new_session=True,
            )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, characters: int = 3000) -> str:
        return self.log_text()[-characters:]

    def wait_ready(self, path: str, timeout: float, ok: Sequence[int] = (200,)) -> None:
        """Wait until GET url+path answers one of `ok`; StartupFailed with the log tail when not."""

        def not_ready() -> str:
            try:
                with urllib.request.urlopen(self.url + path, timeout=2) as response:
                    return "" if response.status in ok else f"HTTP {response.status}"
            except urllib.error.HTTPError as err:
                return "" if err.code in ok else f"HTTP {err.code}"
            except OSError as err:
                return str(err)

        self.wait_until(not_ready, self.url + path, timeout, interval=0.2)

    def wait_until(self, not_ready: Callable[[], str], where: str, timeout: float, *, interval: float) -> None:
        """Poll `not_ready` (why the child is not ready yet, "" once it is) until `timeout` passes.

        StartupFailed with the log tail when the child exits first or the time runs out.
        """
        deadline = time.monotonic() + timeout
        last_error = "no answer"
        while time.monotonic() < deadline:
            if not self.alive():
                raise StartupFailed(f"{self.name} exited while starting; its log ({self.log_path}):\n{self.log_tail()}")
            last_error = not_ready()
            if not last_error:
                return
            time.sleep(interval)
        raise StartupFailed(
            f"{self.name} not ready on {where} after {timeout:.0f}s ({last_error}); "
            f"its log ({self.log_path}):\n{self.log_tail()}"
        )

    def terminate(self) -> None:
        """SIGTERM to the child's whole process group; returns at once."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGTERM)

    def wait_stopped(self, timeout: float) -> None:
        """Wait for the child; SIGKILL its group when it does not exit in time."""
        if self.process is None:
            return
        try:
            self.process.wait(timeout=max(timeout, 0.0))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        # Anything the child left in its group (a grandchild) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)


def stop_all(children: Sequence[ChildProcess], timeout: float = 8.0) -> None:
    """Stop the children together: SIGTERM to every group, then wait for each."""
    for child in reversed(children):
        child.terminate()
    deadline = time.monotonic() + timeout
    for child in reversed(children):
        child.wait_stopped(deadline - time.monotonic())
