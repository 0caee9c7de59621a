#!/usr/bin/env python
"""Run a trained model on every record of a folder, as the PhysioNet/CinC Challenge 2021 does.

Usage: python test_model.py MODEL DATA OUTPUTS [--batch N] [--workers K]

For each record ``X.hea`` under DATA (subfolders included, as training finds them) it writes
``OUTPUTS/<same subfolder>/X.csv`` in the format of ``helper_code.save_outputs``.
``team_code.load_model(MODEL, leads)`` is called once per sorted lead set present in the headers,
``team_code.run_model(model, header, recording)`` once per record with the header text and the raw
recording in header lead order (the Challenge contract).

The work is :mod:`ecgserve.folder_run`'s; this file is the command. Each header is read and parsed
once (:mod:`ecgio`, the package's one header grammar): that parse gives the lead set that chooses the
model and the checks made before any signal is read, and travels with the text to ``run_model``.

How records are classified (the same files and failures either way; the numbers are discussed below):

- **record by record** (the official loop): read the recording, ``run_model``, write. Used whenever
  the ``team_code.py`` that Python imports is not the one beside this script (another team's code,
  the Challenge harness case), for a lead set whose model failed to load, and for any model that
  is not our ``ecgserve.predictor.Predictor``.
- **batched** (our team_code and its Predictor): records go through the pipeline in chunks of
  ``max(64, N)`` records, in order. Reading and preparing a record (conditioning, delineation,
  features) runs in K worker processes (``--workers``, else ``ECG_WORKERS``, default 1: in this
  process) while this process runs the network on the previous chunk, its windows in batches of
  about N windows (``--batch``, default 1) with records of the same lead set. At most two chunks
  of prepared records are held, so memory does not grow with the folder.

The batched path makes the checks and the errors of ``run_model`` (:mod:`ecgserve.record_inputs`).
Its numbers depend on ``--batch`` (which records share a network call changes float32 rounding: at
most 1.5e-7 on the 25 real records) but not on ``--workers``: any K writes byte-identical files
(given the same torch thread count, e.g. ``ECG_THREADS=1``). ``--batch 1`` (the default) runs each
record alone through the network and writes exactly what the record-by-record loop writes, so a
score is the same whichever script ran the model; ``--batch 16`` is about 3x faster on CPU
(docs/results/speed-and-scale.md), and a label could then differ only for a probability within that rounding
of its threshold.

Beyond the official script:

- fail fast, with one ``error:`` line and exit status 2, when MODEL is missing, empty or holds only
  hidden files (what a killed first training leaves), when ``ECG_MAX_SAMPLES`` is malformed, when DATA
  is missing or holds no header, or when another test_model run is writing into OUTPUTS (an
  exclusive lock on ``OUTPUTS/.lock``);
- a progress bar and a summary line (records, failures, seconds, records per second);
- a record that cannot be read or run (missing or damaged signal, bad header, no usable signal, a
  model that raises) is logged as an error naming the file and still gets an output file with
  empty lists, exactly what the official script writes for a failed record;
- every output file is written atomically; one that cannot be written (full disk) is that record's
  failure, logged, and the run goes on.

Exit status: 0, or 1 when every record failed or some output could not be written, 2 for the
fail-fast errors above (an outputs folder that cannot be created or written included), 130 after Ctrl-C
(one line; the output files already written are complete).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from ecgserve import folder_run
from ecgserve.folder_run import DEFAULT_BATCH, WORKERS_ENV, RunSummary, SetupError, positive
from helper_code import save_outputs

ENVIRONMENT_HELP = """environment:
  ECG_SETTINGS=FILE   JSON settings file (its device and threads apply to inference too)
  ECG_THREADS=N       torch threads (default: the free cores of this process, at most 8)
  ECG_DEVICE=NAME     auto (CUDA when present), cpu or cuda
  ECG_MAX_SAMPLES=N   largest record accepted, in samples over all leads (default 24,000,000)
  ECG_WORKERS=K       worker processes preparing records (default 1; --workers overrides it)"""


def run_folder(*args: Any, **kwargs: Any) -> RunSummary:
    """:func:`ecgserve.folder_run.run_folder` writing with the helper_code.py beside this script."""
    return folder_run.run_folder(*args, save_outputs=save_outputs, **kwargs)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Run the trained model on every record of DATA and write OUTPUTS/<record>.csv.",
        usage="python test_model.py MODEL DATA OUTPUTS [--batch N] [--workers K]",
        epilog=ENVIRONMENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model_directory", help="folder written by train_model.py")
    parser.add_argument("data_directory", help="folder of records (.hea + .mat or .dat; subfolders searched)")
    parser.add_argument("output_directory", help="folder for the output files (created)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--batch",
        type=positive,
        default=DEFAULT_BATCH,
        metavar="N",
        help=f"windows per network batch (default {DEFAULT_BATCH}; 1: each record alone, as run_model does)",
    )
    parser.add_argument(
        "--workers",
        type=positive,
        default=None,
        metavar="K",
        help=f"worker processes reading and preparing records (default ${WORKERS_ENV}, else 1: this process)",
    )
    return parser.parse_args(argv)


def is_this_packages(team_code: Any) -> bool:
    """Whether the imported team_code is the one beside this script (so its models may be batched)."""
    path = getattr(team_code, "__file__", None)
    return bool(path) and Path(path).resolve() == Path(__file__).resolve().with_name("team_code.py")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        workers = folder_run.worker_count(args.workers)
        folder_run.check_max_samples()
        folder_run.check_model_folder(args.model_directory)
        if not folder_run.find_header_files(args.data_directory):
            raise SetupError(f"{args.data_directory}: no header files (.hea): no data was provided")
        import team_code  # only when run: helper and scorer work without it

        summary = run_folder(
            args.model_directory,
            args.data_directory,
            args.output_directory,
            team_code.load_model,
            team_code.run_model,
            show_progress=not args.quiet,
            batched=is_this_packages(team_code),
            workers=workers,
            batch=args.batch,
        )
    except (SetupError, FileNotFoundError, NotADirectoryError, PermissionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # every output file is written atomically: those that exist are whole
        print(
            f"error: interrupted; the output files written so far in {args.output_directory} are complete,"
            " the other records have none",
            file=sys.stderr,
        )
        return 130
    print(summary.line())
    all_failed = summary.records and len(summary.failures) == summary.records
    return 1 if all_failed or summary.unwritten else 0


if __name__ == "__main__":
    sys.exit(main())
