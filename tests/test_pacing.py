"""Pacemaker stimuli: found on the raw signal, and a paced beat's QRS starts after its stimulus.

Synthetic cases for the rules; real paced records (LUDB, PTB-XL) for what the rules are for.
"""

from __future__ import annotations

import ast
import csv

import numpy as np
import pytest
from conftest import SHARED_DATA
from test_delineate import gaussian_ecg

from ecgio import find_records, read_record
from ecgsignal.config import SignalConfig
from ecgsignal.delineate import PACE_GUARD_MS, QRS_ON, delineate, paced_onsets
from ecgsignal.pacing import pacing_spikes, spikes_at
from ecgsignal.preprocess import condition, repair_nonfinite

FS = 500.0


def paced_ecg(lead_count: int = 12, lead_with_spikes: slice = slice(None), seconds: float = 10.0):
    """(signal, spike samples): a synthetic ECG with a 2-sample 1.5 mV stimulus 60 ms before each R."""
    x, r_times = gaussian_ecg(FS, seconds, hr=60.0, start=0.6, leads=lead_count)
    spikes = np.round((r_times - 0.06) * FS).astype(np.int64)
    x[lead_with_spikes, spikes[:, None] + np.arange(2)] += 1.5
    return x, spikes


def test_stimuli_are_found_in_every_beat_and_nowhere_else():
    x, spikes = paced_ecg()
    found = pacing_spikes(x, FS)
    assert found.size == spikes.size and np.all(np.abs(found - spikes) <= 2), (found, spikes)  # within 4 ms
    clean, _ = gaussian_ecg(FS, 10.0, hr=60.0, start=0.6, leads=12)
    assert pacing_spikes(clean, FS).size == 0


def test_a_spike_in_one_lead_is_noise_not_pacing():
    x, _ = paced_ecg(lead_with_spikes=slice(0, 1))
    assert pacing_spikes(x, FS).size == 0
    x, spikes = paced_ecg(lead_with_spikes=slice(0, 2))
    assert pacing_spikes(x, FS).size == spikes.size
    usable = np.ones(12, dtype=bool)
    usable[1] = False  # a lead marked unusable does not vote
    assert pacing_spikes(x, FS, usable).size == 0


def test_low_rates_and_degenerate_input_give_no_stimuli():
    x, _ = paced_ecg()
    assert pacing_spikes(x[:, ::5], 100.0).size == 0  # 100 Hz does not resolve a 2 ms stimulus
    assert pacing_spikes(np.zeros((12, 5000)), FS).size == 0
    assert pacing_spikes(np.zeros((12, 3)), FS).size == 0
    nan_gap = x.copy()
    nan_gap[:, 2000:2100] = np.nan
    assert np.array_equal(spikes_at(repair_nonfinite(nan_gap), FS, FS), pacing_spikes(x, FS))
    with pytest.raises(ValueError, match="leads, samples"):
        pacing_spikes(np.zeros(100), FS)


def test_spikes_at_maps_to_the_delineators_rate():
    x, spikes = paced_ecg()
    at_250 = spikes_at(x, FS, 250.0)
    assert np.all(np.abs(at_250 - spikes / 2) <= 1)


def test_paced_onsets_need_a_stimulus_before_most_beats():
    r = np.array([500, 750, 1000, 1250])
    fs = 250.0
    guard = max(1, round(PACE_GUARD_MS * fs / 1000))
    floor = paced_onsets(r, np.array([480, 730, 985, 1240]), fs)
    assert np.array_equal(floor, np.array([480, 730, 985, 1240]) + guard)
    half = paced_onsets(r, np.array([480, 730]), fs)  # two of four beats: still paced (e.g. fusion beats)
    assert np.array_equal(half, [480 + guard, 730 + guard, -1, -1])
    assert np.all(paced_onsets(r, np.array([480]), fs) == -1)  # one stimulus in four beats: noise
    assert np.all(paced_onsets(r, np.array([400, 650, 900, 1150]), fs) == -1)  # 400 ms before R: not this beat's
    assert np.all(paced_onsets(r, np.zeros(0, np.int64), fs) == -1)


