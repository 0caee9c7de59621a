"""Trees on device copies (``compare_sources --candidate-device-copies``): a copy trains only where its
original trains, so no held-out or validation record is seen through its copy."""

from __future__ import annotations

import numpy as np

from ecgtrain.folds import add_copies


def test_copies_join_only_the_training_rows_of_each_fold():
    names = ["a", "b", "c", "d"]
    inputs = np.arange(4, dtype=float)[:, None]
    targets = np.eye(4, dtype=bool)
    pairs = [(np.array([0, 1]), np.array([2])), (np.array([1, 2]), np.array([0]))]  # "d" is a test record
    copy_names = ["d", "c", "a", "b"]  # another order; the copy of a record sits at 10 + its row here
    copy_inputs = 10.0 + np.arange(4, dtype=float)[:, None]
    all_inputs, all_targets, new_pairs = add_copies(names, inputs, targets, pairs, copy_names, copy_inputs)
    assert all_inputs[:4, 0].tolist() == [0, 1, 2, 3]
    assert all_inputs[4:, 0].tolist() == [12, 13, 11, 10]  # copies of a, b, c, d in the originals' order
    assert np.array_equal(all_targets[4:], targets)
    (train0, val0), (train1, val1) = new_pairs
    assert train0.tolist() == [0, 1, 4, 5] and val0.tolist() == [2]
    assert train1.tolist() == [1, 2, 5, 6] and val1.tolist() == [0]
    assert 7 not in np.concatenate([train0, train1])  # the test record's copy trains nowhere


def test_records_without_a_copy_are_left_alone():
    inputs, targets = np.zeros((3, 1)), np.zeros((3, 2), bool)
    pairs = [(np.array([0, 1]), np.array([2]))]
    all_inputs, _, new_pairs = add_copies(["a", "b", "c"], inputs, targets, pairs, ["b"], np.ones((1, 1)))
    assert len(all_inputs) == 4 and new_pairs[0][0].tolist() == [0, 1, 3]
