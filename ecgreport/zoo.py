#!/usr/bin/env python
"""Architectures x tasks x lead sets on one data folder: one results table of the model zoo.

Usage:
    python -m benchmarks.zoo --data ../shared/data/ptb-xl-sample --tasks superdiagnostic \\
        --archs dual_crnn resnet1d_wang --lead-sets 12 2 --out DIR [--epochs N] [--test-data OTHER]
    python -m benchmarks.zoo --tasks challenge2021 --archs dual_crnn --lead-sets 12 2 --out DIR

PTB-XL tasks (``all``, ``diagnostic``, ``subdiagnostic``, ``superdiagnostic``, ``form``,
``rhythm``; :mod:`ecgdata.ptbxl_tasks`) are read from ``--data``, a PTB-XL folder. Each cell trains
one network through :func:`ecgtrain.trainer.train_network` on the train folds, early-stopped on
macro AUROC of the validation fold with thresholds tuned for Fmax (one shared threshold), and is
scored on the test fold (split ``recommended`` 1-8/9/10, or ``sample`` 1-6/7/8 when the folder
has no fold 9-10 records), or on every record of ``--test-data`` (a PTB-XL folder of the same
layout: the way folds 9-10 are scored) restricted to ``--test-folds`` if given. ``challenge2021``
uses the 378 shared real records (:mod:`benchmarks.real_data`), or ``--challenge-data``, split 60/20/20
by iterative stratification over classes and sources (seeded).

Resumable: each cell writes ``cells/<task>/<leads>/<arch>/`` (``trained.pt``, ``result.json`` with the
settings, seed and scores); a cell whose result already holds the current test source is not rerun,
and one trained earlier is only rescored for a new ``--test-data``. ``run.json`` records the
command's arguments. The table (``results.csv``, ``results.md``, ``results.png``) is rebuilt from
all cells after each one.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

import models
from ecgdata.ptbxl_tasks import SPLITS, TASK_NAMES, load_task
from ecgio.files import atomic_write, atomic_write_with
from ecgio.leads import LEAD_SETS
from ecgreport.zoo_table import published, write_table
from ecgscore.ptbxl import bootstrap, fmax, macro_auroc
from ecgserve.device import apply_threads, resolve_device
from ecgserve.inference import predict_records
from ecgsignal.config import SignalConfig
from ecgtrain.data import LeadSetData
from ecgtrain.settings import Settings, default_cache_dir
from ecgtrain.tasks import Task, challenge2021, ptbxl_task
from ecgtrain.trainer import TrainedNetwork, record_inputs, train_network

log = logging.getLogger("zoo")
LEAD_SETS_BY_SIZE = {len(leads): leads for leads in LEAD_SETS}
CHALLENGE = "challenge2021"
#: task -> (primary metric, second metric) reported with bootstrap intervals.
REPORTED = {CHALLENGE: ("challenge_metric", "auroc")}


@dataclass
class Split:
    """One lead set's prepared records and the rows each part of the split uses."""

    data: LeadSetData
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


@dataclass
class Cell:
    task: str
    leads: int
    architecture: str

    def folder(self, out: Path) -> Path:
        return out / "cells" / self.task / f"{self.leads}-lead" / self.architecture


def _challenge_metric(labels: np.ndarray, scores: np.ndarray, thresholds: np.ndarray) -> float:
    from ecgtrain.evaluation import challenge_scorer

    return float(challenge_scorer(labels)(scores >= thresholds))


def _auroc_metric(labels: np.ndarray, scores: np.ndarray) -> float:
    return macro_auroc(labels, scores)


def score_cell(
    task: str,
    task_object: Task,
    labels: np.ndarray,
    probabilities: np.ndarray,
    thresholds: np.ndarray,
    n_boot: int,
    seed: int,
) -> dict[str, Any]:
    """The task's scores on the test records, and bootstrap intervals of the two reported ones."""
    scores = task_object.evaluate(labels, probabilities, thresholds)
    if task == CHALLENGE:
        first = bootstrap(labels, probabilities, lambda y, p: _challenge_metric(y, p, thresholds), n_boot, seed)
        second = bootstrap(labels, probabilities, _auroc_metric, n_boot, seed)
        metrics = REPORTED[CHALLENGE]
    else:
        first = bootstrap(labels, probabilities, _auroc_metric, n_boot, seed)
        second = bootstrap(labels, probabilities, fmax, n_boot, seed)
        metrics = ("macro_auroc", "fmax")
    return {
        "scores": scores,
        "metric": metrics[0],
        "interval": [first.value, first.low, first.high],
        "second_metric": metrics[1],
        "second_interval": [second.value, second.low, second.high],
        "bootstrap": {"resamples": n_boot, "seed": seed, "skipped": [first.skipped, second.skipped]},
    }


