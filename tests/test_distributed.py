"""Distributed training (torchrun, gloo on the CPU): the helpers in one process, two ranks agreeing on every
decision of the training loop, ``train_model.py`` under torchrun on the real records, and a rank that dies.

Run as a script (``python -m torch.distributed.run --nproc_per_node 2 tests/test_distributed.py OUT``) this
file is the two-rank worker of :func:`test_two_ranks_agree_on_every_decision`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import copy_records

from ecgio.files import atomic_write
from ecgserve import model_folder
from ecgtrain import distributed
from ecgtrain.distributed import Launch, _Group, launch_from_env
from ecgtrain.errors import DistributedError
from ecgtrain.settings import Settings
from ecgtrain.trainer import _batches

ROOT = Path(__file__).resolve().parents[1]
TINY_NET = {"raw_widths": [8, 12], "fiducial_widths": [4, 8], "rnn_hidden": 8, "tabular_hidden": 8, "head_hidden": 16}
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone"]


def _child_env(**extra: str) -> dict[str, str]:
    """One torch thread per process, and this checkout's packages first (the installed copy may be another)."""
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path, "ECG_PROGRESS_SECONDS": "60", **extra}


# ---- one process: every helper is the identity ---------------------------------------------------------------


def test_one_process_helpers_change_nothing():
    assert not distributed.active() and distributed.is_main() and distributed.world_size() == 1
    rows = np.arange(7)
    assert distributed.shard(rows) is rows and distributed.shard_batch(rows) is rows
    array = np.ones((3, 26), np.float32)
    assert distributed.gather_rows(array) is array
    assert distributed.mean(0.25) == 0.25 and distributed.everywhere(False, "x") is False
    flags = np.array([True, False])
    assert distributed.on_every_rank(flags, "x") is flags
    assert distributed.broadcast({"a": 1}, "x") == {"a": 1} and distributed.on_main(lambda: 5, "five") == 5
    rng = np.random.default_rng(0)
    assert distributed.rank_rng(rng, 0) is rng
    network = torch.nn.Linear(2, 1)
    assert distributed.wrap(network, torch.device("cpu")) is network
    assert distributed.rank_device(torch.device("cpu")) == torch.device("cpu")
    settings = Settings(n_jobs=-1)
    assert distributed.rank_settings(settings) is settings
    with distributed.session("cpu", env={}) as launch:
        assert launch == Launch() and not distributed.active()


def test_launch_is_read_from_torchruns_variables():
    assert launch_from_env({}) == Launch()
    env = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}
    assert launch_from_env(env) == Launch(3, 4, 1, 2)
    assert not launch_from_env({"WORLD_SIZE": "1", "RANK": "0"}).distributed
    with pytest.raises(DistributedError, match="not a rank of the world"):
        launch_from_env({**env, "RANK": "4"})
    with pytest.raises(DistributedError, match="whole numbers"):
        launch_from_env({**env, "RANK": "one"})


def test_timeout_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(distributed.TIMEOUT_ENV, raising=False)
    assert distributed.timeout().total_seconds() == 60 * distributed.DEFAULT_TIMEOUT_MINUTES
    monkeypatch.setenv(distributed.TIMEOUT_ENV, "0.5")
    assert distributed.timeout().total_seconds() == 30
    for bad in ("soon", "0", "-1"):
        monkeypatch.setenv(distributed.TIMEOUT_ENV, bad)
        with pytest.raises(DistributedError, match=distributed.TIMEOUT_ENV):
            distributed.timeout()


def _as_rank(monkeypatch, rank: int, world: int) -> None:
    """Pretend to be ``rank`` of ``world`` for the helpers that only compute (no collective is called)."""
    monkeypatch.setattr(distributed, "_GROUP", _Group(Launch(rank, world, rank, world), None, "cpu"))


