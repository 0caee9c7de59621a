"""The one header grammar: WFDB / Challenge header text into a typed :class:`Header`.

Everything that reads a header goes through :func:`parse_header` (``helper_code.py`` is a thin
layer over it), so the lead set used to choose a model and the gains used to scale the signal
always come from the same reading of the same line.

A signal line follows the WFDB header specification; after the file name every field is optional,
but a field is only present when all the fields before it are::

    FILE FORMAT[xSAMPLES_PER_FRAME][:SKEW][+OFFSET] GAIN[(BASELINE)][/UNITS] ADC_RES ADC_ZERO INITIAL
        CHECKSUM BLOCK_SIZE DESCRIPTION...

The description is the rest of the line. As in ``wfdb``, a run of numeric fields ends at the first
token that is not a number, which starts the description: an 8-field line
``x.mat 16 1000/mV 16 0 0 0 I`` names the lead ``I`` (block size absent). A line without a
description has an empty lead name (``wfdb`` says None).

Where the official helper is fragile this grammar follows the specification: it reads the gain of
``1000.0(0)/mV`` as 1000 (the helper reads 0), reads comment keys written ``#Dx:`` and ``# Dx:``,
and splits lines on any line ending. Repeated ``#Age``/``#Sex`` lines: the LAST one counts, the
rule of the official helper (it loops over every line without stopping); ``#Dx`` lines add up.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from ecgio.errors import RecordError
from ecgio.leads import canonical_lead

#: WFDB's default gain (ADC units per physical unit) when a header writes none or zero.
WFDB_DEFAULT_GAIN = 200.0
#: WFDB's default physical units.
WFDB_DEFAULT_UNITS = "mV"

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_END = r"(?=\s|$)"
_SIGNAL_RE = re.compile(
    rf"""
    ^\s*(?P<file_name>\S+)
    (?:\s+(?P<format>\d+)(?:x(?P<samples_per_frame>\d+))?(?::(?P<skew>\d+))?(?:\+(?P<byte_offset>\d+))?{_END}
     (?:\s+(?P<gain>{_NUMBER})(?:\((?P<baseline>[-+]?\d+)\))?(?:/(?P<units>\S+))?{_END}
      (?:\s+(?P<adc_resolution>\d+){_END}
       (?:\s+(?P<adc_zero>[-+]?\d+){_END}
        (?:\s+(?P<initial_value>[-+]?\d+){_END}
         (?:\s+(?P<checksum>[-+]?\d+){_END}
          (?:\s+(?P<block_size>\d+){_END}
    )?)?)?)?)?)?)?
    (?:\s+(?P<description>\S.*?))?\s*$
    """,
    re.VERBOSE,
)
_GAIN_RE = re.compile(
    rf"^\s*(?P<gain>{_NUMBER})?\s*(?:\(\s*(?P<baseline>[-+]?\d+)\s*\))?\s*(?:/\s*(?P<units>\S+))?\s*$"
)
_COMMENT_RE = re.compile(r"^#\s*([A-Za-z]+)\s*:(.*)$")
_UNIT_SCALE_TO_MV = {"mv": 1.0, "uv": 1e-3, "μv": 1e-3, "µv": 1e-3, "v": 1e3}

#: Bytes per sample of the WFDB storage formats (per sample of one signal).
FORMAT_BYTES: dict[int, float] = {
    0: 0.0,
    8: 1.0,
    16: 2.0,
    24: 3.0,
    32: 4.0,
    61: 2.0,
    80: 1.0,
    160: 2.0,
    212: 1.5,
    310: 4.0 / 3.0,
    311: 4.0 / 3.0,
}


@dataclass(frozen=True)
class SignalSpec:
    """One signal line, every field as written (None where the line stops before it)."""

    file_name: str
    format: int | None = None
    samples_per_frame: int | None = None
    skew: int | None = None
    byte_offset: int | None = None
    gain: float | None = None
    baseline: int | None = None
    units: str | None = None
    adc_resolution: int | None = None
    adc_zero: int | None = None
    initial_value: int | None = None
    checksum: int | None = None
    block_size: int | None = None
    description: str | None = None

    @property
    def lead(self) -> str:
        """The lead name: the description, canonically spelled; empty when the line has none."""
        return canonical_lead(self.description) if self.description else ""

    @property
    def adc_gain(self) -> float:
        """ADC units per written unit, WFDB's 200 when absent or zero."""
        return self.gain if self.gain else WFDB_DEFAULT_GAIN

    @property
    def gain_per_mv(self) -> float:
        """ADC units per millivolt (µV and V converted; unknown units taken as mV)."""
        return self.adc_gain / _UNIT_SCALE_TO_MV.get((self.units or WFDB_DEFAULT_UNITS).lower(), 1.0)

    @property
    def zero_level(self) -> float:
        """ADC value of 0 mV: the baseline when written, else the ADC zero, else 0 (as wfdb)."""
        if self.baseline is not None:
            return float(self.baseline)
        return float(self.adc_zero) if self.adc_zero is not None else 0.0

    @property
    def bytes_per_sample(self) -> float:
        """Storage bytes per sample of this signal (4 for formats this table does not know)."""
        return FORMAT_BYTES.get(self.format if self.format is not None else 16, 4.0) * (self.samples_per_frame or 1)


