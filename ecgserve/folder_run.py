"""Running a model over a folder of records: the engine of test_model.py.

Every record under the data folder gets an output file, in the same subfolder, written atomically in
the Challenge's format; a record that cannot be read or classified gets empty lists and a logged reason
naming its file, and the run goes on. Each header is read and parsed once: that parse chooses the model
and travels with the text (:class:`ecgio.header.HeaderText`) to ``run_model`` or to the workers.

Two ways, the same files and failures: **record by record** through team_code's ``run_model`` (the
official loop; any team's code), and **batched** for this package's :class:`ecgserve.predictor.Predictor`:
K worker processes read and prepare one chunk of records while the network runs on the chunk before, in
batches of about N windows. test_model.py's docstring says when each is used and what the numbers are.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecgio.errors import RecordError
from ecgio.files import LockHeld, exclusive_lock
from ecgio.header import HeaderText, read_parsed_header
from ecgio.leads import sort_leads
from ecgio.limits import max_samples
from ecgio.record import find_records, load_raw, read_header_text
from ecglog.progress import progress as progress_bar
from ecgserve.record_inputs import describe

LOG = logging.getLogger("test_model")  # the name users see in its log lines
LOCK_NAME = ".lock"
MANIFEST = "manifest.json"
WORKERS_ENV = "ECG_WORKERS"
#: Windows per network batch (``Predictor.probabilities_batch``): 1 writes what the official loop writes.
#: Records per pipeline chunk (at least).
DEFAULT_BATCH = 1
CHUNK_RECORDS = 64

LoadModel = Callable[[str, Sequence[str]], Any]
SaveOutputs = Callable[[str, str, Sequence[Any], Sequence[Any], Sequence[Any]], None]
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

    @property
    def rate(self) -> float:
        """Records per second of wall time, start to end (finding records and loading models included)."""
        return self.records / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        unwritten = f", {len(self.unwritten)} output(s) not written" if self.unwritten else ""
        return (
            f"Done: {self.records} records, {len(self.failures)} failed{unwritten}, {self.seconds:.1f} s "
            f"at {self.rate:.2f} records/s "
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
    if all(path.name.startswith(".") for path in folder.iterdir()):  # a lock, a killed run's staging folder
        raise SetupError(
            f"{model_directory}: model folder holds no model, only hidden files (a first training that did not"
            " finish leaves such a folder); train a model into it first"
        )
    if (folder / MANIFEST).is_file():
        from ecgserve.model_folder import ModelFolderError, read_manifest

        try:
            read_manifest(folder)
        except ModelFolderError as error:
            raise SetupError(str(error)) from None


@contextlib.contextmanager
def outputs_lock(output_directory: str) -> Iterator[None]:
    """Hold an exclusive lock on ``OUTPUTS/.lock`` for the run, so two runs never mix their outputs."""
    path = os.path.join(output_directory, LOCK_NAME)
    with contextlib.ExitStack() as stack:
        try:
            os.makedirs(output_directory, exist_ok=True)
            stack.enter_context(exclusive_lock(path))
        except LockHeld:
            raise SetupError(
                f"{output_directory}: another test_model run is writing into this folder (it holds {path})"
            ) from None
        except OSError as error:  # a file of that name, a read-only file system, no permission
            reason = error.strerror or str(error)
            raise SetupError(f"{output_directory}: cannot create or write the outputs folder ({reason})") from None
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


def _read_header(header_file: str) -> HeaderText:
    """The header text with its one parse attached (``run_model`` and the workers take it from there)."""
    return read_parsed_header(read_header_text(header_file), source=header_file)


def _run_one(header_file: str, text: HeaderText, models: _Models, run_model: RunModel) -> tuple:
    """Check, load and run one record; every problem raises an error naming the file."""
    leads = sort_leads(text.parsed.leads)
    recording, _ = load_raw(header_file, text.parsed)
    model = models.get(leads)
    if isinstance(model, Exception):
        raise RecordError(header_file, f"no model for leads {','.join(leads)} ({model})")
    classes, labels, probabilities = run_model(model, text, recording)
    return list(classes), list(labels), list(probabilities)


def _output_file(output_directory: str, data_directory: str, header_file: str) -> str:
    relative = Path(header_file).relative_to(data_directory).with_suffix(".csv")
    return os.path.join(output_directory, str(relative))


@dataclass
class _Run:
    """One run: where records come from and go, the models, team_code's ``run_model``, what happened."""

    data_directory: str
    output_directory: str
    models: _Models
    run_model: RunModel
    save_outputs: SaveOutputs
    summary: RunSummary


