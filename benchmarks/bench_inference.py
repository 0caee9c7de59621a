#!/usr/bin/env python
"""Inference throughput of test_model: record by record, batched, and with K worker processes.

Usage:
    python benchmarks/bench_inference.py MODEL --real [--work DIR] [--workers 2] [--batch 16] [--limit N]
    python benchmarks/bench_inference.py MODEL --data DIR ...

MODEL is a folder written by train_model.py. ``--real`` runs on the real shared records (25
Challenge + 353 PTB-XL records, see ``benchmarks/real_data.py``); ``--data`` on any folder, e.g.
one from ``benchmarks/make_scale_data.py`` (long 257 and 1000 Hz records among them). Each mode
runs test_model's ``run_folder`` over the same records into a fresh outputs folder, in this
process, with torch on ``ECG_THREADS`` threads (default 1 here), and reports its summary's
records/s (finding records and loading models included, as test_model prints it):

    one-by-one   team_code.run_model per record (the official loop; what --batch 1 also computes)
    batched      records prepared in this process, the network on batches of --batch windows
    workers=K    records prepared in K worker processes, the network on batches here

Then, on one thread, the cost per record of the two parts of inference on the first --limit
records, in wall and in CPU time: preparation (reading, conditioning, delineation, features) and
the network per ensemble member, alone (a record at a time) and in batches. Ends with the lines

    records/s: one-by-one=A batched=B workers=K=C
    ms/record, 1 thread, wall time, N records: preparation=P network per member=M (batched: Mb), members=n
    ms/record, 1 thread, CPU time, N records: ...
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import team_code  # after the path: this checkout's, not an installed copy's
from ecgdata.real_data import add_data_arguments, data_folder
from ecgio import find_records, load_raw, read_header
from ecgio.leads import sort_leads
from ecgserve.record_inputs import prepare_input


def _test_model():
    """The repository's test_model.py as a module (its name clashes with test modules elsewhere)."""
    spec = importlib.util.spec_from_file_location("bench_test_model", ROOT / "test_model.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def throughput(model_dir: Path, data_dir: Path, scratch: Path, workers: int, batch: int) -> dict[str, float]:
    """records/s of each test_model mode on the whole folder."""
    tester = _test_model()
    modes = {
        "one-by-one": {"batched": False},
        "batched": {"batched": True, "workers": 1, "batch": batch},
        f"workers={workers}": {"batched": True, "workers": workers, "batch": batch},
    }
    rates = {}
    for name, options in modes.items():
        summary = tester.run_folder(
            str(model_dir),
            str(data_dir),
            str(scratch / name),
            team_code.load_model,
            team_code.run_model,
            show_progress=False,
            **options,
        )
        logging.info("%s: %s", name, summary.line())
        rates[name] = summary.rate
    return rates


class Clock:
    """Wall and CPU seconds of this process since ``start``: on a shared machine the wall time of one
    thread counts the other jobs' turns too, its CPU time (``time.process_time``) nearly only ours."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def elapsed(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def part_costs(model_dir: Path, headers: list[Path], batch: int) -> dict[str, tuple[float, float]]:
    """(wall, CPU) ms per record on one thread: preparation; the network per ensemble member, each record
    alone and in batches of ``batch`` windows; and the number of members (as a pair, for the table)."""
    models: dict[tuple[str, ...], object] = {}
    items: dict[tuple[str, ...], list] = {}
    for header in headers:
        leads = sort_leads(read_header(header).leads)
        if leads not in models:
            models[leads] = team_code.load_model(str(model_dir), leads)
    clock = Clock()
    for header in headers:
        leads = sort_leads(read_header(header).leads)
        raw, _ = load_raw(header)
        items.setdefault(leads, []).append(prepare_input(models[leads].preparer, header.read_text(), raw))
    costs = {"preparation": clock.elapsed(), "alone": (0.0, 0.0), "batched": (0.0, 0.0)}
    for leads, records in items.items():
        model = models[leads]
        members = len(model.network.members)
        model.probabilities_batch(records[:2], batch)  # warm-up
        for name, size in (("alone", 1), ("batched", batch)):
            clock = Clock()
            model.probabilities_batch(records, size)
            wall, cpu = clock.elapsed()
            costs[name] = (costs[name][0] + wall / members, costs[name][1] + cpu / members)
    costs = {name: (1000 * wall / len(headers), 1000 * cpu / len(headers)) for name, (wall, cpu) in costs.items()}
    costs["members"] = (members, members)
    return costs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path)
    add_data_arguments(parser)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--limit", type=int, default=100, help="records for the one-thread part costs")
    args = parser.parse_args(argv)
    os.environ.setdefault("ECG_THREADS", "1")
    threads = os.environ["ECG_THREADS"]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    data_dir = data_folder(args)
    headers = find_records(data_dir)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch:
        rates = throughput(args.model, data_dir, Path(scratch), args.workers, args.batch)
    os.environ["ECG_THREADS"] = "1"
    costs = part_costs(args.model, headers[: args.limit], args.batch)
    print(
        f"{len(headers)} records, torch threads {threads}, {os.cpu_count()} cores, load average {load:.1f} at the start"
    )
    print("records/s: " + " ".join(f"{name}={rate:.2f}" for name, rate in rates.items()))
    for kind, column in (("wall", 0), ("CPU", 1)):
        print(
            f"ms/record, 1 thread, {kind} time, {min(args.limit, len(headers))} records: "
            f"preparation={costs['preparation'][column]:.1f} network per member={costs['alone'][column]:.1f} "
            f"(batched: {costs['batched'][column]:.1f}), members={costs['members'][0]}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