def _settings(args: argparse.Namespace, architecture: str, ptbxl: bool) -> Settings:
    """The trainer's defaults, with the run's epochs/seed, and what the architecture itself declares."""
    # The class, not an instance (image_vgg alone would allocate 285 M parameters).
    network_class = models.registry.architecture(architecture)
    values: dict[str, Any] = {
        "architecture": architecture,
        "epochs": args.epochs,
        "min_epochs": min(5, args.epochs),
        "patience": args.patience,
        "seed": args.seed,
        "progress": False,
        "n_jobs": args.jobs,
        "cache_dir": str(args.cache_dir),
        "branches": tuple(args.branches),
    }
    if args.batch_size:
        values["batch_size"] = args.batch_size
    declared_rate = getattr(network_class, "LEARNING_RATE", None)
    if declared_rate:
        values["learning_rate"] = float(declared_rate)
    declared_loss = dict(getattr(network_class, "LOSS", None) or {})
    if declared_loss:  # the loss the seed trained with (e.g. seed 004's focal loss with its alpha and gamma)
        values["loss"] = declared_loss.pop("name")
        values["loss_kwargs"] = declared_loss
    if ptbxl:
        # The ``task`` setting names registered tasks only; the PTB-XL task object is passed to the
        # trainer and recorded in result.json's "task".
        values["threshold_strategy"] = "global"  # one shared threshold: the Fmax threshold (on a 0.05 grid)
    return replace(Settings(), **values)


def _trained_path(folder: Path) -> Path:
    return folder / "trained.pt"


def _save_trained(trained: TrainedNetwork, folder: Path) -> None:
    content = {
        "architecture": trained.architecture,
        "model_kwargs": trained.model_kwargs,
        "state_dict": trained.state_dict,
        "thresholds": trained.thresholds,
        "scaler": trained.scaler.to_dict(),
        "validation": trained.validation,
        "history": trained.history,
        "best_epoch": trained.best_epoch,
        "seconds": trained.seconds,
        "train_records": trained.train_records,
        "val_records": trained.val_records,
    }
    atomic_write_with(_trained_path(folder), lambda stream: torch.save(content, stream))


def _load_trained(folder: Path) -> dict[str, Any]:
    return torch.load(_trained_path(folder), map_location="cpu", weights_only=False)


def _predict(
    trained: dict[str, Any], data: LeadSetData, rows: np.ndarray, device: torch.device
) -> tuple[np.ndarray, float]:
    """Test probabilities and the network's milliseconds per record (prepared inputs, preprocessing excluded)."""
    from ecgserve.tabular import TabularScaler

    network = models.build(trained["architecture"], **trained["model_kwargs"])
    network.load_state_dict(trained["state_dict"])
    network.to(device)
    scaler = TabularScaler.from_dict(trained["scaler"])
    values, present = data.features()
    tabular = scaler.transform(values, present, data.ages, data.sexes)
    started = time.perf_counter()
    probabilities = predict_records(network, record_inputs(data, rows, tabular), device)
    return probabilities, 1000 * (time.perf_counter() - started) / max(len(rows), 1)


