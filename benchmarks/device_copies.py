#!/usr/bin/env python
"""Device-perturbed copies of Challenge-format records, for training the boosted trees as if more devices
had recorded the same patients.

Usage:
    python benchmarks/device_copies.py IN_DIR OUT_DIR [--seed 0]

Each record under ``IN_DIR`` is written under ``OUT_DIR`` at the same relative path and name (so its
source, read from the name, and its labels stay those of the original) after
:func:`ecgtrain.augment.imitate_device`: per-lead gain error, a device's causal filters, breathing
wander, and another sampling rate. The trees read features of whole records, which the networks'
on-the-fly window augmentation never reaches; training them on originals plus copies is their device
imitation (``compare_sources.py --candidate-device-copies``). A copy already complete is kept.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ecgtrain.device_copies import write_copies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    write_copies(args.source, args.out, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
