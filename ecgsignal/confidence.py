"""Delineation confidence: which fiducial points the delineator is unsure of, per beat, lead and point.

A delineator that answers every question with a number hides its guesses. Three checks mark a
present point *unsure* (the point stays in :attr:`Delineation.points`; :attr:`Delineation.unsure`
flags it, features mask it, the delineation CSV names it):

* **Lead agreement** (P and T). Cardiologists mark a wave's boundaries nearly alike in every lead, so a lead
  whose point lies more than :data:`AGREE_MS` from the beat's median over the leads (three or more
  leads present) saw something else: another lobe, another wave or noise. Checked before the
  multi-lead fusion pulls the point in (which hides the disagreement but not the doubt).
* **Matched morphology.** A P or T wave whose polarity (peak above or below the line joining its
  onset and offset) differs from that lead's usual one (the majority of at least
  :data:`MORPHOLOGY_BEATS` beats) is likely the wrong lobe of a biphasic wave or another wave.
* **SNR.** A P or T wave whose amplitude (peak against that line) is under :data:`MIN_SNR` times
  the lead's high-frequency noise (robust SD of the first difference) is within the noise.

The thresholds were set on the even-numbered LUDB records (``benchmarks/bench_ludb.py --split
even``, the ``ours, sure only`` method): the points they flag have several times the error spread
of the others.
"""

from __future__ import annotations

import numpy as np

from ecgsignal.order_stats import nan_median
from ecgsignal.waves import P_OFF, P_ON, P_PEAK, T_OFF, T_ON, T_PEAK, WAVES

#: Lead agreement: a point further than this (ms) from the beat's median over the leads is unsure.
#: QRS boundaries are not checked: flagged ones erred little more than the others on the tuning
#: records (SD 13.6-20 vs 10.8-12 ms), the fusion already pulls them to the other leads, and
#: masking them cost QRS-based features (the axis) in low-voltage leads.
AGREE_MS: dict[int, float] = dict.fromkeys((P_ON, P_PEAK, P_OFF), 60.0)
AGREE_MS.update(dict.fromkeys((T_ON, T_PEAK, T_OFF), 80.0))
#: Morphology: the lead's usual polarity is decided on at least this many beats with the wave.
MORPHOLOGY_BEATS = 3
#: SNR: a P or T wave smaller than this many times the lead's noise is unsure.
MIN_SNR = 2.0


def unsure_points(x: np.ndarray, points: np.ndarray, fs: float) -> np.ndarray:
    """bool (B, L, 11): present points of ``points`` (B, L, 11, -1 absent) the delineator is unsure of.

    ``x`` (L, N) the delineated (band-passed) signal; ``points`` before the multi-lead fusion.
    """
    unsure = np.zeros(points.shape, dtype=bool)
    if points.shape[0] == 0:
        return unsure
    unsure |= _lead_disagreement(points, fs)
    noise = _noise(x)
    for wave in WAVES:
        if wave.name == "QRS":
            continue
        polarity, amplitude = _shape(x, points, wave.columns)
        doubtful = _odd_polarity(polarity) | (amplitude < MIN_SNR * noise[None, :])
        unsure[:, :, list(wave.columns)] |= doubtful[..., None]
    return unsure & (points >= 0)


def _lead_disagreement(points: np.ndarray, fs: float) -> np.ndarray:
    out = np.zeros(points.shape, dtype=bool)
    columns = np.fromiter(AGREE_MS, dtype=np.int64)
    limit = np.fromiter(AGREE_MS.values(), dtype=np.float64) * fs / 1000.0
    values = np.moveaxis(points[:, :, columns], 1, 2)  # (B, C, L)
    present = values >= 0
    centre = nan_median(values, present)[..., None]
    with np.errstate(invalid="ignore"):
        far = np.abs(values - centre) > limit[None, :, None]
    far &= present & (present.sum(axis=-1) >= 3)[..., None]
    out[:, :, columns] = np.moveaxis(far, 2, 1)
    return out


def _noise(x: np.ndarray) -> np.ndarray:
    """(L,) robust SD of the first difference over sqrt 2: white noise's own SD, blind to the waves.

    The median absolute step of every other pair of samples (a band-passed lead's steps centre on 0):
    half the work of all steps, the same estimate within a few percent.
    """
    if x.shape[1] < 5:
        return np.zeros(x.shape[0])
    step = np.abs(x[:, 2::2] - x[:, 1:-1:2]).astype(np.float32)
    middle = step.shape[1] // 2
    median = np.partition(step, middle, axis=1)[:, middle].astype(np.float64)
    return 1.4826 * median / np.sqrt(2.0)


def _shape(x: np.ndarray, points: np.ndarray, columns: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(polarity +1 / -1 / 0 absent, amplitude) (B, L) of a wave: its peak against the onset-offset line."""
    on, peak, off = (points[:, :, c] for c in columns)
    ok = (on >= 0) & (peak > on) & (off > peak)
    lead = np.arange(x.shape[0])[None, :]
    n = x.shape[1]

    def at(pos: np.ndarray) -> np.ndarray:
        return x[lead, np.clip(pos, 0, n - 1)].astype(np.float64)

    share = np.where(ok, (peak - on) / np.maximum(off - on, 1), 0.0)
    deviation = at(peak) - (at(on) + share * (at(off) - at(on)))
    polarity = np.where(ok, np.sign(deviation), 0.0)
    return polarity, np.where(ok, np.abs(deviation), np.inf)


def _odd_polarity(polarity: np.ndarray) -> np.ndarray:
    """(B, L): waves whose polarity is not the lead's majority one (decided on enough beats)."""
    up, down = (polarity > 0).sum(axis=0), (polarity < 0).sum(axis=0)
    decided = (up + down >= MORPHOLOGY_BEATS) & (up != down)
    usual = np.where(up > down, 1.0, -1.0)
    return decided[None, :] & (polarity != 0) & (polarity != usual[None, :])


__all__ = ["AGREE_MS", "MIN_SNR", "MORPHOLOGY_BEATS", "unsure_points"]
