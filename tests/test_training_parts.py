"""Trainer parts that need no signal layer: thresholds, loss weights, tabular scaling, the model
folder's atomic writes and integrity checks, lead-set fallback, settings overrides."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from training import model_folder
from training.losses import positive_weights
from training.predictor import choose_entry
from training.settings import Settings
from training.tabular import TabularScaler
from training.thresholds import tune_thresholds


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


def _entry(folder, leads):
    state = torch.nn.Linear(2, 2).state_dict()
    return {"leads": list(leads), **model_folder.save_weights(folder, leads, state)}


def test_model_folder_rejects_missing_manifest_changed_weights_and_other_formats(tmp_path):
    with pytest.raises(model_folder.ModelFolderError, match="does not exist"):
        model_folder.read_manifest(tmp_path / "nothing")
    folder = model_folder.begin(tmp_path / "model")
    with pytest.raises(model_folder.ModelFolderError, match="no manifest.json"):
        model_folder.read_manifest(folder)
    entry = _entry(folder, ("I", "II"))
    model_folder.write_manifest(folder, {"models": {"I-II": entry}})
    manifest = model_folder.read_manifest(folder)
    assert set(model_folder.load_weights(folder, manifest["models"]["I-II"])) == {"weight", "bias"}
    # A later run that died after replacing the weights but before its manifest: detected.
    model_folder.save_weights(folder, ("I", "II"), torch.nn.Linear(2, 2).state_dict())
    with pytest.raises(model_folder.ModelFolderError, match="does not match the manifest"):
        model_folder.load_weights(folder, manifest["models"]["I-II"])
    (folder / "manifest.json").write_text(json.dumps({"format": "other", "format_version": 1, "models": {"x": 1}}))
    with pytest.raises(model_folder.ModelFolderError, match="incompatible"):
        model_folder.read_manifest(folder)
    # Starting a new run withdraws the manifest first.
    model_folder.begin(folder)
    assert not (folder / "manifest.json").exists()
    assert not list(folder.glob("*.tmp"))


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
    from training.thresholds import tune_global_threshold

    labels = np.array([[1, 0], [1, 0], [0, 1], [0, 0]], bool)
    probabilities = np.array([[0.7, 0.1], [0.8, 0.2], [0.2, 0.75], [0.1, 0.3]])
    thresholds, score = tune_global_threshold(labels, probabilities, _f1)
    assert thresholds[0] == thresholds[1] and 0.3 < thresholds[0] <= 0.7 and score == pytest.approx(1.0)
    # Class 1 may not move: it keeps its start while class 0 is tuned.
    tuned, _ = tune_thresholds(labels, probabilities, _f1, start=np.array([0.5, 0.9]), tunable=np.array([True, False]))
    assert tuned[1] == 0.9


def test_trainer_threshold_strategies_on_the_challenge_metric():
    from training.trainer import tune

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
    from training.workflow import usable_cache_dir

    assert usable_cache_dir(str(tmp_path / "cache")) == str(tmp_path / "cache")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert usable_cache_dir(str(blocker / "cache")) is None
    assert "not writable" in caplog.text
