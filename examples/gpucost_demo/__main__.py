"""`python -m gpucost_demo`."""

from __future__ import annotations

import sys

from gpucost_demo.cli import main

sys.exit(main())
