"""Fusion of the raw and PQRST branches: branch dropout and auxiliary losses in the joint
network, and ``fusion: stacked`` (separately trained branch networks mixed by out-of-fold weights),
from the weight rules on synthetic probabilities to a stacked model trained on the real Challenge
sample, saved, loaded and predicting exactly the mix of its parts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import copy_records

import models
from ecgserve import model_folder
from ecgserve.blending import mix
from ecgserve.predictor import load_predictor
from ecgtrain.errors import SettingsError
from ecgtrain.evaluation import evaluate_probabilities
from ecgtrain.settings import Settings
from ecgtrain.stacking import fit_weights, simplex_grid
from ecgtrain.tasks import challenge2021
from ecgtrain.trainer import _auxiliary_loss
from ecgtrain.workflow import train_all
from models.branch_stack import BranchStack

SCORED = 26
SMALL = {"raw_widths": [4, 8], "fiducial_widths": [4, 4], "rnn_hidden": 4, "tabular_hidden": 4, "head_hidden": 8}
SHAPES = {"num_leads": 2, "num_fiducial": 6, "num_tabular": 10, "num_classes": SCORED}


def _inputs(batch: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return (
        torch.randn(batch, 2, 500, generator=generator),
        torch.randn(batch, 6, 500, generator=generator),
        torch.randn(batch, 10, generator=generator),
    )


def test_simplex_grid_covers_the_mixes():
    grid = simplex_grid(2)
    assert grid.shape == (11, 2) and np.allclose(grid.sum(axis=1), 1) and (grid >= 0).all()
    assert [0.0, 1.0] in grid.tolist() and [1.0, 0.0] in grid.tolist()
    assert simplex_grid(3).shape == (66, 3)


def _two_groups(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, an informative group's probabilities and a noise group's."""
    rng = np.random.default_rng(seed)
    labels = rng.random((300, SCORED)) < 0.15
    labels[:, 0] = True  # one always-present class, as sinus rhythm nearly is
    informative = np.clip(0.7 * labels + 0.3 * rng.random(labels.shape), 0, 1)
    noise = rng.random(labels.shape)
    return labels, informative, noise


@pytest.mark.parametrize("rule", ["global", "per_class"])
def test_weights_go_to_the_informative_group(rule: str):
    labels, informative, noise = _two_groups()
    settings = Settings()
    weights = fit_weights(labels, [noise, informative], rule, challenge2021(), settings)
    assert weights.shape == (2, SCORED) and np.allclose(weights.sum(axis=0), 1)
    assert weights[1].mean() >= 0.8  # the mix leans on the group that knows the labels
    mixed = mix([noise, informative], weights)
    assert mixed.shape == labels.shape and np.all((mixed >= 0) & (mixed <= 1))


def test_per_class_weights_follow_each_class():
    labels, informative, noise = _two_groups(1)
    # group 0 knows the first half of the classes, group 1 the second half
    half = SCORED // 2
    first = np.concatenate([informative[:, :half], noise[:, half:]], axis=1)
    second = np.concatenate([noise[:, :half], informative[:, half:]], axis=1)
    weights = fit_weights(labels, [first, second], "per_class", challenge2021(), Settings())
    assert (weights[0, 1:half] >= 0.7).all() and (weights[1, half:] >= 0.7).all()


def test_unknown_weight_rule_is_refused():
    labels, informative, noise = _two_groups()
    with pytest.raises(ValueError, match="stack_weights"):
        fit_weights(labels, [informative, noise], "median", challenge2021(), Settings())


def test_branch_stack_is_the_weighted_mix_of_its_parts():
    torch.manual_seed(0)
    parts = [
        {"architecture": "dual_crnn", "model_kwargs": {**SMALL, "branches": ["raw"]}},
        {"architecture": "dual_crnn", "model_kwargs": {**SMALL, "branches": ["fiducial", "tabular"]}},
    ]
    stack = models.build("branch_stack", **SHAPES, parts=parts).eval()
    assert isinstance(stack, BranchStack)
    weights = torch.rand(2, SCORED)
    stack.weights.copy_(weights / weights.sum(dim=0))
    inputs = _inputs()
    with torch.no_grad():
        expected = sum(stack.weights[g] * torch.sigmoid(part(*inputs)) for g, part in enumerate(stack.parts))
        assert torch.allclose(torch.sigmoid(stack(*inputs)), expected, atol=1e-5)
    assert "weights" in stack.state_dict()  # saved with the parts' weights
    with pytest.raises(ValueError, match="at least two parts"):
        models.build("branch_stack", **SHAPES, parts=parts[:1])


