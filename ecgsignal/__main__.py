"""``python -m ecgsignal``: see :mod:`ecgsignal.cli`."""

import sys

from ecgsignal.cli import main

sys.exit(main())
