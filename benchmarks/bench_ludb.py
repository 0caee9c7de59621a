"""The delineator against cardiologists' marks: LUDB, ours and neurokit2's DWT side by side, one core.

    python benchmarks/bench_ludb.py --data ../shared/data/ludb [--split odd] [--limit N] [--leads ii v5]
                                    [--out /tmp/bench_ludb] [--no-neurokit] [--worst 3]

Ours: :func:`ecgsignal.preprocess.condition` to 250 Hz (what the package delineates), then
:func:`ecgsignal.delineate.delineate` on all 12 leads at once, points mapped back to 500 Hz. The
QRS peak of a lead is its R point, else its Q (QS complex). neurokit2 0.2.x per lead at 500 Hz:
``ecg_clean``, ``ecg_peaks`` (its QRS peaks), ``ecg_delineate(method="dwt")``; its results are
cached under ``OUT/neurokit2/`` so a rerun is fast.

Protocol (:mod:`ecgdata.ludb`): per lead, each cardiologist mark is matched one-to-one (nearest
pairs first) to a detected point of the same fiducial in the same lead within 150 ms; sensitivity
= matched marks / marks; a detection counts as false only when it is unmatched and lies inside
the span the lead's marks cover (LUDB leaves the first and last beats of many leads unmarked);
errors are detected - marked, in ms. Three scopes: "per lead" pools every lead; "fused" takes, per
wave, the median over the leads of the cardiologists' marks and the median over the leads of the
detections (waves seen in two or more leads), both grouped the same way
(:func:`ecgdata.ludb.fuse`), false positives inside the span marked in any lead, also without the
records ``ludb.csv`` lists as paced (their QRS marks follow a convention of their own); "best lead" is
Martinez et al. 2004's two-lead protocol on ``--pair`` (II and V5 by default): per wave, the one
of the two leads with the smaller error counts. QRS detection: our fused R peaks against the
median of each complex's QRS marks over the leads, 150 ms, false positives counted inside the
span marked in any lead. Speed: ours best of three per record (the machine is shared); neurokit2's
``ecg_delineate`` timed live on the first ``--time-records`` records, beside ours on the same ones.

Split: ``--split even`` tunes, ``odd`` reports (the README's table), ``all`` both. Outputs in
OUT: ``summary.csv`` (every method x scope x fiducial), ``records.csv`` (per record and fiducial,
for finding the worst), ``errors.png`` (error distributions, ours vs neurokit2) and, with
``--worst N``, plots of the N worst records of each fiducial.
"""

from __future__ import annotations

import os

if __name__ == "__main__":  # one thread, set before numpy loads; not when tests import the scoring
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        os.environ[_var] = "1"

import argparse
import csv
import io
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from ecgdata.ludb import (
    FIDUCIALS,
    LUDB_LEADS,
    FiducialScore,
    LudbRecord,
    ludb_data_dir,
    paced_records,
    read_ludb,
    record_numbers,
    reference_beats,
    split_numbers,
)
from ecgdata.ludb_scoring import LEAD_STRATA, Detections, Tally, ours
from ecgio.files import atomic_write, atomic_write_with
from ecglog.progress import progress
from ecgsignal.config import SignalConfig

log = logging.getLogger("bench_ludb")

