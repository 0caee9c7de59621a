#!/usr/bin/env python
"""Train the model on a folder of Challenge records, as the PhysioNet/CinC Challenge 2021 does.

Usage: python train_model.py DATA MODEL

Calls ``team_code.training_code(DATA, MODEL)``, which replaces the model in MODEL only when the
new one is complete (a failed run leaves MODEL as it was). Beyond the official script: the data
folder is checked first, a user error (no records, no usable labels, a model folder that cannot
be written or that another training holds, bad settings) ends the run with one ``error:`` line
and status 1 instead of a traceback, and a summary line ends a good run (records found, seconds).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable

from ecgio.record import find_records

LOG = logging.getLogger("train_model")

TrainingCode = Callable[[str, str], object]

ENVIRONMENT_HELP = """environment:
  ECG_SETTINGS=FILE   JSON file of training settings (epochs, lead_sets, architecture, ...; see docs/settings.md)
  ECG_THREADS=N       torch threads (default: the free cores of this process, at most 8)
  ECG_DEVICE=NAME     auto (CUDA when present), cpu or cuda
  ECG_CACHE_DIR=DIR   feature cache (default ~/.cache/ecg-leads; reused across runs)
  ECG_MAX_SAMPLES=N   largest record accepted, in samples over all leads (default 24,000,000)"""


def count_records(data_directory: str) -> int:
    """Records (header + signal file) under the data folder, subfolders included."""
    if not os.path.isdir(data_directory):
        raise FileNotFoundError(f"{data_directory}: data folder not found")
    return len(find_records(data_directory, recursive=True))


def check_max_samples() -> None:
    """A malformed ``ECG_MAX_SAMPLES`` stops the run at once, rather than leaving out every record."""
    from ecgio.limits import max_samples
    from ecgtrain.errors import SettingsError

    try:
        max_samples()
    except ValueError as error:
        raise SettingsError(str(error)) from None


def run_training(data_directory: str, model_directory: str, training_code: TrainingCode) -> tuple[int, float]:
    """Check the data folder, then train (team code creates the model folder, as in the official
    template; ours only once the model is complete); returns (records found, seconds)."""
    start = time.perf_counter()
    records = count_records(data_directory)
    if records == 0:
        raise FileNotFoundError(f"{data_directory}: no records (.hea with .mat or .dat) found")
    LOG.info("training on %d records from %s into %s", records, data_directory, model_directory)
    training_code(data_directory, model_directory)
    return records, time.perf_counter() - start


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Train the model on DATA and write it to MODEL.",
        usage="python train_model.py DATA MODEL",
        epilog=ENVIRONMENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("data_directory", help="folder of training records (.hea + .mat)")
    parser.add_argument("model_directory", help="folder for the trained model (created)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from ecgio.errors import RecordError
    from ecgtrain.errors import USER_ERRORS
    from ecgtrain.settings import Settings
    from team_code import training_code  # only when run: helper and scorer work without it

    try:
        Settings.from_env()  # settings and devices checked before the data folder is even listed
        check_max_samples()
        records, seconds = run_training(args.data_directory, args.model_directory, training_code)
    except (*USER_ERRORS, RecordError, OSError) as error:  # OSError: unreadable data, full disk, permissions
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"error: interrupted; {args.model_directory} keeps the model it had", file=sys.stderr)
        return 130
    print(f"Done: trained on {records} records in {seconds:.1f} s; model in {args.model_directory}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
