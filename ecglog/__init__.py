"""Logging and progress reporting for long runs (training, preparation, test_model)."""

from ecglog.progress import Progress, progress

__all__ = ["Progress", "progress"]
