"""Benchmarks are leaf scripts: the tests, like the library (import-linter's contract), never import them."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_no_test_imports_benchmarks():
    pattern = re.compile(r"^\s*(from benchmarks[.\s]|import benchmarks\b)", re.MULTILINE)
    offenders = [path.name for path in sorted(TESTS.glob("*.py")) if pattern.search(path.read_text(encoding="utf-8"))]
    assert offenders == []


def test_the_wheel_installs_no_generic_top_level_name(tmp_path):
    """A user's own ``training/``, ``scoring.py`` or ``team_code.py`` must not be shadowed by ours, nor shadow
    ours: every installed top-level name starts with ``ecg``, but for ``models`` (the Challenge layout's
    folder of networks, kept as an import name)."""
    import subprocess
    import sys
    import zipfile

    root = TESTS.parent
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(root),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = tmp_path.glob("ecg_leads-*.whl")
    names = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    top_level = {name.removesuffix(".py") for name in names if not name.endswith(".dist-info")}
    assert top_level, "the wheel holds no package"
    assert sorted(name for name in top_level if not name.startswith("ecg")) == ["models"]
    assert {"ecgserve", "ecgtrain", "ecgscore", "ecgplot"} <= top_level