def test_paced_qrs_starts_after_its_stimulus():
    x, spikes = paced_ecg()
    config = SignalConfig()
    conditioned, quality = condition(x, FS, config)
    stimuli = spikes_at(x, FS, config.fs, quality)
    paced = delineate(conditioned, config.fs, stimuli)
    onsets = paced.points[:, :, QRS_ON]
    assert paced.num_beats == spikes.size
    for beat, stimulus in enumerate(stimuli):
        found = onsets[beat][onsets[beat] >= 0]
        assert found.size and np.all(found >= stimulus + max(1, round(PACE_GUARD_MS * config.fs / 1000))), found
    unpaced = delineate(conditioned, config.fs)  # without the stimuli, the smeared spike is read as the QRS onset
    assert np.median(unpaced.points[:, :, QRS_ON]) < np.median(onsets)


LUDB = SHARED_DATA / "ludb"
#: Unipolar ventricular pacing in LUDB's diagnoses (odd and even records), and records without any pacing.
LUDB_UNIPOLAR = (34, 45, 74, 104)
LUDB_UNPACED = (1, 2, 11, 21, 46, 68, 101, 130, 166, 199)


@pytest.fixture(scope="module")
def ludb_dir():
    from ecgdata.ludb import ludb_data_dir

    if not LUDB.is_dir():
        pytest.skip(f"real data not found at {LUDB} (the ../shared folder beside the repository is absent)")
    return ludb_data_dir(LUDB)


def _onset_errors(ludb_dir, number: int) -> np.ndarray:
    """Multi-lead QRS onset errors (ms) of one LUDB record against the cardiologists' marks."""
    from ecgdata.ludb import FiducialScore, fuse, read_ludb
    from ecgdata.ludb_scoring import ours

    record = read_ludb(ludb_dir, number)
    found, _, _ = ours(record, SignalConfig())
    marked = [lead for lead in record.leads if lead.span[1] >= lead.span[0]]
    span = (min(m.span[0] for m in marked), max(m.span[1] for m in marked))
    score = FiducialScore()
    score.add(fuse([m.marks["QRS_on"] for m in marked], 500.0), fuse(found["QRS_on"], 500.0, 2), span, 500.0)
    return np.asarray(score.errors_ms)


def test_ludb_unipolar_paced_onsets_move_to_the_cardiologists(ludb_dir, monkeypatch):
    """Measured: mean multi-lead QRS onset error -35 / -35 / -39 / -32 ms without the stimuli, -7 / -10 / -9 / -6 with."""
    import ecgsignal.pacing as pacing

    after = {number: _onset_errors(ludb_dir, number).mean() for number in LUDB_UNIPOLAR}
    monkeypatch.setattr(pacing, "pacing_spikes", lambda *args, **kwargs: np.zeros(0, np.int64))
    before = {number: _onset_errors(ludb_dir, number).mean() for number in LUDB_UNIPOLAR}
    assert all(error < -25.0 for error in before.values()), before
    assert all(abs(error) < 15.0 for error in after.values()), after


def test_ludb_unpaced_records_have_no_paced_beats(ludb_dir):
    from ecgdata.ludb import read_ludb

    config = SignalConfig()
    for number in LUDB_UNPACED:
        record = read_ludb(ludb_dir, number).record
        x, quality = condition(record.signal, record.fs, config)
        stimuli = spikes_at(record.signal, record.fs, config.fs, quality)
        beats = delineate(x, config.fs, stimuli).r_peaks
        assert np.all(paced_onsets(beats, stimuli, config.fs) == -1), number


def test_ptbxl_pace_label_matches_detected_pacing(ptbxl_dir):
    """All 353 records at 500 Hz: paced beats found exactly in the one record labelled PACE (measured)."""
    with open(ptbxl_dir / "ptbxl_database.csv") as table:
        labels = {int(float(row["ecg_id"])): ast.literal_eval(row["scp_codes"]) for row in csv.DictReader(table)}
    config = SignalConfig()
    detected, labelled = set(), set()
    for header in find_records(ptbxl_dir / "records500"):
        ecg_id = int(header.stem.split("_")[0])
        if "PACE" in labels.get(ecg_id, {}):
            labelled.add(ecg_id)
        record = read_record(header)
        x, quality = condition(record.signal, record.fs, config)
        stimuli = spikes_at(record.signal, record.fs, config.fs, quality)
        if np.any(paced_onsets(delineate(x, config.fs, stimuli).r_peaks, stimuli, config.fs) >= 0):
            detected.add(ecg_id)
    assert labelled and detected == labelled, (detected, labelled)
