#!/usr/bin/env python
"""Is a change better on hospitals the model never saw? Two settings, k-fold and leave-one-source-out, paired.

Usage:
    python benchmarks/compare_sources.py --data DIR [DIR ...] --candidate '{"diagnostic_criteria": "blend"}'
        [--baseline '{"diagnostic_criteria": "none"}'] [--variant trees] [--lead-sets 12 2] [--folds 5]
        [--splits kfold sources] [--candidate-device-copies] [--out results.json]

Both settings (the defaults, or ``ECG_SETTINGS``, each with its JSON overrides) are trained and scored on
exactly the same outer splits (:func:`benchmarks.cross_validate.outer_splits`): stratified k-fold, where
every source is in training and test alike, and leave-one-source-out, where the test records come from a
source absent from training, which is what the Challenge's hidden test sets are. Printed per split and lead
set: each setting's Challenge metric and macro AUROC, and the candidate-minus-baseline difference per fold
(held-out source) with its mean and standard deviation. A change that helps k-fold but not the held-out
sources has learned the training hospitals. Several ``--data`` folders are indexed together (records keep
the source their name says, :func:`ecgdata.index.source_of`). ``--candidate-device-copies`` (trees only)
trains the candidate's trees on each training record and a device-perturbed copy of it
(``benchmarks/device_copies.py``, written once under the work folder): the trees' device imitation.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks.cross_validate import LEAD_SETS_BY_SIZE, VARIANTS, held_out_scores, held_out_trees, outer_splits
from benchmarks.device_copies import write_copies
from ecgsignal.config import SignalConfig
from ecgtrain.data import LeadSetData, lead_set_data, read_dataset_index
from ecgtrain.settings import Settings, default_cache_dir

log = logging.getLogger("compare_sources")


def linked_folder(folders: list[Path], work: Path) -> Path:
    """One folder holding hard links to (or copies of) the records of ``folders``, each in its own subfolder
    (the index reads records recursively; a symbolic link would be refused as leaving the folder)."""
    if len(folders) == 1:
        return folders[0]
    for i, folder in enumerate(folders):
        for path in sorted(folder.rglob("*")):
            if not path.is_file():
                continue
            target = work / f"{i}-{folder.name}" / path.relative_to(folder)
            if target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, target)
            except OSError:
                shutil.copy2(path, target)
    return work


def score_splits(
    data, settings: Settings, variant: str, splits, copies: LeadSetData | None = None
) -> list[dict[str, float]]:
    """Challenge metric and AUROC of ``settings`` on each (train, test, name) split; ``copies``: the trees
    also train on these versions of their training records."""
    out = []
    for train, test, name in splits:
        if variant == "trees":
            scores, _, _ = held_out_trees(data, replace(settings, **VARIANTS[variant]), train, test, copies=copies)
        else:
            scores, _, _ = held_out_scores(data, replace(settings, **VARIANTS[variant]), train, test)
        out.append({"split": name, "records": len(test), **{k: scores[k] for k in ("challenge_metric", "auroc")}})
        log.info("%s: challenge %.3f AUROC %.3f", name, scores["challenge_metric"], scores["auroc"])
    return out


def paired_lines(split: str, size: int, base: list[dict], cand: list[dict]) -> list[str]:
    """The table a reader compares: per fold both scores and the difference, then mean ± SD of the differences."""
    lines = [f"{size}-lead, {split}:"]
    for metric in ("challenge_metric", "auroc"):
        diffs = np.array([c[metric] - b[metric] for b, c in zip(base, cand)])
        for b, c, d in zip(base, cand, diffs):
            lines.append(
                f"    {metric:<16} {b['split']:<28} {b['records']:>4} rec  {b[metric]:.3f} -> {c[metric]:.3f}  ({d:+.3f})"
            )
        lines.append(
            f"  {metric}: baseline {np.mean([b[metric] for b in base]):.3f}, candidate "
            f"{np.mean([c[metric] for c in cand]):.3f}, paired difference {diffs.mean():+.3f} ± {diffs.std():.3f}"
            f" over {len(diffs)} splits"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, nargs="+", required=True, help="folders of Challenge-format records")
    parser.add_argument("--baseline", default="{}", help="JSON overrides of the baseline settings")
    parser.add_argument("--candidate", required=True, help="JSON overrides of the candidate settings")
    parser.add_argument("--variant", default="trees", choices=sorted(VARIANTS))
    parser.add_argument("--lead-sets", type=int, nargs="+", default=[12, 2], choices=sorted(LEAD_SETS_BY_SIZE))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--splits", nargs="+", default=["kfold", "sources"], choices=["kfold", "sources"])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "ecg-compare-sources")
    parser.add_argument(
        "--candidate-device-copies",
        action="store_true",
        help="trees: the candidate also trains on a device-perturbed copy of each training record",
    )
    parser.add_argument("--out", type=Path, help="write every per-split score as JSON here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    base_settings = replace(Settings.from_env(), progress=False)
    settings = {
        "baseline": Settings.from_dict({**base_settings.to_dict(), **json.loads(args.baseline)}, "--baseline"),
        "candidate": Settings.from_dict({**base_settings.to_dict(), **json.loads(args.candidate)}, "--candidate"),
    }
    started = time.perf_counter()
    if args.candidate_device_copies and args.variant != "trees":
        parser.error("--candidate-device-copies trains trees only: use --variant trees")
    folder = linked_folder(args.data, args.work)
    table = read_dataset_index(folder, False)
    copy_table = None
    if args.candidate_device_copies:
        copies_folder = args.work.parent / f"{args.work.name}-device-copies"
        write_copies(folder, copies_folder, base_settings.seed)
        copy_table = read_dataset_index(copies_folder, False)
    sources, counts = np.unique(table.sources, return_counts=True)
    print("records per source: " + ", ".join(f"{s} {c}" for s, c in zip(sources, counts)), flush=True)
    results: dict = {
        "baseline": args.baseline,
        "candidate": args.candidate,
        "candidate_device_copies": args.candidate_device_copies,
        "variant": args.variant,
        "tables": {},
    }
    lines = []
    for size in args.lead_sets:
        config = SignalConfig.from_dict(base_settings.signal)
        cache = base_settings.cache_dir or default_cache_dir()
        data = lead_set_data(table, LEAD_SETS_BY_SIZE[size], config, cache, base_settings.n_jobs, False)
        copies = None
        if copy_table is not None:
            copies = lead_set_data(copy_table, LEAD_SETS_BY_SIZE[size], config, cache, base_settings.n_jobs, False)
        for split in args.splits:
            splits = outer_splits(data.targets, data.sources, args.folds, split, base_settings.seed)
            scored = {
                name: score_splits(data, s, args.variant, splits, copies if name == "candidate" else None)
                for name, s in settings.items()
            }
            results["tables"][f"{size}-lead/{split}"] = scored
            block = paired_lines(split, size, scored["baseline"], scored["candidate"])
            print("\n".join(block), flush=True)
            lines += block
    copied = " + device copies" if args.candidate_device_copies else ""
    print(f"\nbaseline {args.baseline} vs candidate {args.candidate}{copied} ({args.variant}):")
    print("\n".join(line for line in lines if not line.startswith("    ")))
    print(f"compared in {time.perf_counter() - started:.0f} s")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
