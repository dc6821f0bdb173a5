"""What every cloud sync plan shares: the actions, the name prefix, one line per change.

AWS budgets, GCP budgets and AWS anomaly monitors are planned the same way:
compare what the budgets file wants with what the cloud has, then create,
update, leave alone or report as orphaned (never delete) what carries our prefix.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

__all__ = ["MANAGED_PREFIX", "ORPHANED_DETAIL", "Action", "change_line", "render_changes"]

Action = Literal["create", "update", "unchanged", "orphaned"]

# Cloud objects gpucost manages are named with this prefix; anything else is left alone.
MANAGED_PREFIX = "gpucost-"
# Why an orphan stays: the sync never deletes what the file no longer asks for.
ORPHANED_DETAIL = "not in the budgets file; left in place"


def change_line(action: Action, what: str, name: str, detail: str = "") -> str:
    """`update    aws budget gpucost-research: limit 100 -> 120`, as plan/sync print it."""
    return f"{action:<9} {what} {name}" + (f": {detail}" if detail else "")


def render_changes(changes: Sequence[object], nothing_planned: str) -> str:
    """One `change_line` per change, or `nothing_planned` when the file asks for none."""
    return "\n".join(str(change) for change in changes) or nothing_planned