def run_cell(
    cell: Cell, args: argparse.Namespace, task_object: Task, split: Split, test: Split, test_source: str, out: Path
) -> dict[str, Any]:
    """Train (unless trained before) and score one cell; returns its result (also written to result.json)."""
    folder = cell.folder(out)
    folder.mkdir(parents=True, exist_ok=True)
    result_path = folder / "result.json"
    result = json.loads(result_path.read_text()) if result_path.is_file() else {}
    if test_source in result.get("tests", {}):
        log.info("%s: done before, kept", folder)
        return result
    settings = _settings(args, cell.architecture, cell.task != CHALLENGE)
    if not _trained_path(folder).is_file():
        task_object.check_targets(split.data.targets[split.train])
        log.info("%s: training on %d records, validating on %d", folder, len(split.train), len(split.validation))
        trained = train_network(split.data, settings, split.train, split.validation, task_object)
        _save_trained(trained, folder)
        result = {"cell": vars(cell), "settings": settings.to_dict(), "seed": settings.seed, "tests": {}}
    saved = _load_trained(folder)
    device = resolve_device(settings.device)
    probabilities, ms = _predict(saved, test.data, test.test, device)
    labels = test.data.targets[test.test]
    scored = score_cell(cell.task, task_object, labels, probabilities, saved["thresholds"], args.bootstrap, args.seed)
    network = models.build(saved["architecture"], **saved["model_kwargs"])
    result.setdefault("settings", settings.to_dict())
    result.setdefault("seed", settings.seed)
    result["cell"] = vars(cell)
    result["task"] = {"name": task_object.name, "classes": list(task_object.classes), "metric": task_object.metric}
    result["training"] = {
        "seconds": saved["seconds"],
        "epochs_run": len(saved["history"]),
        "best_epoch": saved["best_epoch"],
        "train_records": saved["train_records"],
        "val_records": saved["val_records"],
        "validation": saved["validation"],
        "params": int(sum(p.numel() for p in network.parameters())),
    }
    result.setdefault("tests", {})[test_source] = {**scored, "records": len(test.test), "infer_ms_per_record": ms}
    atomic_write(result_path, json.dumps(result, indent=2, default=float))
    log.info("%s: %s %.3f on %d test records", folder, scored["metric"], scored["interval"][0], len(test.test))
    return result


def table_rows(out: Path, test_source: str) -> list[dict[str, Any]]:
    """One row per finished cell scored on ``test_source``, in task, lead set, score order."""
    rows = []
    for path in sorted((out / "cells").glob("*/*/*/result.json")):
        result = json.loads(path.read_text())
        test = result.get("tests", {}).get(test_source)
        if test is None:
            continue
        cell, training = result["cell"], result["training"]
        rows.append(
            {
                "task": cell["task"],
                "leads": cell["leads"],
                "architecture": cell["architecture"],
                "metric": test["metric"],
                "score": test["interval"][0],
                "low": test["interval"][1],
                "high": test["interval"][2],
                "second_metric": test["second_metric"],
                "second": test["second_interval"][0],
                "second_low": test["second_interval"][1],
                "second_high": test["second_interval"][2],
                "auprc": test["scores"].get("auprc", float("nan")),
                "f_measure": test["scores"].get("f_measure", float("nan")),
                "params": training["params"],
                "train_seconds": training["seconds"],
                "epochs_run": training["epochs_run"],
                "best_epoch": training["best_epoch"],
                "infer_ms_per_record": test["infer_ms_per_record"],
                "train_records": training["train_records"],
                "test_records": test["records"],
                "test_source": test_source,
                "published": published(cell["task"], cell["architecture"], cell["leads"]),
            }
        )
    rows.sort(key=lambda r: (r["task"], -int(r["leads"]), -(r["score"] if r["score"] == r["score"] else -1)))
    return rows


def _subsample(parts: tuple[np.ndarray, ...], total: int, seed: int) -> tuple[np.ndarray, ...]:
    """At most about ``total`` records, each part keeping its share (a seeded choice; smoke runs)."""
    rng = np.random.default_rng(seed)
    count = sum(len(part) for part in parts)
    return tuple(np.sort(rng.permutation(part)[: max(2, round(total * len(part) / max(count, 1)))]) for part in parts)


def _ptbxl_split(
    args: argparse.Namespace,
    task: str,
    leads: tuple[str, ...],
    folder: Path,
    split: str,
    test_folds: list[int] | None,
    rows: str,
) -> Split:
    from ecgtrain.task_data import ptbxl_lead_set_data

    loaded = load_task(folder, task, args.rate, split)
    if rows == "all":  # a test folder: all its records (of test_folds), in one part
        chosen = np.arange(len(loaded))
        if test_folds:
            chosen = chosen[np.isin(loaded.strat_fold, test_folds)]
        loaded = replace(
            loaded.subset(chosen), train=np.arange(len(chosen)), validation=np.arange(0), test=np.arange(0)
        )
    if args.max_records:
        parts = tuple(part for part in (loaded.train, loaded.validation, loaded.test) if part.size)
        loaded = loaded.subset(np.sort(np.concatenate(_subsample(parts, args.max_records, args.seed))))
    prepared = ptbxl_lead_set_data(loaded, leads, SignalConfig(), args.cache_dir, args.jobs, False)
    if rows == "all":
        return Split(prepared.data, prepared.train, prepared.train, prepared.train)
    return Split(prepared.data, prepared.train, prepared.validation, prepared.test)


