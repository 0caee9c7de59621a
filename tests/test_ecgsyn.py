"""ecgdata.ecgsyn: the closed-form, all-leads ECGSYN against a numerical ODE solution and its own facts."""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

from ecgdata import ecgsyn


def test_rr_tachogram_has_the_asked_mean_and_spread():
    rng = np.random.default_rng(0)
    rr = ecgsyn.rr_tachogram(200, heart_rate=75, heart_rate_std=3, lf_hf=0.5, rng=rng)
    assert len(rr) & (len(rr) - 1) == 0  # a power of two, as ECGSYN's
    assert abs(rr.mean() - 0.8) < 1e-9
    assert abs(rr.std() - 60 * 3 / 75**2) < 1e-9


def test_phase_turns_once_per_beat_with_the_beat_lengths_of_the_tachogram():
    rr = np.full(16, 0.75)
    theta = ecgsyn.beat_phase(rr, fs=500, num_samples=5000)
    r_samples = np.flatnonzero(np.diff(np.floor(theta / (2 * np.pi))) > 0) + 1
    assert np.allclose(np.diff(r_samples), 375, atol=1)


def test_closed_form_matches_an_ode_solver():
    """z from the recursive filter equals ECGSYN's z equation integrated by an adaptive solver."""
    fs, seconds, rate = 500.0, 4.0, 70.0
    gains = ecgsyn.TWELVE_LEAD_GAINS[[0, 1, 7]]
    z = ecgsyn.simulate(seconds, fs, rate, 0.0, np.random.default_rng(1), lead_gains=gains)
    rr = np.full(8, 60.0 / rate)  # constant rate: the tachogram is flat whatever its phases
    theta_samples = ecgsyn.beat_phase(rr, fs, int(seconds * fs))
    angles, widths = ecgsyn.wave_parameters(rate)
    t_samples = np.arange(theta_samples.size) / fs
    for lead, gain in enumerate(gains):
        amplitudes = gain * ecgsyn.WAVE_AMPLITUDES

        def derivative(t: float, state: np.ndarray, amplitudes: np.ndarray = amplitudes) -> np.ndarray:
            k = min(int(t * fs), theta_samples.size - 1)  # the input held over each sample step
            delta = theta_samples[k] - angles
            delta = delta - 2 * np.pi * np.round(delta / (2 * np.pi))
            drive = -np.sum(amplitudes * delta * np.exp(-0.5 * (delta / widths) ** 2))
            base = ecgsyn.RESPIRATION_MV * np.sin(2 * np.pi * ecgsyn.RESPIRATION_HZ * k / fs)
            return np.array([drive - (state[0] - base)])

        solved = solve_ivp(derivative, (0, t_samples[-1]), [0.0], t_eval=t_samples, max_step=0.5 / fs, rtol=1e-8)
        reference = solved.y[0]
        reference = (reference - reference.min()) * 1.6 / np.ptp(reference) - 0.4
        assert np.max(np.abs(z[lead] - reference)) < 0.005  # 0.3 % of the 1.6 range


def test_no_p_waves_when_the_p_amplitude_is_zero():
    rng = np.random.default_rng(2)
    no_p = ecgsyn.WAVE_AMPLITUDES * np.array([0, 1, 1, 1, 1])
    with_p = ecgsyn.simulate(3, 500, 60, 0, np.random.default_rng(2), lead_gains=ecgsyn.TWELVE_LEAD_GAINS[[1]])
    without = ecgsyn.simulate(3, 500, 60, 0, rng, amplitudes=no_p, lead_gains=ecgsyn.TWELVE_LEAD_GAINS[[1]])
    # P sits about 70 degrees before R, i.e. ~190 ms before each R at 60 bpm; compare that stretch of beat 2.
    window = slice(1000 - 260, 1000 - 120)

    def bump(x: np.ndarray) -> float:
        trend = np.polyval(np.polyfit(np.arange(x.size), x, 1), np.arange(x.size))
        return float(np.ptp(x - trend))

    assert bump(with_p[0, window]) > 5 * bump(without[0, window])
