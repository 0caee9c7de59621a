"""Parsing of WFDB / Challenge header text into a typed :class:`Header`.

The official helper reads the gain with ``float(token.split('/')[0])``, which gives 0 for the
``1000.0(0)/mV`` spelling used by Georgia, PTB-XL and Chapman records, and it only reads
``#Dx:`` written without a space. This parser follows the WFDB header specification instead:
``GAIN(BASELINE)/UNITS`` with both parts optional, and comment keys with or without a space.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from ecgio.errors import RecordError
from ecgio.leads import canonical_lead

#: WFDB's default gain (ADC units per physical unit) when a header writes none or zero.
WFDB_DEFAULT_GAIN = 200.0

_GAIN_RE = re.compile(r"^\s*([-+0-9.eE]+)?\s*(?:\(\s*([-+0-9]+)\s*\))?\s*(?:/\s*(\S+))?\s*$")
_COMMENT_RE = re.compile(r"^#\s*([A-Za-z]+)\s*:\s*(.*)$")
_UNIT_SCALE_TO_MV = {"mv": 1.0, "uv": 1e-3, "μv": 1e-3, "v": 1e3, "nu": 1.0, "": 1.0}


@dataclass(frozen=True)
class Header:
    """What a header says, in the header's own lead order.

    ``gains`` are ADC units per millivolt (already converted when the header writes µV or V),
    ``baselines`` the ADC value of 0 mV. ``age`` is NaN when absent or unknown, ``sex`` is
    ``'Male'``, ``'Female'`` or None, ``labels`` the SNOMED CT codes of every ``#Dx`` line.
    """

    record_name: str
    num_leads: int
    fs: float
    num_samples: int
    leads: tuple[str, ...]
    file_names: tuple[str, ...]
    gains: tuple[float, ...]
    baselines: tuple[float, ...]
    age: float = math.nan
    sex: str | None = None
    labels: tuple[str, ...] = ()
    comments: dict[str, str] = field(default_factory=dict)


def parse_gain(token: str) -> tuple[float, float | None, str]:
    """``'1000.0(0)/mV'`` -> (1000.0, 0.0, 'mV'); a missing gain is 0, a missing baseline None."""
    match = _GAIN_RE.match(token)
    if match is None:
        raise ValueError(f"unreadable gain field {token!r}")
    gain_text, baseline_text, units = match.groups()
    gain = float(gain_text) if gain_text else 0.0
    baseline = float(baseline_text) if baseline_text is not None else None
    return gain, baseline, units or ""


def parse_age(text: str | None) -> float:
    """An age in years, NaN for ``NaN``/``Unknown``/unparsable text."""
    try:
        value = float(text) if text is not None else math.nan
    except ValueError:
        return math.nan
    return value if math.isfinite(value) else math.nan


def parse_sex(text: str | None) -> str | None:
    """``'Male'``/``'Female'`` from the spellings found in the databases, else None."""
    if text is None:
        return None
    key = text.strip().lower()
    if key in {"male", "m"}:
        return "Male"
    if key in {"female", "f"}:
        return "Female"
    return None


def _comments(lines: list[str]) -> tuple[dict[str, str], list[str]]:
    comments: dict[str, str] = {}
    labels: list[str] = []
    for line in lines:
        match = _COMMENT_RE.match(line.strip())
        if match is None:
            continue
        key, value = match.group(1).lower(), match.group(2).strip()
        if key == "dx":
            labels.extend(code.strip() for code in value.split(",") if code.strip())
        comments.setdefault(key, value)
    return comments, labels


def _number(token: str, what: str, source: str) -> float:
    try:
        value = float(token.split("/")[0].split("(")[0])
    except ValueError:
        raise RecordError(source, f"{what} is not a number: {token!r}") from None
    if not math.isfinite(value):
        raise RecordError(source, f"{what} is not finite: {token!r}")
    return value


def parse_header(text: str, source: str = "<header>") -> Header:
    """Parse header text; ``source`` names the file in every error."""
    lines = [line for line in text.splitlines() if line.strip()]
    signal_lines = [line for line in lines if not line.lstrip().startswith("#")]
    if not signal_lines:
        raise RecordError(source, "header is empty")
    first = signal_lines[0].split()
    if len(first) < 2:
        raise RecordError(source, f"record line has too few fields: {signal_lines[0]!r}")
    record_name = first[0].split("/")[0]
    num_leads = int(_number(first[1], "number of leads", source))
    fs = _number(first[2], "sampling frequency", source) if len(first) > 2 else 250.0
    if fs <= 0:
        raise RecordError(source, f"sampling frequency must be positive, got {fs}")
    num_samples = int(_number(first[3], "number of samples", source)) if len(first) > 3 else 0
    if len(signal_lines) - 1 < num_leads:
        raise RecordError(source, f"header declares {num_leads} leads but lists {len(signal_lines) - 1}")
    leads: list[str] = []
    files: list[str] = []
    gains: list[float] = []
    baselines: list[float] = []
    for line in signal_lines[1 : num_leads + 1]:
        tokens = line.split()
        if len(tokens) < 3:
            raise RecordError(source, f"signal line has too few fields: {line!r}")
        try:
            gain, baseline, units = parse_gain(tokens[2])
        except ValueError as error:
            raise RecordError(source, str(error)) from None
        adc_zero = float(tokens[4]) if len(tokens) > 4 and _is_float(tokens[4]) else 0.0
        gain = gain if gain != 0 else WFDB_DEFAULT_GAIN
        gain /= _UNIT_SCALE_TO_MV.get(units.lower(), 1.0)
        files.append(tokens[0])
        gains.append(gain)
        baselines.append(baseline if baseline is not None else adc_zero)
        leads.append(canonical_lead(" ".join(tokens[8:])) if len(tokens) >= 9 else f"lead{len(leads) + 1}")
    comments, labels = _comments([line for line in lines if line.lstrip().startswith("#")])
    return Header(
        record_name=record_name,
        num_leads=num_leads,
        fs=fs,
        num_samples=num_samples,
        leads=tuple(leads),
        file_names=tuple(files),
        gains=tuple(gains),
        baselines=tuple(baselines),
        age=parse_age(comments.get("age")),
        sex=parse_sex(comments.get("sex")),
        labels=tuple(labels),
        comments=comments,
    )


def _is_float(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True
