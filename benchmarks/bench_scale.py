"""Scale: preparation throughput, cache size, peak memory and training throughput as N grows.

    python benchmarks/bench_scale.py --work DIR [--sizes 1000 5000 20000 88000] [--lead-sets 12 2]
                                     [--steps 40] [--jobs 2] [--device auto]

For each N, a Challenge-like training set of N distinct records is made with
:mod:`ecgdata.scale_data` (reused when ``DIR/data-N`` is complete), then for each lead set:

* **preparation**: the feature cache is built from empty (``prepare_folder``: reading,
  preprocessing, delineation, features, cache writes) with ``--jobs`` workers; reported as
  records/s per worker and wall seconds;
* **cache size**: bytes on disk per record for that lead set (all segment files);
* **training throughput**: for each network the default trains per fold (the stacked fusion's raw +
  PQRST network and PQRST-only network), ``--steps`` optimiser steps (batch 32, one random
  window per record, AdamW, as the trainer does) on records drawn from the whole store, so pages
  of the memory-mapped cache are touched all over it; and the validation pass (all windows of a
  record, no gradient) in records/s;
* **one core**: preparation of up to ``--core-records`` 10-s 500 Hz 12-lead records of the first
  data set in this process alone (no workers), in records/s: the per-core rate on the usual
  Challenge record, apart from the mix of lengths;
* **peak RSS of the whole process tree** (main process plus preparation workers, sampled every
  0.2 s) during that lead set.

The projected wall time of a full default training of the five lead sets on the Challenge's
88,253 records is: for each lead set, preparation (88,253 / measured rate) + folds x epochs x
(training records / training rate + validation records / validation rate), with the default
``folds`` and ``epochs`` settings (k-fold: each network trains on (k-1)/k of the records and
validates on the rest; one split: 80 / 20). Lead sets that were not measured are projected from the nearest measured one
scaled by lead count for the cache, and taken as equal in speed (the per-record cost is dominated
by the shared parts). Results go to ``DIR/scale.json`` and ``DIR/scale.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.bench_training import TreeMemorySampler
from ecgdata.scale_data import make_scale_data
from ecgio import find_records
from ecgio.leads import LEAD_SETS
from ecgtrain.projection import CHALLENGE_RECORDS, default_networks, projection

log = logging.getLogger("bench_scale")


def dataset(work: Path, size: int, jobs: int) -> list[Path]:
    """``work/data-N`` with N records (made when missing or incomplete)."""
    folder = work / f"data-{size}"
    headers = find_records(folder) if folder.is_dir() else []
    if len(headers) != size:
        shutil.rmtree(folder, ignore_errors=True)
        rate = make_scale_data(folder, size, seed=0, jobs=jobs)
        log.info("made %d records at %.0f records/min", size, rate * 60)
        headers = find_records(folder)
    return headers


def ten_second_records(headers: list[Path], limit: int) -> list[Path]:
    """Up to ``limit`` of ``headers`` that are 10-s, 500 Hz, 12-lead records (the Challenge's usual kind)."""
    from ecgio.record import read_header

    chosen = []
    for header in headers:
        parsed = read_header(header)
        if parsed.fs == 500 and parsed.num_samples == 5000 and parsed.num_leads == 12:
            chosen.append(header)
            if len(chosen) == limit:
                break
    return chosen


def core_rate(headers: list[Path], leads: tuple[str, ...], cache: Path) -> dict:
    """Preparation of 10-s 500 Hz records in this process alone (one core): records/s, cache writes included."""
    from ecgcache import prepare_folder
    from ecgsignal.config import SignalConfig

    shutil.rmtree(cache, ignore_errors=True)
    started = time.perf_counter()
    store = prepare_folder(headers, leads, SignalConfig(), cache, n_jobs=1, progress=False)
    seconds = time.perf_counter() - started
    shutil.rmtree(cache, ignore_errors=True)
    return {
        "records": len(headers),
        "prepared": len(store),
        "seconds": seconds,
        "records_per_s": len(headers) / seconds,
    }


def _folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def training_rates(
    store: Any, steps: int, device_name: str, branches: tuple[str, ...] = ("raw", "fiducial", "tabular"), seed: int = 0
) -> tuple[float, float]:
    """(training records/s, validation records/s) of the default network over ``branches`` on this store."""
    import torch

    import models
    from ecgserve.inference import autocast

    device = torch.device("cuda" if device_name == "auto" and torch.cuda.is_available() else "cpu")
    if device_name not in ("auto", "cpu"):
        device = torch.device(device_name)
    rng = np.random.default_rng(seed)
    signal, fiducials = store.window(0, 0)
    num_tabular = 2 * store.features.shape[1] + 4
    network = models.build(
        "dual_crnn",
        num_leads=signal.shape[0],
        num_fiducial=fiducials.shape[0],
        num_tabular=num_tabular,
        num_classes=26,
        branches=branches,
    ).to(device)
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-3)
    tabular = torch.zeros((32, num_tabular), device=device)
    target = torch.zeros((32, 26), device=device)

    def batch(rows: np.ndarray) -> tuple[Any, Any]:
        pairs = [store.window(int(i), int(rng.integers(store.num_windows(int(i))))) for i in rows]
        x = torch.from_numpy(np.stack([p[0] for p in pairs])).to(device)
        f = torch.from_numpy(np.stack([p[1] for p in pairs])).to(device)
        return x, f

    network.train()
    for step in range(steps + 2):  # two warm-up steps
        if step == 2:
            started = time.perf_counter()
        x, f = batch(rng.integers(len(store), size=32))
        optimizer.zero_grad(set_to_none=True)
        with autocast(device):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(network(x, f, tabular).float(), target)
        loss.backward()
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    train_rate = steps * 32 / (time.perf_counter() - started)
    network.eval()
    rows = rng.integers(len(store), size=min(len(store), 200))
    started = time.perf_counter()
    with torch.no_grad():
        for i in rows:
            prepared = store.record(int(i))
            x = torch.from_numpy(prepared.windows).to(device)
            f = torch.from_numpy(prepared.fiducials).to(device)
            with autocast(device):
                network(x, f, torch.zeros((x.shape[0], num_tabular), device=device))
    if device.type == "cuda":
        torch.cuda.synchronize()
    return train_rate, len(rows) / (time.perf_counter() - started)


