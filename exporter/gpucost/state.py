"""The ledger's state file: atomic checkpoints, an owner, a lock, and a restore that never crashes.

A corrupt or foreign file is moved aside (`<file>.corrupt-<UTC time>`) with one
warning and counting starts fresh; it is never fatal, since a reader that
crashes on the file would crash every start until someone deletes it.

The checkpoint belongs to one exporter on one node: it records the node name
(a checkpoint from another node is refused, or its GPUs would be exported
forever), and `lock()` holds `<file>.lock` for the process lifetime so that two
exporters on one file cannot silently overwrite each other.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import logging
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from gpucost.engine.ledger import ForeignStateError, Ledger, StateFormatError

__all__ = ["CheckpointWriteError", "StateFile", "StateFileLocked"]

log = logging.getLogger("gpucost.state")

# A real checkpoint is a few MB even with 100,000 container series; a bigger file
# is not ours and must not be read whole into memory.
MAX_STATE_BYTES = 64 * 1024 * 1024


class StateFileLocked(OSError):
    """Another process holds the checkpoint's lock: two exporters would overwrite each other."""


class CheckpointWriteError(OSError):
    """A checkpoint could not be written.  The text is stable (no temp file name), so that a
    failure repeating every tick is logged once, not once per tick."""


class StateFile:
    def __init__(self, path: str | Path, node_name: str | None = None) -> None:
        """`node_name`: this exporter's node; a checkpoint written on another node is refused.
        None skips the check (tools and tests that read a checkpoint without owning it)."""
        self.path = Path(path)
        self.node_name = node_name
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self._lock_fd: int | None = None

    # --- ownership ------------------------------------------------------------

    def lock(self) -> None:
        """Hold `<file>.lock` until release() or process exit; StateFileLocked if another process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StateFileLocked(
                f"checkpoint {self.path} is in use by another running exporter (lock {self.lock_path} is held)"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        self._lock_fd = fd

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = None

    # --- writing --------------------------------------------------------------

    def save(self, ledger: Ledger, last_tick: float) -> None:
        """Write atomically: a crash mid-write leaves the previous checkpoint intact.

        Raises CheckpointWriteError (an OSError) with a stable message.
        """
        payload = json.dumps(ledger.to_state(last_tick, self.node_name or ""), separators=(",", ":"))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._write_atomically(payload)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise CheckpointWriteError(f"cannot write checkpoint {self.path}: {reason}") from exc

    def _write_atomically(self, payload: str) -> None:
        fd, tmp_name = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp_name, self.path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        # The rename is durable only once the directory entry is: without this a power
        # loss can leave the old checkpoint (or none) although save() returned.
        directory = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    # --- reading --------------------------------------------------------------

    def load(self, workload_label_names: tuple[str, ...], retention_seconds: float) -> tuple[Ledger, float] | None:
        """The saved ledger and its last tick time, or None when there is none (or it was unusable)."""
        self._remove_orphan_temp_files()
        try:
            with self.path.open("rb") as handle:
                raw = handle.read(MAX_STATE_BYTES + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cannot read state file %s: %s; starting from zero", self.path, exc)
            return None
        try:
            if len(raw) > MAX_STATE_BYTES:
                raise StateFormatError(f"larger than {MAX_STATE_BYTES} bytes")
            # ValueError covers bad UTF-8, bad JSON and too many digits; RecursionError deep nesting.
            document = json.loads(raw.decode("utf-8"))
            return Ledger.from_state(document, workload_label_names, retention_seconds, self.node_name)
        except ForeignStateError as exc:
            self._move_aside(f"belongs to another node ({exc})")
        except (ValueError, RecursionError) as exc:
            self._move_aside(f"is unusable ({_short(str(exc))})")
        return None

    def _move_aside(self, why: str) -> None:
        aside = self.path.with_name(f"{self.path.name}.corrupt-{datetime.now(tz=UTC).strftime('%Y%m%dT%H%M%SZ')}")
        try:
            os.replace(self.path, aside)
        except OSError as move_error:
            log.warning("state file %s %s and could not be moved aside (%s); counting from zero",
                        self.path, why, move_error)
            return
        log.warning("state file %s %s; moved aside to %s, counting from zero", self.path, why, aside)

    def _remove_orphan_temp_files(self) -> None:
        """A crash between mkstemp and the rename leaves `<file>.<random>.tmp` behind; nobody else writes them."""
        with contextlib.suppress(OSError):
            for orphan in self.path.parent.glob(glob.escape(self.path.name) + ".*.tmp"):
                with contextlib.suppress(OSError):
                    orphan.unlink()
                    log.info("removed %s, left by an interrupted checkpoint write", orphan)


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
