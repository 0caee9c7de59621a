#!/usr/bin/env python
"""K-fold cross-validated Challenge metric, AUROC and F-measure per lead set and per branch variant.

Usage:
    python benchmarks/cross_validate.py --data DIR [--folds 5] [--lead-sets 12 6 4 3 2]
        [--variants both raw features] [--out results.json]
    python benchmarks/cross_validate.py --real      # the real shared records (PTB-XL sample + Challenge sample)

Each fold's held-out records are scored by a network trained on the other folds, with its
validation records (for early stopping and threshold tuning) taken from those training folds
only, so no held-out record influences its own prediction. Folds are stratified by class and
source (:func:`ecgdata.splits.stratified_kfold`) and shared by every variant and lead set.
Variants: ``both`` = raw + fiducial + tabular branches, ``raw`` = raw signal only,
``features`` = fiducial + tabular (the PQRST branches without the raw signal).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

import models
from ecgdata.splits import stratified_kfold, train_val_split
from ecgio.leads import LEAD_SETS
from ecgsignal.config import SignalConfig
from training.data import LeadSetData, lead_set_data, read_dataset_index
from training.device import resolve_device
from training.evaluation import evaluate_probabilities
from training.inference import predict_records
from training.settings import Settings, default_cache_dir
from training.thresholds import tune
from training.trainer import record_inputs, train_network

VARIANTS = {"both": ("raw", "fiducial", "tabular"), "raw": ("raw",), "features": ("fiducial", "tabular")}
LEAD_SETS_BY_SIZE = {len(leads): leads for leads in LEAD_SETS}
#: Threshold strategies scored on the same held-out predictions (tuned on the same inner validation records).
COMPARED_THRESHOLDS = (("per_class", 0), ("per_class", 3), ("global", 0), ("global_then_per_class", 3), ("fixed", 0))
log = logging.getLogger("cross_validate")


def held_out_scores(
    data: LeadSetData, settings: Settings, train: np.ndarray, test: np.ndarray, groups: list[str]
) -> dict[str, float]:
    """Train on ``train`` (inner validation split from it), score ``test``."""
    inner_train, inner_val = train_val_split(
        data.targets[train], [groups[i] for i in train], settings.val_fraction, settings.seed
    )
    trained = train_network(data, settings, train[inner_train], train[inner_val])
    network = models.build(trained.architecture, **trained.model_kwargs)
    network.load_state_dict(trained.state_dict)
    device = resolve_device(settings.device)
    values, present = data.features()
    tabular = trained.scaler.transform(values, present, data.ages, data.sexes)
    probabilities = predict_records(network.to(device), record_inputs(data, test, tabular), device)
    scores = evaluate_probabilities(data.targets[test], probabilities, trained.thresholds)
    out = {**scores, "train_seconds": trained.seconds, "best_epoch": trained.best_epoch}
    val_labels = data.targets[train[inner_val]]
    for strategy, min_positives in COMPARED_THRESHOLDS:
        thresholds = tune(val_labels, trained.val_probabilities, strategy, min_positives)
        other = evaluate_probabilities(data.targets[test], probabilities, thresholds)
        out[f"challenge_metric[{strategy},min{min_positives}]"] = other["challenge_metric"]
        out[f"f_measure[{strategy},min{min_positives}]"] = other["f_measure"]
    return out


def summarise(per_fold: list[dict[str, float]]) -> dict[str, float]:
    """Mean and standard deviation over folds of every score."""
    out: dict[str, float] = {}
    for key in per_fold[0]:
        values = np.array([fold[key] for fold in per_fold], dtype=float)
        out[key] = float(np.nanmean(values))
        out[key + "_sd"] = float(np.nanstd(values))
    return out


def run(data_dir: Path, folds: int, lead_sizes: list[int], variants: list[str], settings: Settings) -> dict:
    table = read_dataset_index(data_dir, settings.progress)
    splits = stratified_kfold(table.targets, table.sources, folds, settings.seed)
    config = SignalConfig.from_dict(settings.signal)
    results: dict = {"records": len(table), "folds": folds, "settings": settings.to_dict(), "results": {}}
    for size in lead_sizes:
        data = lead_set_data(
            table,
            LEAD_SETS_BY_SIZE[size],
            config,
            settings.cache_dir or default_cache_dir(),
            settings.n_jobs,
            settings.progress,
        )
        row_of = {name: i for i, name in enumerate(data.names)}
        group_of = dict(zip(table.records, table.sources))
        data_groups = [group_of[name] for name in data.names]
        for variant in variants:
            variant_settings = replace(settings, branches=VARIANTS[variant])
            per_fold = []
            for k, (train, test) in enumerate(splits):
                train_rows = np.array([row_of[table.records[i]] for i in train if table.records[i] in row_of])
                test_rows = np.array([row_of[table.records[i]] for i in test if table.records[i] in row_of])
                scores = held_out_scores(data, variant_settings, train_rows, test_rows, data_groups)
                per_fold.append(scores)
                log.info(
                    "%d leads, %s, fold %d: challenge %.3f AUROC %.3f F %.3f",
                    size,
                    variant,
                    k + 1,
                    scores["challenge_metric"],
                    scores["auroc"],
                    scores["f_measure"],
                )
            summary = summarise(per_fold)
            results["results"][f"{size}-lead/{variant}"] = {"summary": summary, "folds": per_fold}
            print(
                f"{size:>2}-lead {variant:<8} challenge {summary['challenge_metric']:.3f}±{summary['challenge_metric_sd']:.3f}"
                f"  AUROC {summary['auroc']:.3f}±{summary['auroc_sd']:.3f}"
                f"  F {summary['f_measure']:.3f}±{summary['f_measure_sd']:.3f}"
                f"  train {summary['train_seconds']:.0f} s/fold",
                flush=True,
            )
            compared = "  ".join(
                f"{key[len('challenge_metric') :]} {value:.3f}"
                for key, value in summary.items()
                if key.startswith("challenge_metric[") and not key.endswith("_sd")
            )
            print(f"    thresholds (challenge metric): {compared}", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="folder of Challenge-format records")
    source.add_argument("--real", action="store_true", help="the real shared records (imported into --work)")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "ecg-real-data")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--lead-sets", type=int, nargs="+", default=[12, 6, 4, 3, 2], choices=sorted(LEAD_SETS_BY_SIZE))
    parser.add_argument("--variants", nargs="+", default=["both"], choices=sorted(VARIANTS))
    parser.add_argument("--out", type=Path, help="write all per-fold numbers as JSON here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = replace(Settings.from_env(), progress=False)
    if args.real:
        from benchmarks.real_data import real_training_folder

        data_dir = real_training_folder(args.work)
    else:
        data_dir = args.data
    started = time.perf_counter()
    results = run(data_dir, args.folds, args.lead_sets, args.variants, settings)
    results["seconds"] = round(time.perf_counter() - started, 1)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    print(f"cross-validation done in {results['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
