"""Reading a person's own ECG files: WFDB, Challenge, EDF/EDF+/BDF, CSV and NumPy, one interface.

:func:`open_signal` returns a :class:`SignalSource`: the rate, the canonical lead names, the length,
and ``read(start, stop)`` giving float32 millivolts (leads x samples) of any stretch. Nothing but the
header is read when a source is opened, where the format allows it (WFDB ``.dat`` through wfdb's
``sampfrom``/``sampto``, EDF through edfio's lazy loading, ``.npy`` through a memory map), so a
24-hour file is classified a stretch at a time. Challenge ``.mat``, BDF (edfio has no lazy BDF reader)
and CSV files are read whole.

Lead names are normalised as the Challenge's are (``AVR``/``avr`` -> ``aVR``), and beyond: ``ECG II``
and ``EKG-II`` -> ``II``, ``MLII`` (modified lead II of Holter records) -> ``II``, and an inverted
lead such as ``-aVR`` is read as ``aVR`` with its sign flipped. Columns or channels that are not one of
the twelve leads are dropped, with a note. Every failure is a :class:`~ecgio.errors.RecordError` naming
the file and the problem.

EDF and BDF are read with edfio: it is maintained, pure Python on numpy (no compiled extension to
build, unlike pyedflib), reads EDF, EDF+ and BDF and loads data lazily through a memory map, which is
what a day-long recording needs; wfdb's EDF reader loads the whole file.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ecgio.errors import RecordError
from ecgio.leads import TWELVE_LEADS, canonical_lead
from ecgio.limits import MAX_FS, MIN_FS, MIN_SECONDS, max_samples

FORMATS = ("auto", "wfdb", "challenge", "edf", "csv", "npy")
#: Millivolts per unit of each accepted physical unit (case-insensitive).
UNIT_TO_MV = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3}
#: Column names read as time (seconds, or milliseconds when the name says ms) or as a sample counter.
TIME_COLUMNS = {"time", "t", "times", "timestamp", "sec", "secs", "seconds", "time_s", "time(s)", "time [s]"}
TIME_MS_COLUMNS = {"ms", "time_ms", "time(ms)", "time [ms]", "milliseconds"}
INDEX_COLUMNS = {"sample", "samples", "index", "n", "sample #", "sample_number"}
_PREFIX = re.compile(r"^(ecg|ekg|lead)(\s+|[_:\-]\s*)", re.IGNORECASE)
_LIMB_MODIFIED = {"MLI": "I", "MLII": "II", "MLIII": "III"}


def normalise_lead(name: str) -> tuple[str, float]:
    """(canonical lead name, sign) of a channel name as devices write it.

    >>> normalise_lead("AVR"), normalise_lead("ECG II"), normalise_lead("MLII"), normalise_lead("-aVR")
    (('aVR', 1.0), ('II', 1.0), ('II', 1.0), ('aVR', -1.0))
    >>> normalise_lead("v1"), normalise_lead("Pleth")
    (('V1', 1.0), ('Pleth', 1.0))
    """
    text = _PREFIX.sub("", name.strip()).strip()
    sign = 1.0
    if text.startswith("-") and len(text) > 1:
        sign, text = -1.0, text[1:].strip()
    text = _LIMB_MODIFIED.get(text.upper(), text)
    return canonical_lead(text), sign


@dataclass
class SignalSource:
    """An opened ECG file: rate, leads, length, and stretches of it in mV on demand.

    ``leads`` are canonical and unique; ``read(start, stop)`` returns float32 (len(leads), stop - start)
    millivolts. ``notes`` say what was assumed or dropped on the way (units, leads, channels).
    """

    path: Path
    format: str
    fs: float
    leads: tuple[str, ...]
    num_samples: int
    reader: Callable[[int, int], np.ndarray]
    notes: list[str] = field(default_factory=list)
    age: float = math.nan
    sex: str | None = None
    whole_file: bool = False  # True when the whole signal is held in memory (no partial reads)

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def duration(self) -> float:
        return self.num_samples / self.fs

    def read(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Samples ``start`` to ``stop`` (default: the end) of every lead, float32 mV."""
        stop = self.num_samples if stop is None else min(stop, self.num_samples)
        start = max(0, start)
        if stop <= start:
            return np.zeros((len(self.leads), 0), dtype=np.float32)
        return np.asarray(self.reader(start, stop), dtype=np.float32)


