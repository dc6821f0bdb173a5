"""The ledger's state file: atomic checkpoints and a restore that never crashes.

A corrupt or foreign file is moved aside (`<file>.corrupt-<UTC time>`) with a
warning and counting starts fresh; it is never fatal.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from gpucost.engine.ledger import Ledger, StateFormatError

__all__ = ["StateFile"]

log = logging.getLogger("gpucost.state")


class StateFile:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def save(self, ledger: Ledger, last_tick: float) -> None:
        """Write atomically: a crash mid-write leaves the previous checkpoint intact."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps(ledger.to_state(last_tick), separators=(",", ":"))
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

    def load(self, workload_label_names: tuple[str, ...], retention_seconds: float) -> tuple[Ledger, float] | None:
        """The saved ledger and its last tick time, or None when there is none (or it was unusable)."""
        try:
            raw = self.path.read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cannot read state file %s: %s; starting from zero", self.path, exc)
            return None
        try:
            return Ledger.from_state(json.loads(raw), workload_label_names, retention_seconds)
        except (json.JSONDecodeError, UnicodeDecodeError, StateFormatError) as exc:
            aside = self.path.with_name(
                f"{self.path.name}.corrupt-{datetime.now(tz=UTC).strftime('%Y%m%dT%H%M%SZ')}"
            )
            try:
                os.replace(self.path, aside)
                log.warning("state file %s is unusable (%s); moved aside to %s, counting from zero",
                            self.path, exc, aside)
            except OSError as move_error:
                log.warning("state file %s is unusable (%s) and could not be moved aside (%s)",
                            self.path, exc, move_error)
            return None
