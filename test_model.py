#!/usr/bin/env python
"""Run a trained model on every record of a folder, as the PhysioNet/CinC Challenge 2021 does.

Usage: python test_model.py MODEL DATA OUTPUTS

For each record ``X.hea`` under DATA (subfolders included, as training finds them) it writes
``OUTPUTS/<same subfolder>/X.csv`` in the format of ``helper_code.save_outputs``.
``team_code.load_model(MODEL, leads)`` is called once per sorted lead set present in the headers,
``team_code.run_model(model, header, recording)`` once per record with the header text and the raw
recording in header lead order (the Challenge contract).

Each header is read and parsed once (:mod:`ecgio`, the package's one header grammar): that parse
gives the lead set that chooses the model, and the checks made before any signal is read (files
inside the data folder, bounded size, a usable rate and length).

Beyond the official script:

- fail fast, with one ``error:`` line and exit status 2, when MODEL is missing or empty, when DATA
  is missing or holds no header, or when another test_model run is writing into OUTPUTS (an
  exclusive lock on ``OUTPUTS/.lock``);
- a progress bar and a summary line (records, failures, seconds);
- a record that cannot be read or run (missing or damaged signal, bad header, no usable signal, a
  model that raises) is logged as an error naming the file and still gets an output file with
  empty lists, exactly what the official script writes for a failed record;
- every output file is written atomically; one that cannot be written (full disk) is that record's
  failure, logged, and the run goes on.

Exit status: 0, or 1 when every record failed or some output could not be written, 2 for the
fail-fast errors above.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecgio.errors import RecordError
from ecgio.files import LockHeld, exclusive_lock
from ecgio.header import Header, parse_header
from ecgio.leads import sort_leads
from ecgio.record import find_records, load_raw
from ecglog.progress import progress as progress_bar
from helper_code import save_outputs

ENVIRONMENT_HELP = """environment:
  ECG_SETTINGS=FILE   JSON settings file (its device and threads apply to inference too)
  ECG_THREADS=N       torch threads (default: the free cores of this process, at most 8)
  ECG_DEVICE=NAME     auto (CUDA when present), cpu or cuda
  ECG_MAX_SAMPLES=N   largest record accepted, in samples over all leads (default 24,000,000)"""

LOG = logging.getLogger("test_model")
LOCK_NAME = ".lock"
MANIFEST = "manifest.json"

LoadModel = Callable[[str, Sequence[str]], Any]
RunModel = Callable[[Any, str, Any], tuple[Sequence[Any], Sequence[Any], Sequence[Any]]]


class SetupError(Exception):
    """A problem with the run as a whole (not one record): reported as one ``error:`` line, exit 2."""


@dataclass
class RunSummary:
    """What a run did: records seen, those that failed (header path, reason), unwritten outputs, wall time."""

    records: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    unwritten: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    lead_sets: list[tuple[str, ...]] = field(default_factory=list)

    def line(self) -> str:
        unwritten = f", {len(self.unwritten)} output(s) not written" if self.unwritten else ""
        return (
            f"Done: {self.records} records, {len(self.failures)} failed{unwritten}, {self.seconds:.1f} s "
            f"({len(self.lead_sets)} lead set(s): {'; '.join(','.join(s) for s in self.lead_sets)})."
        )


def find_header_files(data_directory: str) -> list[str]:
    """Every non-hidden ``*.hea`` under the folder, subfolders included, sorted; records without a signal too."""
    if not os.path.isdir(data_directory):
        raise FileNotFoundError(f"{data_directory}: data folder not found")
    return [str(path) for path in find_records(data_directory, recursive=True, require_signal=False)]


def check_model_folder(model_directory: str) -> None:
    """MODEL must exist and hold something; when it holds our manifest, that manifest must be valid.

    Kept generic on purpose: the Challenge harness may run another team's code with its own folder
    layout, so only our own manifest is checked, and only when present (torch loads only then).
    """
    folder = Path(model_directory)
    if not folder.is_dir():
        raise SetupError(f"{model_directory}: model folder not found")
    if not any(folder.iterdir()):
        raise SetupError(f"{model_directory}: model folder is empty (train a model into it first)")
    if (folder / MANIFEST).is_file():
        from training.model_folder import ModelFolderError, read_manifest

        try:
            read_manifest(folder)
        except ModelFolderError as error:
            raise SetupError(str(error)) from None


@contextlib.contextmanager
def outputs_lock(output_directory: str) -> Iterator[None]:
    """Hold an exclusive lock on ``OUTPUTS/.lock`` for the run, so two runs never mix their outputs."""
    os.makedirs(output_directory, exist_ok=True)
    path = os.path.join(output_directory, LOCK_NAME)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(exclusive_lock(path))
        except LockHeld:
            raise SetupError(
                f"{output_directory}: another test_model run is writing into this folder (it holds {path})"
            ) from None
        yield


@dataclass
class _Models:
    """Models by sorted lead set, loaded on first need (once per set); a set that fails maps to its error."""

    model_directory: str
    load_model: LoadModel
    loaded: dict[tuple[str, ...], Any] = field(default_factory=dict)

    def get(self, leads: tuple[str, ...]) -> Any:
        if leads not in self.loaded:
            try:
                self.loaded[leads] = self.load_model(self.model_directory, leads)
            except Exception as error:  # a team's model can fail in any way; its records fail, not the run
                LOG.error(
                    "load_model(%s, %s) failed: %s: %s",
                    self.model_directory,
                    ",".join(leads),
                    type(error).__name__,
                    error,
                )
                self.loaded[leads] = error
        return self.loaded[leads]


def _read_header(header_file: str) -> tuple[str, Header]:
    """The header text and its one parse."""
    try:
        with open(header_file, encoding="utf-8", errors="replace") as file:
            text = file.read()
    except OSError as error:
        raise RecordError(header_file, f"cannot read header ({error.strerror or error})") from None
    return text, parse_header(text, source=header_file)


def _run_one(header_file: str, text: str, header: Header, models: _Models, run_model: RunModel) -> tuple:
    """Check, load and run one record; every problem raises an error naming the file."""
    leads = sort_leads(header.leads)
    recording, _ = load_raw(header_file, header)
    model = models.get(leads)
    if isinstance(model, Exception):
        raise RecordError(header_file, f"no model for leads {','.join(leads)} ({model})")
    classes, labels, probabilities = run_model(model, text, recording)
    return list(classes), list(labels), list(probabilities)


def _reason(error: Exception) -> str:
    return str(error) if isinstance(error, RecordError) else f"{type(error).__name__}: {error}"


def _output_file(output_directory: str, data_directory: str, header_file: str) -> str:
    relative = Path(header_file).relative_to(data_directory).with_suffix(".csv")
    return os.path.join(output_directory, str(relative))


def _process(
    header_file: str,
    data_directory: str,
    output_directory: str,
    models: _Models,
    run_model: RunModel,
    summary: RunSummary,
) -> None:
    """One record, start to end: its failure (or its output's) goes into the summary, never further."""
    record_id = Path(header_file).stem
    try:
        text, header = _read_header(header_file)
        record_id = header.record_name or record_id
        if sort_leads(header.leads) not in summary.lead_sets:
            summary.lead_sets.append(sort_leads(header.leads))
        outputs = _run_one(header_file, text, header, models, run_model)
    except Exception as error:  # one bad record (or a model failing on it) never stops the run
        LOG.error("%s failed: %s", header_file, _reason(error))
        summary.failures.append((header_file, _reason(error)))
        outputs = ([], [], [])
    output_file = _output_file(output_directory, data_directory, header_file)
    try:
        os.makedirs(os.path.dirname(output_file), exist_ok=True)
        save_outputs(output_file, record_id, *outputs)
    except OSError as error:
        reason = f"cannot write output ({error.strerror or error})"
        LOG.error("%s: %s", output_file, reason)
        summary.unwritten.append((output_file, reason))
        if not summary.failures or summary.failures[-1][0] != header_file:
            summary.failures.append((header_file, f"{output_file}: {reason}"))


def run_folder(
    model_directory: str,
    data_directory: str,
    output_directory: str,
    load_model: LoadModel,
    run_model: RunModel,
    show_progress: bool = True,
) -> RunSummary:
    """Write ``output_directory/<subfolder>/<record>.csv`` for every header under ``data_directory``.

    ``load_model`` and ``run_model`` are team_code's functions (injected, so this works and is
    tested without a team_code.py). Raises FileNotFoundError for a missing or empty data folder
    and :class:`SetupError` when another run holds the outputs folder.
    """
    start = time.perf_counter()
    print("Finding header and recording files...")
    header_files = find_header_files(data_directory)
    if not header_files:
        raise FileNotFoundError(f"{data_directory}: no header files (.hea): no data was provided")
    with outputs_lock(output_directory):
        print("Loading models...")
        models = _Models(model_directory, load_model)
        print("Running model...")
        summary = RunSummary(records=len(header_files))
        for header_file in progress_bar(header_files, desc="test", unit="rec", enabled=show_progress):
            _process(header_file, data_directory, output_directory, models, run_model, summary)
    summary.lead_sets.sort(key=lambda s: (-len(s), s))
    summary.seconds = time.perf_counter() - start
    return summary


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Run the trained model on every record of DATA and write OUTPUTS/<record>.csv.",
        usage="python test_model.py MODEL DATA OUTPUTS",
        epilog=ENVIRONMENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model_directory", help="folder written by train_model.py")
    parser.add_argument("data_directory", help="folder of records (.hea + .mat or .dat; subfolders searched)")
    parser.add_argument("output_directory", help="folder for the output files (created)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        check_model_folder(args.model_directory)
        if not find_header_files(args.data_directory):
            raise SetupError(f"{args.data_directory}: no header files (.hea): no data was provided")
        from team_code import load_model, run_model  # only when run: helper and scorer work without it

        summary = run_folder(
            args.model_directory,
            args.data_directory,
            args.output_directory,
            load_model,
            run_model,
            show_progress=not args.quiet,
        )
    except (SetupError, FileNotFoundError, NotADirectoryError, PermissionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(summary.line())
    all_failed = summary.records and len(summary.failures) == summary.records
    return 1 if all_failed or summary.unwritten else 0


if __name__ == "__main__":
    sys.exit(main())
