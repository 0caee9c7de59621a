"""Progress of long loops: a tqdm bar on a terminal, a periodic log line everywhere else.

A carriage-return progress bar written to a file or a CI log becomes thousands of bar fragments.
When standard error is not a terminal, :class:`Progress` instead logs one line every
``ECG_PROGRESS_SECONDS`` seconds (default 5) with the count, rate and time left, and one
summary line at the end.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger("progress")

#: Seconds between progress lines when the output is not a terminal.
DEFAULT_INTERVAL = 5.0


def _interval() -> float:
    try:
        return max(float(os.environ.get("ECG_PROGRESS_SECONDS", DEFAULT_INTERVAL)), 0.0)
    except ValueError:
        return DEFAULT_INTERVAL


def is_terminal() -> bool:
    """Whether progress bars can redraw in place (standard error is a terminal)."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class Progress(Generic[T]):
    """Iterate over ``iterable`` while reporting progress; ``set_postfix`` adds ``key=value`` text."""

    def __init__(
        self,
        iterable: Iterable[T],
        desc: str = "",
        total: int | None = None,
        unit: str = "it",
        enabled: bool = True,
        leave: bool = True,
        terminal: bool | None = None,
        may_stop_early: bool = False,
    ) -> None:
        self.iterable, self.desc, self.unit, self.enabled = iterable, desc, unit, enabled
        self.may_stop_early = may_stop_early
        if total is None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.total = total
        self.count = 0
        self.postfix = ""
        self._bar: Any = None
        self._started = time.perf_counter()
        self._last = self._started
        self._closed = False
        if enabled and (is_terminal() if terminal is None else terminal):
            from tqdm.auto import tqdm

            bar_desc = f"{desc} (at most)" if may_stop_early else desc
            self._bar = tqdm(iterable, desc=bar_desc, total=total, unit=unit, leave=leave)

    def __iter__(self) -> Iterator[T]:
        if self._bar is not None:
            yield from self._bar
            return
        for item in self.iterable:
            yield item
            self.count += 1
            if self.enabled and time.perf_counter() - self._last >= _interval():
                self._last = time.perf_counter()
                log.info("%s", self.line())
        self.close()

    def set_postfix(self, **values: Any) -> None:
        self.postfix = ", ".join(f"{key}={value}" for key, value in values.items())
        if self._bar is not None:
            self._bar.set_postfix(**values)

    def line(self) -> str:
        """``desc: count/total unit (pct), rate, time left[, postfix]``."""
        elapsed = max(time.perf_counter() - self._started, 1e-9)
        rate = self.count / elapsed
        parts = [f"{self.desc}: {self.count}" + (f"/{self.total}" if self.total else "") + f" {self.unit}"]
        if self.total:
            parts[0] += f" ({100.0 * self.count / self.total:.0f}%)"
        parts.append(f"{rate:.1f} {self.unit}/s")
        if self.total and rate > 0 and self.count < self.total:
            left = f"{(self.total - self.count) / rate:.0f} s left"
            parts.append(f"at most {left} (may stop early)" if self.may_stop_early else left)
        if self.postfix:
            parts.append(self.postfix)
        return ", ".join(parts)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elif self.enabled and self.count:
            log.info("%s in %.1f s", self.line().split(", ")[0], time.perf_counter() - self._started)


def progress(
    iterable: Iterable[T],
    desc: str = "",
    total: int | None = None,
    unit: str = "it",
    enabled: bool = True,
    leave: bool = True,
    may_stop_early: bool = False,
) -> Progress[T]:
    """Shorthand for :class:`Progress` (same arguments). ``may_stop_early``: ``total`` is only an upper
    bound (early stopping), so the time left is reported as at most that."""
    return Progress(
        iterable, desc=desc, total=total, unit=unit, enabled=enabled, leave=leave, may_stop_early=may_stop_early
    )
