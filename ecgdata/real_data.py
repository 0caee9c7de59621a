"""The real shared records as one Challenge-format training folder, for benchmarks and the model zoo.

../shared/data holds 25 Challenge records and 353 PTB-XL records in PTB-XL's own WFDB format
(labels in ptbxl_database.csv). The PTB-XL ones are imported with :mod:`ecgdata.ptbxl` (the
importer is resumable, so a second call costs only the verification) next to copies of the
Challenge ones: 378 labelled records in all.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from ecgdata.ptbxl import convert

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
log = logging.getLogger(__name__)


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
