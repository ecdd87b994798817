"""LeastSquares against numpy.linalg.lstsq and scikit-learn's Ridge, on diabetes, and its state."""

from __future__ import annotations

import numpy as np
import pytest

from mlcli.errors import DataError
from mlcli.models.least_squares import LeastSquares


def make(n=40, d=5, k=None, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) + 2.0
    W = rng.normal(size=(k or 1, d))
    Y = X @ W.T + rng.normal(size=(n, k or 1)) * 0.3 + 1.5
    return X, (Y[:, 0] if k is None else Y)


def test_ols_equals_lstsq_with_a_bias_column():
    X, y = make()
    model = LeastSquares().fit(X, y)
    theta, *_ = np.linalg.lstsq(np.hstack([X, np.ones((len(X), 1))]), y, rcond=None)
    np.testing.assert_allclose(model.W_[0], theta[:-1], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.b_[0], theta[-1], rtol=1e-10)
    assert model.predict(X).shape == (40,)
    np.testing.assert_allclose(model.predict(X), np.hstack([X, np.ones((40, 1))]) @ theta, rtol=1e-10)


def test_without_intercept_equals_plain_lstsq():
    X, y = make(seed=1)
    model = LeastSquares(fit_intercept=False).fit(X, y)
    theta, *_ = np.linalg.lstsq(X, y, rcond=None)
    np.testing.assert_allclose(model.W_[0], theta, rtol=1e-10)
    assert model.b_.tolist() == [0.0]


@pytest.mark.parametrize("alpha", [0.1, 3.0, 50.0])
@pytest.mark.parametrize("k", [None, 3])
def test_ridge_equals_sklearn_ridge(alpha, k):
    from sklearn.linear_model import Ridge

    X, Y = make(k=k, seed=2)
    ours = LeastSquares(l2=alpha).fit(X, Y)
    ref = Ridge(alpha=alpha, solver="svd").fit(X, Y)
    np.testing.assert_allclose(ours.W_, np.atleast_2d(ref.coef_), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ours.b_, np.atleast_1d(ref.intercept_), rtol=1e-8)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-8)
    assert ours.W_.shape == ((k or 1), 5)


def test_ridge_intercept_is_not_penalized():
    X, y = make(seed=3)
    huge = LeastSquares(l2=1e12).fit(X, y)
    np.testing.assert_allclose(huge.W_, 0.0, atol=1e-9)
    np.testing.assert_allclose(huge.b_[0], y.mean(), rtol=1e-9)


def test_multi_output_predicts_n_by_k():
    X, Y = make(k=2, seed=4)
    model = LeastSquares().fit(X, Y)
    assert model.predict(X).shape == (40, 2)
    for j in range(2):
        single = LeastSquares().fit(X, Y[:, j])
        np.testing.assert_allclose(model.predict(X)[:, j], single.predict(X), rtol=1e-10)


def test_diabetes_holdout_r2_in_ols_range():
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    perm = np.random.default_rng(0).permutation(len(y))
    test, train = perm[:int(0.15 * len(y))], perm[int(0.15 * len(y)):]
    pred = LeastSquares().fit(X[train], y[train]).predict(X[test])
    r2 = 1.0 - np.sum((y[test] - pred) ** 2) / np.sum((y[test] - y[test].mean()) ** 2)
    assert 0.4 <= r2 <= 0.6


def test_state_round_trip_and_specs():
    X, Y = make(k=2, seed=5)
    model = LeastSquares(l2=0.5).fit(X, Y)
    state = model.state()
    assert state["W"].shape == (2, 5) and state["b"].shape == (2,)
    assert model.hyper() == {"l2": 0.5, "fit_intercept": True}
    again = LeastSquares.from_state(model.hyper(), state)
    np.testing.assert_array_equal(again.predict(X), model.predict(X))
    specs = LeastSquares.expected_state_specs({}, 5, 2)
    assert specs == {"W": (np.dtype(np.float64), (None, 5)), "b": (np.dtype(np.float64), (None,))}


def test_errors():
    with pytest.raises(ValueError, match="l2 must be a number >= 0, got -1"):
        LeastSquares(l2=-1)
    X, y = make()
    with pytest.raises(DataError, match=r"y must be \(N,\) or \(N, k\) with N = 40 rows of X; got shape \(39,\)"):
        LeastSquares().fit(X, y[:39])
    X[7, 2] = np.inf
    with pytest.raises(DataError, match="X row 7 column 2 is inf; expected finite values"):
        LeastSquares().fit(X, y)
    model = LeastSquares().fit(*make())
    with pytest.raises(DataError, match="X has 4 features; the model was fitted on 5"):
        model.predict(np.zeros((2, 4)))
