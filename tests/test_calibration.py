"""Calibrating the networks before the blend: the map, its error measure, and a saved model that applies it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ecgserve import blending
from ecgtrain import calibration


def overconfident(n: int = 2000, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels and probabilities whose logits are three times too large (an overconfident network)."""
    rng = np.random.default_rng(seed)
    truth = rng.normal(-1.0, 1.5, size=(n, classes))
    labels = rng.random((n, classes)) < 1 / (1 + np.exp(-truth))
    return labels, 1 / (1 + np.exp(-3.0 * truth))


def test_temperature_undoes_overconfidence_and_keeps_the_ranking():
    labels, probabilities = overconfident()
    params = calibration.fit(labels, probabilities, "temperature")
    assert params is not None and params.shape == (2, 3)
    assert np.allclose(params[0], params[0, 0]) and 0.25 < params[0, 0] < 0.45  # about 1/3
    calibrated = blending.calibrate(probabilities, params)
    before = calibration.expected_calibration_error(labels, probabilities)
    after = calibration.expected_calibration_error(labels, calibrated)
    assert after < before / 2
    for c in range(3):
        # monotone: the ranking holds, but for probabilities clipped at 1e-6 that become ties
        auc = roc_auc_score(labels[:, c], probabilities[:, c])
        assert roc_auc_score(labels[:, c], calibrated[:, c]) == pytest.approx(auc, abs=1e-4)


def test_platt_fits_each_class_with_enough_positives():
    labels, probabilities = overconfident()
    probabilities[:, 1] = 1 / (1 + np.exp(-np.log(probabilities[:, 1] / (1 - probabilities[:, 1])) / 3 - 1.0))
    labels[:, 2] = False
    labels[:3, 2] = True  # too few positives: the shared pair
    params = calibration.fit(labels, probabilities, "platt", min_positives=10)
    assert params is not None and params[0, 0] != pytest.approx(params[0, 1], abs=0.05)
    shared = calibration.fit(labels, probabilities, "temperature")
    assert shared is not None and np.allclose(params[:, 2], shared[:, 2])


def test_only_annotated_pairs_count():
    labels, probabilities = overconfident()
    annotated = np.ones(labels.shape, bool)
    annotated[:, 0] = False
    flipped = labels.copy()
    flipped[:, 0] = ~flipped[:, 0]  # nonsense in a column nobody annotated
    a = calibration.fit(labels, probabilities, "temperature", annotated)
    b = calibration.fit(flipped, probabilities, "temperature", annotated)
    assert a is not None and b is not None and np.allclose(a, b)


def test_none_and_unknown():
    labels, probabilities = overconfident(n=50)
    assert calibration.fit(labels, probabilities, "none") is None
    assert blending.calibrate(probabilities, None) is probabilities
    with pytest.raises(ValueError, match="network_calibration"):
        calibration.fit(labels, probabilities, "isotonic-ish")


def test_model_folder_stores_and_applies_the_calibration(tmp_path: Path, cinc_dir: Path):
    from conftest import copy_records, train_tiny_model

    from ecgio.record import read_record
    from ecgserve import predictor as predictor_module
    from ecgserve.blending import blend
    from ecgserve.forest import gbm_inputs
    from ecgserve.model_folder import read_manifest
    from ecgsignal.pipeline import prepare

    data = copy_records(cinc_dir, tmp_path / "data")
    train_tiny_model(data, tmp_path, network_calibration="temperature")
    entry = read_manifest(tmp_path / "model")["models"]["I-II"]
    params = np.asarray(entry["features_member"]["network_calibration"])
    assert params.shape == (2, 26) and np.all(params[0] > 0)
    predictor = predictor_module.load_predictor(tmp_path / "model", ("I", "II"), device="cpu", threads=1)
    assert predictor.network_calibration is not None and np.allclose(predictor.network_calibration, params)
    record = read_record(sorted(cinc_dir.glob("*.hea"))[2])
    signal = record.signal[[record.leads.index("I"), record.leads.index("II")]]
    full = predictor.probabilities(signal, record.fs, record.age, record.sex)
    prepared = prepare(signal, record.fs, ("I", "II"), predictor.config)
    inputs = gbm_inputs(prepared.features[None], prepared.feature_present[None], [record.age], [record.sex])
    forest, predictor.features_member = predictor.features_member, None
    network = predictor.probabilities(signal, record.fs, record.age, record.sex)[None]
    predictor.features_member = forest
    assert forest is not None and predictor.member_weights is not None
    expected = blend(blending.calibrate(network, params), forest, predictor.member_weights, inputs)
    expected = blending.with_criteria(expected, inputs, predictor.classes, predictor.criteria_weights)
    np.testing.assert_allclose(full, expected[0], atol=1e-5)
    entry["features_member"]["network_calibration"] = [[1.0] * 26]
    with pytest.raises(ValueError, match="network calibration"):
        predictor_module._features_member(tmp_path / "model", entry)
