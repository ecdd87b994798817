"""Values, stability and dtypes of the losses (their gradients: test_nn_gradients.py)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from mlcli.nn.losses import (
    LOSSES,
    log_softmax,
    mean_squared_error,
    sigmoid_binary_cross_entropy,
    softmax,
    softmax_cross_entropy,
)


def test_softmax_cross_entropy_is_mean_negative_log_softmax() -> None:
    logits = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    y = np.array([1, 0])
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    loss, dout = softmax_cross_entropy(logits, y)
    assert loss == pytest.approx(-np.mean(np.log(p[[0, 1], y])))
    expected = p.copy()
    expected[[0, 1], y] -= 1
    np.testing.assert_allclose(dout, expected / 2)
    np.testing.assert_allclose(softmax(logits), p)
    np.testing.assert_allclose(log_softmax(logits), np.log(p))


def test_label_smoothing_target_is_the_course_definition() -> None:
    logits = np.random.default_rng(0).standard_normal((1, 10))
    _, dout = softmax_cross_entropy(logits, np.array([3]), label_smoothing=0.1)
    target = softmax(logits) - dout  # N = 1: dout = softmax - target
    expected = np.full(10, 0.1 / 9)
    expected[3] = 0.9
    np.testing.assert_allclose(target[0], expected, atol=1e-12)
    assert target[0, 0] == pytest.approx(0.0111111, abs=1e-7)


def test_label_smoothing_equals_pytorch_with_rescaled_eps() -> None:
    rng = np.random.default_rng(1)
    logits, y, eps, c = rng.standard_normal((5, 4)), rng.integers(0, 4, 5), 0.2, 4
    loss, _ = softmax_cross_entropy(logits, y, label_smoothing=eps)
    torch_eps = eps * c / (c - 1)
    logp = log_softmax(logits)
    torch_loss = np.mean((1 - torch_eps) * -logp[np.arange(5), y] + torch_eps * -logp.mean(axis=1))
    assert loss == pytest.approx(torch_loss, rel=1e-12)


def test_softmax_cross_entropy_is_stable_for_huge_logits() -> None:
    logits = np.array([[1000.0, -1000.0, 0.0], [1000.0, 1000.0, -1000.0]], dtype=np.float32)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        loss, dout = softmax_cross_entropy(logits, np.array([0, 2]))
    assert np.isfinite(dout).all() and dout.dtype == np.float32
    assert loss == pytest.approx((0.0 + 2000.0 + np.log(2.0)) / 2, rel=1e-6)


def test_softmax_cross_entropy_rejects_bad_shapes_and_smoothing() -> None:
    with pytest.raises(ValueError, match=r"logits \(N, C\) and labels \(N,\)"):
        softmax_cross_entropy(np.zeros((3, 2)), np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        softmax_cross_entropy(np.zeros((3, 2)), np.zeros(3, dtype=int), label_smoothing=1.0)


def test_sigmoid_bce_matches_naive_formula_and_accepts_column_logits() -> None:
    z = np.array([-2.0, -0.3, 0.4, 3.0])
    y = np.array([0, 1, 1, 0])
    s = 1 / (1 + np.exp(-z))
    naive = -np.mean(y * np.log(s) + (1 - y) * np.log(1 - s))
    loss, dout = sigmoid_binary_cross_entropy(z, y)
    assert loss == pytest.approx(naive, rel=1e-12)
    np.testing.assert_allclose(dout, (s - y) / 4)
    loss_col, dout_col = sigmoid_binary_cross_entropy(z.reshape(4, 1), y)
    assert loss_col == pytest.approx(loss) and dout_col.shape == (4, 1)
    with pytest.raises(ValueError, match=r"shaped like the logits \(4,\) or \(4,\); got \(3,\)"):
        sigmoid_binary_cross_entropy(z, y[:3])


def test_sigmoid_bce_is_stable_for_huge_logits() -> None:
    z = np.array([1000.0, -1000.0, 1000.0, -1000.0], dtype=np.float32)
    y = np.array([1.0, 0.0, 0.0, 1.0], dtype=np.float32)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        loss, dout = sigmoid_binary_cross_entropy(z, y)
    assert loss == pytest.approx(500.0, rel=1e-6)
    assert dout.dtype == np.float32
    np.testing.assert_allclose(dout, [0.0, 0.0, 0.25, -0.25], atol=1e-7)


def test_mse_is_mean_over_all_elements() -> None:
    pred = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=np.float32)
    target = np.zeros((2, 3), dtype=np.float64)
    loss, dout = mean_squared_error(pred, target)
    assert loss == pytest.approx(91 / 6)
    assert dout.dtype == np.float32
    np.testing.assert_allclose(dout, 2 * pred / 6)
    loss_col, dout_col = mean_squared_error(np.array([[1.0], [3.0]]), np.array([0.0, 1.0]))
    assert loss_col == pytest.approx(2.5) and dout_col.shape == (2, 1)
    with pytest.raises(ValueError, match="target shaped like the prediction"):
        mean_squared_error(pred, np.zeros(3))


def test_losses_keep_float32_and_return_python_floats() -> None:
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((4, 3)).astype(np.float32)
    for loss, dout in (softmax_cross_entropy(logits, np.array([0, 1, 2, 0]), label_smoothing=0.1),
                       sigmoid_binary_cross_entropy(logits[:, 0], np.array([0, 1, 1, 0])),
                       mean_squared_error(logits, np.zeros((4, 3)))):
        assert type(loss) is float and dout.dtype == np.float32
    assert set(LOSSES) == {"softmax_cross_entropy", "sigmoid_bce", "mse"}
    assert LOSSES["sigmoid_bce"] is sigmoid_binary_cross_entropy
