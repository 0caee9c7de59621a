"""Diagnoses that are measurements: soft scores of the clinical criteria that define some scored classes.

Several of the Challenge's classes are defined by a number the delineator measures (a PR interval over
200 ms *is* first-degree AV block). A classifier trained on a few hundred records from one hospital
cannot learn a class it has never seen a positive of, and learns a threshold where the class is rare
that does not carry to a hospital where it is common. The criterion does not depend on the training
population, so the model can be given it as evidence (``ecgtrain.criteria`` decides, per class, how
much weight it gets beside the learned probability).

Each score is in [0, 1]: a logistic ramp around the textbook cut-off (``0.5`` exactly at the cut-off;
the ramp width is a measurement's typical error, a few ms or tens of µV), times the confidence of the
measurement where the definition needs a condition the delineator may not see (a sinus rhythm needs
P waves in most beats). NaN where the record lacks what the criterion needs (no P wave detected for a
PR interval, no lead that shows the axis), so the learned probability stands alone there.

Cut-offs (adult resting ECG, AHA/ACCF/HRS recommendations for the standardisation and interpretation
of the ECG, 2009):

==========  ===================================================================================
class       criterion
==========  ===================================================================================
Brady       heart rate < 60 bpm
SB          heart rate < 60 bpm, P waves in most beats, regular RR
STach       heart rate > 100 bpm, P waves in most beats, regular RR
SA          P waves in most beats and RR standard deviation > 40 ms (a P-P range over 120 ms in a
            10-s record)
IAVB, LPR   PR interval > 200 ms, P waves in most beats
LQT         QTc (Bazett) > 450 ms in men, 460 ms in women (455 ms when the sex is unknown)
LQRSV       QRS peak-to-peak < 0.5 mV in every limb lead, or < 1.0 mV in every precordial lead
LAD         frontal QRS axis between -90° and -30°
RAD         frontal QRS axis between +90° and +180°
TInv        a T wave below -0.1 mV in a lead where it is normally upright (I, II, V3-V6)
PRWP        R wave in V3 of at most 0.3 mV
BBB         QRS duration >= 120 ms (a bundle-branch block of either side: the generic class; complete
            right and left blocks need their QRS shapes as well, which no single number gives)
==========  ===================================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

if __name__ == "exported_criteria":  # a copy beside an exported model's runner (ecg-export): numpy only,
    FEATURE_NAMES: tuple[str, ...] = ()  # the names come from export.json (use_feature_names)
else:
    from ecgsignal.features import FEATURE_NAMES

_COLUMN = {name: i for i, name in enumerate(FEATURE_NAMES)}


def use_feature_names(names: Sequence[str]) -> None:
    """Read feature columns by these names (an exported model's runner, which has no signal layer)."""
    global FEATURE_NAMES, _COLUMN
    FEATURE_NAMES = tuple(names)
    _COLUMN = {name: i for i, name in enumerate(FEATURE_NAMES)}


#: Leads whose T wave is normally upright in adults (inversion there is abnormal).
UPRIGHT_T_LEADS = ("I", "II", "V3", "V4", "V5", "V6")


def _ramp(x: np.ndarray, cut: float | np.ndarray, width: float) -> np.ndarray:
    """Logistic score of ``x > cut`` (NaN stays NaN): 0.5 at the cut-off, 0.88 one ``width`` above it."""
    with np.errstate(over="ignore", invalid="ignore"):
        return 0.5 * (1.0 + np.tanh((x - cut) / width))


def _col(values: np.ndarray, name: str) -> np.ndarray:
    return values[:, _COLUMN[name]]


def _sinus(values: np.ndarray, regular: bool) -> np.ndarray:
    """Confidence of a sinus rhythm: P waves in most beats (and, if ``regular``, a steady RR)."""
    p = _ramp(_col(values, "p_presence"), 0.6, 0.1)
    if regular:
        p = p * _ramp(-_col(values, "rr_irregularity"), -0.1, 0.02)
    return p


def _rate(values: np.ndarray) -> np.ndarray:
    """Heart rate, NaN on fewer than three beats (one RR interval says little about a rate)."""
    return np.where(_col(values, "num_beats") >= 3, _col(values, "heart_rate"), np.nan)


def _brady(values: np.ndarray, sexes: Sequence[str | None]) -> np.ndarray:
    return _ramp(-_rate(values), -60.0, 2.0)


def _sinus_brady(values: np.ndarray, sexes: Sequence[str | None]) -> np.ndarray:
    return _brady(values, sexes) * _sinus(values, regular=True)


def _sinus_tachy(values: np.ndarray, sexes: Sequence[str | None]) -> np.ndarray:
    return _ramp(_rate(values), 100.0, 2.0) * _sinus(values, regular=True)


def _sinus_arrhythmia(values: np.ndarray, sexes: Sequence[str | None]) -> np.ndarray:
    sdnn = np.where(_col(values, "num_beats") >= 5, _col(values, "rr_sdnn"), np.nan)
    return _ramp(sdnn, 40.0, 8.0) * _sinus(values, regular=False)


def _long_pr(values: np.ndarray, sexes: Sequence[str | None]) -> np.ndarray:
    return _ramp(_col(values, "pr_interval"), 200.0, 8.0) * _sinus(values, regular=False)


def _long_qt(values: np.ndarray, sexes: Sequence[str | None]) -> np.ndarray:
    cut = np.array([{"Male": 450.0, "Female": 460.0}.get(str(s), 455.0) for s in sexes], dtype=np.float64)
    return _ramp(_col(values, "qtc_bazett"), cut, 8.0)


def _low_voltage(values: np.ndarray, sexes: Sequence[str | None]) -> np.ndarray:
    limb = _ramp(-_col(values, "limb_max_p2p"), -0.5, 0.05)
    precordial = _ramp(-_col(values, "precordial_max_p2p"), -1.0, 0.1)
    return np.fmax(limb, precordial)  # either criterion; NaN only where neither group was measured


def _left_axis(values: np.ndarray, sexes: Sequence[str | None]) -> np.ndarray:
    axis = _col(values, "qrs_axis")
    return _ramp(-axis, 30.0, 4.0) * _ramp(axis, -90.0, 4.0)


def _right_axis(values: np.ndarray, sexes: Sequence[str | None]) -> np.ndarray:
    return _ramp(_col(values, "qrs_axis"), 90.0, 4.0)


def _t_inversion(values: np.ndarray, sexes: Sequence[str | None]) -> np.ndarray:
    t = np.stack([_col(values, f"t_amp_{lead}") for lead in UPRIGHT_T_LEADS], axis=1)
    score = _ramp(-t, 0.1, 0.03)
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(score).any(axis=1), np.nanmax(np.nan_to_num(score, nan=-1.0), axis=1), np.nan)


