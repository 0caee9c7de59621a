"""Fault injection against a good model folder, for real: bad data, kill -9 at two points, two trainings at
once, tampered manifests and unlearnable labels. Whatever happens, the folder keeps the model it had
(byte for byte, and loadable) and the user gets one clear ``error:`` line, never a traceback.

Tiny settings (1 epoch, two small lead sets, the 25 real Challenge records) keep each training to
seconds; the subprocess tests are marked slow.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import copy_records

import team_code
from ecgserve import model_folder
from ecgtrain.settings import Settings
from ecgtrain.workflow import KILL_AT_ENV, train_all

ROOT = Path(__file__).resolve().parents[1]
LEAD_SETS = [["I", "II"], ["I", "II", "V2"]]
TINY = {
    "epochs": 1,
    "batch_size": 8,
    "n_jobs": 1,
    "progress": False,
    "lead_sets": LEAD_SETS,
    "model_kwargs": {"raw_widths": [8, 12], "fiducial_widths": [4, 8], "rnn_hidden": 8, "tabular_hidden": 8},
}


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module")
def data_dir(cinc_dir: Path, work: Path) -> Path:
    return copy_records(cinc_dir, work / "data")


@pytest.fixture(scope="module")
def good_model(data_dir: Path, work: Path) -> Path:
    """A finished model (seed 0) that every fault below must leave as it is."""
    train_all(data_dir, work / "good", Settings.from_dict({**TINY, "cache_dir": str(work / "cache")}))
    return work / "good"


@pytest.fixture
def model(good_model: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(good_model, folder)
    return folder


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file a loader reads (the lock file aside), by name."""
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and p.name != model_folder.LOCK}


def assert_unchanged_and_loadable(folder: Path, before: dict[str, bytes]) -> None:
    assert snapshot(folder) == before
    for leads in LEAD_SETS:
        assert team_code.load_model(str(folder), leads).leads == tuple(leads)


def train_command(data: Path, folder: Path, tmp_path: Path, env: dict[str, str] | None = None, **settings) -> list:
    path = tmp_path / f"settings-{len(list(tmp_path.glob('settings-*')))}.json"
    path.write_text(json.dumps({**TINY, **settings}))
    full_env = {**os.environ, "ECG_SETTINGS": str(path), "OMP_NUM_THREADS": "1", **(env or {})}
    return [[sys.executable, str(ROOT / "train_model.py"), str(data), str(folder)], full_env]


def train(data: Path, folder: Path, tmp_path: Path, env: dict[str, str] | None = None, **settings):
    command, full_env = train_command(data, folder, tmp_path, env, **settings)
    return subprocess.run(command, env=full_env, capture_output=True, text=True, timeout=300)


def assert_user_error(run: subprocess.CompletedProcess, pattern: str) -> None:
    assert run.returncode == 1, run.stderr[-3000:]
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and re.search(pattern, last), last


def copy_with_labels(data_dir: Path, out: Path, dx: str | None) -> Path:
    """The same records with every header's ``# Dx:`` line replaced (or removed when ``dx`` is None)."""
    out.mkdir()
    for header in data_dir.glob("*.hea"):
        lines = [line for line in header.read_text().splitlines() if not line.startswith("# Dx:")]
        if dx is not None:
            lines.append(f"# Dx: {dx}")
        (out / header.name).write_text("\n".join(lines) + "\n")
        shutil.copy2(header.with_suffix(".mat"), out / header.with_suffix(".mat").name)
    return out


