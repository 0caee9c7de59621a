"""Our wavelet delineation against neurokit2's DWT delineation, on the same records, one core.

    python benchmarks/bench_delineation.py --data DIR [--limit N]

For every record in DIR (Challenge or WFDB):

* ours: :func:`ecgsignal.preprocess.condition` at the configured rate (250 Hz; what ``prepare``
  delineates), then
  :func:`ecgsignal.delineate.delineate` on all leads at once. The timed part is ``delineate``
  (R-peak detection included); preprocessing is timed and reported separately.
* neurokit2 0.2.x, per lead at the record's own rate: ``ecg_clean`` and ``ecg_peaks`` (not timed),
  then ``ecg_delineate(cleaned, rpeaks, sampling_rate=fs, method="dwt")`` (timed: the same job
  as ours, minus R-peak detection, which neurokit2 is given).

Agreement, per lead and beat: each neurokit2 R peak is matched to our beat whose R point
(in that lead, else the fused R peak) lies within 50 ms; for matched beats where both give a
point we report the median and 90th percentile of |difference| in ms for QRS onset/offset,
P peak and T peak (and the other onsets/offsets), and how often only one side finds the wave.
R-peak F1 (50 ms tolerance) compares our fused R peaks with neurokit2's lead-II peaks, leaving
out the first and last 100 ms (where neurokit2 drops the beats that the record's ends cut).

The last line is exactly ``delineation ms/record: ours=X neurokit2=Y speedup=Z``.
Threads are pinned to one (OMP/MKL/OpenBLAS) before numpy is imported.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import logging
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from ecgio import Record, find_records, read_record
from ecgsignal.config import SignalConfig
from ecgsignal.delineate import WAVE_POINTS, delineate
from ecgsignal.pacing import spikes_at
from ecgsignal.preprocess import condition
from ecgsignal.records import to_record_rate

log = logging.getLogger("bench_delineation")

#: our point name -> neurokit2's waves key.
COMPARED = {
    "QRS_on": "ECG_R_Onsets",
    "QRS_off": "ECG_R_Offsets",
    "P_peak": "ECG_P_Peaks",
    "T_peak": "ECG_T_Peaks",
    "P_on": "ECG_P_Onsets",
    "P_off": "ECG_P_Offsets",
    "T_on": "ECG_T_Onsets",
    "T_off": "ECG_T_Offsets",
    "Q": "ECG_Q_Peaks",
    "S": "ECG_S_Peaks",
}
MATCH_MS = 50.0
EDGE_S = 0.1


@dataclass
class Tally:
    """Accumulated comparison over all records."""

    ours_ms: list[float] = field(default_factory=list)
    prep_ms: list[float] = field(default_factory=list)
    nk_ms: list[float] = field(default_factory=list)
    diffs_ms: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in COMPARED})
    only_ours: dict[str, int] = field(default_factory=lambda: {k: 0 for k in COMPARED})
    only_nk: dict[str, int] = field(default_factory=lambda: {k: 0 for k in COMPARED})
    matched_beats: int = 0
    nk_beats: int = 0
    r_tp: int = 0
    r_fp: int = 0
    r_fn: int = 0
    nk_errors: int = 0
    failures: dict[str, str] = field(default_factory=dict)


def _nk_lead(nk, lead_signal: np.ndarray, fs: float) -> tuple[np.ndarray, dict, float]:
    """neurokit2 on one lead: R peaks, waves (one entry per R peak, NaN when absent), timed ms."""
    cleaned = nk.ecg_clean(lead_signal, sampling_rate=fs)
    _, info = nk.ecg_peaks(cleaned, sampling_rate=fs)
    rpeaks = np.asarray(info["ECG_R_Peaks"], dtype=np.int64)
    start = time.perf_counter()
    if rpeaks.size < 2:
        return rpeaks, {}, (time.perf_counter() - start) * 1e3
    _, waves = nk.ecg_delineate(cleaned, rpeaks, sampling_rate=fs, method="dwt")
    ms = (time.perf_counter() - start) * 1e3
    arrays = {key: np.asarray(value, dtype=np.float64) for key, value in waves.items()}
    return rpeaks, arrays, ms


def _match(reference: np.ndarray, candidates: np.ndarray, tolerance: float) -> np.ndarray:
    """For each reference sample, the index of the nearest candidate within tolerance, else -1."""
    out = np.full(reference.shape, -1, dtype=np.int64)
    valid = np.flatnonzero(candidates >= 0)
    if valid.size == 0 or reference.size == 0:
        return out
    order = valid[np.argsort(candidates[valid])]
    sorted_c = candidates[order]
    pos = np.clip(np.searchsorted(sorted_c, reference), 1, len(sorted_c)) - 1
    for i, r in enumerate(reference):
        best = min((pos[i], min(pos[i] + 1, len(sorted_c) - 1)), key=lambda p: abs(sorted_c[p] - r))
        if abs(sorted_c[best] - r) <= tolerance:
            out[i] = order[best]
    return out


def _r_peak_f1(tally: Tally, ours: np.ndarray, reference: np.ndarray, tolerance: float) -> None:
    """Greedy one-to-one matching of fused R peaks against neurokit2's lead-II peaks."""
    used = np.zeros(ours.size, dtype=bool)
    for r in reference:
        distance = np.where(used, np.inf, np.abs(ours - r))
        if distance.size and distance.min() <= tolerance:
            used[int(np.argmin(distance))] = True
            tally.r_tp += 1
        else:
            tally.r_fn += 1
    tally.r_fp += int((~used).sum())


