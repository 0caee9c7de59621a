"""Diagnoses that are measurements: the criterion scores, their fitted weights, and a saved model using them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ecgscore.classes import ABBREVIATIONS, scored_classes
from ecgserve import blending
from ecgserve.forest import GBM_EXTRA_COLUMNS
from ecgsignal.criteria import CRITERIA, criterion_scores
from ecgsignal.features import FEATURE_NAMES
from ecgtrain import criteria

COLUMN = {name: i for i, name in enumerate(FEATURE_NAMES)}


def rows(**columns: list[float]) -> np.ndarray:
    """Feature rows (NaN but for ``columns``), one per value of the columns' lists."""
    n = len(next(iter(columns.values())))
    out = np.full((n, len(FEATURE_NAMES)), np.nan)
    for name, values in columns.items():
        out[:, COLUMN[name]] = values
    return out


def score(name: str, values: np.ndarray, sexes: list[str | None] | None = None) -> np.ndarray:
    return criterion_scores(values, sexes or [None] * len(values), [name])[:, 0]


def test_every_criterion_names_a_scored_class():
    assert set(CRITERIA) <= set(ABBREVIATIONS)


def test_pr_interval_needs_p_waves():
    values = rows(pr_interval=[260, 230, 160, 260], p_presence=[1.0, 1.0, 1.0, 0.1])
    iavb = score("IAVB", values)
    assert iavb[0] > 0.99 and iavb[1] > 0.95 and iavb[2] < 0.01 and iavb[3] < 0.05
    assert np.array_equal(iavb, score("LPR", values))
    assert np.isnan(score("IAVB", rows(pr_interval=[np.nan], p_presence=[1.0])))[0]


def test_rate_classes():
    values = rows(
        heart_rate=[45, 75, 120, 45, 45],
        num_beats=[8, 12, 20, 8, 2],
        p_presence=[1.0, 1.0, 1.0, 0.0, 1.0],
        rr_irregularity=[0.02, 0.02, 0.02, 0.3, 0.02],
    )
    brady, sb, stach = (score(name, values) for name in ("Brady", "SB", "STach"))
    assert brady[0] > 0.99 and brady[1] < 0.01 and brady[3] > 0.99  # bradycardia whatever the rhythm
    assert sb[0] > 0.95 and sb[3] < 0.01  # sinus bradycardia needs P waves and a steady rhythm
    assert stach[2] > 0.95 and stach[1] < 0.01
    assert np.isnan(brady[4])  # two beats: no rate to judge


def test_qtc_cut_off_depends_on_sex():
    values = rows(qtc_bazett=[455.0, 455.0])
    male, female = score("LQT", values, ["Male", "Female"])
    assert male > 0.7 and female < 0.3


def test_axis_and_voltage():
    axis = rows(qrs_axis=[-60.0, -10.0, 60.0, 120.0, -150.0])
    lad, rad = score("LAD", axis), score("RAD", axis)
    assert lad[0] > 0.99 and lad[1] < 0.01 and lad[2] < 0.01 and lad[4] < 0.01
    assert rad[3] > 0.99 and rad[2] < 0.01
    low = score("LQRSV", rows(limb_max_p2p=[0.3, 1.2, 1.2], precordial_max_p2p=[np.nan, 2.0, 0.6]))
    assert low[0] > 0.99 and low[1] < 0.01 and low[2] > 0.99


def test_t_inversion_and_r_progression():
    values = rows(t_amp_V4=[-0.4, 0.3, np.nan], t_amp_I=[0.2, 0.2, np.nan], r_amp_V3=[0.1, 0.9, np.nan])
    tinv, prwp = score("TInv", values), score("PRWP", values)
    assert tinv[0] > 0.99 and tinv[1] < 0.01 and np.isnan(tinv[2])
    assert prwp[0] > 0.99 and prwp[1] < 0.01 and np.isnan(prwp[2])


def test_a_wide_qrs_is_a_bundle_branch_block():
    bbb = score("BBB", rows(qrs_duration=[150.0, 124.0, 100.0, 90.0, np.nan]))
    assert bbb[0] > 0.99 and bbb[1] > 0.75 and bbb[2] < 0.01 and bbb[3] < 0.01 and np.isnan(bbb[4])


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="features"):
        criterion_scores(np.zeros((1, 3)), [None], ["IAVB"])
    with pytest.raises(ValueError, match="sexes"):
        criterion_scores(rows(pr_interval=[200.0]), [None, None], ["IAVB"])


