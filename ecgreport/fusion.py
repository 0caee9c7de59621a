#!/usr/bin/env python
"""Why (and whether) fusing the raw and PQRST branches helps, from saved cross-validation predictions.

Usage:
    python benchmarks/cross_validate.py --real --folds 3 --repeats 2 --lead-sets 12 \\
        --variants raw features both --save cv/                 # trains; saves every fold's predictions
    python benchmarks/fusion_report.py cv/   (or python -m ecgreport.fusion) [--lead-sets 12 6 4 3 2] [--out fusion.json]   # no training

For every lead set, every saved variant (``raw``, ``features``, ``both``, ...) and every outer fold
(all repeats), from the held-out predictions and the inner out-of-fold ones saved beside them:

* the held-out scores at the fold's thresholds (as cross_validate reports them), and at thresholds
  tuned on the held-out records themselves ("oracle"): when a variant ranks well (AUROC) but loses
  at its own thresholds, its thresholds are at fault, not its network;
* calibration of the held-out probabilities: expected calibration error (10 equal-width bins over
  every record x class) and Brier score;
* per class: held-out AUROC and F-measure of each variant (mean over folds);
* the fused head's branch shares (``both``: how much of its first layer reads each branch);
* ``stacked`` (what ``fusion: stacked`` trains, reconstructed exactly from the saved ``raw`` and
  ``features`` folds: the same networks, weights fitted on their inner out-of-fold predictions by
  each rule of :mod:`ecgtrain.stacking`, thresholds tuned on the mixed ones), and ``stacked3`` (raw,
  features and both).

Every difference is also given paired, fold by fold, against the best single-branch variant, with
the SD of the paired differences: on a few hundred records a difference of 0.01 is noise.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ecgscore.classes import ABBREVIATIONS
from ecgscore.metric import auc, f_measure
from ecgserve.blending import mix
from ecgserve.decision import decide
from ecgtrain.evaluation import evaluate_probabilities
from ecgtrain.settings import Settings
from ecgtrain.stacking import fit_weights
from ecgtrain.tasks import challenge2021
from ecgtrain.thresholds import tune_as

#: Stacked variants: name -> (weight rule, saved variants mixed).
STACKS = {
    "stacked": ("global", ("raw", "features")),
    "stacked_per_class": ("per_class", ("raw", "features")),
    "stacked3": ("global", ("raw", "features", "both")),
    "stacked_features_both": ("global", ("features", "both")),
    # with the features member (``trees``), blended in a second stage as training does (add_features_member)
    "both+trees": ("global", ("both", "trees")),
    "stacked_features_both+trees": ("global", ("features", "both", "trees")),
}
SINGLE = ("raw", "features", "trees")  # one input route each: raw signal, PQRST network, PQRST trees
#: Measures compared fold by fold against the best single-branch variant on that measure.
PAIRED = ("challenge_metric", "auroc", "f_measure")


def load_folds(folder: Path) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """variant -> fold name -> saved arrays, for one lead set's folder."""
    out: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for variant_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        # a run with --repeats 1 names its folds "fold-K": the same split as "repeat-1-fold-K" of a repeated run
        out[variant_dir.name] = {
            (path.stem if path.stem.startswith("repeat-") else f"repeat-1-{path.stem}"): dict(
                np.load(path, allow_pickle=False)
            )
            for path in sorted(variant_dir.glob("*.npz"))
        }
    return out


def calibration(labels: np.ndarray, probabilities: np.ndarray, bins: int = 10) -> dict[str, float]:
    """Expected calibration error over every record x class, and the Brier score."""
    p, y = probabilities.ravel(), labels.ravel().astype(float)
    which = np.minimum((p * bins).astype(int), bins - 1)
    ece = sum(
        abs(p[which == b].mean() - y[which == b].mean()) * (which == b).mean()
        for b in range(bins)
        if (which == b).any()
    )
    return {"ece": float(ece), "brier": float(np.mean((p - y) ** 2))}


