"""The one typed record reader every part of the package uses.

A :class:`Record` holds the signal in millivolts (float32, leads x samples) with its leads in
canonical Challenge order, whatever order and spelling the file used. It reads Challenge
records (``.hea`` + MATLAB v4 ``.mat``, key ``val``) and plain WFDB records (``.hea`` +
``.dat``). Every failure raises :class:`RecordError` naming the file.
"""

from __future__ import annotations

import math
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgio.errors import RecordError
from ecgio.files import contained_file
from ecgio.header import Header, parse_header
from ecgio.leads import TWELVE_LEADS, lead_indices, sort_leads
from ecgio.limits import (
    MAX_HEADER_BYTES,
    check_size,
    check_usable,
    mat_file_bound,
    max_samples,
    signal_file_bounds,
)


@dataclass(frozen=True)
class Record:
    """An ECG in physical units.

    ``signal``: float32 array (len(leads), num_samples) in mV; ``leads`` canonical names in
    canonical order; ``fs`` in Hz; ``age`` NaN when unknown; ``sex`` 'Male'/'Female'/None;
    ``labels`` SNOMED CT codes as written in the header.
    """

    name: str
    signal: np.ndarray
    leads: tuple[str, ...]
    fs: float
    age: float = math.nan
    sex: str | None = None
    labels: tuple[str, ...] = ()
    path: Path | None = None

    @property
    def num_samples(self) -> int:
        return int(self.signal.shape[1])

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.num_samples / self.fs


def header_path(path: str | Path) -> Path:
    """``x``, ``x.hea``, ``x.mat`` or ``x.dat`` -> ``x.hea``."""
    path = Path(path)
    return path.with_suffix(".hea") if path.suffix in {".hea", ".mat", ".dat", ""} else Path(f"{path}.hea")


def read_header_text(path: str | Path) -> str:
    """The text of a header file: a regular file (a FIFO would block) of at most ``MAX_HEADER_BYTES``."""
    hea = Path(path)
    try:
        info = hea.stat()
        if not stat.S_ISREG(info.st_mode):
            raise RecordError(hea, "header is not a regular file")
        if info.st_size > MAX_HEADER_BYTES:
            raise RecordError(hea, f"header has {info.st_size} bytes, more than the {MAX_HEADER_BYTES} allowed")
        with open(hea, "rb") as stream:
            data = stream.read(MAX_HEADER_BYTES + 1)
    except OSError as error:
        raise RecordError(hea, f"cannot read header ({error.strerror or error})") from None
    if len(data) > MAX_HEADER_BYTES:  # grew since the stat
        raise RecordError(hea, f"header has more than the {MAX_HEADER_BYTES} bytes allowed")
    return data.decode("utf-8", errors="replace")


def read_header(path: str | Path) -> Header:
    """Parse the header of a record (any of its file names may be given)."""
    hea = header_path(path)
    return parse_header(read_header_text(hea), source=str(hea))


def load_mat(path: Path, key: str = "val", shape: tuple[int, int] | None = None) -> np.ndarray:
    """The raw ADC array of a Challenge ``.mat`` file, (leads, samples).

    With ``shape``, the variable's shape is checked from the file's variable table before its
    data is read, so a file that claims a huge array never gets to allocate it.
    """
    from scipy.io import loadmat, whosmat

    if not path.exists():
        raise RecordError(path, "signal file is missing")
    try:
        table = {name: tuple(dims) for name, dims, _ in whosmat(str(path))}
        if key in table and math.prod(table[key]) > max_samples():
            raise RecordError(path, f"variable {key!r} has shape {table[key]}, more samples than allowed")
        if key in table and shape is not None:
            _check_declared_shape(path, table[key], shape)
        content = loadmat(str(path), variable_names=[key])
    except RecordError:
        raise
    except Exception as error:  # scipy raises several types for damaged files
        raise RecordError(path, f"unreadable MATLAB file ({type(error).__name__}: {error})") from None
    if key not in content:
        keys = sorted(k for k in table if not k.startswith("__"))
        raise RecordError(path, f"no variable {key!r} in MATLAB file (has {keys})")
    return np.asarray(content[key])


def _check_declared_shape(path: Path, found: tuple[int, ...], declared: tuple[int, int]) -> None:
    if len(found) != 2 or found[0] != declared[0]:
        raise RecordError(path, f"signal has shape {found}, header declares {declared[0]} leads")
    if found[1] != declared[1]:
        raise RecordError(path, f"signal has {found[1]} samples, header declares {declared[1]}")


def _return_res(header: Header) -> int:
    """The narrowest integer width wfdb may return for these formats (16 bits for all but 24/32)."""
    return 32 if any(signal.format in (24, 32) for signal in header.signals) else 16


def _load_wfdb(hea: Path, header: Header) -> np.ndarray:
    import wfdb

    try:
        record = wfdb.rdrecord(str(hea.with_suffix("")), physical=False, return_res=_return_res(header))
    except Exception as error:
        raise RecordError(hea, f"unreadable WFDB signal ({type(error).__name__}: {error})") from None
    return np.asarray(record.d_signal).T


def _is_mat_record(hea: Path, header: Header) -> bool:
    names = [name.lower() for name in header.file_names]
    if any(name.endswith(".mat") for name in names):
        return True
    return hea.with_suffix(".mat").exists() and not any(name.endswith(".dat") for name in names)


