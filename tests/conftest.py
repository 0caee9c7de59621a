"""Shared fixtures: the real records in ../shared/data, skipped with a reason when absent."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
CINC_SAMPLE = SHARED_DATA / "cinc2021-sample"
PTBXL_SAMPLE = SHARED_DATA / "ptb-xl-sample"
#: How many Challenge records the ``records`` fixture copies.
FEW_RECORDS = 4


def _require(path: Path) -> Path:
    if not path.is_dir():
        pytest.skip(f"real data not found at {path} (the ../shared folder beside the repository is absent)")
    return path


@pytest.fixture(scope="session")
def cinc_dir() -> Path:
    """../shared/data/cinc2021-sample: 25 Challenge-format records (.hea + .mat)."""
    return _require(CINC_SAMPLE)


@pytest.fixture(scope="session")
def ptbxl_dir() -> Path:
    """../shared/data/ptb-xl-sample: 353 PTB-XL records (WFDB, 100 and 500 Hz) and their tables."""
    return _require(PTBXL_SAMPLE)


def cinc_headers() -> list[Path]:
    """Every header of the Challenge sample, for parametrised tests (empty when the data is absent)."""
    return sorted(CINC_SAMPLE.glob("*.hea")) if CINC_SAMPLE.is_dir() else []


def copy_records(source: Path, out: Path) -> Path:
    """A copy of the Challenge records (``.hea`` + ``.mat``) of ``source`` in ``out`` (created), so a test may
    add, damage or edit files without touching ../shared; returns ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        if path.suffix in {".hea", ".mat"}:
            shutil.copy2(path, out / path.name)
    return out


def train_tiny_model(data: Path, work: Path, **overrides) -> Path:
    """A one-epoch I-II model of a tiny PQRST network (2 folds, with the trees) trained on ``data`` into
    ``work/model`` (cache in ``work/cache``), for tests of what a saved model stores and applies."""
    from ecgtrain.settings import Settings
    from ecgtrain.workflow import train_all

    tiny = {"raw_widths": [4, 8], "fiducial_widths": [4, 4], "rnn_hidden": 4, "tabular_hidden": 4, "head_hidden": 8}
    values = {
        "epochs": 1,
        "batch_size": 8,
        "n_jobs": 1,
        "progress": False,
        "lead_sets": [["I", "II"]],
        "folds": 2,
        "fusion": "joint",
        "branches": ["fiducial", "tabular"],
        "model_kwargs": tiny,
        "cache_dir": str(work / "cache"),
    }
    train_all(data, work / "model", Settings.from_dict({**values, **overrides}))
    return work / "model"


@pytest.fixture()
def records(cinc_dir: Path, tmp_path: Path) -> list[Path]:
    """Headers of copies of the first :data:`FEW_RECORDS` Challenge records in ``tmp_path/records`` (so
    tests may edit them); the cache tests' records."""
    folder = tmp_path / "records"
    folder.mkdir()
    out = []
    for header in sorted(cinc_dir.glob("*.hea"))[:FEW_RECORDS]:
        shutil.copy2(header, folder / header.name)
        shutil.copy2(header.with_suffix(".mat"), folder / header.with_suffix(".mat").name)
        out.append(folder / header.name)
    return out
