"""The real shared records as one Challenge-format training folder, for benchmarks and the model zoo.

../shared/data holds 25 Challenge records and 353 PTB-XL records in PTB-XL's own WFDB format
(labels in ptbxl_database.csv). The PTB-XL ones are imported with :mod:`ecgdata.ptbxl` (the
importer is resumable, so a second call costs only the verification) next to copies of the
Challenge ones: 378 labelled records in all.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
from pathlib import Path

from ecgdata.ptbxl import convert

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
log = logging.getLogger(__name__)
#: Where ``--real`` imports the shared records unless ``--work`` says otherwise (reused between runs).
DEFAULT_WORK = Path(tempfile.gettempdir()) / "ecg-real-data"


def real_training_folder(work: str | Path, jobs: int = 2) -> Path:
    """``work/ptbxl`` (imported PTB-XL sample) + ``work/cinc`` (Challenge sample); returns ``work``."""
    work = Path(work)
    if not SHARED.is_dir():
        raise SystemExit(f"{SHARED}: the shared real data is not there; run from a checkout beside ../shared")
    cinc = work / "cinc"
    cinc.mkdir(parents=True, exist_ok=True)
    for path in sorted((SHARED / "cinc2021-sample").iterdir()):
        if path.suffix in {".hea", ".mat"} and not (cinc / path.name).exists():
            shutil.copy2(path, cinc / path.name)
    summary = convert(SHARED / "ptb-xl-sample", work / "ptbxl", rate=500, jobs=jobs, progress=False)
    log.info("PTB-XL sample: %s", summary.line())
    return work


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """The data a command runs on: ``--data DIR`` (Challenge-format records) or ``--real`` (the shared
    records, imported into ``--work``); one of the two is required."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="folder of Challenge-format records")
    source.add_argument("--real", action="store_true", help="the real shared records (imported into --work)")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help=f"folder for --real (default {DEFAULT_WORK})")


def data_folder(args: argparse.Namespace) -> Path:
    """The records folder :func:`add_data_arguments` asked for (``--real``: imported now, or verified)."""
    return real_training_folder(args.work) if args.real else Path(args.data)