#: Martinez et al. 2004 (QTDB, mean ± SD ms); None where the paper reports no figure.
PUBLISHED: dict[str, tuple[float, float] | None] = {
    "P_on": (2.0, 14.8),
    "P_peak": (3.6, 13.2),
    "P_off": (1.9, 12.8),
    "QRS_on": (4.6, 7.7),
    "QRS_peak": None,
    "QRS_off": (0.8, 8.7),
    "T_on": None,
    "T_peak": (0.2, 13.9),
    "T_off": (-1.6, 18.1),
}
NK_KEYS = {
    "P_on": "ECG_P_Onsets",
    "P_peak": "ECG_P_Peaks",
    "P_off": "ECG_P_Offsets",
    "QRS_on": "ECG_R_Onsets",
    "QRS_off": "ECG_R_Offsets",
    "T_on": "ECG_T_Onsets",
    "T_peak": "ECG_T_Peaks",
    "T_off": "ECG_T_Offsets",
}
METHODS = ("ours", "neurokit2")
#: Ours without the points the delineator flags as unsure (what the features see).
SURE = "ours, sure only"
#: Record strata from ``ludb.csv``: stratum -> (column, words any of which in that column puts a record in it).
RECORD_STRATA: dict[str, tuple[str, tuple[str, ...]]] = {
    "paced": ("Cardiac pacing", ("pac", "p-synchrony")),
    "atrial fibrillation / flutter": ("Rhythms", ("atrial fibrillation", "atrial flutter")),
    "bundle-branch block": ("Conduction abnormalities", ("bundle branch block", "conduction delay")),
    "ventricular ectopy": ("Extrasystolies", ("ventricular extrasystole",)),
    "ischaemia / scar": ("Ischemia", ("ischemia", "stemi", "scar")),
}
#: The fiducial whose worst records are plotted for each stratum (the one the stratum is about).
STRATUM_FIDUCIAL = {
    "paced": "QRS_off",
    "atrial fibrillation / flutter": "P_on",
    "bundle-branch block": "QRS_off",
    "ventricular ectopy": "QRS_off",
    "ischaemia / scar": "T_peak",
    "negative T": "T_peak",
    "biphasic T": "T_off",
    "low T": "T_peak",
}


def _neurokit_lead(nk, signal: np.ndarray, fs: float) -> tuple[dict[str, np.ndarray], float]:
    cleaned = nk.ecg_clean(signal, sampling_rate=fs)
    _, info = nk.ecg_peaks(cleaned, sampling_rate=fs)
    rpeaks = np.asarray(info["ECG_R_Peaks"], dtype=np.int64)
    found = {name: np.zeros(0, np.int64) for name in FIDUCIALS}
    found["QRS_peak"] = rpeaks
    start = time.perf_counter()
    if rpeaks.size >= 2:
        _, waves = nk.ecg_delineate(cleaned, rpeaks, sampling_rate=fs, method="dwt")
        for name, key in NK_KEYS.items():
            values = np.asarray(waves.get(key, []), dtype=np.float64)
            found[name] = np.sort(values[np.isfinite(values)].astype(np.int64))
    return found, (time.perf_counter() - start) * 1e3


def neurokit_time(ludb: LudbRecord) -> float:
    """neurokit2's ``ecg_delineate`` on all 12 leads, timed now (ms), best of two, for the side-by-side speed."""
    import neurokit2 as nk

    best = np.inf
    for _ in range(2):
        total = 0.0
        for k in range(len(LUDB_LEADS)):
            try:
                total += _neurokit_lead(nk, ludb.record.signal[k].astype(np.float64), ludb.record.fs)[1]
            except Exception:  # a lead neurokit2 cannot delineate costs what it cost before failing
                continue
        best = min(best, total)
    return float(best)


def neurokit(ludb: LudbRecord, cache: Path, number: int) -> tuple[Detections, float]:
    """neurokit2's per-lead detections (cached in ``cache``) and its ecg_delineate time (ms, all leads)."""
    path = cache / f"{number}.npz"
    if path.is_file():
        with np.load(path) as stored:
            out = {name: [stored[f"{lead}:{name}"] for lead in LUDB_LEADS] for name in FIDUCIALS}
            return out, float(stored["ms"])
    import neurokit2 as nk

    out = {name: [] for name in FIDUCIALS}
    total = 0.0
    for k in range(len(LUDB_LEADS)):
        try:
            found, ms = _neurokit_lead(nk, ludb.record.signal[k].astype(np.float64), ludb.record.fs)
        except Exception as error:  # neurokit2 fails on some flat or odd leads: it finds nothing there
            log.debug("neurokit2 failed on record %s lead %s: %s", number, LUDB_LEADS[k], error)
            found, ms = {name: np.zeros(0, np.int64) for name in FIDUCIALS}, 0.0
        total += ms
        for name in FIDUCIALS:
            out[name].append(found[name])
    arrays = {f"{lead}:{name}": out[name][k] for name in FIDUCIALS for k, lead in enumerate(LUDB_LEADS)}
    buffer = io.BytesIO()
    np.savez(buffer, ms=np.float64(total), **arrays)
    cache.mkdir(parents=True, exist_ok=True)
    atomic_write(path, buffer.getvalue(), sync=False)
    return out, total