def test_weights_follow_the_evidence():
    """An unseen class is left to its criterion, a class the criterion predicts gets weight, one it does not
    predict keeps the learned probability; a class without a criterion gets 0."""
    rng = np.random.default_rng(0)
    n = 200
    labels = np.zeros((n, 3), bool)
    labels[:40, 1] = True  # class 1: the criterion knows it
    labels[rng.choice(n, 40, replace=False), 2] = True  # class 2: the criterion is noise
    probabilities = np.full((n, 3), 0.2)
    scores = np.stack([rng.random(n), np.where(labels[:, 1], 0.95, 0.05), rng.random(n)], axis=1)
    weights = criteria.fit_weights(labels, probabilities, scores, np.ones((n, 3), bool), 3, decide_unseen=True)
    assert weights[0] == 1.0 and weights[1] >= 0.5 and weights[2] == 0.0
    learned_only = criteria.fit_weights(labels, probabilities, scores, np.ones((n, 3), bool), 3)
    assert learned_only[0] == 0.0 and learned_only[1] == weights[1]  # "blend": unseen classes stay learned
    no_criterion = np.full((n, 3), np.nan)
    assert np.array_equal(
        criteria.fit_weights(labels, probabilities, no_criterion, np.ones((n, 3), bool), 3), [0, 0, 0]
    )
    # positives from a source that does not annotate the class do not count as evidence against the criterion
    unannotated = np.ones((n, 3), bool)
    unannotated[:, 1] = False
    assert criteria.fit_weights(labels, probabilities, scores, unannotated, 3, decide_unseen=True)[1] == 1.0


def test_apply_mixes_only_measured_scores():
    probabilities = np.array([[0.2, 0.4], [0.2, 0.4]])
    scores = np.array([[1.0, np.nan], [np.nan, 0.0]])
    mixed = blending.mix_criteria(probabilities, scores, np.array([0.5, 1.0]))
    assert np.allclose(mixed, [[0.6, 0.4], [0.2, 0.0]])


def test_tree_inputs_carry_the_sex():
    values = rows(qtc_bazett=[455.0, 455.0])
    inputs = np.concatenate([values, np.array([[50.0, 1.0, 0.0], [50.0, 0.0, 1.0]])], axis=1)
    assert inputs.shape[1] == len(FEATURE_NAMES) + len(GBM_EXTRA_COLUMNS)
    lqt = blending.scores_from_tree_inputs(inputs, ABBREVIATIONS)[:, ABBREVIATIONS.index("LQT")]
    assert lqt[0] > 0.7 and lqt[1] < 0.3


def test_only_the_challenge_classes_have_criteria():
    codes = [sorted(group)[0] for group in scored_classes()]
    assert blending.criterion_abbreviations(codes) == ABBREVIATIONS
    assert blending.criterion_abbreviations(["NORM", "MI", "STTC", "CD", "HYP"]) is None


def test_model_folder_records_and_applies_the_criteria(tmp_path: Path, cinc_dir: Path):
    """Training (``decide``) writes the criterion weights beside the trees; the predictor applies them; a weight out of
    [0, 1] is refused at load."""
    from conftest import copy_records, train_tiny_model

    from ecgdata.index import build_index
    from ecgio.record import read_record
    from ecgserve import predictor as predictor_module
    from ecgserve.model_folder import read_manifest

    data = copy_records(cinc_dir, tmp_path / "data")
    train_tiny_model(data, tmp_path, diagnostic_criteria="decide")
    entry = read_manifest(tmp_path / "model")["models"]["I-II"]
    weights = np.asarray(entry["features_member"]["criteria_weights"])
    assert weights.shape == (len(ABBREVIATIONS),)
    has = np.array([name in CRITERIA for name in ABBREVIATIONS])
    unseen = build_index(data).targets.sum(axis=0) == 0
    needs_v3 = np.array([name == "PRWP" for name in ABBREVIATIONS])  # not measurable on I and II: weight 0
    assert np.all(weights[~has | needs_v3] == 0)
    assert np.all(weights[has & unseen & ~needs_v3] == 1)  # never seen in training: the criterion decides
    assert (has & unseen & ~needs_v3).sum() >= 5 and np.all((weights >= 0) & (weights <= 1))
    predictor = predictor_module.load_predictor(tmp_path / "model", ("I", "II"), device="cpu", threads=1)
    assert predictor.criteria_weights is not None and np.array_equal(predictor.criteria_weights, weights)
    changed = 0
    for path in sorted(cinc_dir.glob("*.hea"))[:5]:
        record = read_record(path)
        signal = record.signal[[record.leads.index("I"), record.leads.index("II")]]
        predictor.criteria_weights = weights
        with_criteria = predictor.probabilities(signal, record.fs, record.age, record.sex)
        predictor.criteria_weights = None
        without = predictor.probabilities(signal, record.fs, record.age, record.sex)
        assert np.allclose(with_criteria[~has], without[~has], atol=1e-6)
        changed += not np.allclose(with_criteria[has], without[has])
    assert changed >= 3
    entry["features_member"]["criteria_weights"] = [2.0] * len(ABBREVIATIONS)
    with pytest.raises(ValueError, match="criteria weights"):
        predictor_module._features_member(tmp_path / "model", entry)


def test_docstring_examples():
    import doctest

    import ecgsignal.criteria
    import ecgtrain.calibration

    for module in (ecgsignal.criteria, ecgtrain.calibration):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
