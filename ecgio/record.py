"""The one typed record reader every part of the package uses.

A :class:`Record` holds the signal in millivolts (float32, leads x samples) with its leads in
canonical Challenge order, whatever order and spelling the file used. It reads Challenge
records (``.hea`` + MATLAB v4 ``.mat``, key ``val``) and plain WFDB records (``.hea`` +
``.dat``). Every failure raises :class:`RecordError` naming the file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgio.errors import RecordError
from ecgio.header import Header, parse_header
from ecgio.leads import TWELVE_LEADS, lead_indices, sort_leads


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


def read_header(path: str | Path) -> Header:
    """Parse the header of a record (any of its file names may be given)."""
    hea = header_path(path)
    try:
        text = hea.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise RecordError(hea, f"cannot read header ({error.strerror or error})") from None
    return parse_header(text, source=str(hea))


def load_mat(path: Path, key: str = "val") -> np.ndarray:
    """The raw ADC array of a Challenge ``.mat`` file, (leads, samples)."""
    from scipy.io import loadmat

    if not path.exists():
        raise RecordError(path, "signal file is missing")
    try:
        content = loadmat(str(path))
    except Exception as error:  # scipy raises several types for damaged files
        raise RecordError(path, f"unreadable MATLAB file ({type(error).__name__}: {error})") from None
    if key not in content:
        keys = sorted(k for k in content if not k.startswith("__"))
        raise RecordError(path, f"no variable {key!r} in MATLAB file (has {keys})")
    return np.asarray(content[key])


def _load_wfdb(hea: Path) -> np.ndarray:
    import wfdb

    try:
        record = wfdb.rdrecord(str(hea.with_suffix("")), physical=False)
    except Exception as error:
        raise RecordError(hea, f"unreadable WFDB signal ({type(error).__name__}: {error})") from None
    return np.asarray(record.d_signal).T


def load_raw(path: str | Path, header: Header | None = None, key: str = "val") -> tuple[np.ndarray, Header]:
    """Raw ADC values in the header's lead order, and the header; checks that shapes agree."""
    hea = header_path(path)
    header = header or read_header(hea)
    mat = hea.with_suffix(".mat")
    uses_mat = mat.exists() or any(name.endswith(".mat") for name in header.file_names)
    raw = load_mat(mat, key) if uses_mat else _load_wfdb(hea)
    source = mat if uses_mat else hea
    if raw.ndim != 2 or raw.shape[0] != header.num_leads:
        raise RecordError(source, f"signal has shape {raw.shape}, header declares {header.num_leads} leads")
    if header.num_samples and raw.shape[1] != header.num_samples:
        raise RecordError(source, f"signal has {raw.shape[1]} samples, header declares {header.num_samples}")
    return raw, header


def to_millivolts(raw: np.ndarray, header: Header, leads: tuple[str, ...] | None = None) -> np.ndarray:
    """Scale a raw ADC array (header lead order) to mV, reordered to ``leads`` (default: canonical order).

    Leads absent from the header come back as rows of zeros, as the Challenge's ``choose_leads`` does.
    """
    leads = leads or sort_leads(header.leads)
    raw = np.asarray(raw)
    if raw.ndim != 2 or raw.shape[0] != len(header.leads):
        raise ValueError(f"recording has shape {raw.shape}, header lists {len(header.leads)} leads")
    gains = np.asarray(header.gains, dtype=np.float64)[:, None]
    baselines = np.asarray(header.baselines, dtype=np.float64)[:, None]
    scaled = (raw.astype(np.float64) - baselines) / gains
    out = np.zeros((len(leads), raw.shape[1]), dtype=np.float32)
    for row, index in enumerate(lead_indices(header.leads, leads)):
        if index is not None:
            out[row] = scaled[index]
    return out


def read_record(path: str | Path, key: str = "val") -> Record:
    """Read a Challenge or WFDB record into a :class:`Record` (signal in mV, canonical lead order)."""
    hea = header_path(path)
    raw, header = load_raw(hea, key=key)
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


def find_records(folder: str | Path, recursive: bool = True) -> list[Path]:
    """Header paths of every record under ``folder`` (sorted; hidden files skipped) that has a signal file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RecordError(folder, "not a folder")
    pattern = "**/*.hea" if recursive else "*.hea"
    found = []
    for hea in sorted(folder.glob(pattern)):
        if any(part.startswith(".") for part in hea.relative_to(folder).parts):
            continue
        if hea.with_suffix(".mat").exists() or hea.with_suffix(".dat").exists():
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
    "read_record",
    "to_millivolts",
]