def record_strata(root: Path) -> dict[int, frozenset[str]]:
    """Record number -> the :data:`RECORD_STRATA` its ``ludb.csv`` row puts it in (empty without the table)."""
    table = next((p for p in (root / "ludb.csv", root.parent / "ludb.csv") if p.is_file()), None)
    if table is None:
        return {}
    with table.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    out = {}
    for row in rows:
        names = set()
        for name, (column, words) in RECORD_STRATA.items():
            text = (row.get(column) or "").lower()
            if any(word in text for word in words):
                names.add(name)
        out[int(row["ID"])] = frozenset(names)
    return out


def _fmt(score: FiducialScore, with_ppv: bool = True) -> str:
    mean, sd = score.mean_sd()
    ppv = f"{score.predictivity:6.1%}" if with_ppv else "     -"
    return f"{score.sensitivity:6.1%} {ppv} {mean:+6.1f} ± {sd:4.1f}"


def report(
    tallies: dict[str, Tally], leads: list[str], beats: FiducialScore, times: dict[str, list[float]], paced: int
) -> str:
    """The printed summary: per-lead, fused (all records; without the ``paced`` ones when there are any)
    and best-lead tables, QRS detection, speed."""
    lines = [
        f"QRS detection (fused R peaks, 150 ms): Se {beats.sensitivity:.2%}  +P {beats.predictivity:.2%}  "
        f"({beats.marks} reference beats)"
    ]
    scopes = ("per lead", "fused", "fused, unpaced", "best lead") if paced else ("per lead", "fused", "best lead")
    for scope in scopes:
        title = f"fused, without the {paced} paced records" if scope == "fused, unpaced" else scope
        lines.append(f"\n{title}: Se  +P  mean ± SD (ms)")
        header = f"{'fiducial':<9}" + "".join(f" | {m:^28}" for m in tallies) + " | Martinez 2004"
        lines += [header, "-" * len(header)]
        for name in FIDUCIALS:
            row = f"{name:<9}"
            for tally in tallies.values():
                scores = {
                    "per lead": tally.pooled(name, leads),
                    "fused": tally.fused[name],
                    "fused, unpaced": tally.unpaced[name],
                    "best lead": tally.best[name],
                }
                row += " | " + _fmt(scores[scope], scope != "best lead")
            published = PUBLISHED[name]
            row += " | " + (f"{published[0]:+.1f} ± {published[1]:.1f}" if published else "-")
            lines.append(row)
    ms = {m: float(np.mean(t)) for m, t in times.items() if t}
    if "ours" in ms:
        lines.append(f"\nours: delineate {ms['ours']:.2f} ms/record over all records (12 leads, one thread, best of 3)")
    if "neurokit2" in ms:
        same = ms["ours (same records)"]
        lines.append(
            f"delineation ms/record: ours={same:.2f} neurokit2={ms['neurokit2']:.1f} "
            f"speedup={ms['neurokit2'] / same:.0f} (the first {len(times['neurokit2'])} records, timed side by side; "
            "neurokit2: ecg_delineate on each lead, best of 2)"
        )
    return "\n".join(lines)


