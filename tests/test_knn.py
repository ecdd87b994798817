"""KNNClassifier against a brute-force reference, its voting rules, memory blocking, errors and state."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from mlcli.errors import CheckpointError, DataError
from mlcli.models.knn import KNNClassifier, block_shape


def brute_force(X, y, Q, k, metric, weights, n_classes):
    """Plain reference: per query, all distances in float64, sort by (distance, index), vote, break ties."""
    X = X.astype(np.float32).astype(np.float64)
    preds, scores = [], []
    for q in Q.astype(np.float32).astype(np.float64):
        dists = []
        for x in X:
            if metric == "l2":
                dists.append(np.sqrt(np.sum((q - x) ** 2)))
            elif metric == "l1":
                dists.append(np.sum(np.abs(q - x)))
            else:
                dists.append(1.0 - q @ x / (np.linalg.norm(q) * np.linalg.norm(x)))
        order = sorted(range(len(X)), key=lambda i: (dists[i], i))[:k]
        votes, dsum = np.zeros(n_classes), np.zeros(n_classes)
        exact = [i for i in order if dists[i] == 0]
        for i in order:
            if weights == "uniform":
                w = 1.0
            elif exact:
                w = 1.0 if dists[i] == 0 else 0.0
            else:
                w = 1.0 / dists[i]
            votes[y[i]] += w
            dsum[y[i]] += dists[i] if w > 0 else 0.0
        tied = [c for c in range(n_classes) if votes[c] == votes.max()]
        preds.append(min(tied, key=lambda c: (dsum[c], c)))
        scores.append(votes / votes.sum())
    return np.array(preds), np.array(scores)


@pytest.mark.parametrize("metric", ["l2", "l1", "cosine"])
@pytest.mark.parametrize("weights", ["uniform", "distance"])
@pytest.mark.parametrize("k", [1, 4, 7])
def test_predictions_equal_brute_force_reference(metric, weights, k):
    rng = np.random.default_rng(k)
    X, y = rng.normal(size=(60, 5)) + 3.0, rng.integers(0, 4, 60)
    Q = rng.normal(size=(15, 5)) + 3.0
    model = KNNClassifier(k=k, metric=metric, weights=weights).fit(X, y)
    ref_pred, ref_scores = brute_force(X, y, Q, k, metric, weights, 4)
    np.testing.assert_array_equal(model.predict(Q), ref_pred)
    np.testing.assert_allclose(model.scores(Q), ref_scores, rtol=1e-5)
    assert model.scores(Q).shape == (15, 4)


def test_distance_weights_are_inverse_distances():
    X, y = np.array([[0.0], [1.0], [3.0]]), np.array([0, 1, 1])
    q = np.array([[0.4]])
    uniform = KNNClassifier(k=3).fit(X, y)
    weighted = KNNClassifier(k=3, weights="distance").fit(X, y)
    assert uniform.predict(q)[0] == 1
    assert weighted.predict(q)[0] == 0
    votes = np.array([1 / 0.4, 1 / 0.6 + 1 / 2.6])
    np.testing.assert_allclose(weighted.scores(q)[0], votes / votes.sum(), rtol=1e-5)


def test_exact_matches_decide_alone():
    X = np.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [5.0, 5.0]])
    y = np.array([2, 0, 0, 1])
    model = KNNClassifier(k=3, weights="distance").fit(X, y)
    np.testing.assert_array_equal(model.scores(np.array([[0.0, 0.0]])), [[0.0, 0.0, 1.0]])
    assert model.predict(np.array([[0.0, 0.0]]))[0] == 2
    # Without an exact match the two close class-0 rows outweigh nothing at 0: class 0 wins.
    assert model.predict(np.array([[0.05, 0.05]]))[0] == 0


def test_duplicate_exact_matches_with_different_labels_go_to_smallest_label():
    X, y = np.array([[1.0], [1.0], [1.2]]), np.array([3, 1, 0])
    model = KNNClassifier(k=3, weights="distance").fit(X, y)
    np.testing.assert_allclose(model.scores(np.array([[1.0]]))[0], [0.0, 0.5, 0.0, 0.5])
    assert model.predict(np.array([[1.0]]))[0] == 1


def test_vote_tie_goes_to_smallest_summed_distance_then_smallest_label():
    # Query 0: class 0 at 1.0 and 1.5, class 1 at 0.9 and 1.2 -> 2-2 tie, class 1 is closer in sum.
    X, y = np.array([[1.0], [1.5], [-0.9], [-1.2], [9.0]]), np.array([0, 0, 1, 1, 0])
    assert KNNClassifier(k=4).fit(X, y).predict(np.array([[0.0]]))[0] == 1
    # Symmetric tie: equal summed distances -> the smaller label.
    X2, y2 = np.array([[-1.0], [1.0]]), np.array([1, 0])
    assert KNNClassifier(k=2).fit(X2, y2).predict(np.array([[0.0]]))[0] == 0


def test_k_larger_than_class_count_is_fine_and_larger_than_train_is_an_error():
    X, y = np.arange(12.0).reshape(6, 2), np.array([0, 1, 0, 1, 0, 1])
    assert KNNClassifier(k=6).fit(X, y).predict(X).shape == (6,)
    with pytest.raises(DataError, match="k is 7 but the training set has only 6 rows"):
        KNNClassifier(k=7).fit(X, y)


@pytest.mark.parametrize("metric", ["l2", "l1", "cosine"])
def test_tiny_budget_gives_same_predictions(metric):
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(300, 6)), rng.integers(0, 3, 300)
    Q = rng.normal(size=(40, 6))
    big = KNNClassifier(k=5, metric=metric, weights="distance").fit(X, y)
    tiny = KNNClassifier(k=5, metric=metric, weights="distance", max_memory_mb=1e-4).fit(X, y)
    rows, cols = block_shape(40, 300, 6, 13, metric, 1e-4)
    assert (rows, cols) == (1, 104 // (4 * 6 + 12) if metric == "l1" else 1)
    np.testing.assert_array_equal(tiny.predict(Q), big.predict(Q))
    np.testing.assert_allclose(tiny.scores(Q), big.scores(Q), rtol=1e-6)


@pytest.mark.parametrize("metric, n_train, d", [("l2", 3000, 64), ("cosine", 3000, 64), ("l1", 600, 16)])
def test_block_sizes_respect_budget(metric, n_train, d):
    budget_mb = 0.5
    n_query = 400
    rows, cols = block_shape(n_query, n_train, d, 13, metric, budget_mb)
    pair = 12 + (4 * d if metric == "l1" else 0)
    assert rows * cols * pair <= budget_mb * 2**20
    assert rows * n_train * 4 < n_query * n_train * 4  # never the full test x train matrix
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(n_train, d)).astype(np.float32), rng.integers(0, 5, n_train)
    Q = rng.normal(size=(n_query, d)).astype(np.float32)
    model = KNNClassifier(k=5, metric=metric, max_memory_mb=budget_mb).fit(X, y)
    tracemalloc.start()
    model.kneighbors(Q)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak <= budget_mb * 2**20
    full = KNNClassifier(k=5, metric=metric).fit(X, y)
    np.testing.assert_array_equal(model.predict(Q), full.predict(Q))


def test_cosine_zero_vector_is_at_distance_one():
    X, y = np.array([[1.0, 0.0], [0.0, 0.0]]), np.array([0, 1])
    dist, idx = KNNClassifier(k=2, metric="cosine").fit(X, y).kneighbors(np.array([[2.0, 0.0]]))
    np.testing.assert_allclose(dist, [[0.0, 1.0]], atol=1e-7)
    np.testing.assert_array_equal(idx, [[0, 1]])


@pytest.mark.parametrize("kwargs, message", [
    ({"k": 0}, "k must be an int >= 1, got 0"),
    ({"k": 2.5}, "k must be an int >= 1, got 2.5"),
    ({"metric": "l3"}, "metric must be one of l2, l1, cosine, got 'l3'"),
    ({"weights": "inverse"}, "weights must be one of uniform, distance, got 'inverse'"),
    ({"max_memory_mb": 0}, "max_memory_mb must be a number > 0, got 0"),
])
def test_invalid_hyperparameters_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        KNNClassifier(**kwargs)


def test_bad_data_names_the_row():
    X = np.zeros((4, 2))
    with pytest.raises(DataError, match="y must be 1-D with one label per row of X"):
        KNNClassifier(k=1).fit(X, [0, 1, 0])
    with pytest.raises(DataError, match="y row 2 is -1; expected a class index >= 0"):
        KNNClassifier(k=1).fit(X, [0, 1, -1, 0])
    X[3, 1] = np.nan
    with pytest.raises(DataError, match="X row 3 column 1 is nan; expected finite values"):
        KNNClassifier(k=1).fit(X, [0, 1, 1, 0])
    model = KNNClassifier(k=1).fit(np.zeros((3, 2)), [0, 1, 0])
    with pytest.raises(DataError, match="X has 3 features; the model was fitted on 2"):
        model.predict(np.zeros((1, 3)))


def test_state_round_trip_and_specs():
    rng = np.random.default_rng(3)
    X, y, Q = rng.normal(size=(30, 4)), rng.integers(0, 3, 30), rng.normal(size=(8, 4))
    hyper = {"k": 3, "metric": "cosine", "weights": "distance", "max_memory_mb": 16}
    model = KNNClassifier(**hyper).fit(X, y, n_classes=5)
    state = model.state()
    assert state["x"].dtype == np.float32 and state["x"].shape == (30, 4)
    assert state["y"].dtype == np.int64 and state["y"].shape == (30,)
    specs = KNNClassifier.expected_state_specs(hyper, 4, 5)
    assert specs == {"x": (np.dtype(np.float32), (None, 4)), "y": (np.dtype(np.int64), (None,))}
    assert model.hyper() == hyper
    again = KNNClassifier.from_state(model.hyper(), state, n_classes=5)
    np.testing.assert_array_equal(again.predict(Q), model.predict(Q))
    np.testing.assert_array_equal(again.scores(Q), model.scores(Q))
    assert again.scores(Q).shape == (8, 5)
    with pytest.raises(CheckpointError, match="labels in 'y' must be in \\[0, 2\\)"):
        KNNClassifier.from_state(hyper, state, n_classes=2)
