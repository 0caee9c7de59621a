"""Features from a delineation: per-sample fiducial channels and per-record global features.

(a) :func:`fiducial_channels`: C per-sample channels aligned with the delineated signal, for the
network's feature branch. The wave channels are the fraction of delineated leads in which the
sample lies inside that wave (0..1, so a wave seen in every lead is 1, and partial agreement
stays visible); the R channel is a Gaussian bump (sigma 20 ms, height 1) at each fused R peak.

(b) :func:`global_features`: a fixed-length vector (F = len(FEATURE_NAMES), the same for every lead
set) computed on the band-passed signal in mV. Missing values are NaN with ``present`` False. Fiducial
points the delineator flags as unsure (:attr:`Delineation.unsure`) are left out, as absent ones are.
Multi-lead intervals use, per beat, an early quantile (20 %) of the lead onsets and a late
quantile (80 %) of the lead offsets (the global onset/offset of Martinez's multi-lead rules,
robust to one lead's outlier), then the median over beats.
"""

from __future__ import annotations

import math

import numpy as np

from ecgio.leads import TWELVE_LEADS
from ecgsignal.delineate import (
    P_ON,
    P_PEAK,
    QRS_OFF,
    QRS_ON,
    R_PEAK,
    S_PEAK,
    T_OFF,
    T_PEAK,
    WAVES,
    Delineation,
)
from ecgsignal.order_stats import nan_median, nan_quantile

FIDUCIAL_CHANNELS: tuple[str, ...] = ("P_wave", "QRS", "T_wave", "R_peak")

LIMB_LEADS = TWELVE_LEADS[:6]
PRECORDIAL_LEADS = TWELVE_LEADS[6:]
PER_LEAD = ("p_amp", "r_amp", "s_amp", "t_amp", "st_level")

_RECORD_FEATURES: tuple[tuple[str, str, tuple[float, float]], ...] = (
    ("heart_rate", "bpm", (30.0, 220.0)),
    ("rr_mean", "ms", (270.0, 2000.0)),
    ("rr_sdnn", "ms", (0.0, 300.0)),
    ("rr_rmssd", "ms", (0.0, 400.0)),
    ("rr_irregularity", "1", (0.0, 0.5)),
    ("p_presence", "1", (0.0, 1.0)),
    ("pr_interval", "ms", (80.0, 400.0)),
    ("qrs_duration", "ms", (50.0, 200.0)),
    ("qt_interval", "ms", (200.0, 600.0)),
    ("qtc_bazett", "ms", (300.0, 650.0)),
    ("qtc_fridericia", "ms", (300.0, 650.0)),
    ("qrs_axis", "deg", (-180.0, 180.0)),
    ("limb_max_p2p", "mV", (0.2, 5.0)),
    ("precordial_max_p2p", "mV", (0.3, 8.0)),
    ("num_beats", "1", (1.0, 100.0)),
)
_PER_LEAD_UNITS = {
    "p_amp": ("mV", (-0.3, 0.4)),
    "r_amp": ("mV", (0.0, 4.0)),
    "s_amp": ("mV", (-4.0, 0.0)),
    "t_amp": ("mV", (-1.0, 1.5)),
    "st_level": ("mV", (-0.5, 0.5)),
}

