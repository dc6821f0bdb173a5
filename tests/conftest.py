"""Shared pytest configuration: the source root on sys.path for a checkout without `pip install -e`."""

from __future__ import annotations

import sys
from pathlib import Path

EXPORTER_SRC = Path(__file__).resolve().parents[1] / "exporter"
if str(EXPORTER_SRC) not in sys.path:
    sys.path.insert(0, str(EXPORTER_SRC))
