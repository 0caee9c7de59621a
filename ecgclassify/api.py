"""Classifying your own ECGs from Python: load a model folder once, classify arrays or files.

Load a trained model folder once; :meth:`Classifier.classify_array` takes a (leads, samples) array
with its rate and lead names, :meth:`Classifier.classify_file` any file :mod:`ecgio.formats` reads.
Both return a :class:`Result`: each class by name, abbreviation and code with its probability,
threshold and decision, the measurements (heart rate, PR, QRS, QT, QTc, axis, P waves), the model's
lead set, notes on what was resampled, filled or dropped, and the prepared signal with its
delineation for plotting.

The checks are run_model's (rate 50-5000 Hz, at least 1 s, a finite sample and a usable lead), and a
failure is a :class:`~ecgio.errors.RecordError` naming the record. A lead set no network was trained
on gets the closest trained one (as test_model does), with a note naming the leads zero-filled or
dropped. Records longer than :data:`~ecgclassify.windows.LONG_RECORD_SECONDS` are classified in
segments (:mod:`ecgclassify.windows`), read from the file one at a time.

Example (``model`` is a trained model folder; here a small one built on synthetic records)::

    >>> import numpy as np
    >>> from ecgclassify import Classifier
    >>> classifier = Classifier.load(model)
    >>> signal = example_signal  # (2, 5000): leads I and II, 10 s at 500 Hz, in mV
    >>> result = classifier.classify_array(signal, fs=500, leads=["I", "II"])
    >>> result.model_leads
    ('I', 'II')
    >>> len(result.diagnoses), sorted(result.diagnoses[0].to_dict())
    (26, ['abbreviation', 'code', 'decision', 'name', 'probability', 'threshold'])
    >>> 30 < result.measurements["heart_rate"] < 220  # beats per minute
    True
    >>> result.notes
    ['resampled from 500 Hz to 250 Hz']
    >>> uv = classifier.classify_array(signal * 1000, fs=500, leads=["i", "MLII"], units="uV")
    >>> bool(np.allclose(uv.probabilities, result.probabilities, atol=1e-5))
    True
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ecgclassify.windows import LONG_RECORD_SECONDS, SEGMENT_SECONDS, Segment, segment_bounds, summarise
from ecgio.errors import RecordError
from ecgio.formats import UNIT_TO_MV, SignalSource, check_source, normalise_lead, open_signal
from ecgsignal.features import FEATURE_NAMES
from ecgsignal.pipeline import Prepared, UnusableSignalError, prepare

log = logging.getLogger(__name__)

#: The measurements reported (feature name, unit, label), from :mod:`ecgsignal.features`.
MEASUREMENTS: tuple[tuple[str, str, str], ...] = (
    ("heart_rate", "bpm", "heart rate"),
    ("pr_interval", "ms", "PR"),
    ("qrs_duration", "ms", "QRS"),
    ("qt_interval", "ms", "QT"),
    ("qtc_bazett", "ms", "QTc Bazett"),
    ("qtc_fridericia", "ms", "QTc Fridericia"),
    ("qrs_axis", "deg", "QRS axis"),
    ("p_presence", "1", "beats with a P wave"),
    ("num_beats", "1", "beats"),
)
#: Segments per network call for long records (bounded memory whatever the length).
SEGMENT_BATCH = 16


@dataclass(frozen=True)
class Diagnosis:
    """One class: ``code`` as the model writes it (SNOMED CT; ``a|b`` for equivalent codes), its
    abbreviation and name, the probability, the tuned threshold and the decision."""

    code: str
    abbreviation: str
    name: str
    probability: float
    threshold: float
    decision: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "abbreviation": self.abbreviation,
            "name": self.name,
            "probability": self.probability,
            "threshold": self.threshold,
            "decision": self.decision,
        }


@dataclass
class Result:
    """The classification of one record (see the module's docstring).

    ``signal``: the input in mV, rows in ``model_leads`` order, at ``fs`` (None for a record classified in
    segments); ``prepared``: windows, fiducial channels, features and the delineation at the model's rate
    (``prepared.delineation``; None in segments); ``segments`` and ``summary`` only for long records.
    """

    record: str
    fs: float
    duration_s: float
    input_leads: tuple[str, ...]
    model_leads: tuple[str, ...]
    diagnoses: list[Diagnosis]
    measurements: dict[str, float | None]
    notes: list[str] = field(default_factory=list)
    signal: np.ndarray | None = None
    prepared: Prepared | None = None
    segments: list[Segment] = field(default_factory=list)
    summary: list[dict] = field(default_factory=list)
    age: float = math.nan
    sex: str | None = None

    @property
    def probabilities(self) -> np.ndarray:
        return np.array([d.probability for d in self.diagnoses], dtype=np.float32)

    @property
    def decisions(self) -> np.ndarray:
        return np.array([d.decision for d in self.diagnoses], dtype=bool)

    @property
    def positive(self) -> list[Diagnosis]:
        """The classes decided present, most probable first."""
        return sorted((d for d in self.diagnoses if d.decision), key=lambda d: -d.probability)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: record, model_leads, notes, measurements, diagnoses (and segments when long)."""
        out: dict[str, Any] = {
            "record": self.record,
            "fs": self.fs,
            "duration_s": self.duration_s,
            "input_leads": list(self.input_leads),
            "model_leads": list(self.model_leads),
            "notes": list(self.notes),
            "measurements": dict(self.measurements),
            "diagnoses": [d.to_dict() for d in self.diagnoses],
        }
        if self.segments:
            out["segments"] = {"count": len(self.segments), "summary": self.summary}
        return out


def class_labels(classes: Sequence[str]) -> list[tuple[str, str, str]]:
    """(code, abbreviation, name) of each model class: the Challenge's 26 by weights.csv, others as written."""
    from ecgscore.classes import ABBREVIATIONS, DIAGNOSES, class_names, representative_codes

    if tuple(classes) in (representative_codes(), class_names()):
        return list(zip(classes, ABBREVIATIONS, DIAGNOSES))
    return [(name, name, name) for name in classes]


def measurements_of(prepared: Prepared) -> dict[str, float | None]:
    """The reported measurements of a prepared record; None where the delineation found none."""
    out: dict[str, float | None] = {}
    for name, _, _ in MEASUREMENTS:
        value = float(prepared.features[FEATURE_NAMES.index(name)])
        out[name] = round(value, 4) if math.isfinite(value) else None
    return out


class Classifier:
    """A model folder, loaded once; one network per lead set, loaded on first use."""

    def __init__(self, model_dir: str | Path, device: str = "cpu", threads: int = 0) -> None:
        from ecgserve.model_folder import read_manifest

        self.model_dir = Path(model_dir)
        self.manifest = read_manifest(self.model_dir)
        self.device = device
        self.threads = threads
        self._predictors: dict[str, Any] = {}

    @classmethod
    def load(cls, model_dir: str | Path, device: str = "cpu", threads: int = 0) -> Classifier:
        """Read the model folder's manifest (networks load when a lead set first needs them)."""
        return cls(model_dir, device, threads)

    @property
    def lead_sets(self) -> list[tuple[str, ...]]:
        return [tuple(entry["leads"]) for entry in self.manifest["models"].values()]

    def predictor(self, leads: Sequence[str]) -> tuple[Any, list[str]]:
        """The predictor for ``leads`` and a note when it is not an exact match (the leads filled or dropped)."""
        from ecgserve.predictor import choose_entry, fallback_warning, load_predictor

        key, exact = choose_entry(self.manifest["models"], leads)
        if key not in self._predictors:
            self._predictors[key] = load_predictor(self.model_dir, leads, device=self.device, threads=self.threads)
        predictor = self._predictors[key]
        note = [] if exact else [fallback_warning(self.model_dir.name, leads, predictor.leads).split(": ", 1)[1]]
        return predictor, note

    def classify_array(
        self,
        signal: np.ndarray,
        fs: float,
        leads: Sequence[str],
        units: str = "mV",
        gain: float | None = None,
        age: float = math.nan,
        sex: str | None = None,
        name: str = "array",
    ) -> Result:
        """Classify a (len(leads), samples) array sampled at ``fs`` Hz, in ``units`` (``mV``/``uV``) after
        dividing by ``gain`` (ADC units per unit) when given."""
        array = np.asarray(signal)
        if array.ndim != 2 or array.shape[0] != len(leads):
            raise RecordError(
                name, f"signal has shape {array.shape}; expected ({len(leads)}, samples) for {list(leads)}"
            )
        if units.lower() not in UNIT_TO_MV:
            raise RecordError(name, f"unknown unit {units!r}; expected mV or uV")
        if array.dtype.kind not in "iuf":
            raise RecordError(name, f"signal of {array.dtype} values; expected numbers")
        names = [normalise_lead(lead) for lead in leads]
        factor = np.array([sign for _, sign in names])[:, None] * UNIT_TO_MV[units.lower()] / (gain or 1.0)
        source = SignalSource(
            Path(name),
            "array",
            float(fs),
            tuple(lead for lead, _ in names),
            int(array.shape[1]),
            lambda a, b: (np.asarray(array[:, a:b], np.float64) * factor).astype(np.float32),
            age=age,
            sex=sex,
            whole_file=True,
        )
        if len(set(source.leads)) != len(source.leads):
            raise RecordError(name, f"a lead appears twice in {list(leads)}")
        check_source(source)
        return self.classify_source(source)

    def classify_file(self, path: str | Path, format: str = "auto", **options: Any) -> Result:
        """Classify a file of any supported format; ``options`` as :func:`ecgio.formats.open_signal`
        (``fs``, ``leads``, ``units``, ``gain``) plus ``age`` and ``sex``."""
        age, sex = options.pop("age", math.nan), options.pop("sex", None)
        source = open_signal(path, format=format, **options)
        if not math.isnan(age):
            source.age = age
        if sex is not None:
            source.sex = sex
        return self.classify_source(source)

    def classify_source(
        self, source: SignalSource, long_after_s: float = LONG_RECORD_SECONDS, segment_s: float = SEGMENT_SECONDS
    ) -> Result:
        """Classify an opened source: whole, or in segments when longer than ``long_after_s`` seconds."""
        predictor, notes = self.predictor(source.leads)
        notes = list(source.notes) + notes
        config = predictor.config
        if source.fs != config.fs:
            notes.append(f"resampled from {source.fs:g} Hz to {config.fs:g} Hz")
        rows = [source.leads.index(lead) if lead in source.leads else None for lead in predictor.leads]
        if source.duration > long_after_s:
            return self._classify_long(source, predictor, rows, notes, segment_s)
        signal = _model_rows(source.read(), rows)
        try:
            prepared = prepare(signal, source.fs, predictor.leads, config)
        except UnusableSignalError as error:
            raise RecordError(source.path, str(error)) from None
        probabilities = predictor.probabilities_batch([predictor.preparer.inputs(prepared, source.age, source.sex)])[0]
        return Result(
            record=source.name,
            fs=source.fs,
            duration_s=source.duration,
            input_leads=source.leads,
            model_leads=tuple(predictor.leads),
            diagnoses=self._diagnoses(predictor, probabilities),
            measurements=measurements_of(prepared),
            notes=notes,
            signal=signal,
            prepared=prepared,
            age=source.age,
            sex=source.sex,
        )

    def _diagnoses(self, predictor: Any, probabilities: np.ndarray) -> list[Diagnosis]:
        decisions = predictor.labels(probabilities)
        return [
            Diagnosis(code, abbreviation, name, float(p), float(t), bool(d))
            for (code, abbreviation, name), p, t, d in zip(
                class_labels(predictor.classes), probabilities, predictor.thresholds, decisions
            )
        ]

    def _classify_long(
        self, source: SignalSource, predictor: Any, rows: list[int | None], notes: list[str], segment_s: float
    ) -> Result:
        """Segments read one at a time, prepared, and run through the network a batch of segments at once."""
        from ecglog import progress
        from ecgserve.inference import aggregate_windows

        bounds = segment_bounds(source.num_samples, source.fs, segment_s)
        segments: list[Segment] = []
        measured: list[dict[str, float | None]] = []
        pending: list[tuple[float, float, Any]] = []

        def flush() -> None:
            if pending:
                probabilities = predictor.probabilities_batch([item for _, _, item in pending])
                for (start, stop, _), p in zip(pending, probabilities):
                    segments.append(Segment(start, stop, p, predictor.labels(p).astype(bool)))
                pending.clear()

        for start, stop in progress(bounds, desc=source.name, unit="segment"):
            span = (start / source.fs, stop / source.fs)
            try:
                prepared = prepare(
                    _model_rows(source.read(start, stop), rows), source.fs, predictor.leads, predictor.config
                )
            except UnusableSignalError as error:
                flush()
                segments.append(Segment(*span, np.zeros(0), np.zeros(0, bool), str(error)))
                continue
            measured.append(measurements_of(prepared))
            pending.append((*span, predictor.preparer.inputs(prepared, source.age, source.sex)))
            if len(pending) >= SEGMENT_BATCH:
                flush()
        flush()
        segments.sort(key=lambda s: s.start_s)
        good = [s for s in segments if not s.problem]
        if not good:
            raise RecordError(source.path, f"no usable signal in any of its {len(segments)} segments")
        if len(good) < len(segments):
            notes.append(
                f"{len(segments) - len(good)} of {len(segments)} segments had no usable signal and were skipped"
            )
        notes.append(
            f"classified in {len(segments)} segments of {segment_s:g} s; record-level probability: the"
            f" {predictor.window_aggregation} over segments"
        )
        probabilities = aggregate_windows(np.stack([s.probabilities for s in good]), predictor.window_aggregation)
        labels = [abbreviation for _, abbreviation, _ in class_labels(predictor.classes)]
        return Result(
            record=source.name,
            fs=source.fs,
            duration_s=source.duration,
            input_leads=source.leads,
            model_leads=tuple(predictor.leads),
            diagnoses=self._diagnoses(predictor, probabilities.astype(np.float32)),
            measurements=_median_measurements(measured),
            notes=notes,
            segments=segments,
            summary=summarise(segments, labels),
            age=source.age,
            sex=source.sex,
        )


def _model_rows(signal: np.ndarray, rows: list[int | None]) -> np.ndarray:
    """The signal's rows in the model's lead order; leads the input lacks are zero (as run_model feeds them)."""
    out = np.zeros((len(rows), signal.shape[1]), dtype=np.float32)
    for target, row in enumerate(rows):
        if row is not None:
            out[target] = signal[row]
    return out


def _median_measurements(measured: list[dict[str, float | None]]) -> dict[str, float | None]:
    """Each measurement's median over the segments that have it (beats: the total)."""
    out: dict[str, float | None] = {}
    for name, _, _ in MEASUREMENTS:
        values = [m[name] for m in measured if m[name] is not None]
        if name == "num_beats":
            out[name] = float(sum(values)) if values else None  # type: ignore[arg-type]
        else:
            out[name] = round(float(np.median(values)), 4) if values else None  # type: ignore[arg-type]
    return out


__all__ = ["MEASUREMENTS", "Classifier", "Diagnosis", "Result", "class_labels", "measurements_of"]