def detect_format(path: Path) -> str:
    """The format a file's name says: ``wfdb``/``challenge`` (a header beside it), ``edf``, ``csv``, ``npy``."""
    suffix = path.suffix.lower()
    if suffix in {".edf", ".bdf", ".rec"}:
        return "edf"
    if suffix in {".csv", ".tsv", ".txt"}:
        return "csv"
    if suffix == ".npy":
        return "npy"
    if suffix in {".hea", ".dat", ".mat", ""}:
        return "challenge" if path.with_suffix(".mat").exists() else "wfdb"
    raise RecordError(path, f"unknown file type {suffix!r}; give --format (one of {', '.join(FORMATS[1:])})")


def open_signal(
    path: str | Path,
    format: str = "auto",
    fs: float | None = None,
    leads: Sequence[str] | None = None,
    units: str | None = None,
    gain: float | None = None,
) -> SignalSource:
    """Open an ECG file of any supported format (see the module's docstring).

    ``fs`` and ``leads`` override or supply what the file does not say (required for ``.npy``, and for
    a CSV without a header row or time column); ``units`` (``mV``, ``uV``) is the unit of a CSV or
    NumPy file's numbers, or overrides an EDF's; ``gain`` divides them first (ADC units per ``units``).
    """
    path = Path(path)
    if format not in FORMATS:
        raise RecordError(path, f"unknown format {format!r}; expected one of {', '.join(FORMATS)}")
    kind = detect_format(path) if format == "auto" else format
    if units is not None and units.lower() not in UNIT_TO_MV:
        raise RecordError(path, f"unknown unit {units!r}; expected mV or uV")
    if gain is not None and not (math.isfinite(gain) and gain > 0):
        raise RecordError(path, f"gain {gain!r} must be a positive number (ADC units per unit)")
    if kind in {"wfdb", "challenge"}:
        source = _open_wfdb(path, leads)
    elif kind == "edf":
        source = _open_edf(path, leads, units)
    elif kind == "csv":
        source = _open_csv(path, fs, leads, _scale(units, gain))
    else:
        source = _open_npy(path, fs, leads, _scale(units, gain))
    if fs is not None and kind in {"wfdb", "challenge", "edf"} and fs != source.fs:
        source.notes.append(f"the file says {source.fs:g} Hz; read at {fs:g} Hz as asked")
        source.fs = float(fs)
    check_source(source)
    return source


def _scale(units: str | None, gain: float | None) -> float:
    """mV per number in a CSV or NumPy file."""
    return UNIT_TO_MV[(units or "mV").lower()] / (gain or 1.0)


def check_source(source: SignalSource) -> None:
    """What makes a file unclassifiable before its signal is read: rate, length, fewer than two leads."""
    path, fs = source.path, source.fs
    if not math.isfinite(fs) or not MIN_FS <= fs <= MAX_FS:
        raise RecordError(path, f"sampling frequency {fs:g} Hz is outside the usable range {MIN_FS:g}-{MAX_FS:g} Hz")
    if source.num_samples < MIN_SECONDS * fs:
        raise RecordError(
            path, f"record is {source.num_samples} samples at {fs:g} Hz, shorter than {MIN_SECONDS:g} s of signal"
        )
    if len(source.leads) < 2:
        found = ", ".join(source.leads) or "none"
        raise RecordError(path, f"{len(source.leads)} ECG lead ({found}); the models need at least two leads")


def _select_leads(path: Path, names: Sequence[str], notes: list[str]) -> tuple[list[int], list[str], list[float]]:
    """Of the channel ``names``, those that are one of the twelve leads: (indices, canonical names, signs)."""
    indices: list[int] = []
    leads: list[str] = []
    signs: list[float] = []
    other: list[str] = []
    renamed: list[str] = []
    for index, name in enumerate(names):
        lead, sign = normalise_lead(name)
        if lead not in TWELVE_LEADS:
            other.append(name or "(unnamed)")
            continue
        if lead in leads:
            raise RecordError(
                path, f"lead {lead} appears twice (channels {names[indices[leads.index(lead)]]!r} and {name!r})"
            )
        if lead.upper() != _PREFIX.sub("", name.strip()).upper() or sign < 0:  # more than case and an ECG prefix
            renamed.append(f"{name.strip()!r} as {lead}" + (" (sign inverted)" if sign < 0 else ""))
        indices.append(index)
        leads.append(lead)
        signs.append(sign)
    if renamed:
        notes.append(f"channels read as leads: {', '.join(renamed)}")
    if other:
        notes.append(f"channels {', '.join(other)} are not ECG leads and were left out")
    return indices, leads, signs