def strata_report(tallies: dict[str, Tally]) -> str:
    """Per stratum (record strata of ``ludb.csv``, lead strata of the marked T shape): every lead of the
    stratum pooled, Se and mean ± SD (ms) per fiducial for each method, Martinez 2004 beside."""
    ours_tally = tallies["ours"]
    lines = []
    for stratum in list(RECORD_STRATA) + list(LEAD_STRATA):
        members = ours_tally.stratum_members.get(stratum, set())
        if not members:
            continue
        records = len({number for number, _ in members})
        lines.append(f"\n{stratum}: {records} records, {len(members)} leads (per lead pooled: Se  mean ± SD ms)")
        header = f"{'fiducial':<9}" + "".join(f" | {m:^21}" for m in tallies) + " | Martinez 2004"
        lines += [header, "-" * len(header)]
        for name in FIDUCIALS:
            row = f"{name:<9}"
            for tally in tallies.values():
                score = tally.strata.get(stratum, {}).get(name, FiducialScore())
                mean, sd = score.mean_sd()
                row += f" | {score.sensitivity:6.1%} {mean:+6.1f} ± {sd:4.1f}"
            published = PUBLISHED[name]
            row += " | " + (f"{published[0]:+.1f} ± {published[1]:.1f}" if published else "-")
            lines.append(row)
    return "\n".join(lines)


def write_strata(path: Path, tallies: dict[str, Tally]) -> None:
    """Every method x stratum x fiducial as CSV rows (per lead pooled over the stratum's leads)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["method", "stratum", "records", "leads", "fiducial", "marks", "matched", "sensitivity", "mean_ms", "sd_ms"]
    )
    members = tallies["ours"].stratum_members
    for method, tally in tallies.items():
        for stratum, scores in tally.strata.items():
            records = len({number for number, _ in members.get(stratum, set())})
            for name, score in scores.items():
                mean, sd = score.mean_sd()
                writer.writerow(
                    [
                        method,
                        stratum,
                        records,
                        len(members.get(stratum, set())),
                        name,
                        score.marks,
                        score.matched,
                        f"{score.sensitivity:.4f}",
                        f"{mean:.2f}",
                        f"{sd:.2f}",
                    ]
                )
    atomic_write(path, out.getvalue(), sync=False)


def write_summary(path: Path, tallies: dict[str, Tally], leads: list[str], beats: FiducialScore) -> None:
    """Every method x scope x fiducial as CSV rows (scope: a lead name, 'pooled', 'fused', 'fused_unpaced' or 'best')."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["method", "scope", "fiducial", "marks", "matched", "false", "sensitivity", "predictivity", "mean_ms", "sd_ms"]
    )
    for method, tally in tallies.items():
        for name in FIDUCIALS:
            scopes = [(lead, tally.per_lead[(lead, name)]) for lead in leads]
            scopes += [("pooled", tally.pooled(name, leads)), ("fused", tally.fused[name])]
            scopes += [("fused_unpaced", tally.unpaced[name]), ("best", tally.best[name])]
            for scope, score in scopes:
                mean, sd = score.mean_sd()
                writer.writerow(
                    [
                        method,
                        scope,
                        name,
                        score.marks,
                        score.matched,
                        score.false,
                        f"{score.sensitivity:.4f}",
                        f"{score.predictivity:.4f}",
                        f"{mean:.2f}",
                        f"{sd:.2f}",
                    ]
                )
    mean, sd = beats.mean_sd()
    writer.writerow(
        [
            "ours",
            "fused",
            "beats",
            beats.marks,
            beats.matched,
            beats.false,
            f"{beats.sensitivity:.4f}",
            f"{beats.predictivity:.4f}",
            f"{mean:.2f}",
            f"{sd:.2f}",
        ]
    )
    atomic_write(path, out.getvalue(), sync=False)


