"""`python -m gpucost.scorecard`: the same as `gpucost scorecard`."""

import sys

from gpucost.scorecard.cli import main

sys.exit(main())