def test_branch_dropout_zeroes_branches_in_training_only():
    torch.manual_seed(0)
    network = models.build("dual_crnn", **SHAPES, **SMALL, branch_dropout=0.5)
    parts = [torch.ones(200, 3), torch.ones(200, 4), torch.ones(200, 5)]
    dropped = network._drop_branches(parts)
    kept = torch.stack([d[:, 0] for d in dropped], dim=1)  # (records, branches) 1 kept / 0 zeroed
    assert (kept.sum(dim=1) >= 1).all()  # never every branch of a record
    assert 0.2 < (kept == 0).float().mean() < 0.5
    network.eval()
    inputs = _inputs()
    with torch.no_grad():
        assert torch.equal(network(*inputs), network(*inputs))  # evaluation: nothing dropped, deterministic
    with pytest.raises(ValueError, match="branch_dropout"):
        models.build("dual_crnn", **SHAPES, branch_dropout=1.0)


def test_auxiliary_logits_add_a_loss_per_branch():
    from types import SimpleNamespace

    torch.manual_seed(0)
    network = models.build("dual_crnn", **SHAPES, **SMALL, auxiliary_loss=0.5).train()
    inputs = _inputs()
    logits = network(*inputs)
    assert len(network.auxiliary_logits) == 3 and all(a.shape == logits.shape for a in network.auxiliary_logits)
    target = (torch.rand(logits.shape) < 0.2).float()
    criterion = torch.nn.BCEWithLogitsLoss()

    def loss(out, y, _weights):
        return criterion(out, y)

    fit = SimpleNamespace(network=network, criterion=loss)
    extra = _auxiliary_loss(fit, target, None)  # type: ignore[arg-type]
    expected = 0.5 * torch.stack([criterion(a, target) for a in network.auxiliary_logits]).mean()
    assert torch.isclose(torch.as_tensor(extra), expected)
    extra.backward()  # type: ignore[union-attr]
    assert network.auxiliary_heads[0].weight.grad is not None
    plain = models.build("dual_crnn", **SHAPES, **SMALL).train()
    plain(*inputs)
    assert _auxiliary_loss(SimpleNamespace(network=plain, criterion=loss), target, None) == 0.0  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("values", "pattern"),
    [
        ({"fusion": "late"}, "'fusion'"),
        ({"stack_weights": "median"}, "'stack_weights'"),
        ({"fusion": "stacked", "stack_groups": [["raw"]]}, "'stack_groups'"),
        ({"fusion": "stacked", "stack_groups": [["raw"], []]}, "'stack_groups'"),
    ],
)
def test_fusion_settings_are_checked(values: dict, pattern: str):
    with pytest.raises(SettingsError, match=pattern):
        Settings.from_dict(values, source="s.json")


@pytest.fixture(scope="module")
def stacked_model(cinc_dir: Path, tmp_path_factory) -> Path:
    """``fusion: stacked`` with two folds, trained on the 25 real Challenge records."""
    work = tmp_path_factory.mktemp("stacked")
    data = copy_records(cinc_dir, work / "data")
    settings = Settings.from_dict(
        {
            "epochs": 2,
            "batch_size": 8,
            "n_jobs": 1,
            "progress": False,
            "lead_sets": [["I", "II"]],
            "folds": 2,
            "fusion": "stacked",
            "stack_groups": [["raw"], ["fiducial", "tabular"]],
            "stack_weights": "per_class",
            "model_kwargs": SMALL,
            "cache_dir": str(work / "cache"),
        }
    )
    train_all(data, work / "model", settings)
    return work / "model"


def test_stacked_model_folder_holds_both_groups(stacked_model: Path):
    entry = model_folder.read_manifest(stacked_model)["models"]["I-II"]
    assert entry["architecture"] == "branch_stack" and entry["members"] == 2
    parts = entry["model_kwargs"]["parts"]
    assert [part["model_kwargs"]["branches"] for part in parts] == [["raw"], ["fiducial", "tabular"]]
    weights = np.asarray(entry["stack_weights"])
    assert weights.shape == (2, SCORED) and np.allclose(weights.sum(axis=0), 1, atol=1e-3)
    assert len(entry["history"]) == 4 == len(entry["member_best_epochs"])  # 2 groups x 2 folds, each trained
    assert entry["validation_records"] == 25


