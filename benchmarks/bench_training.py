#!/usr/bin/env python
"""Training time and peak memory for all five lead-set networks, and inference time per record.

Usage:
    python benchmarks/bench_training.py --real [--work DIR]     # the ~380 real shared records
    python benchmarks/bench_training.py --data DIR

Training runs exactly as ``train_model.py`` would (default settings, or ``ECG_SETTINGS``), with
an empty feature cache so preprocessing and delineation are counted. Inference is timed through
``team_code.run_model`` on one thread, record by record, as the Challenge's test_model.py calls
it: parsing, scaling, preprocessing, delineation and the network included. Ends with the lines

    training: 5 lead sets, N records, X s, peak memory Y MB (main process), Z MB (with workers, sampled)
    inference ms/record (1 thread): ours=M
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

import team_code
from ecgdata.real_data import add_data_arguments, data_folder
from ecgio import find_records, load_raw
from ecgtrain.settings import Settings
from ecgtrain.workflow import train_all


def peak_mb(who: int) -> float:
    """Peak resident memory in MB of this process (RUSAGE_SELF)."""
    return resource.getrusage(who).ru_maxrss / 1024.0


def tree_rss_mb(root: int) -> float:
    """Resident memory of ``root`` and all its descendants (Linux /proc), in MB."""
    parents: dict[int, int] = {}
    rss: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = dict(line.split(":", 1) for line in (entry / "status").read_text().splitlines() if ":" in line)
        except OSError:
            continue
        pid = int(entry.name)
        parents[pid] = int(fields.get("PPid", "0").strip())
        rss[pid] = float(fields.get("VmRSS", "0 kB").split()[0]) / 1024.0
    total, frontier = rss.get(root, 0.0), [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        total += sum(rss[pid] for pid in children)
        frontier = children
    return total


class TreeMemorySampler(threading.Thread):
    """Samples the whole process tree's RSS (main process plus joblib workers) every 0.2 s; keeps the peak."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.2):
            self.peak = max(self.peak, tree_rss_mb(os.getpid()))


def time_inference(model_dir: Path, headers: list[Path], limit: int) -> float:
    """Mean ms per record for run_model on one thread (model loading excluded)."""
    torch.set_num_threads(1)
    models: dict[tuple[str, ...], object] = {}
    seconds = []
    for header_path in headers[:limit]:
        raw, header = load_raw(header_path)
        text = header_path.read_text()
        leads = tuple(header.leads)
        if leads not in models:
            models[leads] = team_code.load_model(str(model_dir), leads)
        team_code.run_model(models[leads], text, raw)  # warm-up of this shape
        start = time.perf_counter()
        team_code.run_model(models[leads], text, raw)
        seconds.append(time.perf_counter() - start)
    return 1000.0 * float(np.mean(seconds))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_arguments(parser)
    parser.add_argument("--inference-records", type=int, default=50)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    data_dir = data_folder(args)
    headers = find_records(data_dir)
    with tempfile.TemporaryDirectory() as scratch:
        settings = replace(Settings.from_env(), cache_dir=str(Path(scratch) / "cache"))
        model_dir = Path(scratch) / "model"
        sampler = TreeMemorySampler()
        sampler.start()
        start = time.perf_counter()
        manifest = train_all(data_dir, model_dir, settings)
        seconds = time.perf_counter() - start
        sampler.stop.set()
        main_mb = peak_mb(resource.RUSAGE_SELF)
        for key, entry in manifest["models"].items():
            v = entry["validation"]
            print(
                f"{len(entry['leads']):>2}-lead: best epoch {entry['best_epoch']}, validation challenge "
                f"{v['challenge_metric']:.3f}, AUROC {v['auroc']:.3f}, F {v['f_measure']:.3f}, {entry['seconds']:.0f} s"
            )
        print(
            f"training: {len(manifest['models'])} lead sets, {len(headers)} records, {seconds:.0f} s, "
            f"peak memory {main_mb:.0f} MB (main process), {sampler.peak:.0f} MB (with workers, sampled)"
        )
        inference = time_inference(model_dir, headers, args.inference_records)
        print(f"inference ms/record (1 thread): ours={inference:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
