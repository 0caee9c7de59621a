"""ECGSYN (McSharry et al. 2003) for many leads at once, without an ODE solver.

ECGSYN moves a point around the unit circle at the angular speed 2π/RR of the current beat and
lets its height z obey ``dz/dt = -Σ_i a_i Δθ_i exp(-Δθ_i² / 2 b_i²) - (z - z_base(t))``, one
Gaussian per wave (P, Q, R, S, T) at the angle θ_i. Started on the circle, the point never leaves
it, so the angle is known in closed form from the RR series (2π per beat, linear within a beat),
and the z equation is linear with a known input: its exact solution for an input held over each
sample step is a first-order recursive filter. Every lead shares the angle (so beats line up
across leads) and differs only in its wave amplitudes, so all leads are computed in one
vectorised pass. This gives the same waveform model as an adaptive ODE solver per lead
(neurokit2's ``ecg_simulate(method="multileads")``) about two orders of magnitude faster.

Facts used (the published model and its reference parameters): angles θ_i = (-70, -15, 0, 15,
100) degrees, amplitudes a_i = (1.2, -5, 30, -7.5, 0.75), widths b_i = (0.25, 0.1, 0.1, 0.1, 0.4),
widths scaled by sqrt(HR/60) and angles by (HR/60)^(1/4) for P and T and sqrt(HR/60) for Q and S;
the RR tachogram has a bimodal spectrum (Mayer waves at 0.1 Hz, respiratory sinus arrhythmia at
0.25 Hz, both 0.01 Hz wide, power ratio LF/HF) with random phases; a 0.25 Hz, 5 µV respiratory
baseline; each lead scaled to the range -0.4..1.2. The per-lead amplitude factors for the twelve
standard leads are the ones neurokit2 documents for its multi-lead simulation.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

#: Wave angles (degrees), amplitudes and widths of P, Q, R, S, T at 60 bpm.
WAVE_ANGLES_DEG = np.array([-70.0, -15.0, 0.0, 15.0, 100.0])
WAVE_AMPLITUDES = np.array([1.2, -5.0, 30.0, -7.5, 0.75])
WAVE_WIDTHS = np.array([0.25, 0.1, 0.1, 0.1, 0.4])

#: Per-lead factors on the P, Q, R, S, T amplitudes for I, II, III, aVR, aVL, aVF, V1..V6.
TWELVE_LEAD_GAINS = np.array(
    [
        [1, 0.1, 1, 1.2, 1],
        [2, 0.2, 0.2, 0.2, 3],
        [1, -0.1, -0.8, -1.1, 2.5],
        [-1, -0.05, -0.8, -0.5, -1.2],
        [0.05, 0.05, 1, 1, 1],
        [1, -0.05, -0.1, -0.1, 3],
        [-0.5, 0.05, 0.2, 0.5, 1],
        [0.05, 0.05, 1.3, 2.5, 2],
        [1, 0.05, 1, 2, 1],
        [1.2, 0.05, 1, 2, 2],
        [1.5, 0.1, 0.8, 1, 2],
        [1.8, 0.05, 0.5, 0.1, 2],
    ]
)

MAYER_HZ, RSA_HZ, BAND_SD_HZ = 0.1, 0.25, 0.01
RESPIRATION_HZ, RESPIRATION_MV = 0.25, 0.005


def rr_tachogram(
    num_beats_hint: float, heart_rate: float, heart_rate_std: float, lf_hf: float, rng: np.random.Generator
) -> np.ndarray:
    """RR intervals (s) sampled at 1 Hz: a random-phase process with ECGSYN's bimodal spectrum.

    The length is the next power of two of the seconds ``num_beats_hint`` beats take, as ECGSYN does.
    """
    rr_mean = 60.0 / heart_rate
    rr_std = 60.0 * heart_rate_std / heart_rate**2
    n = int(2 ** np.ceil(np.log2(max(num_beats_hint * rr_mean, 2.0))))
    omega = 2 * np.pi * np.arange(n) / n
    spectrum = np.zeros(n)
    for centre_hz, power in ((MAYER_HZ, lf_hf), (RSA_HZ, 1.0)):
        width = 2 * np.pi * BAND_SD_HZ
        spectrum += power * np.exp(-0.5 * ((omega - 2 * np.pi * centre_hz) / width) ** 2) / np.sqrt(2 * np.pi) / width
    half = n // 2
    magnitude = 0.5 * np.sqrt(np.concatenate([spectrum[:half], spectrum[half - 1 :: -1]]))
    phases = 2 * np.pi * rng.uniform(size=half - 1)
    phase = np.concatenate([[0.0], phases, [0.0], -phases[::-1]])
    series = np.real(np.fft.ifft(magnitude * np.exp(1j * phase)))
    spread = series.std()
    return rr_mean + (series * (rr_std / spread) if spread > 0 else series)


def beat_phase(rr_1hz: np.ndarray, fs: float, num_samples: int) -> np.ndarray:
    """The angle θ(t) (radians, unwrapped) at each sample: 2π per beat, each beat as long as the RR at its start."""
    seconds = np.arange(len(rr_1hz), dtype=np.float64)
    starts = [0.0]
    while starts[-1] < num_samples / fs:
        starts.append(starts[-1] + float(np.interp(starts[-1], seconds, rr_1hz)))
    bounds = np.asarray(starts)
    t = np.arange(num_samples) / fs
    beat = np.searchsorted(bounds, t, side="right") - 1
    return 2 * np.pi * (beat + (t - bounds[beat]) / (bounds[beat + 1] - bounds[beat]))


def wave_parameters(heart_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Angles (radians) and widths of the five waves at ``heart_rate`` (ECGSYN's rate correction)."""
    factor = np.sqrt(heart_rate / 60.0)
    angles = np.deg2rad(WAVE_ANGLES_DEG) * np.array([np.sqrt(factor), factor, 1.0, factor, np.sqrt(factor)])
    return angles, WAVE_WIDTHS * factor


