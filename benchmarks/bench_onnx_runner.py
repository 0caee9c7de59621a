"""Milliseconds per record of the exported ONNX runner against the torch predictor, on the shared records.

Both get the same prepared network inputs (windows, fiducial channels, tabular row: the signal layer's
part is the same code for both and is not timed), one record per call, one thread each; the time
is the median of ``--repeats`` passes over all records, divided by their number::

    python benchmarks/bench_onnx_runner.py MODEL EXPORT --repeats 5
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def records() -> list[Path]:
    ptbxl = sorted((SHARED / "ptb-xl-sample" / "records500").glob("*/*.hea"))[:25]
    return sorted((SHARED / "cinc2021-sample").glob("*.hea")) + ptbxl


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("export")
    ap.add_argument(
        "--leads", nargs="+", default=["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
    )
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from ecgclassify.onnx_runner import ExportedModel
    from ecgio.record import read_record
    from ecgserve.predictor import load_predictor

    predictor = load_predictor(args.model, tuple(args.leads), device="cpu", threads=1)
    runner = ExportedModel(args.export, threads=1).for_leads(tuple(args.leads))
    items = []
    for hea in records():
        record = read_record(hea)
        rows = [record.leads.index(lead) if lead in record.leads else None for lead in predictor.leads]
        signal = np.stack(
            [record.signal[r] if r is not None else np.zeros(record.num_samples, np.float32) for r in rows]
        )
        items.append(predictor.preparer.prepare(signal, record.fs, record.age, record.sex))

    def per_record(run) -> float:
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            for item in items:
                run(item)
            times.append((time.perf_counter() - start) / len(items) * 1000.0)
        return float(np.median(times))

    torch_ms = per_record(lambda item: predictor.probabilities_batch([item], batch_windows=1))
    onnx_ms = per_record(lambda item: runner.probabilities(*item))
    worst = max(
        float(np.abs(runner.probabilities(*item) - predictor.probabilities_batch([item], batch_windows=1)[0]).max())
        for item in items
    )
    windows = sum(len(item[0]) for item in items)
    print(json.dumps({"records": len(items), "windows": windows, "leads": "-".join(predictor.leads),
                      "torch_ms_per_record": round(torch_ms, 2), "onnx_ms_per_record": round(onnx_ms, 2),
                      "max_abs_difference": worst}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