def _given_leads(path: Path, leads: Sequence[str] | None, count: int, what: str) -> list[str]:
    if leads is None:
        raise RecordError(path, f"{what}: give the lead names (--leads)")
    if len(leads) != count:
        raise RecordError(path, f"{len(leads)} lead names given for {count} {what}")
    return list(leads)


def _open_wfdb(path: Path, leads: Sequence[str] | None) -> SignalSource:
    """A WFDB or Challenge record: the header is parsed by :mod:`ecgio.header`; ``.dat`` signals are read by
    wfdb a stretch at a time, ``.mat`` ones whole (with the checks of :func:`ecgio.record.load_raw`)."""
    from ecgio.record import _is_mat_record, header_path, load_raw, read_header, signal_files

    hea = header_path(path)
    header = read_header(hea)
    if not header.fs_declared or header.fs <= 0:
        raise RecordError(
            hea, f"sampling frequency {header.fs:g} Hz is outside the usable range {MIN_FS:g}-{MAX_FS:g} Hz"
        )
    names = _given_leads(hea, leads, header.num_leads, "signals") if leads is not None else list(header.leads)
    notes: list[str] = []
    indices, canonical, signs = _select_leads(hea, names, notes)
    gains = np.array([header.gains[i] for i in indices])
    baselines = np.array([header.baselines[i] for i in indices])
    divisors = gains * np.array(signs)  # as ecgio.record.to_millivolts: (raw - baseline) / gain

    def to_mv(raw: np.ndarray) -> np.ndarray:
        rows = raw[indices].astype(np.float64)
        return ((rows - baselines[:, None]) / divisors[:, None]).astype(np.float32)

    if _is_mat_record(hea, header):
        raw, _ = load_raw(hea, header, require_usable=False)
        reader: Callable[[int, int], np.ndarray] = lambda start, stop: to_mv(raw[:, start:stop])  # noqa: E731
        num_samples, whole, kind = raw.shape[1], True, "challenge"
    else:
        signal_files(hea, header)
        num_samples, whole, kind = header.num_samples, False, "wfdb"
        if not header.num_samples_declared:
            raise RecordError(hea, "header declares no signal length; it is needed to read the record in stretches")
        reader = lambda start, stop: to_mv(_wfdb_stretch(hea, header.signals, start, stop))  # noqa: E731
    return SignalSource(
        hea, kind, header.fs, tuple(canonical), num_samples, reader, notes, header.age, header.sex, whole
    )


def _wfdb_stretch(hea: Path, signals: Sequence, start: int, stop: int) -> np.ndarray:
    """Raw ADC values (leads, stop - start) of a WFDB record, read by wfdb."""
    import wfdb

    wide = any(signal.format in (24, 32) for signal in signals)
    try:
        record = wfdb.rdrecord(
            str(hea.with_suffix("")), sampfrom=start, sampto=stop, physical=False, return_res=32 if wide else 16
        )
    except Exception as error:  # wfdb raises many types for damaged files
        raise RecordError(hea, f"unreadable WFDB signal ({type(error).__name__}: {error})") from None
    return np.asarray(record.d_signal).T


def _open_edf(path: Path, leads: Sequence[str] | None, units: str | None) -> SignalSource:
    """An EDF, EDF+ or BDF file through edfio (lazy: only the stretches asked for are read)."""
    import edfio

    if not path.is_file():
        raise RecordError(path, "file not found")
    try:
        # edfio loads BDF files whole (its lazy loading is for EDF only)
        edf = edfio.read_bdf(path) if path.suffix.lower() == ".bdf" else edfio.read_edf(path, lazy_load_data=True)
    except Exception as error:  # edfio raises ValueError and others for files that are not EDF
        raise RecordError(path, f"unreadable EDF/BDF file ({type(error).__name__}: {error})") from None
    signals = [s for s in edf.signals if s.label.strip().upper() not in {"EDF ANNOTATIONS", "BDF ANNOTATIONS"}]
    if not signals:
        raise RecordError(path, "no signal channels (the file holds annotations only)")
    names = _given_leads(path, leads, len(signals), "channels") if leads is not None else [s.label for s in signals]
    notes: list[str] = []
    indices, canonical, signs = _select_leads(path, names, notes)
    chosen = [signals[i] for i in indices]
    rates = sorted({float(s.sampling_frequency) for s in chosen})
    if len(rates) > 1:
        raise RecordError(path, f"the ECG channels have different rates ({', '.join(f'{r:g}' for r in rates)} Hz)")
    fs = rates[0] if rates else float(signals[0].sampling_frequency)
    factors = [sign * _edf_unit(path, s.physical_dimension, units, notes) for s, sign in zip(chosen, signs)]
    num_samples = min((int(round(edf.duration * fs)) for _ in chosen), default=0)

    def reader(start: int, stop: int) -> np.ndarray:
        rows = [s.get_data_slice(start / fs, stop / fs)[: stop - start] * f for s, f in zip(chosen, factors)]
        return np.stack(rows).astype(np.float32)

    return SignalSource(path, "edf", fs, tuple(canonical), num_samples, reader, notes)


