"""The package installs with pip (not only editable) and works from outside the repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_pip_install_gives_importable_package_data_and_console_scripts(tmp_path):
    source = tmp_path / "src"
    shutil.copytree(
        ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__", ".*")
    )
    target = tmp_path / "site"
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            ".",
        ],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr
    # No generic top-level name: a user's own training/, scoring.py or team_code.py neither shadows ours nor is
    # shadowed; models/ is the one exception (the Challenge layout's folder of networks). The Challenge files
    # at the root run from the checkout and are not installed (an installed team_code would stand in for
    # another team's).
    installed = {path.name.removesuffix(".py") for path in target.iterdir()} - {"bin", "__pycache__"}
    installed = {name for name in installed if not name.endswith(".dist-info")}
    assert sorted(name for name in installed if not name.startswith("ecg")) == ["models"]
    assert {"ecgserve", "ecgtrain", "ecgscore", "ecgplot", "ecgsignal"} <= installed
    code = (
        "from ecgscore.classes import scoring_weights; import ecgdata.ptbxl as p, ecgserve.predictor;"
        "assert scoring_weights().shape == (26, 26) and p.MAPPING_FILE.is_file(); print('ok')"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr
    scripts = {path.name for path in (target / "bin").iterdir()}
    assert {
        "ecg-delineate",
        "ecg-plot",
        "ecg-report",
        "ecg-index",
        "ecg-signal",
        "ecg-ptbxl",
        "ecg-synthetic",
        "ecg-classify",
        "ecg-export",
    } <= scripts
    helped = subprocess.run(
        [str(target / "bin" / "ecg-plot"), "--help"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert helped.returncode == 0 and "usage" in helped.stdout
