"""Benchmarks are leaf scripts: the tests, like the library (import-linter's contract), never import them."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_no_test_imports_benchmarks():
    pattern = re.compile(r"^\s*(from benchmarks[.\s]|import benchmarks\b)", re.MULTILINE)
    offenders = [path.name for path in sorted(TESTS.glob("*.py")) if pattern.search(path.read_text(encoding="utf-8"))]
    assert offenders == []
