#!/usr/bin/env python
"""Time the scorer on a Challenge-sized test set: 40,000 synthetic label and output files.

Usage: python benchmarks/bench_scoring.py [--records 40000] [--seed 0] [--keep DIR]

Writes the files to a temporary folder (or DIR), then times ``ecgscore.metric.evaluate`` (files
to scores, as ``evaluate_model.py`` does) and the array-level metrics alone, including the fast
``challenge_metric`` used thousands of times during threshold tuning. Prints one line per timing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from ecgscore.classes import WEIGHTS_FILE, read_weights, representative_codes
from ecgscore.metric import ChallengeMetric, challenge_metric, evaluate, load_labels, read_output_table, score_arrays

UNSCORED = ("55930002", "164873001", "251120003", "17338001")


def make_files(folder: Path, records: int, seed: int) -> None:
    """Label headers (1-3 codes, some unscored) and output files (26 classes, 3-decimal probabilities)."""
    rng = np.random.default_rng(seed)
    codes = list(representative_codes())
    pool = codes + list(UNSCORED)
    (folder / "labels").mkdir(parents=True, exist_ok=True)
    (folder / "outputs").mkdir(parents=True, exist_ok=True)
    class_line = ",".join(codes)
    for i in range(records):
        name = f"R{i:06d}"
        dx = rng.choice(pool, size=int(rng.integers(1, 4)), replace=False)
        (folder / "labels" / f"{name}.hea").write_text(
            f"{name} 12 500 5000\n#Age: 60\n#Sex: Male\n#Dx: {','.join(dx)}\n"
        )
        probs = np.round(rng.random(26), 3)
        (folder / "outputs" / f"{name}.csv").write_text(
            f"#{name}\n{class_line}\n{','.join(str(int(p >= 0.5)) for p in probs)}\n{','.join(map(str, probs))}\n"
        )


def timed(what: str, function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    print(f"{what}: {time.perf_counter() - start:.2f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=40000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="write the files here and keep them")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        folder = args.keep or Path(temporary)
        timed(f"write {args.records} label + output files", make_files, folder, args.records, args.seed)
        scores = timed(
            "evaluate(labels, outputs) [files -> all metrics]", evaluate, folder / "labels", folder / "outputs"
        )
        print(scores.score_text())
        classes, weights = read_weights(WEIGHTS_FILE)
        labels_files = sorted(str(p) for p in (folder / "labels").glob("*.hea"))
        labels = timed("load_labels", load_labels, labels_files, classes)
        binary, scalar = timed(
            "read_output_table",
            read_output_table,
            [str(folder / "outputs" / (Path(p).stem + ".csv")) for p in labels_files],
            classes,
        )
        timed(
            "score_arrays (all metrics, official summation order)",
            score_arrays,
            labels,
            binary,
            scalar,
            weights,
            classes,
        )
        repeats = 100
        start = time.perf_counter()
        for _ in range(repeats):
            challenge_metric(labels, binary, weights, classes)
        per_call = (time.perf_counter() - start) / repeats
        print(f"challenge_metric(labels, outputs, ...): {per_call * 1000:.1f} ms per call ({args.records} records)")
        metric = ChallengeMetric(labels, weights, classes)
        start = time.perf_counter()
        for _ in range(repeats):
            metric(binary)
        per_call = (time.perf_counter() - start) / repeats
        print(f"ChallengeMetric(labels, ...)(outputs), labels fixed: {per_call * 1000:.1f} ms per call")


if __name__ == "__main__":
    main()
