"""``python -m ecgreport``: see :mod:`ecgreport.cli`."""

import sys

from ecgreport.cli import main

sys.exit(main())
