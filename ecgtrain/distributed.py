"""Several processes training one model: torchrun's environment, the process group, and the few collectives
the rest of training needs.

``torchrun --nproc_per_node K train_model.py DATA MODEL`` starts K copies of the script with ``WORLD_SIZE``,
``RANK`` and ``LOCAL_RANK`` set; :func:`session` turns them into a process group (NCCL when training on
CUDA, gloo on the CPU), each rank on its own GPU (``cuda:LOCAL_RANK``). Without those variables (or with
``WORLD_SIZE=1``) nothing here starts a group and every helper is the identity, so one process trains
exactly as it always did: same numbers, same speed.

The helpers (barrier, gathering numpy rows, handing rank 0's objects to every rank) always run on a gloo
group of their own: they carry small CPU arrays and pickles, and on a NCCL run they would otherwise need
CUDA tensors. Every collective waits at most the session's timeout (``ECG_DISTRIBUTED_TIMEOUT`` minutes,
default 30): a rank that died or stopped answering becomes a :class:`DistributedError` naming what the
others were waiting for, never a silent hang. torchrun also stops the other ranks when one exits with an
error; the timeout covers launchers that do not.

How the work is divided is said where it is divided: feature preparation in :mod:`ecgtrain.data`, batches
and validation in :mod:`ecgtrain.trainer`, the model folder in :mod:`ecgtrain.workflow`.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import math
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from ecgtrain.errors import DistributedError

if TYPE_CHECKING:
    import torch

    from ecgtrain.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

TIMEOUT_ENV = "ECG_DISTRIBUTED_TIMEOUT"
#: Minutes a rank waits for the others at a collective: long enough for a rank that prepares a larger share
#: of the records, short enough that a dead rank is reported the same hour.
DEFAULT_TIMEOUT_MINUTES = 30.0


@dataclass(frozen=True)
class Launch:
    """Where this process stands among the ranks torchrun started (one rank of one when it started none)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def launch_from_env(env: Mapping[str, str] | None = None) -> Launch:
    """torchrun's ``WORLD_SIZE``/``RANK``/``LOCAL_RANK``/``LOCAL_WORLD_SIZE``; a missing ``WORLD_SIZE`` (a plain
    ``python train_model.py``) is one process; values that cannot describe a rank are a DistributedError."""
    env = os.environ if env is None else env
    if not env.get("WORLD_SIZE"):
        return Launch()
    names = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")
    defaults = {"RANK": "0", "LOCAL_RANK": env.get("RANK", "0"), "LOCAL_WORLD_SIZE": env.get("WORLD_SIZE", "1")}
    try:
        number, world, local, local_world = (int(env.get(name) or defaults[name]) for name in names)
    except ValueError:
        values = " ".join(f"{name}={env.get(name)!r}" for name in names)
        raise DistributedError(f"torchrun's variables {values}: expected whole numbers") from None
    if world < 1 or not 0 <= number < world or not 0 <= local < local_world:
        raise DistributedError(
            f"RANK={number} WORLD_SIZE={world} LOCAL_RANK={local} LOCAL_WORLD_SIZE={local_world}: not a rank of the world"
        )
    return Launch(number, world, local, local_world)


def timeout() -> datetime.timedelta:
    """How long any collective may wait (``ECG_DISTRIBUTED_TIMEOUT`` minutes)."""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    try:
        minutes = float(text) if text else DEFAULT_TIMEOUT_MINUTES
    except ValueError:
        raise DistributedError(f"{TIMEOUT_ENV}={text!r}: expected minutes (a number > 0)") from None
    if not minutes > 0:
        raise DistributedError(f"{TIMEOUT_ENV}={text!r}: expected minutes (a number > 0)")
    return datetime.timedelta(minutes=minutes)


@dataclass
class _Group:
    launch: Launch
    helpers: Any  # the gloo process group of the helpers below
    device_type: str


#: The running session's group; None in one process (then every helper is the identity).
_GROUP: _Group | None = None