def signal_files(hea: Path, header: Header) -> list[Path]:
    """Every file the header names, checked: inside the header's folder, regular, no bigger than declared.

    The ``.mat`` file actually read is ``<record>.mat`` beside the header (the Challenge's rule); other
    ``.mat`` names in the header must still be plain names, and are checked when present.
    """
    bounds = signal_file_bounds(header)
    mat_name = hea.with_suffix(".mat").name
    checked = []
    for name, bound in bounds.items():
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise RecordError(hea.parent / name, "file name must be a plain name inside the record's folder")
        if not (hea.parent / name).exists():
            if name.lower().endswith(".mat") and name != mat_name:
                continue
            raise RecordError(hea.parent / name, "signal file is missing")
        checked.append(contained_file(hea.parent, name, bound))
    return checked


def load_raw(
    path: str | Path, header: Header | None = None, key: str = "val", require_usable: bool = True
) -> tuple[np.ndarray, Header]:
    """Raw ADC values in the header's lead order, and the header; checks that shapes agree.

    Before any signal is read: the declared size against :func:`ecgio.limits.max_samples`, the
    rate and length against the usable bounds (unless ``require_usable`` is False), and every file
    the header names with :func:`~ecgio.files.contained_file`.
    """
    hea = header_path(path)
    header = header or read_header(hea)
    check_size(header, hea)
    if require_usable:
        check_usable(header, hea)
    signal_files(hea, header)
    if _is_mat_record(hea, header):
        mat = hea.with_suffix(".mat")
        source = contained_file(hea.parent, mat.name, mat_file_bound(header)) if mat.exists() else mat
        shape = (header.num_leads, header.num_samples) if header.num_samples else None
        raw = load_mat(source, key, shape)
    else:
        source = hea
        raw = _load_wfdb(hea, header)
    if raw.ndim != 2 or raw.shape[0] != header.num_leads:
        raise RecordError(source, f"signal has shape {raw.shape}, header declares {header.num_leads} leads")
    if header.num_samples and raw.shape[1] != header.num_samples:
        raise RecordError(source, f"signal has {raw.shape[1]} samples, header declares {header.num_samples}")
    if raw.shape[0] * raw.shape[1] > max_samples():
        raise RecordError(source, f"signal has {raw.shape[0]} x {raw.shape[1]} samples, more than allowed")
    return raw, header


def to_millivolts(raw: np.ndarray, header: Header, leads: tuple[str, ...] | None = None) -> np.ndarray:
    """Scale a raw ADC array (header lead order) to mV, reordered to ``leads`` (default: canonical order).

    Leads absent from the header come back as rows of zeros, as the Challenge's ``choose_leads``
    does; a header with none of ``leads`` is an error (all-zero input would be classified in
    silence). Scaled one lead at a time into a float32 result, so memory stays near the size of
    the record rather than a float64 copy of it.
    """
    leads = leads or sort_leads(header.leads)
    raw = np.asarray(raw)
    if raw.ndim != 2 or raw.shape[0] != len(header.leads):
        raise ValueError(f"recording has shape {raw.shape}, header lists {len(header.leads)} leads")
    rows = lead_indices(header.leads, leads)
    if leads and all(index is None for index in rows):
        named = ", ".join(lead or "(unnamed)" for lead in header.leads)
        raise RecordError(header.record_name, f"header has none of the leads {', '.join(leads)} (it lists {named})")
    out = np.zeros((len(leads), raw.shape[1]), dtype=np.float32)
    for row, index in enumerate(rows):
        if index is not None:
            out[row] = (raw[index].astype(np.float64) - header.baselines[index]) / header.gains[index]
    return out


def read_record(path: str | Path, key: str = "val") -> Record:
    """Read a Challenge or WFDB record into a :class:`Record` (signal in mV, canonical lead order)."""
    hea = header_path(path)
    raw, header = load_raw(hea, key=key)
    if "" in header.leads:
        raise RecordError(hea, f"signal line {header.leads.index('') + 1} names no lead (no description field)")
    leads = sort_leads(header.leads)
    return Record(
        name=hea.stem,
        signal=to_millivolts(raw, header, leads),
        leads=leads,
        fs=header.fs,
        age=header.age,
        sex=header.sex,
        labels=header.labels,
        path=hea,
    )


def find_records(folder: str | Path, recursive: bool = True, require_signal: bool = True) -> list[Path]:
    """Header paths of every record under ``folder`` (sorted; hidden files and folders skipped).

    With ``require_signal`` (the default) only headers with a ``.mat`` or ``.dat`` beside them;
    without, every header (test_model writes an output, empty, even for a record it cannot read).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise RecordError(folder, "not a folder")
    pattern = "**/*.hea" if recursive else "*.hea"
    found = []
    for hea in sorted(folder.glob(pattern)):
        if not hea.is_file() or any(part.startswith(".") for part in hea.relative_to(folder).parts):
            continue
        if not require_signal or hea.with_suffix(".mat").exists() or hea.with_suffix(".dat").exists():
            found.append(hea)
    return found


__all__ = [
    "TWELVE_LEADS",
    "Record",
    "find_records",
    "header_path",
    "load_mat",
    "load_raw",
    "read_header",
    "read_header_text",
    "read_record",
    "signal_files",
    "to_millivolts",
]