def plot_errors(path: Path, tallies: dict[str, Tally], leads: list[str]) -> None:
    """Histograms of the per-lead errors of each fiducial, ours vs neurokit2, same bins."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 3, figsize=(13, 9), sharex=True)
    bins = np.arange(-150, 151, 5)
    for ax, name in zip(axes.flat, FIDUCIALS):
        for method, tally in tallies.items():
            score = tally.pooled(name, leads)
            mean, sd = score.mean_sd()
            ax.hist(
                np.asarray(score.errors_ms),
                bins=bins,
                histtype="step",
                density=True,
                label=f"{method}: Se {score.sensitivity:.0%}, {mean:+.1f} ± {sd:.1f} ms",
            )
        ax.set_title(name)
        ax.legend(fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("detected - cardiologist (ms)")
    fig.tight_layout()
    atomic_write_with(path, lambda f: fig.savefig(f, format="png", dpi=90))
    plt.close(fig)


def plot_record(path: Path, ludb: LudbRecord, found: Detections, name: str, lead: int) -> None:
    """One lead of one record: signal, cardiologist's marks of ``name`` (black) and ours (red)."""
    import matplotlib.pyplot as plt

    rec = ludb.record
    t = np.arange(rec.num_samples) / rec.fs
    fig, ax = plt.subplots(figsize=(14, 3.5))
    ax.plot(t, rec.signal[lead], lw=0.7, color="0.3")
    for pos in ludb.leads[lead].marks[name]:
        ax.axvline(pos / rec.fs, color="k", ls="--", lw=0.8)
    for pos in found[name][lead]:
        ax.axvline(pos / rec.fs, color="r", lw=0.8)
    ax.set_title(f"LUDB {rec.name} lead {LUDB_LEADS[lead]}: {name} (black dashed: cardiologist, red: ours)")
    ax.set_xlabel("s")
    fig.tight_layout()
    atomic_write_with(path, lambda f: fig.savefig(f, format="png", dpi=80))
    plt.close(fig)


def worst_lead(ludb: LudbRecord, found: Detections, name: str, leads: list[int]) -> int:
    """The lead where ``name`` went worst in this record: fewest marks matched, then largest mean |error|."""

    def badness(k: int) -> tuple[float, float]:
        score = FiducialScore()
        lead = ludb.leads[k]
        errors = score.add(lead.marks[name], found[name][k], lead.span, ludb.record.fs)
        matched = errors[np.isfinite(errors)]
        return -score.sensitivity if score.marks else 0.0, float(np.abs(matched).mean()) if matched.size else 0.0

    return max(leads, key=badness)


def plot_worst_per_stratum(
    folder: Path, tally: Tally, kept: dict[int, tuple[LudbRecord, Detections]], count: int
) -> None:
    """The ``count`` worst (record, lead) pairs of each stratum in its own fiducial (:data:`STRATUM_FIDUCIAL`):
    fewest marks found, then the largest mean |error|."""
    folder.mkdir(parents=True, exist_ok=True)
    for stratum, members in tally.stratum_members.items():
        name = STRATUM_FIDUCIAL[stratum]

        def badness(member: tuple[int, int], name: str = name) -> tuple[float, float]:
            ludb, found = kept[member[0]]
            lead = ludb.leads[member[1]]
            score = FiducialScore()
            errors = score.add(lead.marks[name], found[name][member[1]], lead.span, ludb.record.fs)
            matched = errors[np.isfinite(errors)]
            return (-score.sensitivity if score.marks else 0.0, float(np.abs(matched).mean()) if matched.size else 0.0)

        for number, k in sorted(members, key=badness, reverse=True)[:count]:
            ludb, found = kept[number]
            label = stratum.replace(" / ", "_").replace(" ", "_").replace("-", "_")
            plot_record(folder / f"{label}_{name}_{number}_{LUDB_LEADS[k]}.png", ludb, found, name, k)


