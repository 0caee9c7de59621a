"""The model zoo's results table: one row per (task, lead set, architecture), as CSV, Markdown and a bar chart.

The architectures' own published numbers stand beside their rows, each with where it comes from. They were
measured on other data (full PTB-XL fold 10, or the Challenge's hidden test set), so they are a
reference, never a target these small-data rows should hit.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ecgio.files import atomic_write, atomic_write_with

#: (task, architecture) -> what its source published: text shown in the table.
_BENCHMARK = "PTB-XL benchmark, macro AUC, fold 10 (Strodthoff et al. 2021)"
_BENCHMARK_AUC = {
    "inception1d": {"all": ".925", "diagnostic": ".931", "subdiagnostic": ".930", "superdiagnostic": ".921",
                    "form": ".899", "rhythm": ".953"},
    "xresnet1d101": {"all": ".925", "diagnostic": ".937", "subdiagnostic": ".929", "superdiagnostic": ".928",
                     "form": ".896", "rhythm": ".957"},
    "resnet1d_wang": {"all": ".919", "diagnostic": ".936", "subdiagnostic": ".928", "superdiagnostic": ".930",
                      "form": ".880", "rhythm": ".946"},
}  # fmt: skip
_CHALLENGE_SEED001 = {"12": "-.28", "6": "-.44", "4": "-.33", "3": "-.31", "2": "-.46"}


def published(task: str, architecture: str, leads: int) -> str:
    """The source's own number for this row, with its source, or '' when the docs give none (the PTB-XL
    numbers are all 12-lead)."""
    if task != "challenge2021" and int(leads) != 12:
        return ""
    if task in _BENCHMARK_AUC.get(architecture, {}):
        return f"AUC {_BENCHMARK_AUC[architecture][task]} ({_BENCHMARK})"
    if task == "superdiagnostic" and architecture == "imle_net":
        return "AUC .9216, max F1 .8057 (macro-P/R F1, not Fmax) (IMLE-Net README, fold 10)"
    if task == "superdiagnostic" and architecture == "resconv_bilstm_attn":
        return "AUC 0.91, macro F1 0.74 (its authors' README)"
    if task == "challenge2021" and architecture == "seed001_cnn" and str(leads) in _CHALLENGE_SEED001:
        return f"Challenge metric {_CHALLENGE_SEED001[str(leads)]} (Challenge 2021 hidden test set, team heartMAASters)"
    return ""


COLUMNS = (
    "task", "leads", "architecture", "metric", "score", "low", "high", "second_metric", "second", "second_low",
    "second_high", "auprc", "f_measure", "params", "train_seconds", "epochs_run", "best_epoch",
    "infer_ms_per_record", "train_records", "test_records", "test_source", "published",
)  # fmt: skip


def _number(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, buffer.getvalue())


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    """The table as Markdown: score [95 % interval], second metric, size and cost, published number."""
    lines = [
        "| task | leads | architecture | score [95 % CI] | second [95 % CI] | AUPRC | F | params | train s |"
        " epochs (best) | ms/record | published (other data) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['task']} | {row['leads']} | `{row['architecture']}` | {row['metric']} {_number(row['score'])}"
            f" [{_number(row['low'])}, {_number(row['high'])}] | {row['second_metric']} {_number(row['second'])}"
            f" [{_number(row['second_low'])}, {_number(row['second_high'])}] | {_number(row['auprc'])} |"
            f" {_number(row['f_measure'])} | {row['params']:,} |"
            f" {_number(row['train_seconds'], 0)} | {row['epochs_run']} ({row['best_epoch']}) |"
            f" {_number(row['infer_ms_per_record'], 1)} | {row['published'] or ''} |"
        )
    return "\n".join(lines) + "\n"


def bar_chart(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """One panel per (task, lead set): each architecture's score with its bootstrap interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        panels.setdefault((row["task"], str(row["leads"])), []).append(row)
    figure, axes = plt.subplots(
        len(panels), 1, figsize=(8, 2.2 + 0.35 * max(len(v) for v in panels.values()) * len(panels)), squeeze=False
    )
    for axis, ((task, leads), members) in zip(axes[:, 0], panels.items()):
        names = [m["architecture"] for m in members]
        scores = [m["score"] if math.isfinite(m["score"]) else 0.0 for m in members]
        errors = [
            [max(s - m["low"], 0.0) if math.isfinite(m["low"]) else 0.0 for s, m in zip(scores, members)],
            [max(m["high"] - s, 0.0) if math.isfinite(m["high"]) else 0.0 for s, m in zip(scores, members)],
        ]
        axis.barh(names, scores, xerr=errors, color="tab:blue", capsize=3)
        axis.set_title(f"{task}, {leads} leads: {members[0]['metric']} (test), 95 % bootstrap interval", fontsize=9)
        axis.invert_yaxis()
        axis.tick_params(labelsize=8)
    figure.tight_layout()
    atomic_write_with(path, lambda stream: figure.savefig(stream, format="png", dpi=110))
    plt.close(figure)


def write_table(rows: Sequence[dict[str, Any]], out: Path) -> None:
    """results.csv, results.md and results.png in ``out``."""
    write_csv(rows, out / "results.csv")
    atomic_write(out / "results.md", markdown(rows))
    if rows:
        bar_chart(rows, out / "results.png")
