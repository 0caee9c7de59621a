"""Where the network runs and on how many threads.

torch's default intra-op pool is as wide as the machine; next to one other job on a shared
machine, that oversubscription made a demo epoch go from 9 s to 100-150 s. So training and
inference both size the pool from the cores this process may actually use (CPU affinity and a
cgroup quota), capped, and one thread per process when several worker processes share the cores.
torch itself is imported only when a function needs it, so importing this module stays cheap.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

#: More intra-op threads than this rarely speeds up networks of this size and costs other jobs.
MAX_THREADS = 8
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
LOADAVG = Path("/proc/loadavg")


def available_cores() -> int:
    """Cores this process may run on: its CPU affinity, further bounded by a cgroup v2 CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        quota, period = CGROUP_CPU_MAX.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def busy_cores(samples: int = 5) -> int:
    """Cores other jobs keep busy right now: the runnable tasks of ``/proc/loadavg`` less this reader,
    averaged over a few samples 20 ms apart (the load averages lag by a minute and would count the work
    that just ended, e.g. our own training before inference); the 1-minute load average elsewhere."""
    counts = []
    try:
        for k in range(samples):
            if k:
                time.sleep(0.02)
            counts.append(int(LOADAVG.read_text().split()[3].split("/")[0]) - 1)
        return max(0, round(sum(counts) / len(counts)))
    except (OSError, ValueError, IndexError):
        pass
    try:
        return max(0, round(os.getloadavg()[0]))
    except (AttributeError, OSError):
        return 0


@functools.cache
def _warn_busy(load: int, cores: int, threads: int) -> None:
    log.warning(
        "the machine is busy (load %d on %d usable cores): torch uses %d thread(s) to leave the others their "
        "cores; expect slower training and inference (ECG_THREADS sets the count)",
        load,
        cores,
        threads,
    )


def default_threads(workers: int = 1) -> int:
    """Intra-op threads when none are set: ``OMP_NUM_THREADS`` if the user set it, else the available
    cores capped at :data:`MAX_THREADS`, less the cores other jobs keep busy (with a warning, once);
    1 when ``workers`` processes run side by side.

    A spin-waiting intra-op pool wider than the idle cores is what made a busy laptop 10-30 times
    slower, so a busy machine gets fewer threads, not more. Results do not depend on the count
    beyond floating-point rounding; set ``ECG_THREADS`` for runs that must match bit for bit.
    """
    if workers > 1:
        return 1
    from_env = os.environ.get("OMP_NUM_THREADS", "")
    if from_env.isdigit() and int(from_env) > 0:
        return int(from_env)
    cores = available_cores()
    threads = min(cores, MAX_THREADS)
    load = busy_cores()
    if load > 0 and threads > 1 and load + threads > cores:
        threads = max(1, min(threads, cores - load))
        _warn_busy(load, cores, threads)
    return threads


def apply_threads(threads: int = 0, workers: int = 1) -> int:
    """Set torch's intra-op pool to ``threads`` (0: :func:`default_threads`); returns the number used."""
    import torch

    count = threads if threads > 0 else default_threads(workers)
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    log.debug("torch uses %d intra-op thread(s)", count)
    return count


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; an explicit ``cuda`` without a GPU is an error, not a silent CPU run."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but no CUDA GPU is available")
    return device


def check_device(name: object) -> None:
    """Refuse, with a ValueError saying why, a device name torch does not know or a device this machine lacks
    (``cuda`` without a GPU, ``cuda:3`` on a machine with two), so a run fails before it reads any record."""
    import torch

    if name == "auto":
        return
    if not isinstance(name, str):
        raise ValueError(f"device {name!r} is not a name; expected auto, cpu, cuda or cuda:N")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ValueError(f"unknown device {name!r}; expected auto, cpu, cuda or cuda:N") from None
    if device.type == "cpu" or (device.type == "mps" and torch.backends.mps.is_available()):
        return
    if device.type != "cuda":
        raise ValueError(f"device {name!r} is not supported; expected auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but no CUDA GPU is available")
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"device {name!r} requested but this machine has {torch.cuda.device_count()} GPU(s)")


def seed_everything(seed: int) -> None:
    """Seed torch (and CUDA, made deterministic) so the same seed trains the same network."""
    import torch

    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