def measure(headers: list[Path], leads: tuple[str, ...], cache: Path, jobs: int, steps: int, device: str) -> dict:
    """One lead set at one N: preparation from an empty cache, cache size, training rates, peak tree RSS."""
    from ecgcache import prepare_folder
    from ecgsignal.config import SignalConfig

    shutil.rmtree(cache, ignore_errors=True)
    sampler = TreeMemorySampler()
    sampler.start()
    started = time.perf_counter()
    store = prepare_folder(headers, leads, SignalConfig(), cache, n_jobs=jobs, progress=True)
    prepare_s = time.perf_counter() - started
    networks = [
        dict(
            zip(("train_records_per_s", "val_records_per_s"), training_rates(store, steps, device, group), strict=True)
        )
        | {"branches": list(group)}
        for group in default_networks()
    ]
    sampler.stop.set()
    sampler.join()
    return {
        "records": len(headers),
        "leads": len(leads),
        "prepared": len(store),
        "failed": len(store.failed),
        "prepare_s": prepare_s,
        "prepare_rate_per_worker": len(headers) / prepare_s / jobs,
        "cache_bytes_per_record": _folder_bytes(cache) / max(len(store), 1),
        "train_records_per_s": networks[0]["train_records_per_s"],  # the first (joint) network
        "val_records_per_s": networks[0]["val_records_per_s"],
        "networks": networks,
        "peak_tree_rss_mb": sampler.peak,
    }


def _rates(row: dict, key: str) -> str:
    """One rate per network of the default, joined by ' / ' (joint first)."""
    return " / ".join(f"{network[key]:.0f}" for network in row.get("networks", [row]))


def markdown(rows: list[dict], projected: dict[str, float], args: argparse.Namespace, device: str) -> str:
    lines = [
        f"device {device}, {args.jobs} preparation workers, torch threads {os.environ.get('OMP_NUM_THREADS', 'default')}",
        "",
        "| N | leads | prepare s | rec/s per worker | cache KB/rec | train rec/s | val rec/s | peak tree RSS MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['records']} | {r['leads']} | {r['prepare_s']:.0f} | {r['prepare_rate_per_worker']:.1f} | "
            f"{r['cache_bytes_per_record'] / 1e3:.0f} | {_rates(r, 'train_records_per_s')} | "
            f"{_rates(r, 'val_records_per_s')} | {r['peak_tree_rss_mb']:.0f} |"
        )
    lines += [
        "",
        f"projected full default training (5 lead sets, {CHALLENGE_RECORDS} records, {projected['folds']} fold "
        f"x {len(default_networks())} network(s) x {projected['epochs']} epochs, rates at N={projected['from_records']}): "
        f"{projected['hours']:.1f} h, cache {projected['cache_gb']:.1f} GB",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="folder for data sets, caches and results")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--lead-sets", type=int, nargs="+", default=[12, 2], choices=[12, 6, 4, 3, 2])
    parser.add_argument("--steps", type=int, default=40, help="training steps timed per lead set")
    parser.add_argument("--epochs", type=int, default=None, help="epochs in the projection (default: the setting)")
    parser.add_argument(
        "--folds", type=int, default=None, help="fold networks in the projection (default: the setting)"
    )
    parser.add_argument("--jobs", type=int, default=2, help="preparation workers")
    parser.add_argument(
        "--core-records",
        type=int,
        default=500,
        help="10-s 500 Hz 12-lead records prepared in-process for the one-core rate (0: skip)",
    )
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    import torch

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    by_count = {len(leads): leads for leads in LEAD_SETS}
    rows = []
    one_core: dict = {}
    for size in args.sizes:
        headers = dataset(args.work, size, args.jobs)
        if not one_core and args.core_records:
            subset = ten_second_records(headers, args.core_records)
            one_core = core_rate(subset, by_count[12], args.work / "cache-one-core") if subset else {}
            log.info("one core, 10-s 500 Hz 12-lead records: %s", json.dumps(one_core))
        for count in args.lead_sets:
            row = measure(headers, by_count[count], args.work / f"cache-{size}-{count}", args.jobs, args.steps, device)
            rows.append(row)
            log.info("%s", json.dumps(row))
    from ecgtrain.settings import Settings

    defaults = Settings()
    projected = projection(rows, args.jobs, args.epochs or defaults.epochs, args.folds or defaults.folds)
    text = markdown(rows, projected, args, device)
    if one_core:
        text += (
            f"\n\none core, in-process, {one_core['records']} 10-s 500 Hz 12-lead records (12-lead cache, writes "
            f"included): {one_core['records_per_s']:.1f} records/s"
        )
    (args.work / "scale.json").write_text(
        json.dumps({"rows": rows, "projection": projected, "one_core": one_core}, indent=2)
    )
    (args.work / "scale.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
