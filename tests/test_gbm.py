"""The features member: boosted trees on the global PQRST features, exported to plain arrays
and evaluated by our own traversal (equal to sklearn's ``predict_proba`` on real records' features, NaN
included), refused when tampered with, trained on the networks' folds, saved in the model folder and
blended by the predictor exactly as training tuned it."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import copy_records
from sklearn.ensemble import HistGradientBoostingClassifier

from ecgcache import select_leads
from ecgio import read_record
from ecgio.leads import TWELVE_LEADS
from ecgserve import blending, model_folder
from ecgserve.errors import ModelFolderError
from ecgserve.forest import Forest, assemble, gbm_inputs
from ecgserve.predictor import load_predictor
from ecgsignal.features import FEATURE_NAMES
from ecgsignal.pipeline import prepare
from ecgtrain.errors import SettingsError
from ecgtrain.gbm import GBM_PARAMS, MIN_POSITIVES, export_classifier, train_forest
from ecgtrain.settings import Settings
from ecgtrain.workflow import train_all

SCORED = 26
SMALL = {"raw_widths": [4, 8], "fiducial_widths": [4, 4], "rnn_hidden": 4, "tabular_hidden": 4, "head_hidden": 8}


@pytest.fixture(scope="module")
def real_inputs(cinc_dir: Path) -> np.ndarray:
    """The tree input of the 25 real Challenge records, 12 leads (features absent there are NaN already)."""
    rows = []
    for header in sorted(cinc_dir.glob("*.hea")):
        record = read_record(header)
        prepared = prepare(select_leads(record.signal, record.leads, TWELVE_LEADS), record.fs, TWELVE_LEADS)
        rows.append(gbm_inputs(prepared.features[None], prepared.feature_present[None], [record.age], [record.sex]))
    return np.concatenate(rows)


def _jittered(inputs: np.ndarray, copies: int, rng: np.random.Generator, missing: float) -> np.ndarray:
    """Copies of real rows with 5 % multiplicative noise and extra NaNs: enough rows for deep trees that
    learn where missing values go."""
    out = np.concatenate([inputs] * copies)
    out = out * (1 + 0.05 * rng.standard_normal(out.shape))
    out[rng.random(out.shape) < missing] = np.nan
    return out


def test_evaluator_matches_sklearn_on_real_features_with_missing_values(real_inputs: np.ndarray):
    rng = np.random.default_rng(0)
    assert real_inputs.shape == (25, len(FEATURE_NAMES) + 3) and np.isnan(real_inputs).any()
    train = _jittered(real_inputs, 20, rng, missing=0.15)
    heart_rate, qrs = train[:, FEATURE_NAMES.index("heart_rate")], train[:, FEATURE_NAMES.index("qrs_duration")]
    target = (np.nan_to_num(heart_rate, nan=60) > np.nanmedian(heart_rate)) ^ np.isnan(qrs)
    target ^= rng.random(len(target)) < 0.1
    model = HistGradientBoostingClassifier(**GBM_PARAMS, early_stopping=False, random_state=0).fit(train, target)
    baseline, trees = export_classifier(model)
    assert len(trees) == GBM_PARAMS["max_iter"] and max(len(t["feature"]) for t in trees) > 5
    assert any(t["missing_left"][~t["is_leaf"]].any() for t in trees)  # some split sends NaN left ...
    assert any((~t["missing_left"][~t["is_leaf"]]).any() for t in trees)  # ... and some right
    forest = Forest.from_bytes(assemble(np.array([[baseline]]), [[trees]], train.shape[1]).to_bytes())
    test = real_inputs.copy()
    test[rng.random(test.shape) < 0.2] = np.nan  # more missing values than the real records have
    for inputs in (real_inputs, test, _jittered(real_inputs, 4, rng, 0.3)):
        expected = model.predict_proba(inputs)[:, 1]
        np.testing.assert_allclose(forest.probabilities(inputs)[:, 0], expected, rtol=0, atol=1e-6)
    assert np.ptp(forest.probabilities(real_inputs)) > 0.1  # not a constant that would match trivially


def test_train_forest_keeps_one_model_per_fold_and_prevalence_for_rare_classes():
    rng = np.random.default_rng(1)
    inputs = rng.standard_normal((120, 6))
    inputs[rng.random(inputs.shape) < 0.1] = np.nan
    targets = np.zeros((120, 3), bool)
    targets[:, 0] = np.nan_to_num(inputs[:, 0]) > 0
    targets[:, 1] = np.nan_to_num(inputs[:, 1]) + np.nan_to_num(inputs[:, 2]) > 0.5
    targets[[5, 70], 2] = True  # too rare for trees in any fold
    pairs = [(np.arange(60, 120), np.arange(60)), (np.arange(60), np.arange(60, 120))]
    params = {**GBM_PARAMS, "max_iter": 20}
    forest, oof = train_forest(inputs, targets, pairs, params, seed=3)
    assert forest.members == 2 and forest.classes == 3 and oof.shape == (120, 3)
    expected = np.zeros((120, 2))
    for k, (train, val) in enumerate(pairs):
        for c in range(2):
            model = HistGradientBoostingClassifier(**params, early_stopping=False, random_state=3 + k)
            model.fit(inputs[train], targets[train, c])
            np.testing.assert_allclose(oof[val, c], model.predict_proba(inputs[val])[:, 1], atol=1e-9)
            expected[:, c] += model.predict_proba(inputs)[:, 1] / 2
        assert targets[train, 2].sum() < MIN_POSITIVES
        np.testing.assert_allclose(oof[val, 2], targets[train, 2].mean(), atol=1e-9)
    np.testing.assert_allclose(forest.probabilities(inputs)[:, :2], expected, atol=1e-9)  # mean of fold models
    np.testing.assert_allclose(forest.probabilities(inputs)[:, 2], 1 / 60, atol=1e-9)  # each fold holds one


def _small_forest() -> Forest:
    inputs = np.random.default_rng(2).standard_normal((80, 4))
    model = HistGradientBoostingClassifier(max_iter=3, random_state=0).fit(inputs, inputs[:, 0] > 0)
    baseline, trees = export_classifier(model)
    return assemble(np.array([[baseline]]), [[trees]], 4)


def _with(forest: Forest, **changes: np.ndarray) -> bytes:
    arrays = {name: getattr(forest, name) for name in forest.__dataclass_fields__}
    arrays.update(changes)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "change, pattern",
    [
        (lambda f: {"left": np.where(f.is_leaf, f.left, 0)}, "child index"),  # a loop back to the root
        (lambda f: {"right": np.where(f.is_leaf, f.right, 10_000)}, "child index"),
        (lambda f: {"feature": np.where(f.is_leaf, 0, 7)}, "feature index"),
        (lambda f: {"tree_start": f.tree_start[:-1]}, "tree_start|shape"),
        (lambda f: {"value": np.full_like(f.value, np.inf)}, "not finite"),
        (lambda f: {"owner": f.owner + 5}, "no model"),
        (lambda f: {"threshold": np.array([{"a": 1}] * len(f.threshold), dtype=object)}, "not a tree file"),
    ],
)
def test_tampered_tree_files_are_refused(change, pattern: str):
    forest = _small_forest()
    assert Forest.from_bytes(forest.to_bytes()).num_features == 4
    with pytest.raises(ValueError, match=pattern):
        Forest.from_bytes(_with(forest, **change(forest)))
    with pytest.raises(ValueError, match="not a tree file"):
        Forest.from_bytes(b"PK\x03\x04 garbage")


def test_inputs_keep_units_and_mark_missing_as_nan():
    values = np.array([[72.0, 5.0], [np.nan, 7.0]])
    present = np.array([[True, False], [True, True]])
    inputs = gbm_inputs(values, present, np.array([50.0, np.nan]), ["Male", None])
    expected = np.array([[72.0, np.nan, 50.0, 1, 0], [np.nan, 7.0, np.nan, 0, 0]])
    np.testing.assert_array_equal(inputs, expected)


@pytest.mark.parametrize(
    "values, pattern",
    [({"features_member": "xgboost"}, "'features_member'"), ({"gbm_kwargs": {"max_bins": 9}}, "max_bins")],
)
def test_features_member_settings_are_checked(values: dict, pattern: str):
    with pytest.raises(SettingsError, match=pattern):
        Settings.from_dict(values, source="s.json")


@pytest.fixture(scope="module")
def gbm_model(cinc_dir: Path, tmp_path_factory) -> Path:
    """``features_member: gbm`` (and the ``challenge`` loss mixed with BCE, to train it end to end too), two
    folds, a tiny network, trained on the 25 real Challenge records."""
    work = tmp_path_factory.mktemp("gbm")
    data = copy_records(cinc_dir, work / "data")
    settings = Settings.from_dict(
        {
            "epochs": 2,
            "batch_size": 8,
            "n_jobs": 1,
            "progress": False,
            "lead_sets": [["I", "II"]],
            "folds": 2,
            "features_member": "gbm",
            "gbm_kwargs": {"max_iter": 20, "min_samples_leaf": 2},
            "loss": "challenge",
            "loss_kwargs": {"bce_weight": 0.5},
            "model_kwargs": SMALL,
            "cache_dir": str(work / "cache"),
        }
    )
    train_all(data, work / "model", settings)
    return work / "model"


def test_model_folder_holds_the_trees_and_their_weight(gbm_model: Path):
    entry = model_folder.read_manifest(gbm_model)["models"]["I-II"]
    member = entry["features_member"]
    assert member["kind"] == "gbm" and member["file"].startswith("gbm_I-II.") and (gbm_model / member["file"]).is_file()
    weights = np.asarray(member["weights"])
    assert weights.shape == (2, SCORED) and np.allclose(weights.sum(axis=0), 1) and np.all(weights >= 0)
    forest = Forest.from_bytes((gbm_model / member["file"]).read_bytes())
    assert forest.members == 2 and forest.classes == SCORED and forest.num_features == len(FEATURE_NAMES) + 3
    assert not list(gbm_model.glob(".partial-*"))


def test_predictor_blends_networks_and_trees_by_the_stored_weights(gbm_model: Path, cinc_dir: Path):
    predictor = load_predictor(gbm_model, ("I", "II"), device="cpu", threads=1)
    assert predictor.features_member is not None and predictor.member_weights is not None
    record = read_record(sorted(cinc_dir.glob("*.hea"))[3])
    signal = select_leads(record.signal, record.leads, ("I", "II"))
    blended = predictor.probabilities(signal, record.fs, record.age, record.sex)
    prepared = prepare(signal, record.fs, ("I", "II"), predictor.config)
    inputs = gbm_inputs(prepared.features[None], prepared.feature_present[None], [record.age], [record.sex])
    trees = predictor.features_member.probabilities(inputs)
    weights, forest = predictor.member_weights, predictor.features_member
    predictor.features_member = None  # the networks alone, as the default path computes them
    network = predictor.probabilities(signal, record.fs, record.age, record.sex)
    predictor.features_member = forest
    # then the measured criteria (ecgtrain.criteria), mixed into the classes they define
    expected = blending.with_criteria(
        blending.mix([network[None], trees], weights), inputs, predictor.classes, predictor.criteria_weights
    )
    assert predictor.criteria_weights is not None
    np.testing.assert_allclose(blended, expected[0], atol=1e-6)
    assert blended.shape == (SCORED,) and np.all((blended >= 0) & (blended <= 1))


def test_tampered_or_missing_tree_file_is_a_model_folder_error(gbm_model: Path, tmp_path: Path):
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(gbm_model, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    name = manifest["models"]["I-II"]["features_member"]["file"]
    data = bytearray((copy / name).read_bytes())
    data[-40] ^= 0xFF
    (copy / name).write_bytes(bytes(data))
    with pytest.raises(ModelFolderError, match="sha256"):
        load_predictor(copy, ("I", "II"), device="cpu", threads=1)
    manifest["models"]["I-II"]["features_member"]["file"] = "../" + name
    model_folder.write_manifest(copy, manifest)  # sealed again: the checks behind it are tested
    with pytest.raises(ModelFolderError, match="features member file"):
        load_predictor(copy, ("I", "II"), device="cpu", threads=1)
    # a well-formed, hash-matching tree file for another feature layout (another code version)
    forest = Forest.from_bytes((gbm_model / name).read_bytes())
    other = _with(forest, num_features=np.int64(forest.num_features + 1))
    files = model_folder.save_member(copy, ("I", "II"), other)
    manifest["models"]["I-II"]["features_member"].update(files)
    model_folder.write_manifest(copy, manifest)  # sealed again: the checks behind it are tested
    with pytest.raises(ModelFolderError, match="reads 79 inputs"):
        load_predictor(copy, ("I", "II"), device="cpu", threads=1)


def test_retraining_without_the_member_removes_its_file(gbm_model: Path, cinc_dir: Path, tmp_path: Path):
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(gbm_model, copy)
    assert list(copy.glob("gbm_*.npz"))
    settings = Settings.from_dict(
        {
            "epochs": 1,
            "batch_size": 8,
            "n_jobs": 1,
            "progress": False,
            "lead_sets": [["I", "II"]],
            "folds": 2,
            "features_member": "none",
            "model_kwargs": SMALL,
            "cache_dir": str(tmp_path / "cache"),
        }
    )
    train_all(copy_records(cinc_dir, tmp_path / "data"), copy, settings)
    entry = model_folder.read_manifest(copy)["models"]["I-II"]
    assert "features_member" not in entry and not list(copy.glob("gbm_*.npz"))
    assert load_predictor(copy, ("I", "II"), device="cpu", threads=1).features_member is None


def test_a_feature_never_measured_in_training_is_never_split_on():
    """sklearn cannot bin an all-NaN column (a feature a lead set never measures): it is fitted as a constant,
    so a value there at inference changes nothing."""
    rng = np.random.default_rng(4)
    inputs = rng.standard_normal((100, 4))
    inputs[:, 2] = np.nan
    forest, _ = train_forest(inputs, inputs[:, :1] > 0, [(np.arange(100), np.arange(100))], GBM_PARAMS)
    assert len(forest.owner) == GBM_PARAMS["max_iter"] and not np.any(forest.feature[~forest.is_leaf] == 2)
    filled = inputs.copy()
    filled[:, 2] = 5.0
    np.testing.assert_array_equal(forest.probabilities(filled), forest.probabilities(inputs))
