"""Writing records in the Challenge's own format (``NAME.hea`` + MATLAB v4 ``NAME.mat``, key ``val``).

The header follows the files the Challenge ran on, not the PhysioNet re-release: gains written
``1000/mV`` (which the official helper's ``float(token.split('/')[0])`` reads correctly, unlike
``1000.0(0)/mV``), comments written ``#Dx:`` without a space (the only spelling the official
helper and scorer read). Signal lines say ``16+24``: format 16 starting 24 bytes into the file,
which is exactly where a MATLAB v4 file with one int16 matrix named ``val`` keeps its samples,
column-major, i.e. WFDB's interleaved frames. So ``wfdb.rdrecord`` reads the ``.mat`` directly.

Both files are written to temporary names and renamed into place (signal first, header last),
so an interrupted run never leaves a record whose header exists but whose signal is partial.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.io import savemat

from ecgio import RecordError, read_header
from ecgio.files import atomic_write, atomic_write_with
from ecgio.leads import canonical_lead
from ecgio.record import load_mat

log = logging.getLogger(__name__)

#: int16 range usable for samples: WFDB reserves -32768 as the "no value" sentinel of format 16.
ADC_MIN, ADC_MAX = -32767, 32767


def wfdb_checksum(samples: np.ndarray) -> int:
    """WFDB's signal checksum: sum of the samples modulo 65536 as a signed 16-bit number."""
    total = int(np.asarray(samples, dtype=np.int64).sum()) % 65536
    return total - 65536 if total >= 32768 else total


def to_adc(signal_mv: np.ndarray, gain: float, name: str = "<record>") -> np.ndarray:
    """mV -> int16 ADC units (``round(mV * gain)``), clipping out-of-range values with a warning."""
    signal = np.asarray(signal_mv, dtype=np.float64)
    if not np.all(np.isfinite(signal)):
        raise ValueError(f"{name}: signal contains NaN or infinite values")
    adc = np.rint(signal * gain)
    clipped = int(np.count_nonzero((adc < ADC_MIN) | (adc > ADC_MAX)))
    if clipped:
        log.warning("%s: %d samples beyond +-%.2f mV clipped to the int16 range", name, clipped, ADC_MAX / gain)
        adc = np.clip(adc, ADC_MIN, ADC_MAX)
    return adc.astype(np.int16)


