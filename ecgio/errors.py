"""The one error type for unreadable records: it always names the file."""

from __future__ import annotations

from pathlib import Path


class RecordError(ValueError):
    """A record that cannot be read; ``str()`` is ``'<path>: <problem>'``."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