def active() -> bool:
    """Whether this process is one rank of several."""
    return _GROUP is not None


def rank() -> int:
    return _GROUP.launch.rank if _GROUP else 0


def world_size() -> int:
    return _GROUP.launch.world_size if _GROUP else 1


def is_main() -> bool:
    """Rank 0: the one that logs, shows progress, holds the model folder's lock and writes it."""
    return rank() == 0


def _where() -> str:
    return f"rank {rank()} of {world_size()}"


@contextlib.contextmanager
def session(device: str = "auto", env: Mapping[str, str] | None = None) -> Iterator[Launch]:
    """The process group for the ``with`` block when torchrun started this process (nothing otherwise).

    ``device`` is the ``device`` setting: a CUDA run gets NCCL and ``cuda:LOCAL_RANK``, a CPU run gloo.
    Ranks other than 0 log warnings and errors only, so one run prints one set of progress lines.
    """
    global _GROUP
    launch = launch_from_env(env)
    if not launch.distributed or _GROUP is not None:  # one process, or already inside a session
        yield launch
        return
    import torch
    import torch.distributed as dist

    from ecgserve.device import resolve_device

    device_type = resolve_device(device).type
    backend = "nccl" if device_type == "cuda" else "gloo"
    if device_type == "cuda":
        torch.cuda.set_device(launch.local_rank)
    wait = timeout()
    try:
        dist.init_process_group(backend, timeout=wait, rank=launch.rank, world_size=launch.world_size)
        helpers = dist.new_group(backend="gloo", timeout=wait) if backend != "gloo" else dist.group.WORLD
    except Exception as error:  # the rendezvous itself: a wrong address, a rank that never came
        raise DistributedError(
            f"rank {launch.rank} of {launch.world_size}: cannot join the process group "
            f"({backend}, waited up to {wait}): {error}"
        ) from error
    root = logging.getLogger()
    level = root.level
    if launch.rank != 0:
        root.setLevel(max(level, logging.WARNING))
    _GROUP = _Group(launch, helpers, device_type)
    if launch.rank == 0:
        log.info(
            "distributed training: %d ranks (%s), waiting at most %s for each other", launch.world_size, backend, wait
        )
    finished = False
    try:
        yield launch
        finished = True
    finally:
        _close(finished, launch.rank)
        root.setLevel(level)


def _close(finished: bool, rank_number: int) -> None:
    """Leave the process group so that no rank's exit can abort another's.

    A rank that tore its connections down while another still used them, or a DDP wrapper left in a reference
    cycle holding the group until interpreter shutdown (when gloo's worker threads can no longer be joined),
    ended a CI run with one rank killed by SIGABRT after training had succeeded. So: on a normal end every
    rank first waits for all the others, then the garbage (DDP wrappers among it) goes before the group does.
    After a failure the barrier is skipped, since the other ranks may never come."""
    global _GROUP
    import gc

    import torch.distributed as dist

    if finished:
        try:
            barrier("the end of the run")
        except DistributedError as error:
            log.warning("%s", error)
    _GROUP = None
    gc.collect()
    try:
        dist.destroy_process_group()
    except Exception as error:  # the run's own outcome matters more than a failed goodbye
        log.warning("rank %d: leaving the process group failed: %s", rank_number, error)


def _collective(what: str, call: Callable[[], T]) -> T:
    """Run one collective; its failure says which rank was waiting for what, and the likely cause."""
    try:
        return call()
    except Exception as error:
        raise DistributedError(
            f"{_where()}: {what} failed ({str(error).strip().splitlines()[0] if str(error).strip() else error!r}); "
            f"another rank probably stopped (see its messages) or took longer than {TIMEOUT_ENV} "
            f"({timeout()})"
        ) from error


def barrier(what: str) -> None:
    """Wait for every rank (``what`` names the point in errors); names the ranks that never came."""
    if _GROUP is None:
        return
    import torch.distributed as dist

    group = _GROUP.helpers
    _collective(
        f"waiting for every rank after {what}",
        lambda: dist.monitored_barrier(group, timeout=timeout(), wait_all_ranks=True),
    )


