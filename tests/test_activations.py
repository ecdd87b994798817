"""Activation details a gradient check cannot see: the derivative at the kink x = 0 (PyTorch's convention: ReLU 0,
LeakyReLU and PReLU the slope), the PyTorch defaults, and the hyperparameters refused."""

from __future__ import annotations

import numpy as np
import pytest

from mlcli.nn.activations import ELU, LeakyReLU, PReLU, ReLU, make_activation

X = np.array([[-2.0, 0.0, 3.0]])
DY = np.array([[1.0, 5.0, 1.0]])


def test_relu_gradient_at_zero_is_zero():
    layer = ReLU()
    np.testing.assert_array_equal(layer.forward(X), [[0.0, 0.0, 3.0]])
    np.testing.assert_array_equal(layer.backward(DY), [[0.0, 0.0, 1.0]])


def test_leaky_relu_gradient_at_zero_is_the_slope():
    layer = LeakyReLU(negative_slope=0.1)
    np.testing.assert_allclose(layer.forward(X), [[-0.2, 0.0, 3.0]])
    np.testing.assert_allclose(layer.backward(DY), [[0.1, 0.5, 1.0]])


def test_leaky_relu_default_slope_is_pytorchs():
    layer = make_activation("leaky_relu")
    assert layer.negative_slope == 0.01
    np.testing.assert_allclose(layer.forward(np.array([-1.0, 2.0])), [-0.01, 2.0])


def test_prelu_gradients_at_zero():
    """dx at x = 0 is alpha * dy; dalpha sums dy * x over x <= 0, to which an x = 0 adds nothing."""
    layer = PReLU(dtype=np.float64)
    np.testing.assert_allclose(layer.forward(X), [[-0.5, 0.0, 3.0]])
    np.testing.assert_allclose(layer.backward(DY), [[0.25, 1.25, 1.0]])
    np.testing.assert_allclose(layer.grads["alpha"], [-2.0])


def test_prelu_per_channel_gradient_at_zero():
    layer = PReLU(num_parameters=2, init=0.5, dtype=np.float64)
    x = np.array([[0.0, -1.0], [2.0, 0.0]])
    layer.forward(x)
    dx = layer.backward(np.array([[4.0, 2.0], [3.0, 6.0]]))
    np.testing.assert_allclose(dx, [[2.0, 1.0], [3.0, 3.0]])
    np.testing.assert_allclose(layer.grads["alpha"], [0.0, -2.0])


def test_prelu_defaults_are_pytorchs():
    layer = PReLU()
    assert layer.num_parameters == 1
    np.testing.assert_array_equal(layer.params["alpha"], np.array([0.25], dtype=np.float32))
    assert layer.params["alpha"].dtype == np.float32


@pytest.mark.parametrize("n", [0, -1, 2.0, "3"])
def test_prelu_refuses_a_slope_count_that_is_not_a_positive_int(n):
    with pytest.raises(ValueError, match="num_parameters must be a positive int"):
        PReLU(num_parameters=n)


def test_elu_default_alpha_and_refused_alphas():
    layer = ELU()
    assert layer.alpha == 1.0
    np.testing.assert_allclose(layer.forward(np.array([-np.inf, 1.0])), [-1.0, 1.0])
    for alpha in (0.0, -1.0):
        with pytest.raises(ValueError, match="ELU alpha must be > 0"):
            ELU(alpha)
