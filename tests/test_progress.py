"""ecglog.progress: periodic log lines instead of bar fragments when output is not a terminal."""

from __future__ import annotations

import logging

from ecglog.progress import Progress


def test_non_terminal_progress_logs_lines_and_a_summary(caplog, monkeypatch):
    monkeypatch.setenv("ECG_PROGRESS_SECONDS", "0")
    caplog.set_level(logging.INFO, logger="progress")
    bar = Progress(range(3), desc="work", unit="rec", terminal=False)
    bar.set_postfix(loss="0.5")
    assert list(bar) == [0, 1, 2]
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("work: 1/3 rec (33%)") and "loss=0.5" in lines[0]
    assert lines[-1].startswith("work: 3/3 rec (100%) in ")
    assert not any("\r" in line for line in lines)


def test_disabled_progress_is_silent(caplog, monkeypatch):
    monkeypatch.setenv("ECG_PROGRESS_SECONDS", "0")
    caplog.set_level(logging.INFO, logger="progress")
    assert list(Progress(iter([1, 2]), desc="quiet", enabled=False, terminal=False)) == [1, 2]
    assert not caplog.records


def test_early_stopping_loops_report_an_upper_bound(caplog, monkeypatch):
    monkeypatch.setenv("ECG_PROGRESS_SECONDS", "0")
    caplog.set_level(logging.INFO, logger="progress")
    bar = Progress(range(4), desc="train", unit="epoch", terminal=False, may_stop_early=True)
    for epoch in bar:
        if epoch == 1:
            break
    first = caplog.records[0].getMessage()
    assert "at most" in first and "may stop early" in first
