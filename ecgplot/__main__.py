"""``python -m ecgplot``: see :mod:`ecgplot.cli`."""

import sys

from ecgplot.cli import main

sys.exit(main())
