"""The six PTB-XL benchmark tasks on the real PTB-XL sample, and the PTB-XL metrics on small known cases."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from ecgdata.ptbxl_tasks import SPLITS, SUPERCLASSES, TASK_NAMES, load_task, statement_labels
from ecgscore.ptbxl import bootstrap, evaluate_ptbxl, fmax, macro_auroc, sample_f1
from ecgtrain.tasks import fold_split, ptbxl_task

#: Number of labels scp_statements.csv (PTB-XL 1.0.3) defines per task.
CLASS_COUNTS = {"all": 71, "diagnostic": 44, "subdiagnostic": 23, "superdiagnostic": 5, "form": 19, "rhythm": 12}

#: ecg_id -> task -> labels, read by hand from ptbxl_database.csv and scp_statements.csv.
#: 1: NORM 100, LVOLT 0, SR 0 (likelihood 0 still counts); 45: IRBBB, RAO/RAE, RVH, SR;
#: 103: IMI, LAFB, ABQRS, STACH.
KNOWN = {
    1: {
        "all": {"NORM", "LVOLT", "SR"},
        "diagnostic": {"NORM"},
        "subdiagnostic": {"NORM"},
        "superdiagnostic": {"NORM"},
        "form": {"LVOLT"},
        "rhythm": {"SR"},
    },
    45: {
        "all": {"IRBBB", "RAO/RAE", "RVH", "SR"},
        "diagnostic": {"IRBBB", "RAO/RAE", "RVH"},
        "subdiagnostic": {"IRBBB", "RAO/RAE", "RVH"},
        "superdiagnostic": {"CD", "HYP"},
        "form": None,  # no form statement: the record is dropped from the form task
        "rhythm": {"SR"},
    },
    103: {
        "all": {"IMI", "LAFB", "ABQRS", "STACH"},
        "diagnostic": {"IMI", "LAFB"},
        "subdiagnostic": {"IMI", "LAFB/LPFB"},
        "superdiagnostic": {"MI", "CD"},
        "form": {"ABQRS"},
        "rhythm": {"STACH"},
    },
}


@pytest.mark.parametrize("name", TASK_NAMES)
def test_task_classes_and_known_targets(ptbxl_dir, name):
    task = load_task(ptbxl_dir, name, rate=100, split="sample")
    assert len(task.classes) == CLASS_COUNTS[name] and len(set(task.classes)) == len(task.classes)
    if name == "superdiagnostic":
        assert task.classes == SUPERCLASSES
    else:
        assert list(task.classes) == sorted(task.classes)
    assert task.targets.shape == (len(task), len(task.classes)) and task.targets.any(axis=1).all()
    assert len(task) + task.dropped == 353
    ids = list(task.ecg_ids)
    for ecg_id, expected in KNOWN.items():
        if expected[name] is None:
            assert ecg_id not in ids
            continue
        row = task.targets[ids.index(ecg_id)]
        assert {task.classes[k] for k in np.flatnonzero(row)} == expected[name]


def test_statement_labels_follow_the_table(ptbxl_dir):
    assert statement_labels(ptbxl_dir, "superdiagnostic")["IMI"] == "MI"
    assert statement_labels(ptbxl_dir, "subdiagnostic")["LAFB"] == "LAFB/LPFB"
    assert "SR" not in statement_labels(ptbxl_dir, "diagnostic") and "SR" in statement_labels(ptbxl_dir, "rhythm")
    assert "NDT" in statement_labels(ptbxl_dir, "form") and "NDT" in statement_labels(ptbxl_dir, "diagnostic")
    with pytest.raises(ValueError, match="unknown PTB-XL task"):
        statement_labels(ptbxl_dir, "superdiag")


def test_folds_of_both_splits(ptbxl_dir):
    sample = load_task(ptbxl_dir, "superdiagnostic", split="sample")
    assert set(sample.strat_fold[sample.train]) == set(range(1, 7))
    assert set(sample.strat_fold[sample.validation]) == {7} and set(sample.strat_fold[sample.test]) == {8}
    assert len(sample.train) + len(sample.validation) + len(sample.test) == len(sample)
    assert sample.ecg_ids[sample.test].tolist()[:1] == [12]  # ecg_id 12 is in fold 8
    recommended = load_task(ptbxl_dir, "superdiagnostic")
    assert SPLITS["recommended"] == (tuple(range(1, 9)), (9,), (10,))
    assert len(recommended.train) == len(recommended) and recommended.test.size == recommended.validation.size == 0
    with pytest.raises(ValueError, match="split"):
        load_task(ptbxl_dir, "superdiagnostic", split="random")


def test_subset_renumbers_the_split(ptbxl_dir):
    task = load_task(ptbxl_dir, "rhythm", split="sample")
    rows = np.concatenate([task.train[:5], task.test[:3]])
    small = task.subset(rows)
    assert len(small) == 8 and small.train.tolist() == [0, 1, 2, 3, 4] and small.test.tolist() == [5, 6, 7]
    assert small.validation.size == 0 and (small.targets == task.targets[rows]).all()
    assert small.names[5] == task.names[task.test[0]] and small.ages is not None and len(small.sexes) == 8


def test_ptbxl_task_targets_by_name_and_fold_split(ptbxl_dir):
    task = ptbxl_task("superdiagnostic", ptbxl_dir, split="sample")
    assert task.classes == SUPERCLASSES and task.metric == "macro_auroc"
    index = SimpleNamespace(records=["HR00045", "00103_lr", "00001_hr", "E07500"])
    targets = task.targets(index)
    assert targets.tolist() == [
        [False, False, False, True, True],
        [False, True, False, True, False],
        [True, False, False, False, False],
        [False, False, False, False, False],
    ]
    train, validation = task.split(np.zeros((5, 5)), ["1", "7", "6", "7", "2"], 0.2, 0)
    assert train.tolist() == [0, 2, 4] and validation.tolist() == [1, 3]
    assert fold_split((9,))(np.zeros((2, 1)), ["9", "8"], 0.2, 0)[1].tolist() == [0]


# --- metrics on small cases with known answers ---

LABELS = np.array([[1, 0], [0, 1], [1, 1]], dtype=bool)
SCORES = np.array([[0.9, 0.2], [0.6, 0.4], [0.8, 0.7]])


def test_fmax_known_value():
    # t in (0.2, 0.4]: predictions {0}, {0,1}, {0,1}: precision (1 + 1/2 + 1)/3, recall 1 -> F = 10/11;
    # every other threshold gives at most 0.8 (worked by hand in the docstring's terms).
    assert fmax(LABELS, SCORES) == pytest.approx(10 / 11)
    assert fmax(LABELS, LABELS.astype(float)) == 1.0
    assert sample_f1(LABELS)(SCORES >= 0.7) == pytest.approx(0.8)
    assert sample_f1(LABELS)(np.zeros_like(LABELS)) == 0.0


def test_macro_auroc_skips_classes_without_both_outcomes():
    labels = np.array([[1, 1], [0, 1], [1, 1], [0, 1]], dtype=bool)  # class 1 has no negatives
    scores = np.array([[0.9, 0.1], [0.2, 0.5], [0.3, 0.4], [0.4, 0.3]])
    # class 0: positives 0.9, 0.3 against negatives 0.2, 0.4 -> 3 of 4 pairs ordered -> 0.75
    assert macro_auroc(labels, scores) == pytest.approx(0.75)
    scores_named = evaluate_ptbxl(labels, scores, np.array([0.5, 0.5]))
    assert scores_named["macro_auroc"] == pytest.approx(0.75) and set(scores_named) >= {"fmax", "auprc"}


def test_bootstrap_known_intervals():
    labels = np.zeros((2, 1), dtype=bool)
    scores = np.array([[0.0], [1.0]])

    def mean_score(_labels, values):
        return float(values.mean())

    # Resampled means are 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4: the 95 % interval is [0, 1].
    interval = bootstrap(labels, scores, mean_score, n=2000, seed=0)
    assert (interval.value, interval.low, interval.high, interval.skipped) == (0.5, 0.0, 1.0, 0)
    assert bootstrap(labels, scores, mean_score, n=200, seed=3) == bootstrap(labels, scores, mean_score, n=200, seed=3)

    def spread(_labels, values):  # undefined (NaN) when the resample holds one distinct record
        return float(values.max() - values.min()) if np.unique(values).size > 1 else float("nan")

    skipped = bootstrap(labels, scores, spread, n=2000, seed=0)
    assert skipped.low == skipped.high == 1.0 and 850 < skipped.skipped < 1150  # about half are skipped
    constant = bootstrap(np.ones((5, 1), bool), np.full((5, 1), 0.3), mean_score, n=100)
    assert constant.low == constant.high == constant.value == pytest.approx(0.3)
    with pytest.raises(ValueError, match="zero records"):
        bootstrap(np.zeros((0, 1), bool), np.zeros((0, 1)), mean_score)