def broadcast(value: T, what: str) -> T:
    """Rank 0's ``value`` (any picklable object) on every rank."""
    if _GROUP is None:
        return value
    import torch.distributed as dist

    box = [value if is_main() else None]
    group = _GROUP.helpers
    _collective(f"receiving {what} from rank 0", lambda: dist.broadcast_object_list(box, src=0, group=group))
    return box[0]  # type: ignore[return-value]


def on_main(compute: Callable[[], T], what: str) -> T:
    """``compute()`` run on rank 0 only, its result handed to every rank; when it fails there, every rank
    raises (rank 0 its own error, the others a DistributedError quoting it), so none waits for a result
    that never comes."""
    if _GROUP is None:
        return compute()
    if not is_main():
        received: tuple[bool, Any] = broadcast((False, None), what)
        if received[0]:
            raise DistributedError(f"{_where()}: rank 0 failed to produce {what}: {received[1]}")
        return received[1]
    try:
        value = compute()
    except BaseException as error:
        with contextlib.suppress(DistributedError):  # the others may be gone already: rank 0's error matters
            broadcast((True, f"{type(error).__name__}: {error}"), what)
        raise
    broadcast((False, value), what)
    return value


def gather_rows(array: np.ndarray, what: str = "the ranks' rows") -> np.ndarray:
    """Every rank's (n_rank, ...) array stacked in rank order (the rows of rank 0 first); the ranks' row
    counts may differ, their trailing shapes and dtypes must not."""
    if _GROUP is None:
        return array
    import torch
    import torch.distributed as dist

    array = np.ascontiguousarray(array)
    group = _GROUP.helpers
    counts = [torch.zeros(1, dtype=torch.int64) for _ in range(world_size())]
    mine = torch.tensor([len(array)], dtype=torch.int64)
    _collective(f"gathering the sizes of {what}", lambda: dist.all_gather(counts, mine, group=group))
    longest = max(int(c) for c in counts)
    padded = np.zeros((longest, *array.shape[1:]), dtype=array.dtype)
    padded[: len(array)] = array
    parts = [torch.empty_like(torch.from_numpy(padded)) for _ in counts]
    _collective(f"gathering {what}", lambda: dist.all_gather(parts, torch.from_numpy(padded), group=group))
    return np.concatenate([part.numpy()[: int(count)] for part, count in zip(parts, counts)])


def on_every_rank(flags: np.ndarray, what: str) -> np.ndarray:
    """Elementwise: whether each of ``flags`` (a bool vector of the same length everywhere) holds on every
    rank. For what must be the same on all ranks even where each rank's own view differs: the records
    prepared, a cache folder one machine cannot write."""
    if _GROUP is None:
        return flags
    return np.asarray(gather_rows(np.asarray(flags, dtype=bool)[None, :], what).all(axis=0))


def everywhere(flag: bool, what: str) -> bool:
    """Whether ``flag`` holds on every rank (choices that decide which collectives follow)."""
    if _GROUP is None:
        return flag
    return bool(on_every_rank(np.array([flag]), what)[0])


def mean(value: float, what: str = "the ranks' values") -> float:
    """The mean of one number over the ranks (the same float on every rank)."""
    if _GROUP is None:
        return value
    return float(np.mean(gather_rows(np.array([value], dtype=np.float64), what)))


def shard(rows: np.ndarray) -> np.ndarray:
    """This rank's contiguous part of ``rows`` (parts differ by at most one row; the last ranks may get
    none): concatenating the parts in rank order gives ``rows`` back, so gathered predictions stay in
    record order."""
    if _GROUP is None:
        return rows
    return np.array_split(np.asarray(rows), world_size())[rank()]