#: Feature names: record-level ones, then ``<feature>_<lead>`` for every canonical lead.
FEATURE_NAMES: tuple[str, ...] = tuple(name for name, _, _ in _RECORD_FEATURES) + tuple(
    f"{feature}_{lead}" for lead in TWELVE_LEADS for feature in PER_LEAD
)
#: Unit of each feature ("1" = dimensionless).
FEATURE_UNITS: tuple[str, ...] = tuple(unit for _, unit, _ in _RECORD_FEATURES) + tuple(
    _PER_LEAD_UNITS[feature][0] for _ in TWELVE_LEADS for feature in PER_LEAD
)
#: Typical range (low, high) of each feature in adult 12-lead ECGs: documentation and a sanity
#: check, not a clip. rr_irregularity = median |successive RR difference| / median RR (sinus rhythm
#: < ~0.05, atrial fibrillation typically > 0.1); p_presence = share of beats with a P wave in at
#: least half of the leads in which the beat's QRS was delineated; amplitudes are relative to the
#: QRS-onset level; st_level is taken 60 ms after the QRS offset (J + 60 ms); qrs_axis is the
#: frontal axis from the net QRS deflections of I and aVF (aVF taken as II - I/2 where the lead set lacks it).
FEATURE_RANGES: tuple[tuple[float, float], ...] = tuple(r for _, _, r in _RECORD_FEATURES) + tuple(
    _PER_LEAD_UNITS[feature][1] for _ in TWELVE_LEADS for feature in PER_LEAD
)


#: Features that read absolute amplitudes (mV), or compare them across leads (the axis): meaningless
#: for a record whose leads were rescaled one by one (:func:`amplitudes_normalised`).
AMPLITUDE_FEATURES: tuple[str, ...] = ("qrs_axis", "limb_max_p2p", "precordial_max_p2p") + tuple(
    f"{feature}_{lead}" for lead in TWELVE_LEADS for feature in PER_LEAD
)
#: Leads whose peak-to-peak ranges agree to this relative spread were rescaled one by one.
NORMALISED_SPREAD = 1e-3


def amplitudes_normalised(signal: np.ndarray, usable: np.ndarray | None = None) -> bool:
    """Whether every usable lead of ``signal`` (L, N) has the same peak-to-peak range (to 0.1 %), i.e. the
    record was amplitude-normalised lead by lead before it reached us (LUDB's records are: every lead of
    every record spans exactly 1 mV). No two leads of a real recording agree that closely, and such a
    record's amplitudes, and its axis, say nothing about the heart: :data:`AMPLITUDE_FEATURES` are then
    left out (not present) rather than learned from."""
    x = np.asarray(signal, dtype=np.float64)
    rows = np.arange(len(x)) if usable is None else np.flatnonzero(usable)
    spans = np.array([np.ptp(row[np.isfinite(row)]) if np.isfinite(row).any() else np.nan for row in x[rows]])
    spans = spans[np.isfinite(spans) & (spans > 0)]
    if len(spans) < 2:
        return False
    return bool((spans.max() - spans.min()) <= NORMALISED_SPREAD * spans.max())


def fiducial_channels(delineation: Delineation, num_samples: int) -> np.ndarray:
    """float32 (C, num_samples), C = len(FIDUCIAL_CHANNELS); see the module docstring."""
    out = np.zeros((len(FIDUCIAL_CHANNELS), num_samples), dtype=np.float32)
    points = delineation.points
    if delineation.num_beats == 0 or num_samples == 0:
        return out
    delineated = (points[:, :, QRS_ON] >= 0).any(axis=0)
    leads = max(1, int(delineated.sum()))
    for channel, wave in enumerate(WAVES):
        on, off = points[:, :, wave.onset].ravel(), points[:, :, wave.offset].ravel()
        ok = (on >= 0) & (off >= on) & (off < num_samples)
        steps = np.zeros(num_samples + 1, dtype=np.float64)
        np.add.at(steps, on[ok], 1.0)
        np.add.at(steps, off[ok] + 1, -1.0)
        out[channel] = np.cumsum(steps[:-1]) / leads
    sigma = 0.02 * delineation.fs
    half = int(np.ceil(4 * sigma))
    bump = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    r = delineation.r_peaks[(delineation.r_peaks >= 0) & (delineation.r_peaks < num_samples)]
    idx = r[:, None] + np.arange(-half, half + 1)
    ok = (idx >= 0) & (idx < num_samples)
    r_channel = np.zeros(num_samples, dtype=np.float64)
    np.maximum.at(r_channel, idx[ok], np.broadcast_to(bump, idx.shape)[ok])
    out[3] = r_channel
    return out