@dataclass
class _Record:
    """One record on its way through a run: its outputs or why it failed, or (batched) its preparation in
    flight and the model that will classify it."""

    header_file: str
    record_id: str
    outputs: tuple = ([], [], [])
    error: str | None = None
    model: Any = None
    job: Any = None


def _batchable(model: Any) -> bool:
    from ecgserve.predictor import Predictor  # only on the batched path, where team_code imported it already

    return isinstance(model, Predictor)


def _start(run: _Run, header_file: str, workers: Any = None) -> _Record:
    """Read the header, then classify the record now, or (batched, given ``workers``) hand it to the workers."""
    record = _Record(header_file, Path(header_file).stem)
    try:
        text = _read_header(header_file)
        header = text.parsed
        record.record_id = header.record_name or record.record_id
        leads = sort_leads(header.leads)
        if leads not in run.summary.lead_sets:
            run.summary.lead_sets.append(leads)
        model = run.models.get(leads) if workers is not None else None
        if model is not None and _batchable(model):
            record.model, record.job = model, workers.submit(header_file, text, model.preparer)
        else:
            record.outputs = _run_one(header_file, text, run.models, run.run_model)
    except Exception as error:  # one bad record (or a model failing on it) never stops the run
        record.error = describe(error)
    return record


def _save(run: _Run, record: _Record) -> None:
    """Report a failed record, and write its output file (empty lists when it failed); an output that cannot
    be written is that record's failure, never the run's."""
    summary = run.summary
    if record.error is not None:
        LOG.error("%s failed: %s", record.header_file, record.error)
        summary.failures.append((record.header_file, record.error))
        record.outputs = ([], [], [])
    output_file = _output_file(run.output_directory, run.data_directory, record.header_file)
    try:
        os.makedirs(os.path.dirname(output_file), exist_ok=True)
        run.save_outputs(output_file, record.record_id, *record.outputs)
    except OSError as error:
        reason = f"cannot write output ({error.strerror or error})"
        LOG.error("%s: %s", output_file, reason)
        summary.unwritten.append((output_file, reason))
        if record.error is None:
            summary.failures.append((record.header_file, f"{output_file}: {reason}"))


def _classify(group: list[tuple[_Record, Any]], batch: int) -> None:
    """Run one model's network over its prepared records in batches; when a batch fails, each record is
    run alone, so that only a record the network fails on fails."""
    model = group[0][0].model
    try:
        rows = model.probabilities_batch([item for _, item in group], batch)
    except Exception as error:
        LOG.warning("a batch of %d records failed (%s); running them one at a time", len(group), describe(error))
        rows = None
    for k, (record, item) in enumerate(group):
        try:
            probabilities = rows[k] if rows is not None else model.probabilities_batch([item], batch)[0]
            record.outputs = (list(model.classes), list(model.labels(probabilities)), list(probabilities))
        except Exception as error:
            record.error = describe(error)


def _finish(chunk: list[_Record], workers: Any, batch: int) -> list[_Record]:
    """Collect a chunk's prepared records and classify them, each model over its own records in order."""
    groups: dict[int, list[tuple[_Record, Any]]] = {}
    for record in chunk:
        if record.job is None:
            continue
        item, reason = workers.result(record.job)
        record.job = None
        if item is None:
            record.error = reason
        else:
            groups.setdefault(id(record.model), []).append((record, item))
    for group in groups.values():
        _classify(group, batch)
    return chunk


