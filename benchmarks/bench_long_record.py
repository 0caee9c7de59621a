"""Peak memory and time of ``ecg-classify`` on a 24-hour two-lead record.

The record is built from a real 10-s record of the shared Challenge sample (leads I and II), tiled to
the length asked, each 10-s copy scaled by a slowly varying gain and given a little noise so that no
two segments are identical. It is written as a ``.npy`` file (int16 µV, read a stretch at a time), a
WFDB format-16 record (read by wfdb a segment at a time) and/or an EDF file (read lazily by edfio);
the first two a block at a time, so even the writer never holds the record. Classification runs in a
child process (the command line, as a user runs it) and its peak resident memory is read from
``getrusage(RUSAGE_CHILDREN)``::

    python benchmarks/bench_long_record.py MODEL --hours 24 --fs 500 --formats npy wfdb edf --out /tmp/long
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "data" / "cinc2021-sample" / "E07501.hea"


def blocks(hours: float, fs: float, seed: int = 0):
    """The record's samples (2, n) in microvolt integers, a 10-minute block at a time."""
    from scipy.signal import resample_poly

    sys.path.insert(0, str(ROOT))
    from ecgio.record import read_record

    record = read_record(SOURCE)
    base = record.signal[:2].astype(np.float64)
    if fs != record.fs:
        base = resample_poly(base, int(fs), int(record.fs), axis=1)
    rng = np.random.default_rng(seed)
    total = int(round(hours * 3600 * fs))
    block = int(600 * fs)
    width = base.shape[1]
    for start in range(0, total, block):
        n = min(block, total - start)
        index = (start + np.arange(n)) % width
        copy = (start + np.arange(n)) // width
        gain = 1.0 + 0.15 * np.sin(copy / 50.0)
        x = base[:, index] * gain + rng.normal(0.0, 0.01, (2, n))
        yield np.round(x * 1000.0).astype(np.int16)


def write_npy(path: Path, hours: float, fs: float) -> None:
    total = int(round(hours * 3600 * fs))
    array = np.lib.format.open_memmap(path, mode="w+", dtype=np.int16, shape=(2, total))
    at = 0
    for chunk in blocks(hours, fs):
        array[:, at : at + chunk.shape[1]] = chunk
        at += chunk.shape[1]
    array.flush()
    del array


def write_wfdb(path: Path, hours: float, fs: float) -> None:
    """A WFDB record, format 16 (interleaved little-endian int16), 1000 units/mV."""
    total = int(round(hours * 3600 * fs))
    with open(path.with_suffix(".dat"), "wb") as handle:
        for chunk in blocks(hours, fs):
            handle.write(chunk.T.astype("<i2").tobytes())
    name = path.stem
    lines = [f"{name} 2 {fs:g} {total}"]
    lines += [f"{name}.dat 16 1000/mV 16 0 0 0 0 {lead}" for lead in ("I", "II")]
    path.with_suffix(".hea").write_text("\n".join(lines) + "\n")


def write_edf(path: Path, hours: float, fs: float) -> None:
    """An EDF file (µV, 1 µV digital step); edfio writes from whole arrays, so this writer holds the record
    (the classifying process does not)."""
    import edfio

    data = np.concatenate(list(blocks(hours, fs)), axis=1)
    bits = (-32768, 32767)
    signals = [
        edfio.EdfSignal(row.astype(np.float64), fs, label=f"ECG {lead}", physical_dimension="uV", physical_range=bits,
                        digital_range=bits)
        for row, lead in zip(data, ("I", "II"))
    ]  # fmt: skip
    del data
    edfio.Edf(signals).write(path)


WRITERS = {"npy": (write_npy, ".npy"), "wfdb": (write_wfdb, ".hea"), "edf": (write_edf, ".edf")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--fs", type=float, default=500.0)
    ap.add_argument("--formats", nargs="+", choices=tuple(WRITERS), default=["npy"])
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for kind in args.formats:
        # each format in its own process, so RUSAGE_CHILDREN's maximum is that run's alone
        writer, suffix = WRITERS[kind]
        path = args.out / f"long_{kind}{suffix}"
        if not path.exists():
            writer(path, args.hours, args.fs)
        options = ["--fs", f"{args.fs:g}", "--leads", "I", "II", "--units", "uV"] if kind == "npy" else []
        command = [sys.executable, "-m", "ecgclassify.cli", args.model, str(path), *options, "--quiet",
                   "--json", str(args.out / f"long_{kind}.json")]  # fmt: skip
        result = subprocess.run(
            [sys.executable, "-c", _CHILD, *command[3:]], capture_output=True, text=True, check=False
        )
        record = json.loads(result.stdout.strip().splitlines()[-1]) if result.returncode == 0 else {}
        record.update({"format": kind, "hours": args.hours, "fs": args.fs, "command": " ".join(command)})
        if result.returncode != 0:
            record["error"] = result.stderr[-2000:]
        results.append(record)
        print(json.dumps(record), flush=True)
    (args.out / "bench_long_record.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


#: Run in a fresh interpreter per format: classifies with the command line in a grandchild and prints
#: one JSON line with its wall time and peak resident memory.
_CHILD = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run([sys.executable, "-m", "ecgclassify.cli", *sys.argv[1:]], capture_output=True, text=True)
wall = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
out = {"rc": done.returncode, "wall_s": round(wall, 1), "peak_rss_mib": round(peak, 1),
       "summary": done.stdout.strip().splitlines()[-1:] , "stderr_tail": done.stderr[-400:]}
print(json.dumps(out))
"""


if __name__ == "__main__":
    sys.exit(main())
