#!/usr/bin/env python
"""Run a trained model on every record of a folder, as the PhysioNet/CinC Challenge 2021 does.

Usage: python test_model.py MODEL DATA OUTPUTS

For each record ``X.hea`` (+ ``X.mat``) directly in DATA it writes ``OUTPUTS/X.csv`` with
``helper_code.save_outputs``. ``team_code.load_model(MODEL, leads)`` is called once per sorted
lead set present in the headers, ``team_code.run_model(model, header, recording)`` once per
record with the raw recording in header lead order (the Challenge contract).

Beyond the official script: a progress bar, a summary line at the end (records, failures,
seconds), and records that cannot be read or run (missing or damaged ``.mat``, bad header,
a model that raises) are logged as errors naming the file and still get an output file with
empty lists, exactly what the official script writes for a failed record: one bad record
never stops the run. The exit status is 1 only when every record failed.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecgio.errors import RecordError
from ecgio.header import parse_header
from ecglog.progress import progress as progress_bar
from helper_code import (
    get_leads,
    get_recording_id,
    load_header,
    load_recording,
    save_outputs,
    sort_leads,
)

LOG = logging.getLogger("test_model")

LoadModel = Callable[[str, Sequence[str]], Any]
RunModel = Callable[[Any, str, Any], tuple[Sequence[Any], Sequence[Any], Sequence[Any]]]


@dataclass
class RunSummary:
    """What a run did: records seen, those that failed (header path, reason), wall time."""

    records: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    lead_sets: list[tuple[str, ...]] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"Done: {self.records} records, {len(self.failures)} failed, {self.seconds:.1f} s "
            f"({len(self.lead_sets)} lead set(s): {'; '.join(','.join(s) for s in self.lead_sets)})."
        )


def find_header_files(data_directory: str) -> list[str]:
    """Every non-hidden ``*.hea`` directly in the folder, sorted; records without a ``.mat`` included."""
    if not os.path.isdir(data_directory):
        raise FileNotFoundError(f"{data_directory}: data folder not found")
    names = sorted(name for name in os.listdir(data_directory) if name.endswith(".hea") and not name.startswith("."))
    return [os.path.join(data_directory, name) for name in names if os.path.isfile(os.path.join(data_directory, name))]


def _lead_set(header_file: str) -> tuple[str, ...] | None:
    """The sorted lead set a header declares, None when the header cannot be read."""
    try:
        return sort_leads(get_leads(load_header(header_file)))
    except (OSError, ValueError, IndexError):
        return None


def load_models(
    model_directory: str, lead_sets: Sequence[tuple[str, ...]], load_model: LoadModel
) -> dict[tuple[str, ...], Any]:
    """One ``load_model`` call per lead set; a set whose model fails to load maps to the exception."""
    models: dict[tuple[str, ...], Any] = {}
    for leads in lead_sets:
        try:
            models[leads] = load_model(model_directory, leads)
        except Exception as error:  # a team's model can fail in any way; its records fail, not the run
            LOG.error(
                "load_model(%s, %s) failed: %s: %s", model_directory, ",".join(leads), type(error).__name__, error
            )
            models[leads] = error
    return models


def _run_one(header_file: str, model: Any, run_model: RunModel) -> tuple[list, list, list]:
    """Read, check and run one record; every problem raises an error naming the file."""
    header = load_header(header_file)
    parse_header(header, source=header_file)  # non-numeric fields, missing lead lines, ...
    recording_file = os.path.splitext(header_file)[0] + ".mat"
    recording = load_recording(recording_file)
    leads = get_leads(header)
    if recording.shape[0] != len(leads):
        raise RecordError(recording_file, f"signal has {recording.shape[0]} leads, header lists {len(leads)}")
    if isinstance(model, Exception):
        raise RecordError(header_file, f"no model for leads {','.join(sort_leads(leads))} ({model})")
    classes, labels, probabilities = run_model(model, header, recording)
    return list(classes), list(labels), list(probabilities)


def _recording_id(header_file: str) -> str:
    try:
        return get_recording_id(load_header(header_file)) or Path(header_file).stem
    except OSError:
        return Path(header_file).stem


def run_folder(
    model_directory: str,
    data_directory: str,
    output_directory: str,
    load_model: LoadModel,
    run_model: RunModel,
    show_progress: bool = True,
) -> RunSummary:
    """Write ``output_directory/<record>.csv`` for every header in ``data_directory``.

    ``load_model`` and ``run_model`` are team_code's functions (injected, so this works and is
    tested without a team_code.py).
    """
    start = time.perf_counter()
    print("Finding header and recording files...")
    header_files = find_header_files(data_directory)
    if not header_files:
        raise FileNotFoundError(f"{data_directory}: no header files (.hea): no data was provided")
    os.makedirs(output_directory, exist_ok=True)
    record_leads = {header_file: _lead_set(header_file) for header_file in header_files}
    lead_sets = sorted({leads for leads in record_leads.values() if leads is not None}, key=lambda s: (-len(s), s))
    print("Loading models...")
    models = load_models(model_directory, lead_sets, load_model)
    print("Running model...")
    summary = RunSummary(records=len(header_files), lead_sets=lead_sets)
    for header_file in progress_bar(header_files, desc="test", unit="rec", enabled=show_progress):
        leads = record_leads[header_file]
        try:
            if leads is None:
                raise RecordError(header_file, "header cannot be read")
            outputs = _run_one(header_file, models[leads], run_model)
        except Exception as error:  # one bad record (or a model failing on it) never stops the run
            reason = str(error) if isinstance(error, RecordError) else f"{type(error).__name__}: {error}"
            LOG.error("%s failed: %s", header_file, reason)
            summary.failures.append((header_file, reason))
            outputs = ([], [], [])
        output_file = os.path.join(output_directory, Path(header_file).stem + ".csv")
        save_outputs(output_file, _recording_id(header_file), *outputs)
    summary.seconds = time.perf_counter() - start
    return summary


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Run the trained model on every record of DATA and write OUTPUTS/<record>.csv.",
        usage="python test_model.py MODEL DATA OUTPUTS",
    )
    parser.add_argument("model_directory", help="folder written by train_model.py")
    parser.add_argument("data_directory", help="folder of records (.hea + .mat)")
    parser.add_argument("output_directory", help="folder for the output files (created)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from team_code import load_model, run_model  # only when run: helper and scorer work without it

    summary = run_folder(
        args.model_directory,
        args.data_directory,
        args.output_directory,
        load_model,
        run_model,
        show_progress=not args.quiet,
    )
    print(summary.line())
    return 1 if summary.records and len(summary.failures) == summary.records else 0


if __name__ == "__main__":
    sys.exit(main())
