"""The accuracy parts of training: losses and their masks, augmentations, decision and window rules,
source-aware label masks, the k-network ensemble, settings checks, and k-fold training end to end on
the real Challenge sample (out-of-fold thresholds, one ensemble weights file, model format v2)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from conftest import copy_records

from ecgdata.index import build_index
from ecgserve import model_folder
from ecgserve.decision import decide
from ecgserve.ensemble import MeanProbability, build_ensemble, merge_state_dicts
from ecgserve.inference import aggregate_windows, check_aggregation
from ecgserve.predictor import load_predictor
from ecgtrain.augment import (
    AUGMENTATIONS,
    DEFAULT,
    _resample_rows,
    augment_signals,
    augmentations,
    lead_dropout,
    mixup,
    random_crop,
)
from ecgtrain.errors import SettingsError
from ecgtrain.folds import fold_names
from ecgtrain.labels import annotated_classes, annotation_mask
from ecgtrain.losses import AsymmetricLoss, FocalLoss, make_loss
from ecgtrain.settings import Settings
from ecgtrain.tasks import challenge2021
from ecgtrain.workflow import train_all

SCORED = 26


def _logits_and_targets(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(16, SCORED, generator=generator) * 3
    targets = (torch.rand(16, SCORED, generator=generator) < 0.2).float()
    return logits, targets


def test_focal_and_asymmetric_reduce_to_bce_without_focusing():
    logits, targets = _logits_and_targets()
    bce = nn.functional.binary_cross_entropy_with_logits(logits, targets)
    assert torch.isclose(FocalLoss(gamma=0.0)(logits, targets), bce, atol=1e-6)
    assert torch.isclose(AsymmetricLoss(gamma_pos=0, gamma_neg=0, clip=0, eps=1e-12)(logits, targets), bce, atol=1e-5)
    plain = make_loss("bce", np.zeros((4, SCORED), bool), 10.0)(logits, targets)  # no positives: weights 1
    assert torch.isclose(plain, bce, atol=1e-6)


def test_focusing_shrinks_easy_negatives_most():
    easy_negative = (torch.full((1, SCORED), -4.0), torch.zeros(1, SCORED))
    hard_positive = (torch.full((1, SCORED), -1.0), torch.ones(1, SCORED))
    for loss in (FocalLoss(gamma=2.0), AsymmetricLoss()):
        bce_easy = nn.functional.binary_cross_entropy_with_logits(*easy_negative)
        bce_hard = nn.functional.binary_cross_entropy_with_logits(*hard_positive)
        assert loss(*easy_negative) / bce_easy < 0.01 < loss(*hard_positive) / bce_hard
    assert AsymmetricLoss(clip=0.05)(torch.full((1, SCORED), -4.0), torch.zeros(1, SCORED)) == 0  # p < clip: free


@pytest.mark.parametrize("name", ["bce", "focal", "asymmetric"])
def test_masked_elements_do_not_count(name: str):
    logits, targets = _logits_and_targets(1)
    mask = torch.ones_like(targets, dtype=torch.bool)
    mask[:, :5] = False
    loss = make_loss(name, targets.numpy().astype(bool), 10.0)
    flipped = targets.clone()
    flipped[:, :5] = 1 - flipped[:, :5]
    assert torch.isclose(loss(logits, targets, mask), loss(logits, flipped, mask))
    assert not torch.isclose(loss(logits, targets), loss(logits, flipped))
    assert loss(logits, targets, torch.zeros_like(mask)) == 0  # nothing counts: zero, not NaN


def test_make_loss_names_bad_choices():
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        make_loss("hinge", np.zeros((2, SCORED), bool))
    with pytest.raises(ValueError, match="loss 'focal': bad loss_kwargs"):
        make_loss("focal", np.zeros((2, SCORED), bool), kwargs={"gama": 2})


def test_top_if_empty_switches_on_the_class_closest_to_its_threshold():
    thresholds = np.array([0.5, 0.2, 0.9])
    probabilities = np.array([[0.4, 0.17, 0.1], [0.6, 0.0, 0.95], [0.0, 0.0, 0.0], [0.3, 0.1, 0.8]])
    plain = decide(probabilities, thresholds, "threshold")
    ruled = decide(probabilities, thresholds, "top_if_empty")
    assert plain[0].sum() == 0 and ruled[0].tolist() == [False, True, False]  # 0.17/0.2 beats 0.4/0.5
    assert ruled[1].tolist() == plain[1].tolist() == [True, False, True]  # rows with a decision are untouched
    assert ruled[2].sum() == 0  # nothing at all: stays empty
    assert ruled[3].tolist() == [False, False, True]
    assert decide(probabilities[0], thresholds, "top_if_empty").tolist() == [False, True, False]  # one record
    with pytest.raises(ValueError, match="unknown decision rule"):
        decide(probabilities, thresholds, "vote")


def test_window_aggregation_rules():
    windows = np.array([[0.1, 0.9], [0.2, 0.1], [0.9, 0.2], [0.4, 0.0]])
    assert np.allclose(aggregate_windows(windows, "mean"), [0.4, 0.3])
    assert np.allclose(aggregate_windows(windows, "max"), [0.9, 0.9])
    assert np.allclose(aggregate_windows(windows, "top2"), [0.65, 0.55])
    assert np.allclose(aggregate_windows(windows[:1], "top3"), windows[0])  # fewer windows than k
    assert check_aggregation("top10") == 10
    for bad in ("median", "top0", "top", "topx"):
        with pytest.raises(ValueError, match="window_aggregation"):
            check_aggregation(bad)


def _batch(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(6, 12, 2500)).astype(np.float32), rng.random((6, 4, 2500)).astype(np.float32), rng


@pytest.mark.parametrize("name", [name for name in AUGMENTATIONS if name != "mixup"])
def test_each_signal_augmentation_changes_the_batch_and_keeps_its_form(name: str):
    signal, fiducials, rng = _batch()
    out_signal, out_fiducials = augment_signals(signal.copy(), fiducials.copy(), (name,), rng, 250.0)
    assert out_signal.shape == signal.shape and out_fiducials.shape == fiducials.shape
    assert out_signal.dtype == np.float32 and out_fiducials.dtype == np.float32
    assert np.all(np.isfinite(out_signal)) and not np.array_equal(out_signal, signal)
    assert np.array_equal(augment_signals(signal, fiducials, (), rng, 250.0)[0], signal)


def test_time_stretch_and_crop_move_fiducials_with_the_signal():
    row = np.arange(10, dtype=np.float32)[None]
    assert np.allclose(_resample_rows(row, 1.0, 10), row)
    assert np.allclose(_resample_rows(row, 2.0, 10)[0, :5], [0, 2, 4, 6, 8]) and np.all(
        _resample_rows(row, 2.0, 10)[0, 5:] == 0
    )
    signal, fiducials, rng = _batch(3)
    fiducials = np.repeat(signal[:, :1], 4, axis=1)  # fiducial channels equal to lead I: must stay equal
    cropped, cropped_fiducials = random_crop(signal, fiducials, rng, 250.0)
    assert np.allclose(cropped_fiducials[:, 0], cropped[:, 0])
    assert any(np.all(cropped[b, :, -100:] == 0) for b in range(len(cropped)))


def test_lead_dropout_never_silences_a_whole_record():
    signal = np.ones((500, 2, 10), np.float32)
    dropped, _ = lead_dropout(signal, signal, np.random.default_rng(0), 250.0)
    assert (dropped == 0).any() and np.all(dropped.reshape(500, -1).any(axis=1))


def test_mixup_blends_inputs_and_targets_with_the_same_partner():
    rng = np.random.default_rng(0)
    x = np.arange(8, dtype=np.float32)[:, None]
    y = np.eye(8, dtype=np.float32)
    (mx, my), partner, lam = mixup([x, y], rng)
    assert 0.5 <= lam <= 1.0
    assert np.allclose(mx[:, 0], lam * x[:, 0] + (1 - lam) * x[partner, 0])
    assert np.allclose(my.sum(axis=1), 1.0) and np.allclose(
        my[np.arange(8), np.arange(8)], np.where(partner == np.arange(8), 1.0, lam)
    )


def test_augment_setting_names():
    assert augmentations(True) == DEFAULT and augmentations(False) == ()
    assert augmentations(["mixup", "powerline"]) == ("mixup", "powerline")
    with pytest.raises(ValueError, match="unknown augmentation"):
        augmentations(["mixup", "flip"])


def test_source_masks_follow_the_challenge_counts():
    abbreviations = challenge2021().labels
    missing = {
        source: {abbreviations[j] for j in np.flatnonzero(~annotated_classes(source))} for source in ("PTB-XL", "CPSC")
    }
    assert missing["PTB-XL"] == {"BBB", "Brady", "PRWP", "PVC"}
    assert "NSR" not in missing["CPSC"] and {"SB", "STach", "TAb"} <= missing["CPSC"]
    assert annotated_classes("Synthetic").all() and annotated_classes("unknown").all()
    targets = np.zeros((2, SCORED), bool)
    targets[0, abbreviations.index("Brady")] = True  # a PTB-XL record that does say Brady: counted
    mask = annotation_mask(["PTB-XL", "PTB-XL"], targets)
    assert mask[0, abbreviations.index("Brady")] and not mask[1, abbreviations.index("Brady")]


def test_real_labels_fall_in_the_classes_their_source_annotates(cinc_dir: Path):
    index = build_index(cinc_dir, progress=False)
    mask = annotation_mask(index.sources)
    assert len(index) == 25 and index.targets.any()
    assert not (index.targets & ~mask).any()


def test_ensemble_is_the_mean_of_member_probabilities():
    torch.manual_seed(0)
    members = [nn.Linear(3, SCORED) for _ in range(3)]
    x = torch.randn(5, 3)
    ensemble = MeanProbability(members)
    expected = torch.stack([torch.sigmoid(m(x)) for m in members]).mean(0)
    assert torch.allclose(torch.sigmoid(ensemble(x)), expected, atol=1e-5)
    assert torch.equal(MeanProbability(members[:1])(x), members[0](x))  # one member: its own logits
    with pytest.raises(ValueError):
        MeanProbability([])


def test_merged_state_dicts_load_into_a_built_ensemble():
    kwargs = {"num_leads": 2, "num_fiducial": 4, "num_tabular": 10, "num_classes": SCORED, "raw_widths": [4, 8]}
    kwargs |= {"fiducial_widths": [4, 4], "rnn_hidden": 4, "tabular_hidden": 4, "head_hidden": 8}
    first, second = build_ensemble("dual_crnn", kwargs, 1).members[0], build_ensemble("dual_crnn", kwargs, 1).members[0]
    loaded = build_ensemble("dual_crnn", kwargs, 2)
    loaded.load_state_dict(merge_state_dicts([first.state_dict(), second.state_dict()]))
    for name, value in second.state_dict().items():
        assert torch.equal(loaded.members[1].state_dict()[name], value)


@pytest.mark.parametrize(
    ("values", "pattern"),
    [
        ({"folds": 0}, "'folds'"),
        ({"loss": "hinge"}, "'loss'"),
        ({"decision_rule": "vote"}, "'decision_rule'"),
        ({"early_stopping": "never"}, "'early_stopping'"),
        ({"augment": ["flip"]}, "unknown augmentation"),
        ({"window_aggregation": "median"}, "window_aggregation"),
    ],
)
def test_settings_refuse_unknown_choices(values: dict, pattern: str):
    with pytest.raises(SettingsError, match=pattern):
        Settings.from_dict(values, source="s.json")


def test_settings_read_augment_lists_from_json(tmp_path: Path, monkeypatch):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"augment": ["mixup", "lead_dropout"], "folds": 3, "loss": "focal"}))
    monkeypatch.setenv("ECG_SETTINGS", str(path))
    settings = Settings.from_env()
    assert settings.augment == ("mixup", "lead_dropout") and settings.folds == 3 and settings.loss == "focal"


def test_fold_names_validate_every_record_once(cinc_dir: Path):
    index = build_index(cinc_dir, progress=False)
    task = challenge2021()
    folds = fold_names(index, index.targets, replace(Settings(), folds=3), task)
    assert len(folds) == 3 and sorted(name for fold in folds for name in fold) == sorted(index.records)
    single = fold_names(index, index.targets, replace(Settings(), folds=1), task)
    assert len(single) == 1 and 0 < len(single[0]) < len(index)


TINY = {
    "epochs": 2,
    "batch_size": 8,
    "n_jobs": 1,
    "progress": False,
    "lead_sets": [["I", "II"]],
    "model_kwargs": {
        "raw_widths": [8, 12],
        "fiducial_widths": [4, 8],
        "rnn_hidden": 8,
        "tabular_hidden": 8,
        "head_hidden": 16,
    },
}


@pytest.fixture(scope="module")
def kfold_model(cinc_dir: Path, tmp_path_factory) -> Path:
    """Two folds, focal loss, every augmentation, source masks, loss-based stopping, top_if_empty: trained on
    the 25 real Challenge records."""
    work = tmp_path_factory.mktemp("kfold")
    data = copy_records(cinc_dir, work / "data")
    settings = Settings.from_dict(
        {
            **TINY,
            "folds": 2,
            "fusion": "joint",
            "loss": "focal",
            "augment": list(AUGMENTATIONS),
            "mask_unannotated": True,
            "early_stopping": "loss",
            "decision_rule": "top_if_empty",
            "window_aggregation": "max",
            "cache_dir": str(work / "cache"),
        }
    )
    train_all(data, work / "model", settings)
    return work / "model"


def test_kfold_training_stores_one_ensemble_with_out_of_fold_thresholds(kfold_model: Path):
    manifest = model_folder.read_manifest(kfold_model)
    assert manifest["format_version"] == model_folder.FORMAT_VERSION == 2
    entry = manifest["models"]["I-II"]
    assert entry["members"] == 2 and len(entry["member_best_epochs"]) == 2 and len(entry["history"]) == 2
    assert entry["validation_records"] == 25  # every record predicted out of fold, thresholds tuned on all
    assert sorted(p.name for p in kfold_model.glob("model_*.pt")) == [entry["file"]]
    state = model_folder.load_weights(kfold_model, entry)
    assert {name.split(".")[1] for name in state} == {"0", "1"}


def test_kfold_predictor_uses_the_ensemble_and_its_rules(kfold_model: Path, cinc_dir: Path):
    from ecgio.record import read_record

    predictor = load_predictor(kfold_model, ("I", "II"), device="cpu", threads=1)
    assert isinstance(predictor.network, MeanProbability) and len(predictor.network.members) == 2
    assert predictor.decision_rule == "top_if_empty" and predictor.window_aggregation == "max"
    record = read_record(sorted(cinc_dir.glob("*.hea"))[0])
    signal = record.signal[[record.leads.index("I"), record.leads.index("II")]]
    probabilities = predictor.probabilities(signal, record.fs, record.age, record.sex)
    assert probabilities.shape == (SCORED,) and np.all((probabilities >= 0) & (probabilities <= 1))
    labels = predictor.labels(probabilities)
    assert labels.sum() >= 1  # never an empty answer when some probability is above zero


def test_a_format_1_model_folder_is_a_clear_error(kfold_model: Path, tmp_path: Path):
    old = tmp_path / "old"
    shutil.copytree(kfold_model, old)
    manifest = json.loads((old / "manifest.json").read_text())
    manifest["format_version"] = 1
    (old / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(model_folder.ModelFolderError, match=r"v1 \(expected 'ecg-leads-model' v2\).*retrain"):
        load_predictor(old, ("I", "II"))


def test_too_many_folds_for_the_records_is_a_settings_error(kfold_model: Path, cinc_dir: Path, tmp_path: Path):
    settings = Settings.from_dict({**TINY, "folds": 20, "cache_dir": str(tmp_path / "cache")})
    with pytest.raises(SettingsError, match="too few for 20 folds"):
        train_all(cinc_dir, tmp_path / "model", settings)
    assert not (tmp_path / "model").exists()


def test_early_stopping_rules_rank_epochs_by_their_own_measure():
    from ecgtrain.trainer import _better, validation_loss

    best = {"scores": {"challenge_metric": 0.5, "smoothed_metric": 0.4, "val_loss": 0.2}}
    worse_metric_better_loss = {"challenge_metric": 0.3, "smoothed_metric": 0.45, "val_loss": 0.1}
    assert not _better(worse_metric_better_loss, best, "metric", "challenge_metric")
    assert _better(worse_metric_better_loss, best, "smoothed", "challenge_metric")
    assert _better(worse_metric_better_loss, best, "loss", "challenge_metric")
    assert _better(worse_metric_better_loss, best, "none", "challenge_metric")  # the last epoch always wins
    assert _better(worse_metric_better_loss, {"epoch": 0}, "metric", "challenge_metric")  # first epoch
    labels = np.array([[True, False]])
    assert validation_loss(labels, np.array([[0.9, 0.1]])) < validation_loss(labels, np.array([[0.5, 0.5]]))