def shard_batch(rows: np.ndarray, min_rows: int = 2) -> np.ndarray:
    """This rank's part of one global batch: every rank the same count, ceil(n / K) and at least
    ``min_rows`` (batch norm needs two), taken contiguously and padded by wrapping around to the batch's
    start (as torch's DistributedSampler pads), so a batch of n rows not divisible by K counts up to K - 1
    of them twice. Equal counts make DDP's mean of the ranks' mean losses the mean over the batch."""
    if _GROUP is None:
        return rows
    rows = np.asarray(rows)
    count = max(math.ceil(len(rows) / world_size()), min_rows)
    return rows[(rank() * count + np.arange(count)) % len(rows)]


def rank_rng(shared: np.random.Generator, seed: int) -> np.random.Generator:
    """The generator of this rank's own draws (windows, augmentation): ``shared`` itself in one process
    (the draws of one process are unchanged), else one seeded by (seed, rank), so the ranks augment
    differently while ``shared`` (the epoch's permutation) stays the same on all of them."""
    if _GROUP is None:
        return shared
    return np.random.default_rng([seed, rank()])


def seed_torch(seed: int) -> None:
    """Reseed torch per rank after the network is built (its initial weights come from the common seed), so
    the ranks' dropout masks differ as those of different records in one process do; nothing in one process."""
    if _GROUP is None:
        return
    import torch

    torch.manual_seed(int(np.random.SeedSequence([seed, rank()]).generate_state(1)[0]))


def rank_device(device: torch.device) -> torch.device:
    """``cuda:LOCAL_RANK`` for a CUDA device of a distributed run (one GPU per rank); else ``device``."""
    if _GROUP is None or device.type != "cuda":
        return device
    import torch

    return torch.device("cuda", _GROUP.launch.local_rank)


def wrap(network: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The module training calls: ``network`` itself in one process, else its DistributedDataParallel
    wrapper (gradients averaged over the ranks after each backward; rank 0's weights and buffers copied
    to every rank at the start, its buffers again before each forward). ``static_graph``: some networks of
    the zoo leave parameters out of every forward, which plain DDP refuses; the set never changes between
    training steps (validation calls the bare network), so DDP may learn it once instead of searching the
    graph every step as ``find_unused_parameters`` would."""
    if _GROUP is None:
        return network
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(network, device_ids=ids, static_graph=True)


def sync_buffers(network: torch.nn.Module) -> None:
    """Rank 0's buffers (batch-norm running statistics) copied into every rank's ``network``. DDP copies them
    before each training forward, so after an epoch each rank holds the statistics of its own last batches;
    synced before validation, every rank predicts with the very model rank 0 saves."""
    if _GROUP is None:
        return
    import torch.distributed as dist

    def copy_all() -> None:
        for buffer in network.buffers():
            dist.broadcast(buffer, src=0)

    _collective("receiving rank 0's batch-norm statistics", copy_all)


def rank_settings(settings: Settings) -> Settings:
    """The settings as this rank uses them: progress bars on rank 0 only; ``n_jobs`` < 0 (all cores) shared
    out among the ranks of this machine, since each prepares its share of records in parallel."""
    if _GROUP is None:
        return settings
    from joblib import effective_n_jobs

    jobs = settings.n_jobs
    if jobs < 0:
        jobs = max(1, effective_n_jobs(jobs) // _GROUP.launch.local_world_size)
    return replace(settings, progress=settings.progress and is_main(), n_jobs=jobs)


__all__ = [
    "DEFAULT_TIMEOUT_MINUTES",
    "TIMEOUT_ENV",
    "DistributedError",
    "Launch",
    "active",
    "barrier",
    "broadcast",
    "everywhere",
    "gather_rows",
    "is_main",
    "launch_from_env",
    "mean",
    "on_every_rank",
    "on_main",
    "rank",
    "rank_device",
    "rank_rng",
    "rank_settings",
    "seed_torch",
    "session",
    "shard",
    "shard_batch",
    "sync_buffers",
    "timeout",
    "world_size",
]