def test_stacked_predictor_mixes_its_parts(stacked_model: Path, cinc_dir: Path):
    from ecgio.record import read_record

    predictor = load_predictor(stacked_model, ("I", "II"), device="cpu", threads=1)
    members = predictor.network.members
    assert len(members) == 2 and all(isinstance(m, BranchStack) for m in members)
    entry = model_folder.read_manifest(stacked_model)["models"]["I-II"]
    assert np.allclose(members[0].weights.numpy(), np.asarray(entry["stack_weights"]), atol=1e-4)
    record = read_record(sorted(cinc_dir.glob("*.hea"))[0])
    signal = record.signal[[record.leads.index("I"), record.leads.index("II")]]
    probabilities = predictor.probabilities(signal, record.fs, record.age, record.sex)
    assert probabilities.shape == (SCORED,) and np.all((probabilities >= 0) & (probabilities <= 1))
    # the saved ensemble is the mix of the groups' ensembles: switch to pure group weights and back
    one_hot = torch.zeros_like(members[0].weights)
    one_hot[0] = 1.0
    saved = [m.weights.clone() for m in members]
    for m in members:
        m.weights.copy_(one_hot)
    raw_only = predictor.probabilities(signal, record.fs, record.age, record.sex)
    for m in members:
        m.weights.copy_(1.0 - one_hot)
    pqrst_only = predictor.probabilities(signal, record.fs, record.age, record.sex)
    for m, w in zip(members, saved, strict=True):
        m.weights.copy_(w)
    expected = saved[0][0].numpy() * raw_only + saved[0][1].numpy() * pqrst_only
    assert np.allclose(probabilities, expected, atol=1e-4)


def _save_fold(path: Path, labels: np.ndarray, test: np.ndarray, oof: np.ndarray, names: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    half = len(names) // 2
    np.savez(
        path,
        test_names=names[:half],
        test_sources=np.array(["X"] * half),
        test_labels=labels[:half],
        test_probabilities=test[:half],
        thresholds=np.full(SCORED, 0.5),
        oof_names=names[half:],
        oof_labels=labels[half:],
        oof_probabilities=oof[half:],
        branch_shares=np.zeros((0, 3)),
    )


def test_fusion_report_rebuilds_the_stack_from_saved_folds(tmp_path: Path):
    """The report's ``stacked`` fold is what ecgtrain.stacking does with the saved parts' predictions."""
    from ecgreport.fusion import lead_set_report
    from ecgtrain.thresholds import tune

    labels, informative, noise = _two_groups(2)
    names = np.array([f"r{i}" for i in range(len(labels))])
    for fold in ("repeat-1-fold-1", "repeat-1-fold-2"):
        _save_fold(tmp_path / "2-lead" / "raw" / f"{fold}.npz", labels, noise, noise, names)
        _save_fold(tmp_path / "2-lead" / "features" / f"{fold}.npz", labels, informative, informative, names)
    settings = Settings()
    report = lead_set_report(tmp_path / "2-lead", settings)
    variants = report["variants"]
    assert set(variants) == {"raw", "features", "stacked", "stacked_per_class"}  # no "both": no stacked3
    assert report["best_single"] == {"challenge_metric": "features", "auroc": "features", "f_measure": "features"}
    assert variants["stacked"]["challenge_metric_vs_best_single_folds"] == 2
    half = len(names) // 2
    weights = fit_weights(labels[half:], [noise[half:], informative[half:]], "global", challenge2021(), settings)
    thresholds = tune(
        labels[half:],
        mix([noise[half:], informative[half:]], weights),
        settings.threshold_strategy,
        settings.threshold_min_positives,
    )
    expected = evaluate_probabilities(
        labels[:half], mix([noise[:half], informative[:half]], weights), thresholds, settings.decision_rule
    )
    assert variants["stacked"]["challenge_metric"] == pytest.approx(expected["challenge_metric"])
    assert variants["stacked"]["challenge_metric"] > variants["raw"]["challenge_metric"]
    assert variants["stacked"]["folds"] == 2 and len(variants["stacked"]["stack_weights"]) == 2


def test_record_report_explains_a_stacked_model(stacked_model: Path, cinc_dir: Path):
    """The default model is a stack: ``ecgreport record`` must explain it (integrated gradients through the mix)."""
    from ecgio.record import read_record
    from ecgreport.explain import explain_record

    predictor = load_predictor(stacked_model, ("I", "II"), device="cpu", threads=1)
    record = read_record(sorted(cinc_dir.glob("*.hea"))[0])
    explanation = explain_record(predictor, record, steps=16)
    signal = record.signal[[record.leads.index("I"), record.leads.index("II")]]
    expected = predictor.probabilities(signal, record.fs, record.age, record.sex)
    np.testing.assert_allclose(explanation.probabilities, expected, atol=1e-5)
    assert explanation.attribution.shape[0] == 2 and np.isfinite(explanation.attribution).all()
