"""A Challenge-sized training set on disk, made from the real shared records (see :mod:`ecgdata.scale_data`).

python benchmarks/make_scale_data.py OUT --records N [--seed S] [--jobs J]
"""

import sys

from ecgdata.scale_data import main

if __name__ == "__main__":
    sys.exit(main())
