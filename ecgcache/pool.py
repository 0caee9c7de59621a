"""Running :func:`ecgcache.worker.prepare_one` in worker processes so that a dead worker costs only its records.

A worker killed by the system (out of memory) or crashing in native code used to end the whole
training: joblib raises ``TerminatedWorkerError`` and every unfinished record is lost. Here the
parent keeps at most two tasks per worker in flight, so when the pool breaks it knows the few
records that may have killed it. Those are run again one at a time in a fresh pool (the others
simply go on): an innocent record then succeeds, and a record that kills its worker a second
time is reported as failed with a message saying so. The run itself never fails for it.

With ``n_jobs=1`` the records are prepared in this process (no pool to start, nothing to
survive: a crash there is this process's crash).
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from ecgcache import worker

log = logging.getLogger(__name__)

#: A record is given up after it was running this many times when its worker died.
MAX_WORKER_DEATHS = 2


def _workers(n_jobs: int, tasks: int) -> int:
    from joblib import effective_n_jobs

    return max(1, min(effective_n_jobs(n_jobs), tasks))


def _died(header: Path, deaths: int) -> dict:
    return {
        "ok": False,
        "error": f"{header}: the worker process preparing it died {deaths} times (killed by the system, "
        "e.g. out of memory, or crashed); record skipped",
    }


def prepare_records(
    headers: list[Path], leads: tuple[str, ...], config: Any, dtype: str, n_jobs: int
) -> Iterator[tuple[int, dict]]:
    """Yield ``(position, result of prepare_one)`` for every header, in completion order."""
    hook = worker.record_hook
    if n_jobs == 1:
        for i, header in enumerate(headers):
            yield i, worker.prepare_one(header, leads, config, dtype, hook)
        return
    workers = _workers(n_jobs, len(headers))
    queue, suspects = deque(range(len(headers))), deque[int]()
    deaths: Counter[int] = Counter()
    in_flight: dict[Future, int] = {}
    pools = _Pools(workers)

    def submit(i: int) -> None:
        try:
            future = pools.current.submit(worker.prepare_one, headers[i], leads, config, dtype, hook)
        except (BrokenProcessPool, RuntimeError):  # broke since the last wait: the next pool takes it
            future = pools.fresh().submit(worker.prepare_one, headers[i], leads, config, dtype, hook)
        in_flight[future] = i

    try:
        while queue or suspects or in_flight:
            if suspects:  # one at a time, so a death names its record
                if not in_flight:
                    submit(suspects.popleft())
            else:
                while queue and len(in_flight) < 2 * workers:
                    submit(queue.popleft())
            done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
            broken: list[int] = []
            for future in done:
                i = in_flight.pop(future)
                try:
                    yield i, future.result()
                except BrokenProcessPool:
                    broken.append(i)
                except Exception as error:  # the result could not come back (pickling, ...)
                    yield i, {"ok": False, "error": f"{headers[i]}: {type(error).__name__}: {error}"}
            if not broken:
                continue
            wait(list(in_flight))  # the broken pool fails every task it still held
            for future, i in list(in_flight.items()):
                del in_flight[future]
                if future.exception() is None:
                    yield i, future.result()
                else:
                    broken.append(i)
            log.warning(
                "a feature worker died while preparing one of %d records; retrying them one by one", len(broken)
            )
            for i in broken:
                deaths[i] += 1
                if deaths[i] >= MAX_WORKER_DEATHS:
                    result = _died(headers[i], deaths[i])
                    log.warning("skipping record: %s", result["error"])
                    yield i, result
                else:
                    suspects.append(i)
            pools.fresh()
    finally:
        for future in in_flight:
            future.cancel()
        pools.close()


class _Pools:
    """This call's own worker pool, replaced by a fresh one when it breaks.

    Its own, not loky's process-wide reusable executor: joblib's ``Parallel`` keeps extra state on
    that shared executor, and replacing it from here broke the next ``Parallel`` call in the process.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.current = self._start()

    def _start(self) -> Any:
        from joblib.externals.loky import ProcessPoolExecutor

        return ProcessPoolExecutor(max_workers=self.workers)

    def fresh(self) -> Any:
        self.current.shutdown(wait=False)
        self.current = self._start()
        return self.current

    def close(self) -> None:
        self.current.shutdown(wait=True)


__all__ = ["MAX_WORKER_DEATHS", "prepare_records"]