def compare_record(nk, record: Record, config: SignalConfig, tally: Tally) -> None:
    """Run both delineators on one record and add timings and differences to ``tally``."""
    start = time.perf_counter()
    x, quality = condition(record.signal, record.fs, config)
    tally.prep_ms.append((time.perf_counter() - start) * 1e3)
    start = time.perf_counter()  # the pacemaker-stimulus search on the raw signal is part of delineating
    ours = delineate(x, config.fs, spikes_at(record.signal, record.fs, config.fs, quality))
    tally.ours_ms.append((time.perf_counter() - start) * 1e3)
    points = to_record_rate(ours.points, float(ours.fs), record.fs, record.num_samples)
    fused = to_record_rate(ours.r_peaks, float(ours.fs), record.fs, record.num_samples)
    tolerance = MATCH_MS * record.fs / 1000.0
    to_ms = 1000.0 / record.fs
    nk_total = 0.0
    for k, lead in enumerate(record.leads):
        try:
            rpeaks, waves, ms = _nk_lead(nk, record.signal[k].astype(np.float64), record.fs)
        except Exception as error:  # neurokit2 fails on some flat or short leads
            tally.nk_errors += 1
            log.debug("neurokit2 failed on %s lead %s: %s", record.name, lead, error)
            continue
        nk_total += ms
        if lead == ("II" if "II" in record.leads else record.leads[0]):
            edge = EDGE_S * record.fs  # neurokit2 never reports a beat cut by the record's ends
            inner = lambda p: p[(p >= edge) & (p < record.num_samples - edge)]  # noqa: E731
            _r_peak_f1(tally, inner(fused), inner(rpeaks), tolerance)
        if not waves:
            continue
        ours_r = np.where(points[:, k, WAVE_POINTS.index("R")] >= 0, points[:, k, WAVE_POINTS.index("R")], fused)
        beat_of = _match(rpeaks, ours_r, tolerance)
        tally.nk_beats += rpeaks.size
        tally.matched_beats += int((beat_of >= 0).sum())
        for name, key in COMPARED.items():
            theirs = waves.get(key)
            if theirs is None:
                continue
            column = WAVE_POINTS.index(name)
            for i, beat in enumerate(beat_of):
                if beat < 0 or i >= theirs.size:
                    continue
                mine = points[beat, k, column]
                has_theirs = np.isfinite(theirs[i])
                if mine >= 0 and has_theirs:
                    tally.diffs_ms[name].append(abs(float(mine) - float(theirs[i])) * to_ms)
                elif mine >= 0:
                    tally.only_ours[name] += 1
                elif has_theirs:
                    tally.only_nk[name] += 1
    tally.nk_ms.append(nk_total)


def report(tally: Tally, num_records: int) -> None:
    """Print the agreement table and the timing lines (the last line is the summary)."""
    print(f"records: {num_records} compared, {len(tally.failures)} failed, neurokit2 lead errors: {tally.nk_errors}")
    share = tally.matched_beats / max(tally.nk_beats, 1)
    print(
        f"beats matched by R peak (<= {MATCH_MS:g} ms): {tally.matched_beats}/{tally.nk_beats} ({share:.1%}) lead-beats"
    )
    precision = tally.r_tp / max(tally.r_tp + tally.r_fp, 1)
    recall = tally.r_tp / max(tally.r_tp + tally.r_fn, 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-12)
    print(
        f"R peaks (fused vs neurokit2 lead II, {MATCH_MS:g} ms, ends {EDGE_S * 1000:g} ms left out): precision={precision:.4f} recall={recall:.4f} F1={f1:.4f}"
    )
    print(f"{'point':<8} {'n':>7} {'median|d| ms':>13} {'p90|d| ms':>10} {'only ours':>10} {'only nk':>8}")
    for name in COMPARED:
        d = np.asarray(tally.diffs_ms[name])
        median = f"{np.median(d):.1f}" if d.size else "-"
        p90 = f"{np.percentile(d, 90):.1f}" if d.size else "-"
        print(f"{name:<8} {d.size:>7} {median:>13} {p90:>10} {tally.only_ours[name]:>10} {tally.only_nk[name]:>8}")
    ours = float(np.mean(tally.ours_ms)) if tally.ours_ms else float("nan")
    prep = float(np.mean(tally.prep_ms)) if tally.prep_ms else float("nan")
    theirs = float(np.mean(tally.nk_ms)) if tally.nk_ms else float("nan")
    print(
        f"ours: delineate {ours:.2f} ms/record (median {np.median(tally.ours_ms):.2f}), preprocess {prep:.2f} ms/record"
    )
    print(f"delineation ms/record: ours={ours:.2f} neurokit2={theirs:.1f} speedup={theirs / ours:.0f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="folder of Challenge or WFDB records")
    parser.add_argument("--limit", type=int, default=None, help="first N records only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    warnings.simplefilter("ignore")
    import neurokit2 as nk

    headers = find_records(args.data)[: args.limit]
    if not headers:
        print(f"error: {args.data}: no records found", file=sys.stderr)
        return 1
    config = SignalConfig()
    tally = Tally()
    warm = read_record(headers[0])
    delineate(condition(warm.signal, warm.fs, config)[0], config.fs)  # first call pays imports and caches
    for header in headers:
        try:
            compare_record(nk, read_record(header), config, tally)
        except Exception as error:
            tally.failures[str(header)] = f"{type(error).__name__}: {error}"
            print(f"error: {header}: {error}", file=sys.stderr)
    report(tally, len(headers) - len(tally.failures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