def _edf_unit(path: Path, dimension: str, units: str | None, notes: list[str]) -> float:
    """mV per physical unit of an EDF channel: its physical dimension, unless ``units`` overrides it."""
    if units is not None:
        return UNIT_TO_MV[units.lower()]
    text = dimension.strip().lower()
    if text in UNIT_TO_MV:
        return UNIT_TO_MV[text]
    message = f"physical dimension {dimension!r} is not a voltage unit; read as mV (give --units to say otherwise)"
    if message not in notes:
        notes.append(message)
    return 1.0


def _open_npy(path: Path, fs: float | None, leads: Sequence[str] | None, scale: float) -> SignalSource:
    """A NumPy array, leads x samples or samples x leads (told apart by the number of lead names)."""
    if fs is None or leads is None:
        raise RecordError(path, "a .npy file says neither rate nor leads: give --fs and --leads")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as error:
        raise RecordError(path, f"unreadable .npy file ({error})") from None
    if array.dtype.kind not in "iuf":
        raise RecordError(path, f"array of {array.dtype} values; expected numbers")
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        raise RecordError(path, f"array has shape {array.shape}; expected (leads, samples) or (samples, leads)")
    transposed = array.shape[0] != len(leads) and array.shape[1] == len(leads)
    if array.shape[0] != len(leads) and not transposed:
        raise RecordError(path, f"array has shape {array.shape}; neither axis matches the {len(leads)} leads given")
    notes: list[str] = []
    indices, canonical, signs = _select_leads(path, list(leads), notes)
    factor = np.array(signs)[:, None] * scale

    shape, dtype = array.shape, array.dtype
    offset = getattr(array, "offset", None)
    if isinstance(array, np.memmap) and array.flags.c_contiguous and offset is not None:
        # plain reads of the stretch, not the memory map: mapped pages once touched stay resident, so
        # reading a day through the map would grow the process by the whole file
        del array

        def stretch(start: int, stop: int) -> np.ndarray:
            if transposed:
                flat = np.fromfile(
                    path, dtype, (stop - start) * shape[1], offset=offset + start * shape[1] * dtype.itemsize
                )
                return flat.reshape(stop - start, shape[1]).T
            rows = [np.fromfile(path, dtype, stop - start, offset=offset + (r * shape[1] + start) * dtype.itemsize)
                    for r in range(shape[0])]  # fmt: skip
            return np.stack(rows)
    else:

        def stretch(start: int, stop: int) -> np.ndarray:
            return array[start:stop].T if transposed else array[:, start:stop]

    def reader(start: int, stop: int) -> np.ndarray:
        return (np.asarray(stretch(start, stop), dtype=np.float64)[indices] * factor).astype(np.float32)

    samples = shape[0] if transposed else shape[1]
    return SignalSource(path, "npy", float(fs), tuple(canonical), int(samples), reader, notes)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _csv_dialect(first: str) -> str | None:
    """The delimiter of a CSV line (comma, semicolon or tab), or None for runs of spaces."""
    counts = {sep: first.count(sep) for sep in (",", ";", "\t")}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else None


