"""A shared WFDB or Challenge record rewritten in every format ecg-classify reads, sample for sample.

Used by tests/test_own_records.py, and runnable to make the examples of docs/own-records.md::

    python tests/own_formats.py ../shared/data/ptb-xl-sample/records500/00000/00409_hr.hea /tmp/own

The records' ADC values are integers at 1000 units/mV with a zero baseline, so every format can hold
them exactly: WFDB format 16, EDF with a 1 µV digital step, BDF (24 bits) likewise, CSV in mV with
three decimals, .npy as float32 mV (leads x samples) and as int16 ADC values (samples x leads, read
with --gain 1000). The EDF is written as EDF+ with an annotation, the channel labels as devices write
them (``ECG I``, ``ECG AVR``), so the reader's lead names and annotation handling are exercised too.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ecgio.record import load_raw  # noqa: E402


def _adc(hea: Path) -> tuple[np.ndarray, Any]:
    raw, header = load_raw(hea)
    if any(g != 1000.0 for g in header.gains) or any(b != 0 for b in header.baselines):
        raise ValueError(f"{hea}: expected 1000/mV gains and zero baselines")
    return np.asarray(raw, dtype=np.int64), header


def write_wfdb(hea: Path, out: Path, name: str) -> Path:
    import wfdb

    raw, header = _adc(hea)
    wfdb.wrsamp(
        name,
        fs=header.fs,
        units=["mV"] * len(header.leads),
        sig_name=list(header.leads),
        d_signal=raw.T.astype(np.int16),
        fmt=["16"] * len(header.leads),
        adc_gain=[1000.0] * len(header.leads),
        baseline=[0] * len(header.leads),
        write_dir=str(out),
    )
    return out / f"{name}.hea"


def write_edf(hea: Path, out: Path, name: str, bdf: bool = False) -> Path:
    import edfio

    raw, header = _adc(hea)
    kind = edfio.BdfSignal if bdf else edfio.EdfSignal
    bits = (-8388608, 8388607) if bdf else (-32768, 32767)
    signals = [
        kind(row.astype(np.float64), header.fs, label=f"ECG {lead.upper()}", physical_dimension="uV",
             physical_range=bits, digital_range=bits)
        for row, lead in zip(raw, header.leads)
    ]  # fmt: skip
    container = edfio.Bdf if bdf else edfio.Edf
    record = container(signals, annotations=[edfio.EdfAnnotation(0.0, None, "recording starts")])
    path = out / f"{name}.{'bdf' if bdf else 'edf'}"
    record.write(path)
    return path


def write_csv(hea: Path, out: Path, name: str, header_row: bool = True) -> Path:
    raw, header = _adc(hea)
    time = [float(t) for t in np.arange(raw.shape[1]) / header.fs]
    lines = ["time," + ",".join(header.leads)] if header_row else []
    for n in range(raw.shape[1]):
        values = ",".join(f"{v / 1000:.3f}" for v in raw[:, n])
        lines.append(f"{time[n]!r},{values}" if header_row else values)  # without a header row: leads only
    path = out / f"{name}.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_npy(hea: Path, out: Path, name: str, adc_columns: bool = False) -> Path:
    raw, _ = _adc(hea)
    path = out / f"{name}.npy"
    if adc_columns:
        np.save(path, raw.T.astype(np.int16))
    else:
        np.save(path, (raw.astype(np.float64) / 1000.0).astype(np.float32))
    return path


def write_all(hea: Path, out: Path) -> dict[str, tuple[Path, dict[str, Any]]]:
    """Every format of one record: name -> (file, the options ecg-classify needs for it)."""
    out.mkdir(parents=True, exist_ok=True)
    _, header = _adc(hea)
    name = hea.stem
    leads = list(header.leads)
    return {
        "wfdb": (write_wfdb(hea, out, f"{name}_wfdb"), {}),
        "edf": (write_edf(hea, out, name), {}),
        "bdf": (write_edf(hea, out, name, bdf=True), {}),
        "csv": (write_csv(hea, out, name), {}),
        "csv_no_header": (write_csv(hea, out, f"{name}_bare", header_row=False), {"leads": leads, "fs": header.fs}),
        "npy": (write_npy(hea, out, name), {"fs": header.fs, "leads": leads}),
        "npy_adc": (
            write_npy(hea, out, f"{name}_adc", adc_columns=True),
            {"fs": header.fs, "leads": leads, "gain": 1000.0},
        ),
    }


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python tests/own_formats.py RECORD.hea OUT_FOLDER")
    for kind, (path, options) in write_all(Path(sys.argv[1]), Path(sys.argv[2])).items():
        print(f"{kind:14} {path} {options or ''}")