def simulate(
    duration_s: float,
    fs: float,
    heart_rate: float,
    heart_rate_std: float,
    rng: np.random.Generator,
    lf_hf: float = 0.5,
    amplitudes: np.ndarray = WAVE_AMPLITUDES,
    lead_gains: np.ndarray = TWELVE_LEAD_GAINS,
) -> np.ndarray:
    """(leads, samples) ECGSYN signals, each lead scaled to -0.4..1.2 as ECGSYN does.

    ``amplitudes`` are the P, Q, R, S, T amplitudes (zero the first for a rhythm without P waves);
    ``lead_gains`` (leads, 5) multiplies them per lead.
    """
    num_samples = int(round(duration_s * fs))
    rr = rr_tachogram(duration_s * heart_rate / 60.0, heart_rate, heart_rate_std, lf_hf, rng)
    theta = beat_phase(rr, fs, num_samples)
    angles, widths = wave_parameters(heart_rate)
    delta = theta[None, :] - angles[:, None]
    delta = delta - 2 * np.pi * np.round(delta / (2 * np.pi))  # wrap to -π..π
    shapes = delta * np.exp(-0.5 * (delta / widths[:, None]) ** 2)  # (5, samples)
    drive = -(np.asarray(lead_gains) * np.asarray(amplitudes)[None, :]) @ shapes  # (leads, samples)
    t = np.arange(num_samples) / fs
    baseline = RESPIRATION_MV * np.sin(2 * np.pi * RESPIRATION_HZ * t)
    # dz/dt = drive - (z - baseline), z(0) = 0: exact for inputs held over each step of 1/fs
    # (z[n] = decay z[n-1] + (1 - decay) u[n-1]).
    decay = np.exp(-1.0 / fs)
    forcing = drive + baseline[None, :]
    z = lfilter([0.0, 1.0 - decay], [1.0, -decay], forcing, axis=1)
    lo, hi = z.min(axis=1, keepdims=True), z.max(axis=1, keepdims=True)
    return (z - lo) * 1.6 / np.where(hi > lo, hi - lo, 1.0) - 0.4