def fold_scores(
    labels: np.ndarray, probabilities: np.ndarray, thresholds: np.ndarray, settings: Settings
) -> dict[str, object]:
    """Held-out scores at the fold's thresholds, at oracle thresholds, calibration and per-class scores."""
    scores: dict[str, object] = dict(evaluate_probabilities(labels, probabilities, thresholds, settings.decision_rule))
    oracle = tune_as(labels, probabilities, settings)
    scores["oracle_challenge_metric"] = evaluate_probabilities(labels, probabilities, oracle, settings.decision_rule)[
        "challenge_metric"
    ]
    scores.update(calibration(labels, probabilities))
    scores["class_auroc"] = auc(labels, probabilities)[2]
    scores["class_f"] = f_measure(labels, decide(probabilities, thresholds, settings.decision_rule))[1]
    return scores


def stacked_fold(folds: dict[str, dict[str, np.ndarray]], rule: str, settings: Settings) -> dict[str, np.ndarray]:
    """One outer fold of a stack, rebuilt from its parts' saved folds (same records in the same order)."""
    first = folds[next(iter(folds))]
    for arrays in folds.values():
        if not (
            np.array_equal(arrays["test_names"], first["test_names"])
            and np.array_equal(arrays["oof_names"], first["oof_names"])
        ):
            raise ValueError("stacked parts were not saved from the same folds")
    task = challenge2021()
    networks = [arrays for name, arrays in folds.items() if name != "trees"]
    oof = [arrays["oof_probabilities"] for arrays in networks]
    test_parts = [arrays["test_probabilities"] for arrays in networks]
    if len(networks) > 1:
        weights = fit_weights(first["oof_labels"], oof, rule, task, settings)
        oof, test_parts = [mix(oof, weights)], [mix(test_parts, weights)]
    else:
        weights = np.ones((1, first["oof_labels"].shape[1]))
    if "trees" in folds:  # second stage: the networks' mix against the trees, one global weight
        trees = folds["trees"]
        second = fit_weights(first["oof_labels"], [oof[0], trees["oof_probabilities"]], "global", task, settings)
        oof = [mix([oof[0], trees["oof_probabilities"]], second)]
        test_parts = [mix([test_parts[0], trees["test_probabilities"]], second)]
        weights = np.concatenate([weights * second[0], second[1:]])
    mixed, test = oof[0], test_parts[0]
    thresholds = tune_as(first["oof_labels"], mixed, settings)
    parts = {key: value for key, value in first.items() if key != "branch_shares"}  # a part's head, not the stack's
    return {**parts, "test_probabilities": test, "thresholds": thresholds, "weights": weights}


def lead_set_report(folder: Path, settings: Settings) -> dict[str, object]:
    """Every variant's fold scores (saved and stacked) and their summaries for one lead set."""
    saved = load_folds(folder)
    for name, (rule, parts) in STACKS.items():
        if all(part in saved for part in parts):
            common = set.intersection(*(set(saved[part]) for part in parts))
            if not common:
                continue
            saved[name] = {
                fold: stacked_fold({p: saved[p][fold] for p in parts}, rule, settings) for fold in sorted(common)
            }
    per_variant: dict[str, dict[str, dict[str, Any]]] = {}
    for variant, folds in saved.items():
        per_variant[variant] = {
            fold: fold_scores(a["test_labels"], a["test_probabilities"], a["thresholds"], settings)
            for fold, a in folds.items()
        }
    report: dict[str, object] = {"variants": {}}
    singles = [v for v in SINGLE if v in per_variant]
    # The best single branch on each measure (the raw network may rank first on one and last on another).
    best_single = {
        key: max(singles, key=lambda v: np.mean([s[key] for s in per_variant[v].values()])) if singles else None
        for key in PAIRED
    }
    for variant, folds in per_variant.items():
        names = sorted(folds)
        summary: dict[str, object] = {}
        for key in ("challenge_metric", "auroc", "f_measure", "oracle_challenge_metric", "ece", "brier"):
            values = np.array([folds[f][key] for f in names], dtype=float)
            summary[key] = float(values.mean())
            summary[key + "_sd"] = float(values.std())
        for key, best in best_single.items():
            if best is None or variant == best:
                continue
            paired = [f for f in names if f in per_variant[best]]
            if paired:
                difference = np.array([folds[f][key] - per_variant[best][f][key] for f in paired], dtype=float)
                summary[key + "_vs_best_single"] = float(difference.mean())
                summary[key + "_vs_best_single_sd"] = float(difference.std())
                summary[key + "_vs_best_single_folds"] = len(paired)
        summary["folds"] = len(names)
        with warnings.catch_warnings():  # a class without positives in any fold has no AUROC: NaN, no warning
            warnings.simplefilter("ignore", RuntimeWarning)
            summary["class_auroc"] = np.nanmean([folds[f]["class_auroc"] for f in names], axis=0).tolist()
            summary["class_f"] = np.nanmean([folds[f]["class_f"] for f in names], axis=0).tolist()
        if "weights" in saved[variant][names[0]]:
            summary["stack_weights"] = np.mean(
                [saved[variant][f]["weights"].mean(axis=1) for f in names], axis=0
            ).tolist()
        shares = [saved[variant][f].get("branch_shares") for f in names]
        present = [s for s in shares if s is not None and s.size]
        if shares and len(present) == len(shares):
            summary["branch_shares"] = np.concatenate(present).mean(axis=0).tolist()
        report["variants"][variant] = summary  # type: ignore[index]
    report["best_single"] = best_single
    labels = saved[next(iter(saved))]
    report["positives"] = np.sum([a["test_labels"].sum(axis=0) for a in labels.values()], axis=0).tolist()
    return report


