"""Preparing records for the network in K worker processes, each record's failure its own.

``PrepareWorkers(k)`` runs :func:`ecgserve.record_inputs.prepare_file` in a loky process pool
(k > 1) or in this process (k == 1, nothing to start). ``submit`` returns at once so the caller
can run the network on one chunk of records while the workers prepare the next; ``result`` waits
for one record. Each worker's numeric libraries get ``cores // k`` threads (at least one), so k
workers never ask for more threads than the machine has cores.

A worker killed by the system (out of memory on a long record) or crashing in native code breaks
the whole pool and every record in flight with it. Those records are run again one at a time in a
one-worker pool of their own: an innocent one then succeeds, and one that kills its worker again
is reported as failed, naming the cause. The run itself never stops for it.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from ecgserve.device import available_cores
from ecgserve.record_inputs import NetworkInput, RecordPreparer, prepare_file

log = logging.getLogger(__name__)

#: Environment variables that size the thread pools of numpy's BLAS and of OpenMP code in a worker.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
Result = tuple[NetworkInput | None, str]


@dataclass
class Job:
    """One record handed to the workers: its arguments, and its future (None when already done)."""

    args: tuple[str, str, RecordPreparer]
    future: Future | None = None
    pool: Any = None
    done: Result | None = None


class PrepareWorkers:
    """``submit`` records, ``result`` them in any order; ``close`` (or ``with``) stops the workers."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        self.threads = max(1, available_cores() // workers)
        self._pool: Any = None
        self._spare: Any = None  # one worker for records retried alone

    def __enter__(self) -> PrepareWorkers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _new_pool(self, workers: int) -> Any:
        from joblib.externals.loky import ProcessPoolExecutor

        env = {name: str(self.threads) for name in THREAD_VARIABLES}
        return ProcessPoolExecutor(max_workers=workers, env=env)

    def _current(self) -> Any:
        if self._pool is None:
            self._pool = self._new_pool(self.workers)
            log.debug("%d preparation worker(s), %d thread(s) each", self.workers, self.threads)
        return self._pool

    def _retire(self, pool: Any) -> None:
        """Drop a broken pool (if it is still the current one) so the next call starts a fresh one."""
        if pool is self._pool:
            self._pool.shutdown(wait=False)
            self._pool = None

    def submit(self, header_file: str, header_text: str, preparer: RecordPreparer) -> Job:
        """Start preparing one record (with one worker: prepare it now)."""
        job = Job((header_file, header_text, preparer))
        if self.workers == 1:
            job.done = prepare_file(*job.args)
        else:
            self._start(job)
        return job

    def _start(self, job: Job) -> None:
        pool = self._current()
        try:
            job.future, job.pool = pool.submit(prepare_file, *job.args), pool
        except (BrokenProcessPool, RuntimeError):  # the pool broke since the last call: a fresh one takes it
            self._retire(pool)
            pool = self._current()
            job.future, job.pool = pool.submit(prepare_file, *job.args), pool

    def result(self, job: Job) -> Result:
        """The record's input, or None and the reason it failed; never raises."""
        if job.done is None:
            job.done = self._wait(job)
        return job.done

    def _wait(self, job: Job) -> Result:
        assert job.future is not None
        try:
            return job.future.result()
        except BrokenProcessPool:
            self._retire(job.pool)
            log.warning(
                "%s: a preparation worker died while this record was in flight; preparing it again alone", job.args[0]
            )
        except Exception as error:  # the result could not come back (pickling, ...)
            return None, f"{job.args[0]}: {type(error).__name__}: {error}"
        return self._alone(job)

    def _alone(self, job: Job) -> Result:
        """Prepare the record again in a one-worker pool of its own, so a second death is surely its own."""
        if self._spare is None:
            self._spare = self._new_pool(1)
        future = self._spare.submit(prepare_file, *job.args)
        try:
            return future.result()
        except BrokenProcessPool:
            self._spare.shutdown(wait=False)
            self._spare = None
            return None, (
                f"{job.args[0]}: the worker process preparing it died twice (killed by the system, e.g. out of "
                "memory, or crashed); record skipped"
            )
        except Exception as error:
            return None, f"{job.args[0]}: {type(error).__name__}: {error}"

    def close(self) -> None:
        """Stop the workers (waiting for what they hold)."""
        for pool in (self._pool, self._spare):
            if pool is not None:
                pool.shutdown(wait=True)
        self._pool = self._spare = None


__all__ = ["THREAD_VARIABLES", "Job", "PrepareWorkers"]