def _int(text: str | None) -> int | None:
    return int(text) if text is not None else None


def parse_signal_line(line: str, source: str = "<header>") -> SignalSpec:
    """One signal line by the grammar above; a line it cannot read is a :class:`RecordError`."""
    match = _SIGNAL_RE.match(line)
    if match is None or match["format"] is None:
        raise RecordError(source, f"unreadable signal line (needs at least a file name and a format): {line!r}")
    gain = float(match["gain"]) if match["gain"] is not None else None
    if gain is not None and not math.isfinite(gain):
        raise RecordError(source, f"gain is not finite: {line!r}")
    return SignalSpec(
        file_name=match["file_name"],
        format=int(match["format"]),
        samples_per_frame=_int(match["samples_per_frame"]),
        skew=_int(match["skew"]),
        byte_offset=_int(match["byte_offset"]),
        gain=gain,
        baseline=_int(match["baseline"]),
        units=match["units"],
        adc_resolution=_int(match["adc_resolution"]),
        adc_zero=_int(match["adc_zero"]),
        initial_value=_int(match["initial_value"]),
        checksum=_int(match["checksum"]),
        block_size=_int(match["block_size"]),
        description=match["description"],
    )


@dataclass(frozen=True)
class Header:
    """What a header says, in the header's own lead order.

    ``gains`` are ADC units per millivolt (already converted when the header writes µV or V),
    ``baselines`` the ADC value of 0 mV. ``age`` is NaN when absent or unknown, ``sex`` is
    ``'Male'``, ``'Female'`` or None, ``labels`` the SNOMED CT codes of every ``#Dx`` line.
    ``signals`` keeps every field of every signal line; ``comments`` the last value of each key.
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
    signals: tuple[SignalSpec, ...] = ()
    fs_declared: bool = True
    num_samples_declared: bool = True
    #: Set for a multi-segment record (record line ``name/segments ...``; 0 when the count is unreadable):
    #: its lines name segment headers, not signal files, so it is never read (``ecgio.limits.check_size``).
    num_segments: int | None = None


def parse_gain(token: str) -> tuple[float, float | None, str]:
    """``'1000.0(0)/mV'`` -> (1000.0, 0.0, 'mV'); a missing gain is 0, a missing baseline None."""
    match = _GAIN_RE.match(token)
    if match is None:
        raise ValueError(f"unreadable gain field {token!r}")
    gain = float(match["gain"]) if match["gain"] else 0.0
    baseline = float(match["baseline"]) if match["baseline"] is not None else None
    return gain, baseline, match["units"] or ""


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


def comment_values(lines: list[str], key: str) -> list[str]:
    """Values of every ``#Key:`` / ``# Key:`` line, in order (key matched case-insensitively)."""
    values = []
    for line in lines:
        match = _COMMENT_RE.match(line.strip())
        if match and match.group(1).lower() == key.lower():
            values.append(match.group(2).strip())
    return values


def _comments(lines: list[str]) -> tuple[dict[str, str], list[str]]:
    """The last value of each comment key, and the codes of every ``#Dx`` line."""
    comments: dict[str, str] = {}
    labels: list[str] = []
    for line in lines:
        match = _COMMENT_RE.match(line.strip())
        if match is None:
            continue
        key, value = match.group(1).lower(), match.group(2).strip()
        if key == "dx":
            labels.extend(code.strip() for code in value.split(",") if code.strip())
        comments[key] = value  # the last one wins, as in the official helper
    return comments, labels


def _number(token: str, what: str, source: str) -> float:
    try:
        value = float(token.split("/")[0].split("(")[0])
    except ValueError:
        raise RecordError(source, f"{what} is not a number: {token!r}") from None
    if not math.isfinite(value):
        raise RecordError(source, f"{what} is not finite: {token!r}")
    return value


