"""Holdout splits of small classes: the per-class rounding, the at-least-one rules and the trimming that keeps a
training sample in every class, checked on exact cases and over a grid of class sizes and fractions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlcli.data.splits import _split_sizes, holdout_split

GRID = [round(0.05 * i, 2) for i in range(20)]


def sizes(n: int, test_fraction: float, val_fraction: float, *, stratify: bool = True) -> tuple[int, int, int]:
    """(train, val, test) sizes of one class of n samples (a second, large class rides along when stratified)."""
    y = np.array([0] * n + [1] * 100)
    train, val, test = holdout_split(
        y, test_fraction=test_fraction, val_fraction=val_fraction, rng=np.random.default_rng(0), stratify=stratify
    )
    if not stratify:
        return len(train), len(val), len(test)
    return tuple(int(np.sum(y[idx] == 0)) for idx in (train, val, test))


@pytest.mark.parametrize(
    ("n", "test_fraction", "val_fraction", "expected"),
    [
        (1, 0.5, 0.4, (1, 0, 0)),  # rounds to one test sample, but the only sample must train
        (2, 0.45, 0.45, (1, 1, 0)),  # both round to 1: the tie cuts test first
        (2, 0.1, 0.85, (1, 1, 0)),  # val rounds to 2: cut to 1, test stays 0 (n < 3 has no minimum)
        (3, 0.7, 0.25, (1, 1, 1)),  # 2 + 1 leave no training sample: the larger (test) gives one back
        (3, 0.05, 0.9, (1, 1, 1)),  # test gets its minimum 1, val rounds to 3 and gives back 2
        (4, 0.6, 0.35, (1, 1, 2)),  # 2 + 1 leave one to train: untouched
        (4, 0.1, 0.85, (1, 2, 1)),  # 1 (minimum) + 3 leave none: val, the larger, gives one back
        (4, 0.0, 0.9, (1, 3, 0)),  # a zero fraction is an empty split, even for n >= 3
        (5, 0.5, 0.45, (1, 2, 2)),  # 3 (2.5 rounds up) + 2: test gives one back
        (10, 0.25, 0.15, (5, 2, 3)),  # round half up: 2.5 -> 3 test, 1.5 -> 2 val
        (3, 0.1, 0.1, (1, 1, 1)),  # both round to 0, n >= 3 gives each its minimum of 1
        (2, 0.1, 0.1, (2, 0, 0)),  # n < 3: no minimum
    ],
)
def test_split_sizes_of_small_classes(n, test_fraction, val_fraction, expected):
    assert sizes(n, test_fraction, val_fraction) == expected


def test_unstratified_split_follows_the_same_rule():
    assert sizes(0, 0.45, 0.45, stratify=False)[0] >= 1
    y = np.arange(3, dtype=float)
    train, val, test = holdout_split(y, test_fraction=0.7, val_fraction=0.25, rng=np.random.default_rng(0),
                                     stratify=False)
    assert (len(train), len(val), len(test)) == (1, 1, 1)


@pytest.mark.parametrize("test_fraction", GRID)
def test_every_class_keeps_a_training_sample_and_no_size_is_negative(test_fraction):
    """Over class sizes 1..12 and every pair of fractions (step 0.05) whose sum is < 1."""
    counts = np.arange(1, 13)
    for val_fraction in GRID:
        if test_fraction + val_fraction >= 1:
            continue
        n_test, n_val = _split_sizes(counts, test_fraction, val_fraction)
        where = f"test_fraction={test_fraction}, val_fraction={val_fraction}"
        assert np.all(n_test >= 0) and np.all(n_val >= 0), where
        assert np.all(counts - n_test - n_val >= 1), where
        big = counts >= 3
        assert np.all(n_test[big] >= (test_fraction > 0)), where
        assert np.all(n_val[big] >= (val_fraction > 0)), where
        if test_fraction == 0:
            assert np.all(n_test == 0), where
        if val_fraction == 0:
            assert np.all(n_val == 0), where
        # never more than the rounded share (or the minimum of 1)
        rounded_test = np.maximum(np.floor(counts * test_fraction + 0.5), big & (test_fraction > 0))
        rounded_val = np.maximum(np.floor(counts * val_fraction + 0.5), big & (val_fraction > 0))
        assert np.all(n_test <= rounded_test) and np.all(n_val <= rounded_val), where
        # and trimmed only when the rounded shares would leave no training sample
        untouched = rounded_test + rounded_val <= counts - 1
        assert np.all(n_test[untouched] == rounded_test[untouched]), where
        assert np.all(n_val[untouched] == rounded_val[untouched]), where


def test_many_small_classes_split_end_to_end():
    """Classes of 1..6 samples in one dataset: a sorted partition, every class in train."""
    y = np.repeat(np.arange(6), np.arange(1, 7))
    train, val, test = holdout_split(y, test_fraction=0.45, val_fraction=0.45, rng=np.random.default_rng(3))
    assert np.array_equal(np.sort(np.concatenate([train, val, test])), np.arange(len(y)))
    for idx in (train, val, test):
        assert np.array_equal(idx, np.sort(idx))
    assert set(y[train]) == set(range(6))
    assert len(set(y[val]) & {2, 3, 4, 5}) == 4 and len(set(y[test]) & {2, 3, 4, 5}) == 4


@pytest.mark.parametrize("bad", [-0.1, -1e-9, 1.0, 1.5, math.nan, math.inf])
@pytest.mark.parametrize("which", ["test_fraction", "val_fraction"])
def test_fractions_outside_zero_one_are_refused(which, bad):
    other = "val_fraction" if which == "test_fraction" else "test_fraction"
    with pytest.raises(ValueError, match=f"{which} must be in \\[0, 1\\)"):
        holdout_split(np.zeros(10, dtype=int), **{which: bad, other: 0.0}, rng=np.random.default_rng(0))


@pytest.mark.parametrize(("test_fraction", "val_fraction"), [(0.5, 0.5), (0.6, 0.45), (0.99, 0.01)])
def test_fractions_that_leave_no_training_data_are_refused(test_fraction, val_fraction):
    with pytest.raises(ValueError, match="must be < 1 to leave training data"):
        holdout_split(np.zeros(10, dtype=int), test_fraction=test_fraction, val_fraction=val_fraction,
                      rng=np.random.default_rng(0))


def test_fractions_just_under_one_are_taken():
    train, val, test = holdout_split(np.zeros(100, dtype=int), test_fraction=0.5, val_fraction=0.49,
                                     rng=np.random.default_rng(0))
    assert (len(train), len(val), len(test)) == (1, 49, 50)


@pytest.mark.parametrize("y", [np.linspace(0, 1, 10), np.zeros((10, 2), dtype=int)])
def test_stratify_refuses_targets_that_are_not_1d_class_labels(y):
    with pytest.raises(ValueError, match="stratify needs 1-D class labels"):
        holdout_split(y, rng=np.random.default_rng(0))
    train, val, test = holdout_split(y, rng=np.random.default_rng(0), stratify=False)
    assert len(train) + len(val) + len(test) == 10


def test_k_folds_of_exactly_k_samples_hold_one_sample_each():
    from mlcli.data.splits import kfold_indices

    folds = kfold_indices(np.arange(3.0), k=3, rng=np.random.default_rng(0), stratify=False)
    assert sorted(int(val[0]) for _, val in folds) == [0, 1, 2]
    assert all(len(train) == 2 and len(val) == 1 for train, val in folds)
    folds = kfold_indices(np.array([0, 0, 1, 1]), k=2, rng=np.random.default_rng(0))
    assert all(sorted(np.array([0, 0, 1, 1])[val]) == [0, 1] for _, val in folds)