def _format_number(value: float) -> str:
    """``500.0`` -> ``'500'``, ``257.5`` -> ``'257.5'`` (headers write integral numbers without a point)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _format_age(age: float | int | None) -> str:
    if age is None or not math.isfinite(float(age)):
        return "NaN"
    return _format_number(float(age))


def _format_sex(sex: str | None) -> str:
    if sex is None:
        return "Unknown"
    key = sex.strip().lower()
    if key in {"male", "m"}:
        return "Male"
    if key in {"female", "f"}:
        return "Female"
    return "Unknown"


def header_text(
    name: str,
    adc: np.ndarray,
    fs: float,
    leads: Sequence[str],
    age: float | int | None,
    sex: str | None,
    labels: Sequence[str],
    gain: float | Sequence[float],
    baselines: Sequence[int] | None = None,
) -> str:
    """The header of a record whose int16 samples are ``adc`` (leads x samples).

    ``gain`` is one gain for every lead or one per lead; ``baselines`` (default 0) the ADC value of
    0 mV per lead, written in the ADC-zero field: the official helper reads the baseline there
    (``get_baselines``) and WFDB takes the ADC zero as the baseline when no ``(baseline)`` follows
    the gain, so both read the same value, and the gain stays a plain number the helper can parse.
    """
    num_leads, num_samples = adc.shape
    gains = [float(gain)] * num_leads if isinstance(gain, int | float | np.number) else [float(g) for g in gain]
    zeros = [0] * num_leads if baselines is None else [int(b) for b in baselines]
    if len(gains) != num_leads or len(zeros) != num_leads:
        raise ValueError(f"{name}: {num_leads} leads but {len(gains)} gains and {len(zeros)} baselines")
    lines = [f"{name} {num_leads} {_format_number(fs)} {num_samples}"]
    for row, lead in enumerate(leads):
        first = int(adc[row, 0]) if num_samples else 0
        lines.append(
            f"{name}.mat 16+24 {_format_number(gains[row])}/mV 16 {zeros[row]} {first} "
            f"{wfdb_checksum(adc[row])} 0 {canonical_lead(lead)}"
        )
    lines += [
        f"#Age: {_format_age(age)}",
        f"#Sex: {_format_sex(sex)}",
        f"#Dx: {','.join(str(code).strip() for code in labels)}",
        "#Rx: Unknown",
        "#Hx: Unknown",
        "#Sx: Unknown",
    ]
    return "\n".join(lines) + "\n"


def write_challenge_record(
    out_dir: str | Path,
    name: str,
    signal_mV: np.ndarray,
    fs: float,
    leads: Sequence[str],
    age: float | int | None,
    sex: str | None,
    labels: Sequence[str],
    gain: float = 1000.0,
) -> Path:
    """Write ``out_dir/name.hea`` + ``out_dir/name.mat``; returns the header path.

    ``signal_mV`` is (leads, samples) in mV, rows in the order of ``leads``; values are stored as
    ``round(mV * gain)`` int16 (1 µV resolution at the default gain), clipped with a logged
    warning beyond the int16 range. ``age`` None/NaN is written ``NaN``; ``sex`` 'Male'/'Female'
    (or M/F), anything else ``Unknown``; ``labels`` SNOMED CT codes for ``#Dx``.
    """
    signal = np.asarray(signal_mV)
    if signal.ndim != 2 or signal.shape[0] != len(leads):
        raise ValueError(f"{name}: signal has shape {signal.shape}, expected ({len(leads)}, samples)")
    if not fs or fs <= 0:
        raise ValueError(f"{name}: sampling frequency must be positive, got {fs}")
    if gain <= 0:
        raise ValueError(f"{name}: gain must be positive, got {gain}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    adc = to_adc(signal, gain, name)
    return _write_files(out, name, adc, header_text(name, adc, fs, leads, age, sex, labels, gain))


def write_challenge_adc(
    out_dir: str | Path,
    name: str,
    adc: np.ndarray,
    fs: float,
    leads: Sequence[str],
    gains: Sequence[float],
    baselines: Sequence[int],
    age: float | int | None,
    sex: str | None,
    labels: Sequence[str],
) -> Path:
    """Write a record from its ADC samples, keeping each lead's own gain and baseline; returns the header path.

    For sources whose samples are already integers (WFDB format 16): copying them with their gains
    loses nothing, where going through millivolts and one common gain would round every sample
    again. ``adc`` is (leads, samples) of integers within the int16 range (WFDB's -32768 "no value"
    sentinel excluded); ``gains`` are ADC units per mV.
    """
    values = np.asarray(adc)
    if values.ndim != 2 or values.shape[0] != len(leads):
        raise ValueError(f"{name}: signal has shape {values.shape}, expected ({len(leads)}, samples)")
    if not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"{name}: ADC samples must be integers, got {values.dtype}")
    if values.size and (values.min() < ADC_MIN or values.max() > ADC_MAX):
        raise ValueError(f"{name}: ADC samples outside {ADC_MIN}..{ADC_MAX}")
    if not fs or fs <= 0:
        raise ValueError(f"{name}: sampling frequency must be positive, got {fs}")
    if any(not math.isfinite(g) or g <= 0 for g in gains):
        raise ValueError(f"{name}: gains must be positive, got {list(gains)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    samples = values.astype(np.int16)
    return _write_files(out, name, samples, header_text(name, samples, fs, leads, age, sex, labels, gains, baselines))


def _write_files(out: Path, name: str, adc: np.ndarray, text: str) -> Path:
    """Signal first, header last, each under a temporary name renamed into place."""
    atomic_write_with(out / f"{name}.mat", lambda stream: savemat(stream, {"val": adc}, format="4"), sync=False)
    atomic_write(out / f"{name}.hea", text.encode("ascii"), sync=False)
    return out / f"{name}.hea"


def is_complete_record(
    header_path: str | Path, num_leads: int, num_samples: int | None = None, fs: float | None = None
) -> bool:
    """True when the header parses and its ``.mat`` loads with shape (``num_leads``, samples in the header).

    ``num_samples`` and ``fs``, when given, must match the header too (a record written at another
    rate is not the one wanted).

    Used to resume interrupted conversions: anything else (missing, truncated, damaged) is redone.
    """
    hea = Path(header_path)
    try:
        header = read_header(hea)
        if header.num_leads != num_leads or (num_samples is not None and header.num_samples != num_samples):
            return False
        if fs is not None and abs(header.fs - fs) > 1e-6:
            return False
        values = load_mat(hea.with_suffix(".mat"))
    except (RecordError, OSError, ValueError):
        return False
    return values.dtype == np.int16 and values.shape == (num_leads, header.num_samples)


__all__ = [
    "ADC_MAX",
    "ADC_MIN",
    "header_text",
    "is_complete_record",
    "to_adc",
    "wfdb_checksum",
    "write_challenge_adc",
    "write_challenge_record",
]
