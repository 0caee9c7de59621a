#!/usr/bin/env python
"""Distributed training against one process: the same settings and seed trained by ``train_model.py`` in one
process and under ``torchrun`` with K processes (gloo on the CPU), and their validation metrics compared.

Usage:
    python -m benchmarks.bench_distributed --real [--work DIR]      # the ~380 real shared records
    python -m benchmarks.bench_distributed --data DIR [--ranks 2] [--epochs 8] [--leads I II] [--seeds 3] [--warm]

Both runs share one feature cache (the first run prepares it, so its time includes the preparation;
``--warm`` prepares it before either run so both times are training only) and validate on the same records
(the folds depend only on the data and the seed). K ranks draw other windows, augmentations and dropout
masks than one process does, so their models differ as two seeds' do; ``--seeds N`` repeats the pair for N
seeds and puts the one-process seed-to-seed spread beside the differences. The target: the
K-process metric within 0.02 of the one-process one. Ends with one line per seed

    distributed: 1 process M1, K processes MK, difference D (target |D| <= 0.02: met|not met)

and, for several seeds, the mean and largest |D| and the one-process range.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TARGET = 0.02
#: A small network, so that three trainings of the real records fit in minutes of CPU.
NETWORK = {
    "raw_widths": [16, 24, 32],
    "fiducial_widths": [8, 16],
    "rnn_hidden": 16,
    "tabular_hidden": 16,
    "head_hidden": 32,
}
log = logging.getLogger("bench_distributed")


def settings_file(folder: Path, args: argparse.Namespace, seed: int) -> Path:
    """The benchmark's settings (``--settings`` FILE's keys win) with ``seed``, as a JSON file for ECG_SETTINGS."""
    values: dict[str, Any] = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "folds": args.folds,
        "lead_sets": [args.leads],
        "model_kwargs": NETWORK,
        "progress": False,
        "cache_dir": str(folder / "cache"),
    }
    if args.settings:
        values.update(json.loads(Path(args.settings).read_text()))
    values["seed"] = seed
    path = folder / f"settings-seed{seed}.json"
    path.write_text(json.dumps(values, indent=1))
    return path


def train(data: Path, model: Path, settings: Path, ranks: int, threads: int) -> float:
    """One ``train_model.py`` run (under torchrun when ``ranks`` > 1); returns its wall-clock seconds."""
    command = [sys.executable, str(ROOT / "train_model.py"), str(data), str(model)]
    if ranks > 1:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}"]
        command += [str(ROOT / "train_model.py"), str(data), str(model)]
    env = {**os.environ, "ECG_SETTINGS": str(settings), "OMP_NUM_THREADS": str(threads), "ECG_PROGRESS_SECONDS": "60"}
    started = time.perf_counter()
    run = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if run.returncode != 0:
        raise SystemExit(f"error: {' '.join(command)} failed (status {run.returncode}):\n{run.stderr[-3000:]}")
    return seconds


def summary(model: Path) -> dict[str, Any]:
    """The lead set's validation metric, records and best epoch from a model folder's manifest."""
    from ecgserve.model_folder import read_manifest
    from ecgtrain.tasks import get_task

    manifest = read_manifest(model)
    metric = get_task(manifest["task"]).metric
    entry = next(iter(manifest["models"].values()))
    return {
        "metric": metric,
        "value": float(entry["validation"][metric]),
        "records": int(entry["validation_records"]),
        "best_epoch": int(entry["best_epoch"]),
    }


def warm_cache(data: Path, settings: Path) -> None:
    """Prepare the records into the settings' cache for their lead set and signal parameters (``--warm``)."""
    from ecgcache import prepare_folder
    from ecgdata.index import build_index
    from ecgtrain.settings import Settings
    from ecgtrain.workflow import signal_config

    values = Settings.from_dict(json.loads(settings.read_text()), source=str(settings))
    table = build_index(data, progress=False)
    cache = Path(values.cache_dir) if values.cache_dir else None
    for leads in values.lead_sets:
        prepare_folder(table.paths, tuple(leads), signal_config(values), cache, n_jobs=-1, progress=False)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="folder of Challenge records")
    source.add_argument("--real", action="store_true", help="the real shared records (ecgdata/real_data.py)")
    parser.add_argument("--work", type=Path, help="folder for the models, cache and real data (default: temporary)")
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32, help="global: all ranks together")
    parser.add_argument("--folds", type=int, default=1)
    parser.add_argument("--leads", nargs="+", default=["I", "II"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--settings", help="JSON file of settings overriding the benchmark's")
    parser.add_argument("--seeds", type=int, default=1, help="pairs of runs, seeds seed, seed + 1, ...")
    parser.add_argument("--warm", action="store_true", help="prepare the feature cache before either run")
    return parser.parse_args(argv)


def run_pair(data: Path, work: Path, args: argparse.Namespace, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """One process and ``--ranks`` processes trained with ``seed``; prints and returns both summaries."""
    results = []
    for ranks in (1, args.ranks):
        model = work / f"model-{ranks}-seed{seed}"
        seconds = train(data, model, settings_file(work, args, seed), ranks, args.threads)
        result = {**summary(model), "seconds": seconds}
        results.append(result)
        label = f"seed {seed}, {ranks} process{'es' if ranks > 1 else ''}"
        print(
            f"{label:>24}: {result['metric']} {result['value']:.4f} on {result['records']} validation records, "
            f"best epoch {result['best_epoch']}, {seconds:.0f} s"
        )
    return results[0], results[1]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-distributed-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.real:
        from ecgdata.real_data import real_training_folder

        data = real_training_folder(work / "real")
    else:
        data = args.data
    if args.warm:
        warm_cache(data, settings_file(work, args, args.seed))
    pairs = [run_pair(data, work, args, seed) for seed in range(args.seed, args.seed + args.seeds)]
    differences = [several["value"] - one["value"] for one, several in pairs]
    for (one, several), difference in zip(pairs, differences):
        met = "met" if abs(difference) <= TARGET else "not met"
        print(
            f"distributed: 1 process {one['value']:.4f}, {args.ranks} processes {several['value']:.4f}, "
            f"difference {difference:+.4f} (target |D| <= {TARGET}: {met})"
        )
    if len(pairs) > 1:
        singles = [one["value"] for one, _ in pairs]
        print(
            f"over {len(pairs)} seeds: mean |D| {sum(map(abs, differences)) / len(pairs):.4f}, max |D| "
            f"{max(map(abs, differences)):.4f}; one process from seed to seed: {min(singles):.4f}-{max(singles):.4f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