@pytest.mark.parametrize("world", [2, 3])
def test_batch_shards_are_equal_and_cover_the_batch(monkeypatch, world: int):
    for n in range(2 * world, 14):
        batch = np.arange(100, 100 + n)
        shards = []
        for rank in range(world):
            _as_rank(monkeypatch, rank, world)
            shards.append(distributed.shard_batch(batch))
        sizes = {len(shard) for shard in shards}
        assert sizes == {max(-(-n // world), 2)}, (n, sizes)
        joined = np.concatenate(shards)
        np.testing.assert_array_equal(joined[:n], batch)  # contiguous parts in rank order ...
        assert len(joined) - n < world  # ... padded by wrapping with fewer than K repeated rows
        np.testing.assert_array_equal(joined[n:], batch[: len(joined) - n])


def test_validation_shards_give_the_rows_back_in_order(monkeypatch):
    for n in (1, 2, 5, 9):
        rows = np.arange(n) * 3
        parts = []
        for rank in range(3):
            _as_rank(monkeypatch, rank, 3)
            parts.append(distributed.shard(rows))
        np.testing.assert_array_equal(np.concatenate(parts), rows)
        assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_rank_settings_share_the_cores_and_silence_other_ranks(monkeypatch):
    from joblib import effective_n_jobs

    _as_rank(monkeypatch, 1, 2)
    settings = distributed.rank_settings(Settings(n_jobs=-1, progress=True))
    assert not settings.progress and settings.n_jobs == max(1, effective_n_jobs(-1) // 2)
    assert distributed.rank_settings(Settings(n_jobs=3)).n_jobs == 3  # a count given is per rank
    _as_rank(monkeypatch, 0, 2)
    assert distributed.rank_settings(Settings(progress=True)).progress
    assert distributed.rank_rng(np.random.default_rng(0), 0) is not None


def test_global_batches_leave_every_rank_two_rows():
    order = np.arange(17)
    one = [len(b) for b in _batches(order, 8)]
    assert one == [8, 9]  # one process: only a trailing batch of one joins (unchanged)
    assert [len(b) for b in _batches(np.arange(18), 8)] == [8, 8, 2]
    assert [len(b) for b in _batches(np.arange(19), 8, ranks=2)] == [8, 11]  # 3 rows cannot give 2 ranks 2 each
    assert [len(b) for b in _batches(np.arange(20), 8, ranks=2)] == [8, 8, 4]


# ---- two ranks on synthetic records: every decision is the same on both ------------------------------------------


class _Store:
    """Prepared-record store of synthetic two-window records (class 0: a fast sine, class 1: a large one)."""

    def __init__(self, records: int, leads: int = 2, samples: int = 500, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.targets = rng.random((records, 26)) < 0.4
        t = np.arange(samples) / 250.0
        signal = rng.normal(0, 0.3, (records, 2, leads, samples))
        signal += np.where(self.targets[:, 0, None, None, None], np.sin(2 * np.pi * 8 * t), np.sin(2 * np.pi * t))
        self.windows = (signal * np.where(self.targets[:, 1, None, None, None], 2.0, 1.0)).astype(np.float32)
        self.fiducials = (rng.random((records, 2, 4, samples)) > 0.8).astype(np.float32)
        self.features = rng.normal(size=(records, 3)).astype(np.float32)
        self.feature_present = np.ones((records, 3), bool)

    def record(self, i: int):
        return types.SimpleNamespace(windows=self.windows[i], fiducials=self.fiducials[i])

    def window(self, i: int, j: int):
        return self.windows[i, j], self.fiducials[i, j]

    def num_windows(self, i: int) -> int:
        return 2


def _synthetic_data(records: int):
    from ecgtrain.data import LeadSetData

    store = _Store(records)
    return LeadSetData(
        leads=("I", "II"),
        names=[f"r{i}" for i in range(records)],
        targets=store.targets,
        ages=np.linspace(20, 80, records),
        sexes=["Male", "Female"] * (records // 2),
        store=store,
        store_rows=np.arange(records),
    )


def _digest(state: dict[str, torch.Tensor]) -> str:
    hasher = hashlib.sha256()
    for name in sorted(state):
        hasher.update(name.encode() + state[name].detach().cpu().numpy().tobytes())
    return hasher.hexdigest()


def _fail() -> None:
    raise ValueError("boom on rank 0")


def _worker(out: Path) -> None:
    """Each rank trains the same network on its shares of 24 synthetic records and writes what it decided."""
    from ecgtrain.trainer import train_network

    logging.basicConfig(level=logging.WARNING)
    with distributed.session("cpu") as launch:
        settings = Settings(
            epochs=4,
            batch_size=6,
            min_epochs=1,
            patience=2,
            progress=False,
            device="cpu",
            augment=("amplitude", "noise", "mixup"),
            model_kwargs=TINY_NET,
        )
        rows = np.arange(24)
        trained = train_network(_synthetic_data(24), settings, rows[:17], rows[17:])
        gathered = distributed.gather_rows(np.full((launch.rank + 1, 2), launch.rank, np.int32), "the test rows")
        try:
            distributed.on_main(_fail, "a failing step")
            failure = ""
        except (ValueError, DistributedError) as error:
            failure = f"{type(error).__name__}: {error}"
        first_shard = distributed.shard_batch(np.arange(10)).tolist()
        flags = distributed.on_every_rank(np.array([True, launch.rank == 0, True, False]), "the test flags")
        result = {
            "history": trained.history,
            "best_epoch": trained.best_epoch,
            "thresholds": trained.thresholds.tolist(),
            "validation": trained.validation,
            "val_probabilities": np.asarray(trained.val_probabilities).tolist(),
            "state": _digest(trained.state_dict),
            "gathered": gathered.tolist(),
            "failure": failure,
            "shard": first_shard,
            "flags": flags.tolist(),
        }
        atomic_write(out / f"rank{launch.rank}.json", json.dumps(result))


def test_two_ranks_agree_on_every_decision(tmp_path: Path):
    started = time.perf_counter()
    run = subprocess.run(
        [*TORCHRUN, str(Path(__file__)), str(tmp_path)],
        env=_child_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    first, second = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert len(first["history"]) >= 2 and all(np.isfinite(h["loss"]) for h in first["history"])
    for key in ("history", "best_epoch", "thresholds", "validation", "val_probabilities", "state"):
        assert first[key] == second[key], key  # bit for bit: rank 0's decisions, gathered predictions, weights
    assert np.asarray(first["val_probabilities"]).shape == (7, 26)
    assert first["gathered"] == second["gathered"] == [[0, 0], [1, 1], [1, 1]]
    assert first["failure"] == "ValueError: boom on rank 0"
    assert second["failure"].startswith("DistributedError: rank 1 of 2: rank 0 failed to produce a failing step")
    assert "boom on rank 0" in second["failure"]
    assert first["shard"] == [0, 1, 2, 3, 4] and second["shard"] == [5, 6, 7, 8, 9]
    assert first["flags"] == second["flags"] == [True, False, True, False]
    print(f"two ranks on synthetic records: {time.perf_counter() - started:.1f} s")


# ---- train_model.py under torchrun on the real records ------------------------------------------------------------


def _settings_file(tmp_path: Path, **changes) -> Path:
    values = {
        "epochs": 2,
        "fusion": "joint",  # one network per fold, so each epoch line below is one network's
        "features_member": "none",  # the folder then holds the weights file and the manifest only
        "batch_size": 8,
        "folds": 1,
        "n_jobs": 1,
        "progress": False,
        "lead_sets": [["I", "II"]],
        "cache_dir": str(tmp_path / "cache"),
        "model_kwargs": TINY_NET,
        **changes,
    }
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(values))
    return path


def test_torchrun_trains_a_model_folder_that_loads_and_predicts(cinc_dir: Path, tmp_path: Path):
    import helper_code
    import team_code

    data, model = copy_records(cinc_dir, tmp_path / "data"), tmp_path / "model"
    env = _child_env(ECG_SETTINGS=str(_settings_file(tmp_path)))
    run = subprocess.run(
        [*TORCHRUN, str(ROOT / "train_model.py"), str(data), str(model)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    log = run.stdout + run.stderr
    assert log.count("distributed training: 2 ranks (gloo)") == 1
    assert log.count("I-II epoch 1:") == 1  # only rank 0 logs progress
    manifest = model_folder.read_manifest(model)
    assert manifest["complete"] and list(manifest["models"]) == ["I-II"]
    entry = manifest["models"]["I-II"]
    assert entry["validation_records"] == 5 and entry["train_records"] == 20 and len(entry["history"][0]) == 2
    # Only rank 0 wrote: the lock, the manifest and the one weights file it names; no staging or temporary file.
    assert sorted(path.name for path in model.iterdir()) == sorted([".lock", "manifest.json", entry["file"]])
    model_folder.load_weights(model, entry)
    predictor = team_code.load_model(str(model), ("I", "II"))
    header = helper_code.load_header(str(data / "E07500.hea"))
    classes, labels, probabilities = team_code.run_model(
        predictor, header, helper_code.load_recording(str(data / "E07500.mat"))
    )
    assert len(classes) == 26 and labels.shape == probabilities.shape == (26,)
    assert np.all((probabilities >= 0) & (probabilities <= 1)) and labels.any()


# ---- a rank that dies: the other stops with a clear error instead of waiting ----------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_dead_rank_stops_the_other_with_a_clear_error(cinc_dir: Path, tmp_path: Path):
    data, model = copy_records(cinc_dir, tmp_path / "data"), tmp_path / "model"
    common = {
        "ECG_SETTINGS": str(_settings_file(tmp_path)),
        "WORLD_SIZE": "2",
        "LOCAL_WORLD_SIZE": "2",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(_free_port()),
        distributed.TIMEOUT_ENV: "1",
    }
    command = [sys.executable, str(ROOT / "train_model.py"), str(data), str(model)]
    ranks = []
    for rank in (0, 1):  # no torchrun: nothing but the timeout and the broken connection stop rank 0
        extra = {"RANK": str(rank), "LOCAL_RANK": str(rank)}
        if rank == 1:
            extra["ECG_TEST_KILL_AT"] = "before_prepare"  # kill -9 once both hold the data folder's index
        ranks.append(
            subprocess.Popen(
                command, env=_child_env(**common, **extra), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        )
    started = time.perf_counter()
    try:
        _, error = ranks[0].communicate(timeout=240)
    finally:
        for process in ranks:
            if process.poll() is None:
                process.kill()
            process.wait()
    waited = time.perf_counter() - started
    message = error.decode()
    assert ranks[1].returncode == -9
    assert ranks[0].returncode == 1, message[-3000:]
    lines = [line for line in message.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "rank 0 of 2" in lines[0] and "another rank probably stopped" in lines[0], message
    assert "Traceback" not in message
    assert not model.exists()  # rank 0 created it, wrote no model, and removed it again
    print(f"rank 0 stopped {waited:.0f} s after the start: {lines[0]}")


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