def _open_csv(path: Path, fs: float | None, leads: Sequence[str] | None, scale: float) -> SignalSource:
    """A text table: a column per lead, a header row naming them (or ``leads``), maybe a time column."""
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as error:
        raise RecordError(path, f"cannot read file ({error.strerror or error})") from None
    lines = [(number, line) for number, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not lines:
        raise RecordError(path, "file is empty")
    delimiter = _csv_dialect(lines[0][1])
    rows = [(n, _split(line, delimiter)) for n, line in lines]
    first = rows[0][1]
    has_header = not all(_is_number(cell) for cell in first if cell)
    names = [cell.strip() for cell in first] if has_header else [f"column {i + 1}" for i in range(len(first))]
    data_rows = rows[1:] if has_header else rows
    if not data_rows:
        raise RecordError(path, "no data rows (only a header)")
    time_column, time_scale = _time_column(names) if has_header else (None, 1.0)
    signal_columns = [i for i in range(len(names)) if i != time_column and names[i].lower() not in INDEX_COLUMNS]
    if leads is not None:
        names = list(names)
        for i, lead in zip(signal_columns, _given_leads(path, leads, len(signal_columns), "signal columns")):
            names[i] = lead
    elif not has_header:
        raise RecordError(path, "no header row naming the leads: give --leads")
    values = _csv_values(path, data_rows, names)
    if fs is None:
        if time_column is None:
            raise RecordError(path, "no time column and no rate: give --fs")
        fs = _rate_from_time(path, values[:, time_column] * time_scale)
    notes: list[str] = []
    indices, canonical, signs = _select_leads(path, [names[i] for i in signal_columns], notes)
    chosen = [signal_columns[i] for i in indices]
    signal = (values[:, chosen].T * (np.array(signs)[:, None] * scale)).astype(np.float32)
    return SignalSource(
        path, "csv", float(fs), tuple(canonical), signal.shape[1], lambda a, b: signal[:, a:b], notes, whole_file=True
    )


def _split(line: str, delimiter: str | None) -> list[str]:
    if delimiter is None:
        return line.split()
    return next(csv.reader([line], delimiter=delimiter))


def _time_column(names: Sequence[str]) -> tuple[int | None, float]:
    """Index of a time column and its factor to seconds, or (None, 1)."""
    for index, name in enumerate(names):
        key = name.strip().lower()
        if key in TIME_COLUMNS:
            return index, 1.0
        if key in TIME_MS_COLUMNS:
            return index, 1e-3
    return None, 1.0


def _csv_values(path: Path, rows: Sequence[tuple[int, list[str]]], names: Sequence[str]) -> np.ndarray:
    """The table as float64 (rows, columns); a wrong width, text or a missing value names its line and column."""
    if len(rows) * len(names) > max_samples() * 2:
        raise RecordError(path, f"{len(rows)} rows x {len(names)} columns, more samples than allowed")
    out = np.empty((len(rows), len(names)), dtype=np.float64)
    for row, (line, cells) in enumerate(rows):
        if len(cells) != len(names):
            raise RecordError(path, f"line {line} has {len(cells)} values, the header has {len(names)} columns")
        for column, cell in enumerate(cells):
            try:
                out[row, column] = float(cell) if cell.strip() else math.nan  # an empty cell is a missing value
            except ValueError:
                raise RecordError(
                    path, f"line {line}, column {names[column]!r} is {cell.strip()!r}, not a number"
                ) from None
    bad = ~np.isfinite(out)
    if bad.any():
        row, column = np.argwhere(bad)[0]
        count = int(bad.any(axis=1).sum())
        raise RecordError(
            path,
            f"line {rows[row][0]}, column {names[column]!r} is missing or not a finite number ({count} row(s) with"
            " empty, NaN or infinite values); remove or fill them",
        )
    return out


def _rate_from_time(path: Path, seconds: np.ndarray) -> float:
    """The sampling rate a time column implies (its median step), checked for a steady clock."""
    steps = np.diff(seconds)
    if steps.size == 0 or not np.all(steps > 0):
        raise RecordError(path, "the time column does not increase from row to row; give --fs")
    step = float(np.median(steps))
    if np.max(np.abs(steps - step)) > 0.01 * step + 1e-9:
        raise RecordError(path, "the time column's steps are uneven (not a fixed sampling rate); give --fs")
    return round(1.0 / step, 6)


def read_any(path: str | Path, **options) -> tuple[np.ndarray, SignalSource]:
    """The whole signal of a file (float32 mV, leads x samples) and its source; see :func:`open_signal`."""
    source = open_signal(path, **options)
    if len(source.leads) * source.num_samples > max_samples():
        raise RecordError(
            source.path,
            f"{len(source.leads)} leads x {source.num_samples} samples, more than the {max_samples()} allowed",
        )
    return source.read(), source


__all__ = [
    "FORMATS",
    "SignalSource",
    "check_source",
    "detect_format",
    "normalise_lead",
    "open_signal",
    "read_any",
]