@pytest.mark.slow
def test_retraining_on_unreadable_data_keeps_the_old_model(data_dir: Path, model: Path, work: Path, tmp_path: Path):
    bad = tmp_path / "bad"
    bad.mkdir()
    for header in data_dir.glob("*.hea"):
        (bad / header.name).write_bytes(b"\x00\xffnot a header\n")
        shutil.copy2(header.with_suffix(".mat"), bad / header.with_suffix(".mat").name)
    before = snapshot(model)
    run = train(bad, model, tmp_path, cache_dir=str(work / "cache"))
    assert_user_error(run, r"no readable records")
    assert_unchanged_and_loadable(model, before)
    assert not list(model.glob(".partial-*"))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("case", "pattern"),
    [
        ("missing data folder", r"data folder not found"),
        ("empty data folder", r"no records"),
        ("model path under a file", r"cannot create or write"),
        ("signal setting typo", r"lowpas_hz.*known"),
    ],
)
def test_user_errors_end_with_one_error_line(data_dir: Path, work: Path, tmp_path: Path, case: str, pattern: str):
    data, folder, extra = data_dir, tmp_path / "model", {"cache_dir": str(work / "cache")}
    if case == "missing data folder":
        data = tmp_path / "nowhere"
    elif case == "empty data folder":
        data = tmp_path / "empty"
        data.mkdir()
    elif case == "model path under a file":
        (tmp_path / "file").write_text("")
        folder = tmp_path / "file" / "model"
    else:
        extra["signal"] = {"lowpas_hz": 30.0}
    assert_user_error(train(data, folder, tmp_path, **extra), pattern)
    assert not (tmp_path / "model").exists()


@pytest.mark.slow
def test_kill_after_the_first_lead_set_keeps_the_old_model(data_dir: Path, model: Path, work: Path, tmp_path: Path):
    before = snapshot(model)
    run = train(data_dir, model, tmp_path, env={KILL_AT_ENV: "after_lead_set"}, seed=1, cache_dir=str(work / "cache"))
    assert run.returncode == -signal.SIGKILL, run.stderr[-3000:]
    assert list(model.glob(".partial-*"))  # the killed run's staging folder is still there...
    assert_unchanged_and_loadable(model, before)  # ...and the old model works regardless
    again = train(data_dir, model, tmp_path, seed=1, cache_dir=str(work / "cache"))
    assert again.returncode == 0, again.stderr[-3000:]
    manifest = model_folder.read_manifest(model)
    assert manifest["seed"] == 1 and list(manifest["models"]) == ["I-II", "I-II-V2"]
    assert not list(model.glob(".partial-*"))  # cleaned up by the next run
    assert sorted(p.name for p in model.glob("model_*.pt")) == sorted(e["file"] for e in manifest["models"].values())


@pytest.mark.slow
def test_kill_during_feature_preparation_keeps_the_old_model(data_dir: Path, model: Path, tmp_path: Path):
    cache = tmp_path / "cache"  # fresh, so the run spends seconds preparing features
    before = snapshot(model)
    command, env = train_command(data_dir, model, tmp_path, seed=2, cache_dir=str(cache))
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while process.poll() is None and time.monotonic() < deadline and not list(cache.glob("*/meta.json")):
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL  # killed, not finished
    assert_unchanged_and_loadable(model, before)
    again = train(data_dir, model, tmp_path, seed=2, cache_dir=str(cache))  # over the half-written cache
    assert again.returncode == 0, again.stderr[-3000:]
    assert model_folder.read_manifest(model)["seed"] == 2


@pytest.mark.slow
def test_second_training_into_the_same_folder_fails_at_once(data_dir: Path, model: Path, tmp_path: Path):
    command, env = train_command(data_dir, model, tmp_path, seed=4, cache_dir=str(tmp_path / "cache"))
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lock = model / model_folder.LOCK
    deadline = time.monotonic() + 120
    while first.poll() is None and time.monotonic() < deadline and lock.read_text().strip() != str(first.pid):
        time.sleep(0.01)
    first.send_signal(signal.SIGSTOP)  # hold it inside its run, whatever the machine's load
    try:
        assert lock.read_text().strip() == str(first.pid)
        started = time.monotonic()
        second = train(data_dir, model, tmp_path, seed=5, cache_dir=str(tmp_path / "cache"))
        assert_user_error(second, rf"another training \(process {first.pid}\) is writing this model folder")
        assert time.monotonic() - started < 60
    finally:
        first.send_signal(signal.SIGCONT)
    assert first.wait(timeout=300) == 0, first.stderr.read()[-3000:] if first.stderr else ""
    assert model_folder.read_manifest(model)["seed"] == 4


