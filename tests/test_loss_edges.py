"""Loss details beyond the golden values of test_losses.py: the softmax building blocks on huge logits and on
batches of any rank (ensembles average `softmax` of raw scores), label smoothing with two classes, masked (-inf)
logits, and the shape errors."""

from __future__ import annotations

import numpy as np
import pytest

from mlcli.nn.losses import (
    log_softmax,
    mean_squared_error,
    sigmoid_binary_cross_entropy,
    softmax,
    softmax_cross_entropy,
)


def reference_softmax(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_softmax_of_huge_logits_is_finite():
    """`exp(1000)` overflows: without the max shift the probabilities would be NaN."""
    p = softmax(np.array([[1000.0, 0.0], [-1000.0, -1001.0]]))
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p, [[1.0, 0.0], [1 / (1 + np.exp(-1.0)), 1 / (1 + np.exp(1.0))]], rtol=1e-12)
    logp = log_softmax(np.array([[1000.0, 0.0]]))
    np.testing.assert_allclose(logp, [[0.0, -1000.0]], rtol=1e-12)


def test_softmax_and_log_softmax_work_over_the_last_axis_of_any_rank():
    z = np.random.default_rng(0).standard_normal((2, 3, 4)) * 5
    np.testing.assert_allclose(softmax(z), reference_softmax(z), rtol=1e-12)
    np.testing.assert_allclose(log_softmax(z), np.log(reference_softmax(z)), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(softmax(z).sum(axis=-1), 1.0, rtol=1e-12)
    v = np.array([3.0, 1.0, 0.0])
    np.testing.assert_allclose(softmax(v), reference_softmax(v), rtol=1e-12)


def test_label_smoothing_with_two_classes():
    """C = 2: the other class gets all of eps, the target is [1 - eps, eps] (eps / (C - 1) = eps)."""
    logits = np.array([[2.0, -1.0], [0.5, 0.5], [-3.0, 1.0]])
    y = np.array([0, 1, 1])
    eps = 0.2
    logp = np.log(reference_softmax(logits))
    t = np.where(np.eye(2)[y] == 1, 1 - eps, eps)
    loss, dout = softmax_cross_entropy(logits, y, label_smoothing=eps)
    assert loss == pytest.approx(-(t * logp).sum(axis=1).mean(), rel=1e-12)
    np.testing.assert_allclose(dout, (np.exp(logp) - t) / 3, rtol=1e-12, atol=1e-15)


def test_label_smoothing_needs_two_classes_but_none_is_fine_with_one():
    one_class = np.zeros((2, 1))
    with pytest.raises(ValueError, match="at least 2 classes"):
        softmax_cross_entropy(one_class, np.zeros(2, dtype=int), label_smoothing=0.1)
    loss, dout = softmax_cross_entropy(one_class, np.zeros(2, dtype=int))
    assert loss == 0.0
    np.testing.assert_array_equal(dout, 0.0)
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        softmax_cross_entropy(np.zeros((2, 2)), np.zeros(2, dtype=int), label_smoothing=-0.1)


def test_a_masked_class_with_minus_infinity_logit_keeps_the_loss_finite():
    logits = np.array([[2.0, -np.inf, 0.0], [0.0, -np.inf, 1.0]])
    y = np.array([0, 2])
    loss, dout = softmax_cross_entropy(logits, y)
    finite = np.array([[2.0, 0.0], [0.0, 1.0]])
    expected = -np.log(reference_softmax(finite))[[0, 1], [0, 1]].mean()
    assert loss == pytest.approx(expected, rel=1e-12)
    assert np.all(np.isfinite(dout)) and np.all(dout[:, 1] == 0)


def test_sigmoid_bce_refuses_two_logit_columns():
    with pytest.raises(ValueError, match="expects targets shaped like the logits"):
        sigmoid_binary_cross_entropy(np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="expects targets shaped like the logits"):
        sigmoid_binary_cross_entropy(np.zeros((3, 1)), np.zeros(4))


def test_mse_refuses_a_target_of_another_shape():
    with pytest.raises(ValueError, match="expects target shaped like the prediction"):
        mean_squared_error(np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="expects target shaped like the prediction"):
        mean_squared_error(np.zeros((3, 1)), np.zeros(2))