def _nanmedian_all(values: np.ndarray) -> float:
    """nanmedian of every value, NaN when none is finite."""
    return float(nan_median(np.asarray(values, dtype=np.float64).ravel()))


def _quantile_over_leads(column: np.ndarray, q: float) -> np.ndarray:
    """Per beat, the q-quantile of the present (>= 0) lead positions; NaN if none. column (B, L)."""
    return nan_quantile(column, q, present=column >= 0)


def _rhythm(r_peaks: np.ndarray, fs: float) -> dict[str, float]:
    rr = np.diff(r_peaks) * 1000.0 / fs
    out = dict.fromkeys(("heart_rate", "rr_mean", "rr_sdnn", "rr_rmssd", "rr_irregularity"), np.nan)
    out["num_beats"] = float(len(r_peaks)) if len(r_peaks) else np.nan
    if rr.size >= 1:
        out["rr_mean"] = float(rr.mean())
        out["heart_rate"] = 60000.0 / float(np.median(rr))
    if rr.size >= 2:
        out["rr_sdnn"] = float(rr.std(ddof=1))
        successive = np.diff(rr)
        out["rr_rmssd"] = float(np.sqrt(np.mean(successive**2)))
        out["rr_irregularity"] = float(np.median(np.abs(successive)) / np.median(rr))
    return out


def _intervals(d: Delineation) -> dict[str, float]:
    """PR, QRS, QT(c) in ms and the P-wave presence ratio, from multi-lead onsets/offsets."""
    to_ms = 1000.0 / d.fs
    points = d.points
    qrs_on = _quantile_over_leads(points[:, :, QRS_ON], 0.2)
    qrs_off = _quantile_over_leads(points[:, :, QRS_OFF], 0.8)
    p_on = _quantile_over_leads(points[:, :, P_ON], 0.2)
    t_off = _quantile_over_leads(points[:, :, T_OFF], 0.8)
    out = {
        "pr_interval": _nanmedian_all((qrs_on - p_on) * to_ms),
        "qrs_duration": _nanmedian_all((qrs_off - qrs_on) * to_ms),
        "qt_interval": _nanmedian_all((t_off - qrs_on) * to_ms),
    }
    delineated = (points[:, :, QRS_ON] >= 0).sum(axis=1)
    with_p = (points[:, :, P_ON] >= 0).sum(axis=1)
    beats = delineated > 0
    out["p_presence"] = float(np.mean(with_p[beats] >= 0.5 * delineated[beats])) if beats.any() else np.nan
    rr = np.diff(d.r_peaks) / d.fs
    rr_s = float(np.median(rr)) if rr.size else np.nan
    qt_s = out["qt_interval"] / 1000.0
    out["qtc_bazett"] = 1000.0 * qt_s / math.sqrt(rr_s) if np.isfinite(qt_s) and np.isfinite(rr_s) else np.nan
    out["qtc_fridericia"] = 1000.0 * qt_s / rr_s ** (1 / 3) if np.isfinite(qt_s) and np.isfinite(rr_s) else np.nan
    return out


def _amplitudes(x: np.ndarray, d: Delineation) -> dict[str, np.ndarray]:
    """Per lead (L,) medians over beats, in mV relative to the QRS-onset level."""
    points = d.points
    n = x.shape[1]
    lead_idx = np.arange(x.shape[0])[None, :]

    def level(col_positions: np.ndarray) -> np.ndarray:
        return np.where(col_positions >= 0, x[lead_idx, np.clip(col_positions, 0, n - 1)], np.nan)

    on = points[:, :, QRS_ON]
    base = level(on)
    st_pos = np.where(points[:, :, QRS_OFF] >= 0, points[:, :, QRS_OFF] + int(round(0.06 * d.fs)), -1)
    st_pos = np.where(st_pos < n, st_pos, -1)
    out = {
        "p_amp": level(points[:, :, P_PEAK]) - base,
        "r_amp": level(points[:, :, R_PEAK]) - base,
        "s_amp": level(points[:, :, S_PEAK]) - base,
        "t_amp": level(points[:, :, T_PEAK]) - base,
        "st_level": level(st_pos) - base,
    }
    out["p2p"], out["net"] = _qrs_extent(x, points, base)
    # One sort for all seven (B, L) tables: the medians over beats, per lead.
    medians = nan_median(np.moveaxis(np.stack(list(out.values())), 1, -1))
    return dict(zip(out, medians, strict=True))


