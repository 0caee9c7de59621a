#!/usr/bin/env python
"""Cross-validated Challenge metric of the boosted trees alone (``ecgtrain.gbm``) for a few parameter sets.

Usage:
    python benchmarks/gbm_params.py --real [--folds 3] [--repeats 2] [--lead-sets 12]

The same outer folds as ``benchmarks/cross_validate.py`` (same seed); in each, the trees are trained on
the inner folds of the outer training records exactly as ``features_member: gbm`` trains them, the
thresholds are tuned on their inner out-of-fold probabilities, and the held-out fold is scored with the
mean of the inner fold models. No network is trained, so a parameter set costs seconds to minutes: this
is how :data:`ecgtrain.gbm.GBM_PARAMS` was chosen (docs/results/classification.md, "Features member").
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks.cross_validate import LEAD_SETS_BY_SIZE, inner_folds, outer_splits, summarise
from ecgsignal.config import SignalConfig
from ecgtrain.data import lead_set_data, read_dataset_index
from ecgtrain.evaluation import evaluate_probabilities
from ecgtrain.folds import fold_rows
from ecgtrain.gbm import GBM_PARAMS, gbm_params, train_forest
from ecgtrain.settings import Settings, default_cache_dir
from ecgtrain.stacking import record_gbm_inputs
from ecgtrain.tasks import get_task
from ecgtrain.thresholds import tune_as

#: The parameter sets compared (each changes GBM_PARAMS where it says). The first round varied one parameter
#: of the first choice (5 records per leaf); the second, after more regularisation helped, went further.
CANDIDATES: dict[str, dict] = {
    "leaf5": {"min_samples_leaf": 5},
    "leaf5_7_leaves": {"min_samples_leaf": 5, "max_leaf_nodes": 7},
    "leaf5_300_trees": {"min_samples_leaf": 5, "max_iter": 300},
    "leaf5_lr0.1": {"min_samples_leaf": 5, "learning_rate": 0.1},
    "leaf5_no_l2": {"min_samples_leaf": 5, "l2_regularization": 0.0},
    "leaf10": {},  # GBM_PARAMS as chosen
    "leaf10_7_leaves": {"max_leaf_nodes": 7},
    "leaf10_l2_3": {"l2_regularization": 3.0},
    "leaf20": {"min_samples_leaf": 20},
}
log = logging.getLogger("gbm_params")


def held_out(data, settings: Settings, params: dict, train: np.ndarray, test: np.ndarray) -> dict[str, float]:
    """Scores on ``test`` of the trees trained on the inner folds of ``train``."""
    task = get_task(settings.task)
    pairs = fold_rows(data, inner_folds(data, settings, train), train)
    inputs = record_gbm_inputs(data, np.arange(len(data)))
    forest, oof = train_forest(inputs, data.targets, pairs, params, settings.seed)
    oof_rows = np.concatenate([val for _, val in pairs])
    thresholds = tune_as(data.targets[oof_rows], oof, settings, task.scorer)
    probabilities = forest.probabilities(inputs[test])
    return evaluate_probabilities(data.targets[test], probabilities, thresholds, settings.decision_rule)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real", action="store_true", required=True, help="the real shared records")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "ecg-real-data")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--lead-sets", type=int, nargs="+", default=[12], choices=sorted(LEAD_SETS_BY_SIZE))
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from ecgdata.real_data import real_training_folder

    settings = replace(Settings.from_env(), progress=False)
    table = read_dataset_index(real_training_folder(args.work), progress=False)
    config = SignalConfig.from_dict(settings.signal)
    results: dict = {"base": GBM_PARAMS, "candidates": {}}
    for size in args.lead_sets:
        data = lead_set_data(
            table, LEAD_SETS_BY_SIZE[size], config, settings.cache_dir or default_cache_dir(), settings.n_jobs, False
        )
        splits = outer_splits(data.targets, data.sources, args.folds, "kfold", settings.seed, args.repeats)
        for name in args.candidates:
            params = gbm_params(CANDIDATES[name])
            per_fold = [held_out(data, settings, params, train, test) for train, test, _ in splits]
            summary = summarise(per_fold)
            results["candidates"][f"{size}-lead/{name}"] = {"params": params, "summary": summary, "folds": per_fold}
            print(
                f"{size:>2}-lead {name:<14} challenge {summary['challenge_metric']:.3f}±"
                f"{summary['challenge_metric_sd']:.3f}  AUROC {summary['auroc']:.3f}±{summary['auroc_sd']:.3f}"
                f"  F {summary['f_measure']:.3f}±{summary['f_measure_sd']:.3f}",
                flush=True,
            )
    if args.out:
        args.out.write_text(json.dumps(results, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
