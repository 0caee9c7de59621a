"""Stratified k-fold and train/validation splits: partition, stratification quality, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecgdata.index import build_index
from ecgdata.splits import record_split, stratified_kfold, train_val_split


def _skewed(seed: int, count: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    """Multi-label targets with common and very rare classes, and unequal sources."""
    rng = np.random.default_rng(seed)
    prevalence = np.array([0.4, 0.15, 0.05, 0.01, 0.004, 0.002, 0.02, 0.3])
    targets = rng.random((count, prevalence.size)) < prevalence
    groups = rng.choice(["big", "medium", "small", "tiny"], size=count, p=[0.6, 0.3, 0.09, 0.01])
    return targets, groups


def _assert_partition(splits, count: int) -> None:
    validation = np.concatenate([val for _, val in splits])
    assert np.array_equal(np.sort(validation), np.arange(count))  # every record validated exactly once
    for train, val in splits:
        assert np.intersect1d(train, val).size == 0
        assert train.size + val.size == count


def test_kfold_partitions_and_balances_classes_and_sources():
    targets, groups = _skewed(1)
    splits = stratified_kfold(targets, groups, n_splits=5, seed=0)
    _assert_partition(splits, len(targets))
    sizes = [val.size for _, val in splits]
    assert max(sizes) - min(sizes) <= 2
    for _, val in splits:
        assert np.all(np.abs(targets[val].sum(axis=0) - targets.sum(axis=0) / 5) <= 1.0)
        for name in np.unique(groups):
            assert abs(np.sum(groups[val] == name) - np.sum(groups == name) / 5) <= 1.0


def test_stratification_beats_a_random_split():
    targets, groups = _skewed(2)
    ours = stratified_kfold(targets, groups, n_splits=5, seed=0)
    folds = np.random.default_rng(0).permutation(len(targets)) % 5
    shuffled = [(np.flatnonzero(folds != k), np.flatnonzero(folds == k)) for k in range(5)]

    def worst_deviation(splits) -> float:
        return max(float(np.abs(targets[val].sum(axis=0) - targets.sum(axis=0) / 5).max()) for _, val in splits)

    assert worst_deviation(ours) <= 1.0 < worst_deviation(shuffled)


def test_rare_class_is_spread_over_folds():
    targets = np.zeros((100, 3), dtype=bool)
    targets[:5, 0] = True  # five positives: one per fold
    targets[::2, 1] = True
    splits = stratified_kfold(targets, n_splits=5, seed=4)
    assert [int(targets[val, 0].sum()) for _, val in splits] == [1] * 5


def test_reproducible_from_the_seed():
    targets, groups = _skewed(3, 500)
    first = stratified_kfold(targets, groups, n_splits=4, seed=7)
    again = stratified_kfold(targets, groups, n_splits=4, seed=7)
    other = stratified_kfold(targets, groups, n_splits=4, seed=8)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(first, again))
    assert any(not np.array_equal(a[1], b[1]) for a, b in zip(first, other))
    assert all(
        np.array_equal(a, b)
        for a, b in zip(train_val_split(targets, groups, 0.2, 5), train_val_split(targets, groups, 0.2, 5))
    )


def test_train_val_split_fraction_and_stratification():
    targets, groups = _skewed(4, 2000)
    train, val = train_val_split(targets, groups, val_fraction=0.25, seed=0)
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(2000))
    assert abs(val.size - 500) <= 2
    assert np.all(np.abs(targets[val].sum(axis=0) - 0.25 * targets.sum(axis=0)) <= 1.0)
    for name in np.unique(groups):
        assert abs(np.sum(groups[val] == name) - 0.25 * np.sum(groups == name)) <= 1.0


def test_records_without_labels_are_placed_too():
    targets = np.zeros((23, 4), dtype=bool)
    splits = stratified_kfold(targets, n_splits=5, seed=0)
    _assert_partition(splits, 23)
    assert sorted(val.size for _, val in splits) == [4, 4, 5, 5, 5]


def test_on_the_real_sample_sources_stay_balanced(cinc_dir):
    index = build_index(cinc_dir, progress=False)
    sources = np.asarray(index.sources)
    exact = 0
    for seed in range(10):
        splits = stratified_kfold(index.targets, index.sources, n_splits=5, seed=seed)
        _assert_partition(splits, len(index))
        per_fold = [[int(np.sum(sources[val] == s)) for s in ("PTB-XL", "Georgia", "Ningbo")] for _, val in splits]
        # 5 PTB-XL, 10 Georgia, 10 Ningbo records over 5 folds: 1, 2, 2 each, give or take one record
        assert all(abs(count - share) <= 1 for fold in per_fold for count, share in zip(fold, (1, 2, 2))), per_fold
        exact += all(fold == [1, 2, 2] for fold in per_fold)
    assert exact >= 5  # with 25 records the class constraints sometimes cost one record of source balance
    train, val = train_val_split(index.targets, index.sources, val_fraction=0.2, seed=0)
    assert val.size == 5 and train.size == 20


def test_bad_arguments():
    targets = np.zeros((10, 2), dtype=bool)
    with pytest.raises(ValueError):
        stratified_kfold(targets, n_splits=1)
    with pytest.raises(ValueError):
        stratified_kfold(targets, n_splits=11)
    with pytest.raises(ValueError, match="groups"):
        stratified_kfold(targets, groups=["a"] * 9)
    with pytest.raises(ValueError):
        train_val_split(targets, val_fraction=1.0)
    with pytest.raises(ValueError):
        stratified_kfold(np.zeros(10, dtype=bool))


@settings(max_examples=40, deadline=None)
@given(
    count=st.integers(5, 60),
    classes=st.integers(1, 6),
    n_splits=st.integers(2, 5),
    seed=st.integers(0, 2**16),
)
def test_always_a_partition(count, classes, n_splits, seed):
    rng = np.random.default_rng(seed)
    targets = rng.random((count, classes)) < rng.random(classes)
    groups = rng.choice(["a", "b", "c"], size=count)
    splits = stratified_kfold(targets, groups, n_splits=n_splits, seed=seed)
    _assert_partition(splits, count)
    assert all(val.size > 0 for _, val in splits)


def test_record_split_uses_everything_for_a_smoke_run_and_stratifies_otherwise(caplog):
    targets, groups = _skewed(3, count=9)
    train, val = record_split(targets, groups, 0.2, seed=0)
    assert np.array_equal(train, np.arange(9)) and np.array_equal(val, np.arange(9))
    assert "only 9 records" in caplog.text
    targets, groups = _skewed(3, count=200)
    train, val = record_split(targets, groups, 0.2, seed=0)
    expected = train_val_split(targets, groups, 0.2, seed=0)
    assert np.array_equal(train, expected[0]) and np.array_equal(val, expected[1])