def _pipeline(run: _Run, header_files: list[str], workers: Any, batch: int) -> Iterator[_Record]:
    """Every record in order, classified: the workers prepare one chunk while the network runs on the one
    before, so at most two chunks of prepared records exist at a time."""
    size = max(CHUNK_RECORDS, batch)
    previous: list[_Record] = []
    for start in range(0, len(header_files), size):
        current = [_start(run, header_file, workers) for header_file in header_files[start : start + size]]
        yield from _finish(previous, workers, batch)
        previous = current
    yield from _finish(previous, workers, batch)


def _run_batched(run: _Run, header_files: list[str], workers: int, batch: int, show_progress: bool) -> None:
    from ecgserve.prepare_workers import PrepareWorkers

    workers = min(workers, len(header_files))  # no idle processes to start; the numbers do not depend on it
    LOG.info("batched: %d worker process(es) preparing records, network batches of about %d windows", workers, batch)
    with PrepareWorkers(workers) as pool:
        records = _pipeline(run, header_files, pool, batch)
        for record in progress_bar(records, desc="test", unit="rec", total=len(header_files), enabled=show_progress):
            _save(run, record)


def run_folder(
    model_directory: str,
    data_directory: str,
    output_directory: str,
    load_model: LoadModel,
    run_model: RunModel,
    show_progress: bool = True,
    batched: bool = False,
    workers: int = 1,
    batch: int = DEFAULT_BATCH,
    *,
    save_outputs: SaveOutputs,
) -> RunSummary:
    """Write ``output_directory/<subfolder>/<record>.csv`` for every header under ``data_directory``.

    ``load_model`` and ``run_model`` are team_code's functions and ``save_outputs`` helper_code's (injected,
    so this works and is tested without a team_code.py; test_model.py passes the ones beside it). With ``batched`` (they are this package's), records whose model
    is our Predictor are prepared by ``workers`` processes and classified in batches of about
    ``batch`` windows; the others, and every record without ``batched``, go through ``run_model``
    one by one. Raises FileNotFoundError for a missing or empty data folder and :class:`SetupError`
    when another run holds the outputs folder.
    """
    start = time.perf_counter()
    print("Finding header and recording files...")
    header_files = find_header_files(data_directory)
    if not header_files:
        raise FileNotFoundError(f"{data_directory}: no header files (.hea): no data was provided")
    with outputs_lock(output_directory):
        print("Loading models...")
        models = _Models(model_directory, load_model)
        run = _Run(data_directory, output_directory, models, run_model, save_outputs, RunSummary())
        run.summary.records = len(header_files)
        print("Running model...")
        if batched:
            _run_batched(run, header_files, workers, batch, show_progress)
        else:
            LOG.info("record by record through team_code.run_model")
            for header_file in progress_bar(header_files, desc="test", unit="rec", enabled=show_progress):
                _save(run, _start(run, header_file))
    summary = run.summary
    summary.lead_sets.sort(key=lambda s: (-len(s), s))
    summary.seconds = time.perf_counter() - start
    return summary


def positive(text: str) -> int:
    """A whole number >= 1 from a command line or the environment."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def worker_count(option: int | None) -> int:
    """``--workers``, else ``ECG_WORKERS``, else 1; a malformed ``ECG_WORKERS`` is a :class:`SetupError`."""
    if option is not None:
        return option
    text = os.environ.get(WORKERS_ENV, "").strip()
    if not text:
        return 1
    try:
        return positive(text)
    except argparse.ArgumentTypeError as error:
        raise SetupError(f"{WORKERS_ENV}={text!r}: {error}") from None


def check_max_samples() -> None:
    """A malformed ``ECG_MAX_SAMPLES`` stops the run at once, rather than failing every record."""
    try:
        max_samples()
    except ValueError as error:
        raise SetupError(str(error)) from None