def content_lines(text: str) -> list[str]:
    """The non-empty, non-comment lines: the record line, then the signal lines."""
    return [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def record_fields(text: str) -> list[str]:
    """The tokens of the record line (line 0), empty when the header has none."""
    lines = content_lines(text)
    return lines[0].split() if lines else []


def declared_signal_lines(text: str) -> list[str]:
    """The signal lines: those after the record line, at most as many as it declares (0 if unreadable)."""
    lines = content_lines(text)
    fields = record_fields(text)
    try:
        count = int(float(fields[1])) if len(fields) > 1 else 0
    except ValueError:
        count = 0
    return lines[1 : max(count, 0) + 1]


def _segments(token: str) -> int | None:
    """The segment count of a record name ``name/n``: None without a slash, 0 when ``n`` is unreadable."""
    if "/" not in token:
        return None
    count = token.split("/", 1)[1]
    return int(count) if count.isdigit() else 0


def parse_header(text: str, source: str = "<header>") -> Header:
    """Parse header text; ``source`` names the file in every error."""
    lines = text.splitlines()
    signal_lines = content_lines(text)
    if not signal_lines:
        raise RecordError(source, "header is empty")
    first = signal_lines[0].split()
    if len(first) < 2:
        raise RecordError(source, f"record line has too few fields: {signal_lines[0]!r}")
    record_name = first[0].split("/")[0]
    num_leads = _number(first[1], "number of leads", source)
    if num_leads < 0 or not num_leads.is_integer():
        raise RecordError(source, f"number of leads must be a whole number, got {first[1]!r}")
    fs = _number(first[2], "sampling frequency", source) if len(first) > 2 else 250.0
    if fs <= 0:
        raise RecordError(source, f"sampling frequency must be positive, got {fs}")
    num_samples = _number(first[3], "number of samples", source) if len(first) > 3 else 0.0
    if num_samples < 0 or not num_samples.is_integer():
        raise RecordError(source, f"number of samples must be a whole number, got {first[3]!r}")
    if len(signal_lines) - 1 < num_leads:
        raise RecordError(source, f"header declares {int(num_leads)} leads but lists {len(signal_lines) - 1}")
    signals = tuple(parse_signal_line(line, source) for line in signal_lines[1 : int(num_leads) + 1])
    comments, labels = _comments([line for line in lines if line.lstrip().startswith("#")])
    return Header(
        record_name=record_name,
        num_leads=int(num_leads),
        fs=fs,
        num_samples=int(num_samples),
        leads=tuple(signal.lead for signal in signals),
        file_names=tuple(signal.file_name for signal in signals),
        gains=tuple(signal.gain_per_mv for signal in signals),
        baselines=tuple(signal.zero_level for signal in signals),
        age=parse_age(comments.get("age")),
        sex=parse_sex(comments.get("sex")),
        labels=tuple(labels),
        comments=comments,
        signals=signals,
        fs_declared=len(first) > 2,
        num_samples_declared=len(first) > 3,
        num_segments=_segments(first[0]),
    )


__all__ = [
    "FORMAT_BYTES",
    "WFDB_DEFAULT_GAIN",
    "Header",
    "SignalSpec",
    "comment_values",
    "content_lines",
    "declared_signal_lines",
    "parse_age",
    "parse_gain",
    "parse_header",
    "parse_sex",
    "parse_signal_line",
    "record_fields",
]


class HeaderText(str):
    """Header text that carries its parse, so code handed the text never parses it twice.

    test_model parses each header once (to choose the model) and passes this to ``run_model``: still the
    plain ``str`` the Challenge contract promises, so another team's ``run_model`` sees no difference,
    while ours (:func:`parsed_header`) takes the parse it carries.
    """

    parsed: Header

    def __new__(cls, text: str, parsed: Header) -> HeaderText:
        instance = super().__new__(cls, text)
        instance.parsed = parsed
        return instance

    def __reduce__(self) -> tuple:  # to worker processes with its parse (str would pickle only the text)
        return (HeaderText, (str(self), self.parsed))


def read_parsed_header(text: str, source: str = "<header>") -> HeaderText:
    """The text with its one parse attached."""
    return HeaderText(text, parse_header(text, source=source))


def parsed_header(text: str, source: str = "<header>") -> Header:
    """The parse a :class:`HeaderText` carries, else a fresh one."""
    return text.parsed if isinstance(text, HeaderText) else parse_header(text, source=source)