@pytest.mark.parametrize("name", ["../../x", "/dev/zero", "wrong hash"])
def test_tampered_manifest_is_a_clear_model_folder_error(model: Path, tmp_path: Path, name: str):
    (tmp_path / "x").write_bytes(b"outside the model folder")
    manifest = json.loads((model / "manifest.json").read_text())
    entry = manifest["models"]["I-II"]
    if name == "wrong hash":
        entry["sha256"] = "0" * 64
        pattern = "does not match the manifest's sha256"
    else:
        entry["file"] = name
        pattern = re.escape(repr(name))
    model_folder.write_manifest(model, manifest)  # sealed again: the checks behind it are tested
    with pytest.raises(model_folder.ModelFolderError, match=pattern):
        team_code.load_model(str(model), ("I", "II"))
    assert team_code.load_model(str(model), ("I", "II", "V2")).leads == ("I", "II", "V2")  # the others still load


@pytest.mark.slow
@pytest.mark.parametrize(
    ("case", "dx"), [("one class", "426783006"), ("no labels", None), ("only unscored labels", "164861001,164865005")]
)
def test_unlearnable_labels_are_refused_before_any_model_is_written(
    data_dir: Path, work: Path, tmp_path: Path, case: str, dx: str | None
):
    data = copy_with_labels(data_dir, tmp_path / "data", dx)
    run = train(data, tmp_path / "model", tmp_path, cache_dir=str(work / "cache"))
    assert_user_error(run, r"positives for [01] of the 26 challenge2021 classes.*at least two are needed")
    assert not (tmp_path / "model").exists()


def _spoil(header: Path, how: str) -> None:
    """Make a record unusable for training: a 1 Hz rate, or none of the lead sets' leads (all named V6)."""
    lines = header.read_text().splitlines()
    if how == "rate":
        fields = lines[0].split()
        lines[0] = " ".join([fields[0], fields[1], "1", *fields[3:]])
    else:
        count = int(lines[0].split()[1])
        lines[1 : count + 1] = [line.rsplit(" ", 1)[0] + " V6" for line in lines[1 : count + 1]]
    header.write_text("\n".join(lines) + "\n")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("case", "pattern"),
    [
        ("rate", r"leads I-II: 1 of 25 records are usable.*too few for 3 fold.*24 not usable: E0"),
        ("leads", r"leads I-II: 1 of 25 records are usable.*too few for 3 fold.*24 not usable: E0"),
        ("one class left", r"leads I-II: 12 of 25 records are usable.*positives for 1 of the 26.*13 not usable: \w+, "),
    ],
)
def test_training_checks_the_records_that_survive_preparation(
    data_dir: Path, model: Path, work: Path, tmp_path: Path, case: str, pattern: str
):
    data = copy_with_labels(data_dir, tmp_path / "data", "426783006,164889003") if case == "one class left" else None
    data = data or copy_records(data_dir, tmp_path / "data")
    headers = sorted(data.glob("*.hea"))
    spoiled = headers[1:] if case != "one class left" else headers[12:]
    for header in spoiled:
        _spoil(header, "rate" if case != "leads" else "leads")
    if case == "one class left":
        for header in headers[:12]:
            header.write_text(header.read_text().replace("426783006,164889003", "426783006"))
    before = snapshot(model)
    run = train(data, model, tmp_path, cache_dir=str(work / "cache"))
    assert_user_error(run, pattern)
    assert "(and " in run.stderr.strip().splitlines()[-1]  # the first few named, then a count
    assert_unchanged_and_loadable(model, before)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("settings", "env", "pattern"),
    [
        ({"epochs": 0}, {}, r"'epochs' is 0; expected a whole number >= 1"),
        ({"epochs": -3}, {}, r"'epochs' is -3"),
        ({"epochs": "two"}, {}, r"'epochs' is 'two'"),
        ({"learning_rate": float("nan")}, {}, r"'learning_rate' is nan; expected a finite number > 0"),
        ({"batch_size": 0}, {}, r"'batch_size' is 0"),
        ({}, {"ECG_DEVICE": "bogus"}, r"ECG_DEVICE: unknown device 'bogus'"),
        ({}, {"ECG_DEVICE": "cuda:99"}, r"ECG_DEVICE: device 'cuda:99' requested but"),
        ({}, {"ECG_MAX_SAMPLES": "lots"}, r"ECG_MAX_SAMPLES='lots' is not a number"),
    ],
)
def test_bad_settings_fail_before_any_record_is_read(
    data_dir: Path, tmp_path: Path, settings: dict, env: dict, pattern: str
):
    run = train(data_dir, tmp_path / "model", tmp_path, env=env, cache_dir=str(tmp_path / "cache"), **settings)
    assert_user_error(run, pattern)
    assert not (tmp_path / "model").exists() and not (tmp_path / "cache").exists()
    assert "records" not in run.stderr  # the data folder was not even listed


