"""`python -m gpucost.demo`."""

from __future__ import annotations

import sys

from gpucost.demo.cli import main

sys.exit(main())
