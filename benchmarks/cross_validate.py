#!/usr/bin/env python
"""K-fold cross-validated Challenge metric, AUROC and F-measure per lead set, branch variant and source.

Usage:
    python benchmarks/cross_validate.py --data DIR [--folds 5] [--lead-sets 12 6 4 3 2]
        [--variants both raw features] [--split kfold|sources] [--out results.json]
    python benchmarks/cross_validate.py --real      # the real shared records (PTB-XL sample + Challenge sample)

Each outer fold's held-out records are scored by what ``training_code`` would train on the other
folds (:func:`ecgtrain.folds.train_ensemble`: with the ``folds`` setting k > 1, k inner networks
whose thresholds are tuned on their inner out-of-fold predictions; with k = 1 one network early-
stopped and threshold-tuned on an inner validation split), so no held-out record influences its
own prediction. Outer folds are stratified by class and source (:func:`ecgdata.splits.stratified_kfold`)
and shared by every variant and lead set; ``--split sources`` instead holds out one source at a
time (leave-one-source-out: what happens on a hospital the model never saw). Settings come from
``ECG_SETTINGS`` as for training. Besides the mean ± SD over outer folds, the pooled held-out
predictions are scored per source, and the same predictions are scored under other threshold
strategies (tuned on the same inner predictions) and decision rules.
Variants: ``both`` = raw + fiducial + tabular branches, ``raw`` = raw signal only,
``features`` = fiducial + tabular (the PQRST branches without the raw signal), ``both_dropout`` and
``both_aux`` = both with branch dropout 0.3 or auxiliary per-branch losses (weight 0.5),
``stacked`` = ``fusion: stacked`` with the ``stack_groups`` of the settings (networks on groups of
branches mixed by out-of-fold weights), ``trees`` = the features member's boosted trees alone.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

import models
from ecgdata.real_data import add_data_arguments, data_folder
from ecgdata.splits import stratified_kfold
from ecgio.leads import LEAD_SETS
from ecgserve.blending import combine, with_criteria
from ecgserve.decision import DECISION_RULES
from ecgserve.device import resolve_device
from ecgserve.ensemble import MeanProbability
from ecgserve.inference import predict_records
from ecgsignal.config import SignalConfig
from ecgtrain import criteria
from ecgtrain.data import LeadSetData, lead_set_data, read_dataset_index
from ecgtrain.evaluation import evaluate_probabilities
from ecgtrain.folds import FoldedRecords, TrainedEnsemble, add_copies, fold_rows
from ecgtrain.gbm import gbm_params, train_forest
from ecgtrain.settings import Settings, default_cache_dir
from ecgtrain.stacking import record_gbm_inputs, train_lead_set
from ecgtrain.tasks import get_task
from ecgtrain.thresholds import tune, tune_as
from ecgtrain.trainer import record_inputs

#: Settings each variant changes (everything else from ``ECG_SETTINGS`` or the defaults).
VARIANTS: dict[str, dict] = {
    "both": {"fusion": "joint", "branches": ("raw", "fiducial", "tabular")},
    "raw": {"fusion": "joint", "branches": ("raw",)},
    "features": {"fusion": "joint", "branches": ("fiducial", "tabular")},
    "both_dropout": {
        "fusion": "joint",
        "branches": ("raw", "fiducial", "tabular"),
        "model_kwargs": {"branch_dropout": 0.3},
    },
    "both_aux": {
        "fusion": "joint",
        "branches": ("raw", "fiducial", "tabular"),
        "model_kwargs": {"auxiliary_loss": 0.5},
    },
    "stacked": {"fusion": "stacked"},
    "trees": {},  # the features member alone (held_out_trees)
}
LEAD_SETS_BY_SIZE = {len(leads): leads for leads in LEAD_SETS}
#: Threshold strategies scored on the same held-out predictions (tuned on the same inner predictions).
COMPARED_THRESHOLDS = (("per_class", 0), ("per_class", 3), ("global", 0), ("global_then_per_class", 3), ("fixed", 0))
#: A source needs this many held-out records for its own line (fewer are pooled into the overall score only).
MIN_SOURCE_RECORDS = 5
#: Leave-one-source-out holds a source out only when at least this many records of other sources remain to train.
MIN_TRAIN_RECORDS = 50
log = logging.getLogger("cross_validate")


def inner_folds(data: LeadSetData, settings: Settings, train: np.ndarray) -> list[set[str]]:
    """The inner folds (by name) of the outer training records, as ``training_code`` would make them."""
    task = get_task(settings.task)
    targets, groups = data.targets[train], [data.sources[i] for i in train]
    names = [data.names[i] for i in train]
    if settings.folds == 1:
        _, val = task.split(targets, groups, settings.val_fraction, settings.seed)
        return [{names[i] for i in val}]
    return [{names[i] for i in val} for _, val in task.kfold(targets, groups, settings.folds, settings.seed)]


def predict(trained: TrainedEnsemble, data: LeadSetData, rows: np.ndarray, settings: Settings) -> np.ndarray:
    """The ensemble's probabilities for ``rows``, as the predictor computes them (blended with the features
    member's when it has one)."""
    network = MeanProbability([_member_network(trained, i) for i in range(len(trained.members))])
    device = resolve_device(settings.device)
    values, present = data.features()
    tabular = trained.scaler.transform(values, present, data.ages, data.sexes)
    items = record_inputs(data, rows, tabular)
    probabilities = predict_records(network.to(device), items, device, aggregation=settings.window_aggregation)
    if trained.features_member is not None and trained.member_weights is not None:
        inputs = record_gbm_inputs(data, rows)
        probabilities = combine(
            probabilities,
            trained.features_member,
            trained.member_weights,
            inputs,
            get_task(settings.task).classes,
            trained.network_calibration,
            trained.criteria_weights,
        )
    return probabilities