def _challenge_split(args: argparse.Namespace, leads: tuple[str, ...]) -> Split:
    from ecgdata.splits import train_val_split
    from ecgtrain.data import lead_set_data, read_dataset_index

    folder = args.challenge_data
    if folder is None:
        from ecgdata.real_data import real_training_folder

        folder = real_training_folder(args.work)
    table = read_dataset_index(folder, False)
    data = lead_set_data(table, leads, SignalConfig(), args.cache_dir, args.jobs, False)
    groups = dict(zip(table.records, table.sources))
    sources = [groups[name] for name in data.names]
    rest, test = train_val_split(data.targets, sources, 0.2, args.seed)
    train, validation = train_val_split(data.targets[rest], [sources[i] for i in rest], 0.25, args.seed)
    return Split(data, rest[train], rest[validation], test)


def _default_split(folder: Path) -> str:
    """``recommended`` when the folder has records in fold 9 or 10, else the sample's ``sample``."""
    from ecgdata.ptbxl import read_database

    folds = {row.strat_fold for row in read_database(folder)}
    return "recommended" if folds & {9, 10} else "sample"


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    apply_threads(args.threads)
    atomic_write(
        out / "run.json", json.dumps({"argv": sys.argv, "args": {k: str(v) for k, v in vars(args).items()}}, indent=2)
    )
    test_source = str(args.test_data.resolve()) if args.test_data else "test fold"
    for task in args.tasks:
        for size in args.lead_sets:
            leads = LEAD_SETS_BY_SIZE[size]
            if task == CHALLENGE:
                if args.test_data:
                    log.warning("--test-data applies to PTB-XL tasks; %s is scored on its own test split", task)
                split = _challenge_split(args, leads)
                task_object, test, source = challenge2021(), split, "test fold"
            else:
                split_name = args.split or _default_split(args.data)
                task_object = ptbxl_task(task, args.data, split_name)
                split = _ptbxl_split(args, task, leads, args.data, split_name, None, "folds")
                test, source = split, test_source
                if args.test_data:
                    test = _ptbxl_split(args, task, leads, args.test_data, split_name, args.test_folds, "all")
            for architecture in args.archs:
                cell = Cell(task, size, architecture)
                try:
                    run_cell(cell, args, task_object, split, test, source, out)
                except Exception:
                    log.exception("%s failed; the other cells go on", cell.folder(out))
                write_table(
                    table_rows(out, source) + ([] if source == "test fold" else table_rows(out, "test fold")), out
                )
    return table_rows(out, test_source)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/ptb-xl-sample"), help="PTB-XL folder")
    parser.add_argument("--tasks", nargs="+", default=["superdiagnostic"], choices=[*TASK_NAMES, CHALLENGE])
    parser.add_argument("--archs", nargs="+", default=["dual_crnn"], choices=models.available())
    parser.add_argument("--lead-sets", type=int, nargs="+", default=[12], choices=sorted(LEAD_SETS_BY_SIZE))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=0, help="0: the trainer's default")
    parser.add_argument(
        "--branches", nargs="+", default=list(Settings().branches), choices=["raw", "fiducial", "tabular"]
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rate", type=int, default=100, choices=[100, 500], help="PTB-XL records read at this rate")
    parser.add_argument("--split", choices=sorted(SPLITS), help="default: recommended if folds 9-10 exist, else sample")
    parser.add_argument("--test-data", type=Path, help="score on every record of this PTB-XL folder instead")
    parser.add_argument("--test-folds", type=int, nargs="+", help="with --test-data: only these strat_folds")
    parser.add_argument("--challenge-data", type=Path, help="Challenge-format folder (default: the shared records)")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "ecg-real-data")
    parser.add_argument("--max-records", type=int, default=0, help="use at most this many records (smoke runs)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--jobs", type=int, default=2, help="processes preparing records")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: automatic)")
    parser.add_argument("--cache-dir", type=Path, default=Path(default_cache_dir()))
    parser.add_argument("--table-only", action="store_true", help="only rebuild the table from the cells in --out")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    if args.table_only:
        rows = table_rows(args.out, "test fold")
        write_table(rows, args.out)
    else:
        rows = run(args)
    print(f"{len(rows)} cells in {args.out / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
