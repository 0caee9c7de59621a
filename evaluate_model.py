#!/usr/bin/env python
"""Score model outputs as the PhysioNet/CinC Challenge 2021 does.

Usage: python evaluate_model.py LABELS OUTPUTS [scores.csv [class_scores.csv]] [--plots DIR]

LABELS holds the header files (``#Dx:`` or ``# Dx:`` lines), OUTPUTS one ``<record>.csv`` per
header, in the same subfolder (as test_model.py writes them; subfolders are searched, hidden ones
skipped). Output files without a label file are not scored (as by the official scorer) and are
named in one ``warning:`` line on stderr. Prints the official progress lines; the score table goes to stdout, or to scores.csv
when given (and the per-class table to class_scores.csv). ``weights.csv`` is read from beside
this script, wherever it is run from. The work is done by :func:`ecgscore.files.evaluate`.

A missing LABELS or OUTPUTS folder, a missing output file, or an output file that cannot be read
(not UTF-8 text, fewer than four lines, fewer values than classes) stops the run with one
``error: <file>: <problem>`` line on stderr and exit status 2, instead of a traceback (the official
scorer stops on these too, with a Python exception). On readable files the printed output is
byte-identical to the official scorer's.

``--plots DIR`` (optional) also writes per-class figures there (:mod:`ecgreport.evaluation`);
without it the output is the official scorer's, byte for byte.
"""

from __future__ import annotations

import os
import sys

from ecgscore.files import Scores, evaluate, unmatched_outputs

USAGE = "Usage: python evaluate_model.py LABELS OUTPUTS [scores.csv [class_scores.csv]] [--plots DIR]"


def write_results(scores: Scores, argv: list[str]) -> None:
    """Print the score text, or write it (and the class text) to the files named in ``argv``."""
    if len(argv) == 2:
        print(scores.score_text())
        return
    with open(argv[2], "w") as file:
        file.write(scores.score_text())
    if len(argv) == 4:
        with open(argv[3], "w") as file:
            file.write(scores.class_text())


def split_plots(argv: list[str]) -> tuple[list[str], str | None]:
    """``argv`` without ``--plots DIR``, and DIR (None when absent); ``--plots`` without DIR -> [] (a usage error)."""
    if "--plots" not in argv:
        return argv, None
    at = argv.index("--plots")
    if at + 1 >= len(argv):
        return [], None
    return argv[:at] + argv[at + 2 :], argv[at + 1]


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (2 on a usage error)."""
    argv, plot_dir = split_plots(sys.argv[1:] if argv is None else argv)
    if len(argv) not in (2, 3, 4) or any(arg in ("-h", "--help") for arg in argv):
        print(USAGE, file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    for folder, what in ((argv[0], "label"), (argv[1], "output")):
        if not os.path.isdir(folder):
            print(f"error: {folder}: {what} folder not found", file=sys.stderr)
            return 2
    try:
        scores = evaluate(argv[0], argv[1], progress=print)
        write_results(scores, argv)
        extra = unmatched_outputs(argv[0], argv[1])
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if extra:
        named = ", ".join(extra[:5]) + (f" (and {len(extra) - 5} more)" if len(extra) > 5 else "")
        print(f"warning: {len(extra)} output file(s) have no label file and are not scored: {named}", file=sys.stderr)
    if plot_dir is not None:
        from ecgreport.evaluation import write_evaluation_plots

        write_evaluation_plots(argv[0], argv[1], plot_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