def _poor_r_progression(values: np.ndarray, sexes: Sequence[str | None]) -> np.ndarray:
    return _ramp(-_col(values, "r_amp_V3"), -0.3, 0.05)


def _wide_qrs(values: np.ndarray, sexes: Sequence[str | None]) -> np.ndarray:
    return _ramp(_col(values, "qrs_duration"), 120.0, 6.0)


#: Class abbreviation (``ecgscore.classes.ABBREVIATIONS``) -> its criterion score (values (N, F), sexes).
CRITERIA: dict[str, Callable[[np.ndarray, Sequence[str | None]], np.ndarray]] = {
    "Brady": _brady,
    "SB": _sinus_brady,
    "STach": _sinus_tachy,
    "SA": _sinus_arrhythmia,
    "IAVB": _long_pr,
    "LPR": _long_pr,
    "LQT": _long_qt,
    "LQRSV": _low_voltage,
    "LAD": _left_axis,
    "RAD": _right_axis,
    "TInv": _t_inversion,
    "PRWP": _poor_r_progression,
    "BBB": _wide_qrs,
}


def criterion_scores(values: np.ndarray, sexes: Sequence[str | None], classes: Sequence[str]) -> np.ndarray:
    """(N, len(classes)) float64 scores for global features ``values`` (N, F) (:data:`FEATURE_NAMES` order,
    NaN where absent) of records of ``sexes``; a column of NaN for a class without a criterion.

    >>> import numpy as np
    >>> row = np.full((1, len(FEATURE_NAMES)), np.nan)
    >>> row[0, _COLUMN["pr_interval"]], row[0, _COLUMN["p_presence"]] = 260.0, 1.0
    >>> scores = criterion_scores(row, [None], ["IAVB", "AF"])
    >>> round(float(scores[0, 0]), 3), bool(np.isnan(scores[0, 1]))
    (1.0, True)
    """
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    if values.shape[1] != len(FEATURE_NAMES):
        raise ValueError(f"values have {values.shape[1]} columns; expected {len(FEATURE_NAMES)} features")
    if len(sexes) != len(values):
        raise ValueError(f"{len(sexes)} sexes for {len(values)} records")
    out = np.full((len(values), len(classes)), np.nan)
    for j, name in enumerate(classes):
        rule = CRITERIA.get(name)
        if rule is not None:
            out[:, j] = rule(values, sexes)
    return out
