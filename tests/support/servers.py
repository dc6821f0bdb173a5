"""Re-export: the server helpers live in `gpucost.testing.servers` so that the benchmarks can use them too."""

from __future__ import annotations

from gpucost.testing import servers as _servers
from gpucost.testing.servers import *  # noqa: F403 - the whole public surface, listed once in its __all__

__all__ = list(_servers.__all__)