def _qrs_extent(x: np.ndarray, points: np.ndarray, base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per beat and lead (B, L): QRS peak-to-peak (mV) and net QRS deflection (max + min relative to onset)."""
    on, off = points[:, :, QRS_ON], points[:, :, QRS_OFF]
    n = x.shape[1]
    span = int(max(1, (off - on).max(initial=1))) + 1
    idx = np.clip(on[..., None] + np.arange(span), 0, n - 1)
    inside = (np.arange(span) <= (off - on)[..., None]) & (on >= 0)[..., None]
    values = x[np.arange(x.shape[0])[None, :, None], idx]
    hi = np.where(inside, values, -np.inf).max(axis=-1)
    lo = np.where(inside, values, np.inf).min(axis=-1)
    ok = inside.any(axis=-1)
    p2p = np.where(ok, hi - lo, np.nan)
    net = np.where(ok, (hi - base) + (lo - base), np.nan)
    return p2p, net


def global_features(
    x: np.ndarray, fs: float, delineation: Delineation, leads: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """(values float32 (F,), present bool (F,)) for a record; F = len(FEATURE_NAMES) whatever ``leads``.

    ``x``: the band-passed signal in mV (not normalised), (L, M) at ``fs``, rows named by ``leads``
    (canonical names) and delineated by ``delineation``. Per-lead features of leads not in
    ``leads`` (or with no delineated beat) are NaN / not present.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != len(leads):
        raise ValueError(f"x has shape {x.shape} but {len(leads)} leads are named")
    if delineation.num_beats and delineation.points.shape[1] != len(leads):
        raise ValueError(f"delineation has {delineation.points.shape[1]} leads, x has {len(leads)}")
    # A point the delineator is unsure of (ecgsignal.confidence) is masked: absent, so NaN, not a number.
    delineation = Delineation(delineation.fs, delineation.r_peaks, delineation.sure_points)
    values = dict.fromkeys(FEATURE_NAMES, np.nan)
    values.update(_rhythm(delineation.r_peaks, fs))
    if delineation.num_beats:
        values.update(_intervals(delineation))
        amps = _amplitudes(x, delineation)
        for row, lead in enumerate(leads):
            if lead in TWELVE_LEADS:
                for feature in PER_LEAD:
                    values[f"{feature}_{lead}"] = amps[feature][row]
        row_of = {lead: i for i, lead in enumerate(leads)}
        if "I" in row_of and ("aVF" in row_of or "II" in row_of):
            net_i = amps["net"][row_of["I"]]
            if "aVF" in row_of:
                net_avf = amps["net"][row_of["aVF"]]
            else:  # reduced lead sets: aVF = II - I/2 (Einthoven), so I and II alone give the frontal axis
                net_avf = amps["net"][row_of["II"]] - net_i / 2.0
            if np.isfinite(net_i) and np.isfinite(net_avf) and (net_i or net_avf):
                values["qrs_axis"] = math.degrees(math.atan2(2.0 / math.sqrt(3.0) * net_avf, net_i))
        for name, group in (("limb_max_p2p", LIMB_LEADS), ("precordial_max_p2p", PRECORDIAL_LEADS)):
            p2p = [amps["p2p"][row_of[lead]] for lead in group if lead in row_of]
            p2p = [v for v in p2p if np.isfinite(v)]
            values[name] = max(p2p) if p2p else np.nan
    out = np.array([values[name] for name in FEATURE_NAMES], dtype=np.float32)
    present = np.isfinite(out)
    out[~present] = np.nan
    return out, present
