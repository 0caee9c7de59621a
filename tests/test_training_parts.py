"""Trainer parts that need no signal layer: thresholds, loss weights, tabular scaling, the model
folder's atomic writes, lock and integrity checks, lead-set fallback and its warning, settings
overrides, threads, the task's refusal of unlearnable targets, and the light ``import team_code``."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ecgserve import model_folder
from ecgserve.predictor import choose_entry, fallback_warning
from ecgserve.tabular import TabularScaler
from ecgtrain.errors import TrainingDataError
from ecgtrain.losses import positive_weights
from ecgtrain.settings import Settings
from ecgtrain.thresholds import tune_thresholds


def _f1(labels: np.ndarray, outputs: np.ndarray) -> float:
    tp = np.sum(labels & outputs)
    return 2 * tp / max(2 * tp + np.sum(labels ^ outputs), 1)


def test_thresholds_find_the_separating_cut():
    rng = np.random.default_rng(0)
    labels = rng.random((200, 3)) < 0.3
    # Class 0 separable at 0.3, class 1 at 0.7; class 2 is noise.
    probabilities = np.where(labels, 0.35, 0.25)
    probabilities[:, 1] = np.where(labels[:, 1], 0.8, 0.6)
    probabilities[:, 2] = rng.random(200)
    thresholds, score = tune_thresholds(labels[:, :2], probabilities[:, :2], _f1)
    assert 0.25 < thresholds[0] <= 0.35 and 0.6 < thresholds[1] <= 0.8
    assert score == pytest.approx(1.0)


def test_thresholds_keep_start_when_nothing_improves_and_check_shapes():
    labels = np.zeros((10, 2), bool)
    thresholds, _ = tune_thresholds(labels, np.full((10, 2), 0.1), lambda l, o: 0.0)
    assert np.all(thresholds == 0.5)
    with pytest.raises(ValueError):
        tune_thresholds(labels, np.zeros((10, 3)), _f1)


def test_positive_weights_are_sqrt_ratio_clipped():
    targets = np.zeros((100, 3), bool)
    targets[:50, 0] = True  # ratio 1
    targets[:4, 1] = True  # sqrt(96/4) = 4.9
    weights = positive_weights(targets, max_weight=3.0)
    assert weights[0] == pytest.approx(1.0)
    assert weights[1] == pytest.approx(3.0)  # clipped
    assert weights[2] == pytest.approx(1.0)  # no positives


def test_tabular_scaler_standardises_present_values_and_encodes_missing():
    values = np.array([[1.0, np.nan], [3.0, 5.0], [5.0, np.nan]], np.float32)
    present = np.array([[True, False], [True, True], [True, False]])
    scaler = TabularScaler.fit(values, present)
    assert scaler.mean[0] == pytest.approx(3.0) and scaler.mean[1] == pytest.approx(5.0)
    assert scaler.std[1] == 1.0  # a single value has no spread: left unscaled
    out = scaler.transform(values, present, np.array([70.0, np.nan, 20.0]), ["Male", None, "Female"])
    assert out.shape == (3, scaler.num_inputs) == (3, 8)
    assert np.all(np.isfinite(out))
    assert out[0, 1] == 0.0 and out[0, 3] == 0.0  # missing -> 0 and flagged absent
    assert list(out[1, 4:]) == [0.0, 1.0, 0.0, 0.0]  # unknown age, unknown sex
    assert list(out[2, 6:]) == [0.0, 1.0]
    again = TabularScaler.from_dict(json.loads(json.dumps(scaler.to_dict())))
    assert np.array_equal(
        again.transform(values, present, np.ones(3), [None] * 3),
        scaler.transform(values, present, np.ones(3), [None] * 3),
    )


def _entry(folder: Path, leads: tuple[str, ...]) -> dict:
    state = torch.nn.Linear(2, 2).state_dict()
    return {"leads": list(leads), **model_folder.save_weights(folder, leads, state)}


def test_model_folder_rejects_missing_manifest_changed_weights_and_other_formats(tmp_path):
    with pytest.raises(model_folder.ModelFolderError, match="does not exist"):
        model_folder.read_manifest(tmp_path / "nothing")
    folder = tmp_path / "model"
    folder.mkdir()
    with pytest.raises(model_folder.ModelFolderError, match="no manifest.json"):
        model_folder.read_manifest(folder)
    entry = _entry(folder, ("I", "II"))
    model_folder.write_manifest(folder, {"models": {"I-II": entry}})
    manifest = model_folder.read_manifest(folder)
    assert set(model_folder.load_weights(folder, manifest["models"]["I-II"])) == {"weight", "bias"}
    (folder / entry["file"]).write_bytes(b"not these weights")
    with pytest.raises(model_folder.ModelFolderError, match="does not match the manifest"):
        model_folder.load_weights(folder, manifest["models"]["I-II"])
    (folder / "manifest.json").write_text(json.dumps({"format": "other", "format_version": 1, "models": {"x": 1}}))
    with pytest.raises(model_folder.ModelFolderError, match="incompatible"):
        model_folder.read_manifest(folder)
    assert not list(folder.glob("*.tmp"))


@pytest.mark.parametrize("name", ["../../x", "/dev/zero", "/etc/passwd", "sub/../../x", ""])
def test_manifest_weights_file_must_be_a_file_inside_the_folder(tmp_path, name):
    folder = tmp_path / "a" / "b" / "model"
    folder.mkdir(parents=True)
    (tmp_path / "a" / "x").write_bytes(b"outside")
    entry = {**_entry(folder, ("I", "II")), "file": name}
    with pytest.raises(model_folder.ModelFolderError, match="weights file") as error:
        model_folder.load_weights(folder, entry)
    assert repr(name) in str(error.value)


def test_weights_file_above_the_size_bound_is_refused_unread(tmp_path, monkeypatch):
    entry = _entry(tmp_path, ("I", "II"))
    monkeypatch.setattr(model_folder, "MAX_WEIGHTS_BYTES", 100)
    with pytest.raises(model_folder.ModelFolderError, match="more than the 100 allowed"):
        model_folder.load_weights(tmp_path, entry)
    with pytest.raises(model_folder.ModelFolderError, match="lacks its weights"):
        model_folder.load_weights(tmp_path, {"leads": ["I"]})


def test_commit_verifies_then_replaces_the_model_and_removes_the_old_weights(tmp_path):
    folder = tmp_path / "model"
    with model_folder.locked(folder):
        old = _entry(folder, ("I", "II"))
        model_folder.write_manifest(folder, {"models": {"I-II": old}, "complete": True})
        staging = model_folder.staging_folder(folder)
        new = _entry(staging, ("I", "II"))
        model_folder.write_manifest(staging, {"models": {"I-II": new}, "complete": True})
        (staging / new["file"]).write_bytes(b"corrupted on the way")
        with pytest.raises(model_folder.ModelFolderError, match="does not match"):
            model_folder.commit(staging, folder)
        assert model_folder.read_manifest(folder)["models"]["I-II"] == old  # the old model is untouched
        staging = model_folder.staging_folder(folder)  # a fresh one; the stale one is gone
        assert [p.name for p in folder.glob(".partial-*")] == [staging.name]
        new = _entry(staging, ("I", "II"))
        model_folder.write_manifest(staging, {"models": {"I-II": new}, "complete": True})
        model_folder.commit(staging, folder)
    assert model_folder.read_manifest(folder)["models"]["I-II"] == new
    assert sorted(p.name for p in folder.iterdir()) == sorted([".lock", "manifest.json", new["file"]])


def test_second_lock_on_a_model_folder_fails_at_once_naming_the_holder(tmp_path):
    script = (
        "import sys\nfrom ecgserve import model_folder\n"
        "try:\n    with model_folder.locked(sys.argv[1]): pass\n"
        "except model_folder.ModelFolderError as e:\n    print(e); sys.exit(3)\n"
    )
    with model_folder.locked(tmp_path / "model"):
        run = subprocess.run([sys.executable, "-c", script, str(tmp_path / "model")], capture_output=True, text=True)
    assert run.returncode == 3, run.stderr
    assert f"another training (process {os.getpid()})" in run.stdout
    again = subprocess.run([sys.executable, "-c", script, str(tmp_path / "model")], capture_output=True, text=True)
    assert again.returncode == 0, again.stdout + again.stderr  # released when the holder let go


def test_unwritable_model_folder_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(model_folder.ModelFolderError, match="cannot create or write"), model_folder.locked(blocker):
        pass


def test_incomplete_reason_of_new_and_old_manifests():
    models = {"I-II": {}}
    assert model_folder.incomplete_reason({"models": models, "complete": True}) is None
    assert "did not finish" in model_folder.incomplete_reason({"models": models, "complete": False})
    old = {"models": models, "settings": {"lead_sets": [["I", "II"], ["I", "II", "V2"]]}}
    assert "I-II-V2" in model_folder.incomplete_reason(old)
    old["settings"]["lead_sets"] = [["I", "II"]]
    assert model_folder.incomplete_reason(old) is None


def test_fallback_warning_says_which_leads_are_zero_filled_and_which_dropped():
    twelve = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
    dropped = fallback_warning("m", twelve, ["I", "II"])
    assert "zero-filled" not in dropped and "III-aVR-aVL-aVF-V1-V2-V3-V4-V5-V6 are dropped" in dropped
    filled = fallback_warning("m", ["I", "II", "V2"], twelve)
    assert "dropped" not in filled and "III-aVR-aVL-aVF-V1-V3-V4-V5-V6 are absent and zero-filled" in filled
    both = fallback_warning("m", ["I", "II", "V5"], ["I", "II", "III"])
    assert "III are absent and zero-filled and the leads V5 are dropped" in both


def test_choose_entry_exact_then_smallest_superset_then_largest_overlap():
    available = {
        "12": {"leads": ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]},
        "6": {"leads": ["I", "II", "III", "aVR", "aVL", "aVF"]},
        "2": {"leads": ["I", "II"]},
    }
    assert choose_entry(available, ["II", "I"]) == ("2", True)
    assert choose_entry(available, ["avr", "I"]) == ("6", False)
    assert choose_entry(available, ["I", "II", "V2"]) == ("12", False)
    del available["12"]
    assert choose_entry(available, ["I", "II", "V5"]) == ("2", False)


def test_settings_from_env_file_and_overrides(tmp_path, monkeypatch):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"epochs": 3, "lead_sets": [["I", "II"]], "branches": ["raw"]}))
    monkeypatch.setenv("ECG_SETTINGS", str(path))
    monkeypatch.setenv("ECG_DEVICE", "cpu")
    settings = Settings.from_env()
    assert settings.epochs == 3 and settings.lead_sets == (("I", "II"),) and settings.branches == ("raw",)
    assert settings.device == "cpu"
    assert Settings.from_dict(settings.to_dict()) == settings
    path.write_text(json.dumps({"epoch": 3}))
    with pytest.raises(ValueError, match="unknown setting"):
        Settings.from_env()


def test_global_threshold_and_untunable_classes():
    from ecgtrain.thresholds import tune_global_threshold

    labels = np.array([[1, 0], [1, 0], [0, 1], [0, 0]], bool)
    probabilities = np.array([[0.7, 0.1], [0.8, 0.2], [0.2, 0.75], [0.1, 0.3]])
    thresholds, score = tune_global_threshold(labels, probabilities, _f1)
    assert thresholds[0] == thresholds[1] and 0.3 < thresholds[0] <= 0.7 and score == pytest.approx(1.0)
    # Class 1 may not move: it keeps its start while class 0 is tuned.
    tuned, _ = tune_thresholds(labels, probabilities, _f1, start=np.array([0.5, 0.9]), tunable=np.array([True, False]))
    assert tuned[1] == 0.9


def test_threshold_strategies_on_the_challenge_metric():
    from ecgtrain.thresholds import tune

    rng = np.random.default_rng(1)
    labels = rng.random((60, 26)) < 0.15
    labels[:, 14] = rng.random(60) < 0.6  # sinus rhythm common, as in the data
    labels[:, 0] = False
    labels[0, 0] = True  # a rare class: one positive
    probabilities = np.clip(labels * 0.5 + rng.random((60, 26)) * 0.5, 0, 1)
    assert np.all(tune(labels, probabilities, "fixed") == 0.5)
    shared = tune(labels, probabilities, "global")
    assert np.unique(shared).size == 1
    rare = labels.sum(axis=0) < 3
    assert rare[0]
    mixed = tune(labels, probabilities, "global_then_per_class", min_positives=3)
    assert np.all(mixed[rare] == shared[0])
    with pytest.raises(ValueError, match="unknown threshold strategy"):
        tune(labels, probabilities, "median")


def test_unwritable_cache_dir_falls_back_to_a_temporary_cache(tmp_path, caplog):
    from ecgtrain.workflow import usable_cache_dir

    assert usable_cache_dir(str(tmp_path / "cache")) == str(tmp_path / "cache")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert usable_cache_dir(str(blocker / "cache")) is None
    assert "not writable" in caplog.text


def test_settings_reject_bad_threads_and_signal_keys(tmp_path, monkeypatch):
    from ecgsignal.config import SignalConfig
    from ecgtrain.errors import SettingsError

    monkeypatch.setenv("ECG_THREADS", "two")
    with pytest.raises(SettingsError, match="ECG_THREADS"):
        Settings.from_env()
    monkeypatch.setenv("ECG_THREADS", "3")
    assert Settings.from_env().threads == 3
    with pytest.raises(ValueError, match="lowpas_hz.*known:.*lowpass_hz"):
        SignalConfig.from_dict({"lowpas_hz": 30.0})


def test_default_threads_follow_affinity_omp_and_workers(monkeypatch):
    from ecgserve import device

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(device.os, "sched_getaffinity", lambda pid: set(range(64)))
    monkeypatch.setattr(device, "CGROUP_CPU_MAX", Path("/nonexistent"))
    monkeypatch.setattr(device, "busy_cores", lambda: 0)
    assert device.available_cores() == 64
    assert device.default_threads() == device.MAX_THREADS
    assert device.default_threads(workers=4) == 1
    monkeypatch.setattr(device.os, "sched_getaffinity", lambda pid: {0, 1})
    assert device.default_threads() == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert device.default_threads() == 1
    before = torch.get_num_threads()
    try:
        assert device.apply_threads(0) == 1 and torch.get_num_threads() == 1
        assert device.apply_threads(2) == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_cgroup_quota_bounds_the_cores(tmp_path, monkeypatch):
    from ecgserve import device

    quota = tmp_path / "cpu.max"
    quota.write_text("150000 100000\n")
    monkeypatch.setattr(device, "CGROUP_CPU_MAX", quota)
    monkeypatch.setattr(device.os, "sched_getaffinity", lambda pid: set(range(16)))
    assert device.available_cores() == 2
    quota.write_text("max 100000\n")
    assert device.available_cores() == 16


def _targets(counts: dict[int, int], records: int = 40) -> np.ndarray:
    targets = np.zeros((records, 26), bool)
    for column, count in counts.items():
        targets[:count, column] = True
    return targets


@pytest.mark.parametrize(
    "targets",
    [_targets({}), _targets({14: 40}), np.zeros((0, 26), bool)],
    ids=["no labels", "one class", "no records"],
)
def test_task_refuses_targets_with_fewer_than_two_classes(targets):
    from ecgtrain.tasks import get_task

    with pytest.raises(TrainingDataError, match="at least two are needed"):
        get_task("challenge2021").check_targets(targets)


def test_task_warns_per_rare_class_with_counts(caplog):
    from ecgtrain.tasks import get_task

    with caplog.at_level(logging.WARNING):
        get_task("challenge2021").check_targets(_targets({14: 30, 0: 2, 22: 4, 23: 10}))
    assert "2 class(es) have fewer than 5 positives" in caplog.text
    assert "AF (164889003) 2" in caplog.text and "SB (426177001) 4" in caplog.text
    assert "STach" not in caplog.text.split("too few to learn")[1].split("\n")[0]
    with pytest.raises(KeyError, match="unknown task 'ptbxl_nope'; known: challenge2021"):
        get_task("ptbxl_nope")


def test_import_team_code_does_not_import_torch():
    """team_code is imported by the harness before anything runs: it must stay light (deferred imports)."""
    root = Path(__file__).resolve().parents[1]
    code = "import sys, team_code; print(sorted({'torch', 'scipy', 'models', 'neurokit2'} & set(sys.modules)))"
    run = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"