def _member_network(trained: TrainedEnsemble, i: int) -> torch.nn.Module:
    return _member_network_from(trained, trained.members[i].state_dict)


def held_out_scores(
    data: LeadSetData, settings: Settings, train: np.ndarray, test: np.ndarray, save: Path | None = None
) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """Train on ``train`` (inner folds from it), score ``test``; returns the scores, the test probabilities and
    the thresholds. ``save``: an ``.npz`` file for the held-out and inner out-of-fold predictions (what
    ``benchmarks/fusion_report.py`` combines and analyses without training again)."""
    task = get_task(settings.task)
    trained = train_lead_set(FoldedRecords(data, inner_folds(data, settings, train), task, train), settings)
    probabilities = predict(trained, data, test, settings)
    labels = data.targets[test]
    if save is not None:
        save_fold(save, data, trained, test, probabilities)
    scores = evaluate_probabilities(labels, probabilities, trained.thresholds, settings.decision_rule)
    out = {
        **scores,
        "train_seconds": trained.seconds,
        "best_epoch": float(np.mean([m.best_epoch for m in trained.members])),
        "inner_challenge_metric": trained.validation["challenge_metric"],
    }
    inner_labels = data.targets[trained.oof_rows]
    for strategy, min_positives in COMPARED_THRESHOLDS:
        thresholds = tune(inner_labels, trained.oof_probabilities, strategy, min_positives)
        other = evaluate_probabilities(labels, probabilities, thresholds, settings.decision_rule)
        out[f"challenge_metric[{strategy},min{min_positives}]"] = other["challenge_metric"]
    for rule in DECISION_RULES:
        other = evaluate_probabilities(labels, probabilities, trained.thresholds, rule)
        out[f"challenge_metric[rule={rule}]"] = other["challenge_metric"]
    return out, probabilities, trained.thresholds


def save_fold(
    path: Path, data: LeadSetData, trained: TrainedEnsemble, test: np.ndarray, probabilities: np.ndarray
) -> None:
    """One outer fold's predictions: held-out (``test_*``) and the inner out-of-fold ones (``oof_*``)."""
    arrays = (trained.thresholds, trained.oof_rows, trained.oof_probabilities, branch_shares(trained))
    save_arrays(path, data, test, probabilities, *arrays)


