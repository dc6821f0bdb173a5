"""How a gpucost command line ends on a user error: one line on stderr and exit code 2.

Every command line (gpucost, gpucost-exporter, gpucost-budgets and the
subcommands each folder mounts on `gpucost`) uses it, so it lives below all of
them rather than in `gpucost.cli`, which imports those subcommands.
"""

from __future__ import annotations

import sys

__all__ = ["EXIT_USER_ERROR", "fail"]

EXIT_USER_ERROR = 2


def fail(message: str) -> int:
    """Print one line to stderr and return the user-error exit code (no traceback)."""
    print(message.splitlines()[0] if message else "error", file=sys.stderr)
    return EXIT_USER_ERROR
