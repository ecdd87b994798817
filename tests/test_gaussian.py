"""GaussianClassifier: closed-form MLE on a tiny set, density formula, iris/digits accuracy, errors, state."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlcli.errors import CheckpointError, DataError
from mlcli.models.gaussian import GaussianClassifier

X_TINY = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0], [5.0, 5.0], [7.0, 5.0], [6.0, 7.0]])
Y_TINY = np.array([0, 0, 0, 0, 1, 1, 1])


def test_parameters_equal_hand_computed_mle():
    full = GaussianClassifier(covariance="full", priors="empirical", reg=0.0).fit(X_TINY, Y_TINY)
    np.testing.assert_allclose(full.means_, [[1.0, 1.0], [6.0, 17 / 3]])
    # class 0: deviations (+-1, +-1) in all four combinations -> variance 1, covariance 0 (divide by N_c = 4)
    # class 1: deviations (-1, -2/3), (1, -2/3), (0, 4/3) -> variances 2/3 and 8/9, covariance 0
    np.testing.assert_allclose(full.covariances_, [np.eye(2), [[2 / 3, 0.0], [0.0, 8 / 9]]], atol=1e-15)
    np.testing.assert_allclose(full.log_priors_, np.log([4 / 7, 3 / 7]))
    reg = GaussianClassifier(covariance="full", reg=0.5).fit(X_TINY, Y_TINY)
    np.testing.assert_allclose(reg.covariances_[1], [[2 / 3 + 0.5, 0.0], [0.0, 8 / 9 + 0.5]], atol=1e-15)
    np.testing.assert_allclose(reg.log_priors_, np.log([0.5, 0.5]))
    diag = GaussianClassifier(covariance="diagonal", reg=0.5).fit(X_TINY, Y_TINY)
    np.testing.assert_allclose(diag.covariances_, [[1.5, 1.5], [2 / 3 + 0.5, 8 / 9 + 0.5]])
    shared = GaussianClassifier(covariance="shared", reg=0.0).fit(X_TINY, Y_TINY)
    # pooled over N = 7: x squared deviations 4 + 2 = 6, y 4 + 8/3, cross terms 0
    np.testing.assert_allclose(shared.covariances_, [[6 / 7, 0.0], [0.0, (4 + 8 / 3) / 7]], atol=1e-15)


def test_full_covariance_with_correlation_matches_numpy_cov():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3)) @ rng.normal(size=(3, 3))
    y = np.repeat([0, 1], 25)
    model = GaussianClassifier(reg=0.0).fit(X, y)
    for c in range(2):
        np.testing.assert_allclose(model.covariances_[c], np.cov(X[y == c].T, bias=True), rtol=1e-12)


@pytest.mark.parametrize("covariance", ["full", "diagonal", "shared"])
def test_log_likelihood_matches_density_formula(covariance):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 3)) @ rng.normal(size=(3, 3)) + rng.normal(size=3)
    y = rng.integers(0, 3, 60)
    model = GaussianClassifier(covariance=covariance, priors="empirical", reg=1e-3).fit(X, y)
    Q = rng.normal(size=(7, 3))
    ll = model.log_likelihood(Q)
    covs = {"full": model.covariances_, "diagonal": [np.diag(v) for v in model.covariances_],
            "shared": [model.covariances_] * 3}[covariance]
    for c, cov in enumerate(covs):
        for i, x in enumerate(Q):
            dev = x - model.means_[c]
            density = math.exp(-0.5 * dev @ np.linalg.inv(cov) @ dev) / math.sqrt(
                (2 * math.pi) ** 3 * np.linalg.det(cov))
            assert ll[i, c] == pytest.approx(math.log(density), rel=1e-9)
    post = model.scores(Q)
    np.testing.assert_allclose(np.exp(post).sum(axis=1), 1.0)
    joint = ll + model.log_priors_
    np.testing.assert_allclose(post, joint - np.log(np.exp(joint).sum(axis=1, keepdims=True)), rtol=1e-10)
    np.testing.assert_array_equal(model.predict(Q), post.argmax(axis=1))


def stratified_split(y, fraction, seed):
    rng = np.random.default_rng(seed)
    test = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:round(fraction * np.sum(y == c))]
                           for c in np.unique(y)])
    return np.setdiff1d(np.arange(len(y)), test), test


@pytest.mark.parametrize("covariance", ["full", "shared"])
def test_iris_holdout_accuracy(covariance):
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    train, test = stratified_split(y, 0.3, seed=0)
    model = GaussianClassifier(covariance=covariance).fit(X[train], y[train])
    assert np.mean(model.predict(X[test]) == y[test]) >= 0.95


def test_digits_constant_pixels_need_reg():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    train, test = stratified_split(y, 0.2, seed=0)
    with pytest.raises(DataError, match="not positive definite .* use reg > 0 or a larger reg \\(now 0\\)"):
        GaussianClassifier(reg=0.0).fit(X[train], y[train])
    model = GaussianClassifier(covariance="shared", reg=1e-2).fit(X[train], y[train])
    assert np.mean(model.predict(X[test]) == y[test]) >= 0.9
    assert np.isfinite(model.scores(X[test])).all()


def test_errors():
    with pytest.raises(ValueError, match="covariance must be one of full, diagonal, shared, got 'tied'"):
        GaussianClassifier(covariance="tied")
    with pytest.raises(ValueError, match="reg must be a number >= 0, got -1"):
        GaussianClassifier(reg=-1)
    with pytest.raises(DataError, match="class 1 has no training rows"):
        GaussianClassifier().fit(X_TINY, np.array([0, 0, 0, 0, 2, 2, 2]))
    with pytest.raises(DataError, match="class 1 feature 1 has variance 0"):
        GaussianClassifier(covariance="diagonal", reg=0.0).fit(X_TINY[[0, 3, 4, 5]], [0, 0, 1, 1])


@pytest.mark.parametrize("covariance", ["full", "diagonal", "shared"])
def test_state_round_trip_and_specs(covariance):
    hyper = {"priors": "empirical", "covariance": covariance, "reg": 0.1}
    model = GaussianClassifier(**hyper).fit(X_TINY, Y_TINY)
    state = model.state()
    specs = GaussianClassifier.expected_state_specs(hyper, 2, 2)
    for name, (dtype, shape) in specs.items():
        assert state[name].dtype == dtype and state[name].shape == shape
    assert model.hyper() == hyper and GaussianClassifier.scores_are_log_posteriors
    again = GaussianClassifier.from_state(model.hyper(), state)
    np.testing.assert_array_equal(again.scores(X_TINY), model.scores(X_TINY))
    with pytest.raises(CheckpointError, match="do not fit covariance="):
        GaussianClassifier.from_state(hyper, {**state, "log_priors": state["log_priors"][:1]})