def select(numbers: list[int], split: str, limit: int | None) -> list[int]:
    return split_numbers(numbers, split)[:limit]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="LUDB folder (or its data/ subfolder)")
    parser.add_argument("--split", choices=("even", "odd", "all"), default="odd", help="even: tune; odd: report")
    parser.add_argument("--limit", type=int, default=None, help="first N records of the split only")
    parser.add_argument("--leads", nargs="+", default=list(LUDB_LEADS), choices=LUDB_LEADS, metavar="LEAD")
    parser.add_argument(
        "--pair",
        nargs=2,
        default=["ii", "v5"],
        choices=LUDB_LEADS,
        metavar="LEAD",
        help="the two leads of the best-lead (two-lead) protocol",
    )
    parser.add_argument(
        "--out", type=Path, default=Path(tempfile.gettempdir()) / "bench_ludb", help="output folder (caches too)"
    )
    parser.add_argument("--no-neurokit", action="store_true", help="ours only")
    parser.add_argument("--time-records", type=int, default=5, help="records on which neurokit2 is timed live")
    parser.add_argument("--worst", type=int, default=0, help="plot the N worst records of each fiducial")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    warnings.simplefilter("ignore")
    data = ludb_data_dir(args.data)
    try:
        numbers = select(record_numbers(data), args.split, args.limit)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if not numbers:
        print(f"error: {data}: no LUDB records found", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    config = SignalConfig()
    methods = ("ours", SURE) if args.no_neurokit else ("ours", SURE, "neurokit2")
    tallies = {m: Tally() for m in methods}
    times: dict[str, list[float]] = {"ours": [], "neurokit2": [], "ours (same records)": []}
    leads = [LUDB_LEADS.index(lead) for lead in args.leads]
    pair = [LUDB_LEADS.index(lead) for lead in args.pair if lead in args.leads]
    beats = FiducialScore()
    kept: dict[int, tuple[LudbRecord, Detections]] = {}
    paced = paced_records(args.data)
    stratum_of = record_strata(args.data)
    for number in progress(numbers, desc="LUDB records"):
        try:
            ludb = read_ludb(data, number)
            found, fused, ms = ours(ludb, config)
            reference, span = reference_beats(ludb)
            beats.add(reference, fused, span, ludb.record.fs)
            times["ours"].append(ms)
            strata = stratum_of.get(number, frozenset())
            tallies["ours"].add(number, ludb, found, leads, pair, number in paced, strata)
            tallies[SURE].add(number, ludb, ours(ludb, config, sure_only=True)[0], leads, pair, number in paced, strata)
            if args.worst:
                kept[number] = (ludb, found)
            if "neurokit2" in tallies:
                theirs, _ = neurokit(ludb, args.out / "neurokit2", number)
                tallies["neurokit2"].add(number, ludb, theirs, leads, pair, number in paced, strata)
                if len(times["neurokit2"]) < args.time_records:  # side by side: both timed in this run
                    times["neurokit2"].append(neurokit_time(ludb))
                    times["ours (same records)"].append(ms)
        except Exception as error:  # one bad record never stops the benchmark
            print(f"error: record {number}: {type(error).__name__}: {error}", file=sys.stderr)
    names = [LUDB_LEADS[k] for k in leads]
    write_summary(args.out / "summary.csv", tallies, names, beats)
    plot_errors(args.out / "errors.png", tallies, names)
    rows = io.StringIO()
    csv.writer(rows).writerows([("record", "fiducial", "sensitivity", "mean_abs_error_ms")] + tallies["ours"].records)
    atomic_write(args.out / "records.csv", rows.getvalue(), sync=False)
    if args.worst:
        for name in FIDUCIALS:
            ranked = sorted((r for r in tallies["ours"].records if r[1] == name), key=lambda r: (r[2], -r[3]))
            for number, _, _, _ in ranked[: args.worst]:
                ludb, found = kept[number]
                (args.out / "worst").mkdir(exist_ok=True)
                lead = worst_lead(ludb, found, name, leads)
                plot_record(args.out / "worst" / f"{name}_{number}_{LUDB_LEADS[lead]}.png", ludb, found, name, lead)
        plot_worst_per_stratum(args.out / "worst_strata", tallies["ours"], kept, args.worst)
    write_strata(args.out / "strata.csv", tallies)
    print(f"LUDB {args.split} split: {len(numbers)} records, leads {' '.join(names)}; outputs in {args.out}")
    print(report(tallies, names, beats, times, len(paced & set(numbers))))
    print(strata_report(tallies))
    return 0


if __name__ == "__main__":
    sys.exit(main())
