"""Reload the budgets file when its content changes; a bad file keeps the last good budgets.

Content is compared, not mtimes: a Kubernetes ConfigMap update swaps a
symlink and may keep the file's mtime.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from gpucost.budgets.spec import BudgetFile, load_budget_file
from gpucost.budgets.state import SidecarState
from gpucost.errors import ConfigError

__all__ = ["BudgetFileWatcher"]

log = logging.getLogger(__name__)


class BudgetFileWatcher:
    def __init__(self, path: Path, state: SidecarState) -> None:
        self.path = path
        self._state = state
        self._last_digest: bytes | None = None

    def check(self) -> bool:
        """Reload when the content changed; True when new budgets were taken."""
        try:
            digest = hashlib.sha256(self.path.read_bytes()).digest()
        except OSError:
            digest = b"unreadable"
        if digest == self._last_digest:
            return False
        self._last_digest = digest
        try:
            budgets = load_budget_file(self.path)
        except ConfigError as err:
            log.error("budgets file rejected, keeping the last good budgets: %s", err.one_line())
            self._state.mark_config_invalid()
            return False
        self._state.set_budgets(budgets)
        log.info(
            "budgets loaded from %s: %d budgets, %d fixed costs",
            self.path,
            len(budgets.budgets),
            len(budgets.fixed_costs),
        )
        for overlap in budgets.overlaps:
            log.warning("%s", overlap)
        return True

    def current(self) -> BudgetFile | None:
        return self._state.budgets()
