"""What every gpucost command line shares: how a user error ends."""

from __future__ import annotations

import sys

__all__ = ["EXIT_USER_ERROR", "fail"]

EXIT_USER_ERROR = 2


def fail(message: str) -> int:
    """Print one line to stderr and return the user-error exit code (no traceback)."""
    print(message.splitlines()[0] if message else "error", file=sys.stderr)
    return EXIT_USER_ERROR