def test_losing_the_lock_on_a_new_folder_removes_nothing(
    data_dir: Path, work: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Two trainings into one new folder, timed so that both see it absent and the other takes the lock first:
    the loser fails with the lock message and leaves the winner's folder (and lock) alone."""
    import contextlib

    folder = tmp_path / "new"
    real = model_folder.locked
    winner = contextlib.ExitStack()

    def unlucky(path):
        winner.enter_context(real(path))  # the other run creates the folder and takes its lock just now
        return real(path)

    monkeypatch.setattr(model_folder, "locked", unlucky)
    with winner:
        with pytest.raises(model_folder.ModelFolderError, match="another training"):
            train_all(data_dir, folder, Settings.from_dict({**TINY, "cache_dir": str(work / "cache")}))
        assert (folder / model_folder.LOCK).read_text().strip() == str(os.getpid())  # still the winner's
        (folder / "written-by-the-winner").write_text("still here")
    assert (folder / "written-by-the-winner").read_text() == "still here"


@pytest.mark.parametrize("edit", ["fewer classes", "NaN thresholds", "other leads", "hash removed"])
def test_edited_manifest_content_is_detected_at_load(model: Path, tmp_path: Path, edit: str):
    manifest = json.loads((model / "manifest.json").read_text())
    entry = manifest["models"]["I-II"]
    if edit == "fewer classes":
        manifest["classes"] = manifest["classes"][:-1]
    elif edit == "NaN thresholds":
        entry["thresholds"] = [float("nan")] * len(entry["thresholds"])
    elif edit == "other leads":
        entry["leads"] = ["I", "III"]
    else:
        del manifest[model_folder.CONTENT_HASH]
    (model / "manifest.json").write_text(json.dumps(manifest, allow_nan=True))
    reason = "has no content hash" if edit == "hash removed" else "does not match its content hash"
    with pytest.raises(model_folder.ModelFolderError, match=reason):
        team_code.load_model(str(model), ("I", "II"))
    data = tmp_path / "data"
    data.mkdir()
    (data / "x.hea").write_text("x 1 500 1000\nx.mat 16 1000/mV 16 0 0 0 0 I\n")
    run = subprocess.run(
        [sys.executable, str(ROOT / "test_model.py"), str(model), str(data), str(tmp_path / "out"), "-q"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith(f"error: {model / 'manifest.json'}: manifest {reason}")


def test_loading_while_a_retrain_commits_loads_the_new_model(model: Path, monkeypatch: pytest.MonkeyPatch):
    """The commit replaces the manifest, then removes the old weights: a load that read the old manifest
    finds its weights gone, and loads the new model instead of failing every record."""
    from ecgserve import predictor

    real = predictor.load_weights
    commits = []

    def commit_meanwhile(folder, entry):
        if not commits:  # a retrain commits between this load's manifest read and its weights read
            manifest = model_folder.read_manifest(model)
            new = manifest["models"]["I-II"]
            old_file, new["file"] = new["file"], "model_I-II.0123456789ab.pt"
            shutil.copy(model / old_file, model / new["file"])
            manifest["seed"] = 7
            model_folder.write_manifest(model, manifest)
            (model / old_file).unlink()
            commits.append(old_file)
        return real(folder, entry)

    monkeypatch.setattr(predictor, "load_weights", commit_meanwhile)
    loaded = team_code.load_model(str(model), ("I", "II"))
    assert commits and loaded.leads == ("I", "II")
    assert model_folder.read_manifest(model)["seed"] == 7