def _paired(summary: dict, key: str) -> str:
    """'+d ± sd' of the paired fold differences against the best single branch, '-' for that branch itself."""
    if key + "_vs_best_single" not in summary:
        return "-"
    return f"{summary[key + '_vs_best_single']:+.3f} ± {summary[key + '_vs_best_single_sd']:.3f}"


def print_report(size: int, report: dict) -> None:
    variants = report["variants"]
    best = report["best_single"]
    print(
        f"\n## {size} leads (best single branch: {best['challenge_metric']} on the metric, {best['auroc']} on AUROC)\n"
    )
    print(
        "| variant | folds | Challenge metric | vs best single (paired) | AUROC | vs best single"
        " | at oracle thresholds | ECE | Brier |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, s in variants.items():
        print(
            f"| {name} | {s['folds']} | {s['challenge_metric']:.3f} ± {s['challenge_metric_sd']:.3f} | {_paired(s, 'challenge_metric')} "
            f"| {s['auroc']:.3f} ± {s['auroc_sd']:.3f} | {_paired(s, 'auroc')} | {s['oracle_challenge_metric']:.3f} "
            f"| {s['ece']:.3f} | {s['brier']:.4f} |"
        )
    for name, s in variants.items():
        if "stack_weights" in s:
            print(f"\n{name}: mean weights per part {', '.join(f'{w:.2f}' for w in s['stack_weights'])}", end="")
        if "branch_shares" in s:
            print(
                f"\n{name}: head branch shares raw/fiducial/tabular {', '.join(f'{w:.2f}' for w in s['branch_shares'])}",
                end="",
            )
    print("\n\nper class (held-out AUROC, mean over folds; positives summed over repeats; >= 10 shown):\n")
    shown = [v for v in ("raw", "features", "both", "stacked", "stacked_features_both") if v in variants]
    print("| class | positives | " + " | ".join(shown) + " |")
    print("|---|---|" + "---|" * len(shown))
    for j, label in enumerate(ABBREVIATIONS):
        if report["positives"][j] >= 10:
            values = " | ".join(f"{variants[v]['class_auroc'][j]:.3f}" for v in shown)
            print(f"| {label} | {report['positives'][j]} | {values} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("saved", type=Path, help="the --save folder of benchmarks/cross_validate.py")
    parser.add_argument("--lead-sets", type=int, nargs="+", default=[12, 6, 4, 3, 2])
    parser.add_argument("--out", type=Path, help="write every summary as JSON here")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    results = {}
    for size in args.lead_sets:
        folder = args.saved / f"{size}-lead"
        if not folder.is_dir():
            print(f"{folder}: no saved predictions, skipped", file=sys.stderr)
            continue
        results[size] = lead_set_report(folder, settings)
        print_report(size, results[size])
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
