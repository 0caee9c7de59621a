"""Command line: figures that show a model's work.

::

    python -m ecgreport record MODEL RECORD -o record.png [--target AF] [--method ig|attention] [--dpi 150]
    python -m ecgreport training MODEL -o training.png
    python -m ecgreport evaluation LABELS OUTPUTS -o PLOT_DIR
    python -m ecgreport html MODEL -o report.html [--labels LABELS --outputs OUTPUTS] [--record RECORD ...]

A failure is reported on stderr as ``error: <problem>`` (naming the file) with exit status 1;
usage errors exit with 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

log = logging.getLogger(__name__)


def _record(args: argparse.Namespace) -> None:
    from ecgreport.record import explain_to_png

    method = {"ig": "integrated gradients", "attention": "attention"}[args.method]
    explain_to_png(args.model, args.record, args.output, args.target, args.seconds, args.dpi, method)


def _training(args: argparse.Namespace) -> None:
    from ecgreport.training import training_to_png

    training_to_png(args.model, args.output, dpi=args.dpi)


def _evaluation(args: argparse.Namespace) -> None:
    from ecgreport.evaluation import write_evaluation_plots

    write_evaluation_plots(args.labels, args.outputs, args.output, dpi=args.dpi)


def _html(args: argparse.Namespace) -> None:
    from ecgreport.html import write_report

    write_report(
        args.output, args.model, label_folder=args.labels, output_folder=args.outputs, records=args.record or ()
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ecgreport", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("record", help="why this record got its labels: ECG paper, attribution, classes, intervals")
    r.add_argument("model")
    r.add_argument("record")
    r.add_argument("-o", "--output", required=True)
    r.add_argument("--target", help="class to explain (abbreviation or code); default: the top predicted one")
    r.add_argument(
        "--method",
        choices=("ig", "attention"),
        default="ig",
        help="integrated gradients, or the raw branch's attention",
    )
    r.add_argument("--seconds", type=float, default=10.0)
    r.add_argument("--dpi", type=int, default=150)
    r.set_defaults(run=_record)
    t = sub.add_parser("training", help="loss, validation metric and thresholds of every lead set")
    t.add_argument("model")
    t.add_argument("-o", "--output", required=True)
    t.add_argument("--dpi", type=int, default=150)
    t.set_defaults(run=_training)
    e = sub.add_parser("evaluation", help="per-class plots of an evaluation (as evaluate_model.py --plots)")
    e.add_argument("labels")
    e.add_argument("outputs")
    e.add_argument("-o", "--output", required=True, help="folder for the PNG files")
    e.add_argument("--dpi", type=int, default=120)
    e.set_defaults(run=_evaluation)
    h = sub.add_parser("html", help="one self-contained HTML report")
    h.add_argument("model")
    h.add_argument("-o", "--output", required=True)
    h.add_argument("--labels", help="header folder of an evaluation run (with --outputs)")
    h.add_argument("--outputs", help="output folder of an evaluation run (with --labels)")
    h.add_argument("--record", action="append", help="a record to explain (repeatable)")
    h.set_defaults(run=_html)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        args.run(args)
    except (ValueError, OSError, KeyError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


__all__ = ["main", "parser"]
