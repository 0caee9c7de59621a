"""``python -m plots``: see :mod:`plots.cli`."""

import sys

from plots.cli import main

sys.exit(main())