def save_arrays(
    path: Path,
    data: LeadSetData,
    test: np.ndarray,
    probabilities: np.ndarray,
    thresholds: np.ndarray,
    oof_rows: np.ndarray,
    oof_probabilities: np.ndarray,
    shares: np.ndarray | None = None,
) -> None:
    """The arrays of one outer fold that fusion_report reads; ``shares``: the joint head's branch shares
    (:func:`branch_shares`; none for the trees)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        test_names=np.asarray(data.names)[test],
        test_sources=np.asarray(data.sources)[test],
        test_labels=data.targets[test],
        test_probabilities=probabilities,
        thresholds=thresholds,
        oof_names=np.asarray(data.names)[oof_rows],
        oof_labels=data.targets[oof_rows],
        oof_probabilities=oof_probabilities,
        branch_shares=np.zeros((0, 3)) if shares is None else shares,
    )


def held_out_trees(
    data: LeadSetData,
    settings: Settings,
    train: np.ndarray,
    test: np.ndarray,
    save: Path | None = None,
    copies: LeadSetData | None = None,
) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """The ``trees`` variant: the features member alone (boosted trees on the global features, no network),
    trained on the same inner folds as the networks, thresholds tuned on its inner out-of-fold predictions.
    ``copies``: other versions of the same records (same names; ``benchmarks/device_copies.py``) whose
    training rows are added to each inner fold's training rows, never to its validation or test rows, so
    no copy of a scored record is trained on."""
    task = get_task(settings.task)
    started = time.perf_counter()
    pairs = fold_rows(data, inner_folds(data, settings, train), train)
    inputs = record_gbm_inputs(data, np.arange(len(data)))
    targets = data.targets
    if copies is not None:
        copy_inputs = record_gbm_inputs(copies, np.arange(len(copies)))
        inputs, targets, pairs = add_copies(data.names, inputs, targets, pairs, copies.names, copy_inputs)
    forest, oof = train_forest(inputs, targets, pairs, gbm_params(settings.gbm_kwargs), settings.seed)
    oof_rows = np.concatenate([val for _, val in pairs])
    probabilities = forest.probabilities(inputs[test])
    if settings.diagnostic_criteria != "none":
        sources = [data.sources[i] for i in oof_rows]
        min_positives = settings.threshold_min_positives
        weights, oof = criteria.fit_member(
            data.targets[oof_rows],
            oof,
            inputs[oof_rows],
            sources,
            task.classes,
            min_positives,
            settings.diagnostic_criteria == "decide",
        )
        probabilities = with_criteria(probabilities, inputs[test], task.classes, weights)
    thresholds = tune_as(data.targets[oof_rows], oof, settings, task.scorer)
    if save is not None:
        save_arrays(save, data, test, probabilities, thresholds, oof_rows, oof)
    scores = evaluate_probabilities(data.targets[test], probabilities, thresholds, settings.decision_rule)
    inner = task.evaluate(data.targets[oof_rows], oof, thresholds, settings.decision_rule)
    out = {
        **scores,
        "train_seconds": time.perf_counter() - started,
        "best_epoch": 0.0,
        "inner_challenge_metric": inner["challenge_metric"],
    }
    return out, probabilities, thresholds


def branch_shares(trained: TrainedEnsemble) -> np.ndarray:
    """How much of the fused head's first layer reads each branch, per member: the share of the squared
    weight norm of the input columns of each branch of ``dual_crnn`` (order raw, fiducial, tabular;
    absent branches 0), each branch's column norm scaled by its embedding width so a wide branch is not
    favoured by its width alone. Empty for other architectures."""
    if trained.architecture != "dual_crnn":
        return np.zeros((0, 3))
    shares = []
    for member in trained.members:
        network = _member_network_from(trained, member.state_dict)
        weight = network.head[1].weight.detach().numpy()  # (hidden, width)
        widths = [network.raw.out_dim if "raw" in network.branches else 0]
        widths.append(network.fiducial.out_dim if "fiducial" in network.branches else 0)
        widths.append(network.tabular[-2].out_features if "tabular" in network.branches else 0)
        bounds = np.cumsum([0, *widths])
        norms = [float(np.mean(weight[:, a:b] ** 2)) if b > a else 0.0 for a, b in itertools.pairwise(bounds)]
        shares.append(np.asarray(norms) / max(sum(norms), 1e-12))
    return np.asarray(shares)


def _member_network_from(trained: TrainedEnsemble, state: dict) -> torch.nn.Module:
    network = models.build(trained.architecture, **trained.model_kwargs)
    network.load_state_dict(state)
    return network


def per_source(
    data: LeadSetData, rows: np.ndarray, probabilities: np.ndarray, thresholds: np.ndarray, settings: Settings
) -> dict[str, dict[str, float]]:
    """Scores of the pooled held-out predictions per source (each record at its own fold's thresholds)."""
    out: dict[str, dict[str, float]] = {}
    sources = np.array([data.sources[i] for i in rows])
    groups: list[tuple[str, np.ndarray]] = [("all", np.ones(len(rows), bool))]
    groups += [(source, sources == source) for source in sorted(set(sources))]
    for source, chosen in groups:
        if chosen.sum() < MIN_SOURCE_RECORDS and source != "all":
            continue
        labels = data.targets[rows[chosen]]
        outputs_at = thresholds[chosen]
        scores = evaluate_probabilities(labels, probabilities[chosen], outputs_at, settings.decision_rule)
        out[source] = {"records": float(chosen.sum()), **scores}
    return out


def outer_splits(data_targets: np.ndarray, sources: Sequence[str], folds: int, split: str, seed: int, repeats: int = 1):
    """(train, test, name) triples: stratified k-fold (``repeats`` times, each with its own seed), or one per
    source with enough records."""
    if split == "kfold":
        return [
            (train, test, f"repeat {r + 1} fold {k + 1}" if repeats > 1 else f"fold {k + 1}")
            for r in range(repeats)
            for k, (train, test) in enumerate(stratified_kfold(data_targets, sources, folds, seed + r))
        ]
    sources = np.asarray(sources)
    out = []
    for source in sorted(set(sources)):
        test = np.flatnonzero(sources == source)
        if len(test) >= MIN_SOURCE_RECORDS and len(sources) - len(test) >= MIN_TRAIN_RECORDS:
            out.append((np.flatnonzero(sources != source), test, f"held-out source {source}"))
    return out


def summarise(per_fold: list[dict[str, float]]) -> dict[str, float]:
    """Mean and standard deviation over folds of every score."""
    out: dict[str, float] = {}
    for key in per_fold[0]:
        values = np.array([fold[key] for fold in per_fold], dtype=float)
        out[key] = float(np.nanmean(values))
        out[key + "_sd"] = float(np.nanstd(values))
    return out


def run(
    data_dir: Path,
    folds: int,
    lead_sizes: list[int],
    variants: list[str],
    settings: Settings,
    split: str = "kfold",
    repeats: int = 1,
    save: Path | None = None,
) -> dict:
    table = read_dataset_index(data_dir, settings.progress)
    config = SignalConfig.from_dict(settings.signal)
    results: dict = {
        "records": len(table),
        "folds": folds,
        "repeats": repeats,
        "split": split,
        "settings": settings.to_dict(),
    }
    results["results"] = {}
    for size in lead_sizes:
        data = lead_set_data(
            table,
            LEAD_SETS_BY_SIZE[size],
            config,
            settings.cache_dir or default_cache_dir(),
            settings.n_jobs,
            settings.progress,
        )
        splits = outer_splits(data.targets, data.sources, folds, split, settings.seed, repeats)
        if not splits:
            raise SystemExit(
                f"no source has >= {MIN_SOURCE_RECORDS} records with >= {MIN_TRAIN_RECORDS} others left to train on"
            )
        for variant in variants:
            variant_settings = replace(settings, **VARIANTS[variant])
            per_fold, rows, probabilities, thresholds = [], [], [], []
            for train, test, name in splits:
                target = None if save is None else save / f"{size}-lead" / variant / (name.replace(" ", "-") + ".npz")
                score = held_out_trees if variant == "trees" else held_out_scores
                scores, fold_probabilities, fold_thresholds = score(data, variant_settings, train, test, target)
                per_fold.append({"split": name, **scores})
                rows.append(test)
                probabilities.append(fold_probabilities)
                thresholds.append(np.broadcast_to(fold_thresholds, fold_probabilities.shape))
                log.info(
                    "%d leads, %s, %s: challenge %.3f AUROC %.3f F %.3f",
                    size,
                    variant,
                    name,
                    scores["challenge_metric"],
                    scores["auroc"],
                    scores["f_measure"],
                )
            summary = summarise([{k: v for k, v in fold.items() if k != "split"} for fold in per_fold])
            sources = per_source(
                data, np.concatenate(rows), np.concatenate(probabilities), np.concatenate(thresholds), variant_settings
            )
            results["results"][f"{size}-lead/{variant}"] = {"summary": summary, "folds": per_fold, "sources": sources}
            report(size, variant, summary, per_fold, sources, split)
    return results


def report(size: int, variant: str, summary: dict, per_fold: list[dict], sources: dict, split: str) -> None:
    """The lines a user reads: mean ± SD over outer folds, the compared rules, and the per-source scores."""
    print(
        f"{size:>2}-lead {variant:<8} challenge {summary['challenge_metric']:.3f}±{summary['challenge_metric_sd']:.3f}"
        f"  AUROC {summary['auroc']:.3f}±{summary['auroc_sd']:.3f}"
        f"  F {summary['f_measure']:.3f}±{summary['f_measure_sd']:.3f}"
        f"  (inner estimate {summary['inner_challenge_metric']:.3f})"
        f"  train {summary['train_seconds']:.0f} s/fold",
        flush=True,
    )
    compared = "  ".join(
        f"{key[len('challenge_metric') :]} {value:.3f}"
        for key, value in summary.items()
        if key.startswith("challenge_metric[") and not key.endswith("_sd")
    )
    print(f"    compared (challenge metric): {compared}", flush=True)
    if split == "sources":
        for fold in per_fold:
            print(
                f"    {fold['split']}: challenge {fold['challenge_metric']:.3f} AUROC {fold['auroc']:.3f}", flush=True
            )
    for source, scores in sources.items():
        print(
            f"    source {source:<18} {int(scores['records']):>4} records: challenge {scores['challenge_metric']:.3f}"
            f"  AUROC {scores['auroc']:.3f}  F {scores['f_measure']:.3f}",
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_arguments(parser)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--lead-sets", type=int, nargs="+", default=[12, 6, 4, 3, 2], choices=sorted(LEAD_SETS_BY_SIZE))
    parser.add_argument("--variants", nargs="+", default=["both"], choices=sorted(VARIANTS))
    parser.add_argument(
        "--split",
        choices=["kfold", "sources"],
        default="kfold",
        help="outer split: stratified k-fold, or leave-one-source-out",
    )
    parser.add_argument("--repeats", type=int, default=1, help="repeat the k-fold split with seeds seed, seed+1, ...")
    parser.add_argument("--out", type=Path, help="write all per-fold numbers as JSON here")
    parser.add_argument(
        "--save", type=Path, help="folder for each fold's held-out and inner out-of-fold predictions (.npz)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = replace(Settings.from_env(), progress=False)
    data_dir = data_folder(args)
    started = time.perf_counter()
    results = run(data_dir, args.folds, args.lead_sets, args.variants, settings, args.split, args.repeats, args.save)
    results["seconds"] = round(time.perf_counter() - started, 1)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2, default=float))
    print(f"cross-validation done in {results['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
