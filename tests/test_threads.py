"""A busy machine gets fewer intra-op threads (and one warning), never more than the idle cores."""

from __future__ import annotations

import logging
from pathlib import Path

from ecgserve import device


def test_busy_machine_leaves_other_jobs_their_cores(monkeypatch, caplog):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(device, "CGROUP_CPU_MAX", Path("/nonexistent"))
    monkeypatch.setattr(device.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    device._warn_busy.cache_clear()
    caplog.set_level(logging.WARNING, logger=device.log.name)
    monkeypatch.setattr(device, "busy_cores", lambda: 0)
    assert device.default_threads() == 4 and not caplog.records
    monkeypatch.setattr(device, "busy_cores", lambda: 1)
    assert device.default_threads() == 3
    monkeypatch.setattr(device, "busy_cores", lambda: 6)
    assert device.default_threads() == 1
    assert device.default_threads() == 1
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2 and "busy" in warnings[0] and "ECG_THREADS" in warnings[0]
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's word wins
    assert device.default_threads() == 3


def test_busy_cores_counts_other_runnable_tasks_now(monkeypatch, tmp_path):
    loadavg = tmp_path / "loadavg"
    loadavg.write_text("3.90 2.00 1.00 3/120 4242\n")  # 3 runnable, one of them this reader
    monkeypatch.setattr(device, "LOADAVG", loadavg)
    assert device.busy_cores(samples=2) == 2
    loadavg.write_text("3.90 2.00 1.00 1/120 4242\n")  # the minute's load lingers; nothing else runs now
    assert device.busy_cores(samples=2) == 0
    monkeypatch.setattr(device, "LOADAVG", tmp_path / "absent")
    monkeypatch.setattr(device.os, "getloadavg", lambda: (2.6, 1.0, 1.0))
    assert device.busy_cores() == 3
