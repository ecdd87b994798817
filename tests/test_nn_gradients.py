"""Float64 gradient checks: every layer, every loss and a whole network against central differences.

The acceptance bar is a relative error below 1e-6 (norm-based, see `mlcli.nn.gradcheck.rel_error`).
"""

from __future__ import annotations

import numpy as np
import pytest

from mlcli.nn.activations import ELU, LeakyReLU, PReLU, ReLU, Sigmoid, Softplus, Tanh
from mlcli.nn.gradcheck import check_layer, check_network, numerical_gradient, rel_error
from mlcli.nn.layers import BatchNorm1d, Dropout, Flatten, Linear
from mlcli.nn.losses import mean_squared_error, sigmoid_binary_cross_entropy, softmax_cross_entropy
from mlcli.nn.network import Sequential

TOL = 1e-6
F64 = np.float64


def away_from_kink(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Standard normal values pushed at least 0.1 away from 0, where ReLU-like layers have their kink."""
    x = rng.standard_normal(shape)
    return np.sign(x) * (0.1 + np.abs(x))


def _batchnorm(rng: np.random.Generator) -> BatchNorm1d:
    layer = BatchNorm1d(4, dtype=F64)
    layer.params["gamma"][...] = rng.uniform(0.5, 1.5, 4)
    layer.params["beta"][...] = rng.standard_normal(4)
    return layer


def _prelu(num_parameters: int) -> PReLU:
    layer = PReLU(num_parameters, dtype=F64)
    layer.params["alpha"][...] = np.linspace(0.1, 0.4, num_parameters)
    return layer


LAYER_CASES = {
    "linear": (lambda rng: Linear(5, 4, rng=rng, dtype=F64), (3, 5)),
    "linear_no_bias": (lambda rng: Linear(5, 4, rng=rng, bias=False, dtype=F64), (3, 5)),
    "batchnorm_train": (_batchnorm, (6, 4)),
    "dropout_fixed_mask": (lambda rng: Dropout(0.4, rng=np.random.default_rng(3)), (4, 5)),
    "flatten": (lambda rng: Flatten(), (2, 3, 2, 2)),
    "relu": (lambda rng: ReLU(), (4, 5)),
    "leaky_relu": (lambda rng: LeakyReLU(0.1), (4, 5)),
    "prelu_shared_2d": (lambda rng: _prelu(1), (4, 5)),
    "prelu_channels_2d": (lambda rng: _prelu(5), (4, 5)),
    "prelu_channels_nchw": (lambda rng: _prelu(3), (2, 3, 2, 2)),
    "elu": (lambda rng: ELU(0.7), (4, 5)),
    "sigmoid": (lambda rng: Sigmoid(), (4, 5)),
    "tanh": (lambda rng: Tanh(), (4, 5)),
    "softplus": (lambda rng: Softplus(), (4, 5)),
}


@pytest.mark.parametrize("case", sorted(LAYER_CASES))
def test_layer_backward_matches_numerical_gradient(case: str) -> None:
    rng = np.random.default_rng(0)
    make, shape = LAYER_CASES[case]
    layer = make(rng)
    errors = check_layer(layer, away_from_kink(rng, shape), rng)
    assert set(errors) == {"x", *layer.params}
    assert max(errors.values()) < TOL, errors


def test_batchnorm_eval_backward_matches_numerical_gradient() -> None:
    rng = np.random.default_rng(1)
    layer = _batchnorm(rng)
    layer.buffers["running_mean"][...] = rng.standard_normal(4)
    layer.buffers["running_var"][...] = rng.uniform(0.5, 2.0, 4)
    x = rng.standard_normal((5, 4))
    dy = rng.standard_normal((5, 4))
    layer.forward(x, train=False)
    dx = layer.backward(dy)
    analytic = {"gamma": layer.grads["gamma"].copy(), "beta": layer.grads["beta"].copy()}

    def f() -> float:
        return float(np.sum(layer.forward(x, train=False) * dy))

    assert rel_error(dx, numerical_gradient(f, x)) < TOL
    for name, grad in analytic.items():
        assert rel_error(grad, numerical_gradient(f, layer.params[name])) < TOL


def _ce(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    return softmax_cross_entropy(logits, y)


def _ce_smoothed(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    return softmax_cross_entropy(logits, y, label_smoothing=0.1)


LOSS_CASES = {
    "softmax_cross_entropy": (_ce, (6, 4), lambda rng: rng.integers(0, 4, 6)),
    "softmax_cross_entropy_smoothed": (_ce_smoothed, (6, 4), lambda rng: rng.integers(0, 4, 6)),
    "sigmoid_bce_flat": (sigmoid_binary_cross_entropy, (6,), lambda rng: rng.integers(0, 2, 6)),
    "sigmoid_bce_column": (sigmoid_binary_cross_entropy, (6, 1), lambda rng: rng.integers(0, 2, 6)),
    "mse": (mean_squared_error, (5, 3), lambda rng: rng.standard_normal((5, 3))),
    "mse_column": (mean_squared_error, (5, 1), lambda rng: rng.standard_normal(5)),
}


@pytest.mark.parametrize("case", sorted(LOSS_CASES))
def test_loss_gradient_matches_numerical_gradient(case: str) -> None:
    rng = np.random.default_rng(2)
    loss_fn, shape, make_target = LOSS_CASES[case]
    out = 3 * rng.standard_normal(shape)
    target = make_target(rng)
    _, dout = loss_fn(out, target)
    assert dout.shape == out.shape
    assert rel_error(dout, numerical_gradient(lambda: loss_fn(out, target)[0], out)) < TOL


def test_whole_network_backprop_matches_numerical_gradient() -> None:
    rng = np.random.default_rng(4)
    # The first Linear has no bias: a bias right before batchnorm is cancelled by it, its true gradient is 0,
    # and a relative error of two zeros is noise.
    net = Sequential([
        Linear(5, 8, rng=rng, bias=False, dtype=F64),
        BatchNorm1d(8, dtype=F64),
        ReLU(),
        Dropout(0.3, rng=rng),
        Linear(8, 3, rng=rng, dtype=F64),
    ])
    x = rng.standard_normal((7, 5))
    y = rng.integers(0, 3, 7)
    reset_calls: list[int] = []

    def reset() -> None:
        reset_calls.append(1)
        net.layers[3].rng = np.random.default_rng(11)

    errors = check_network(net, _ce_smoothed, x, y, reset=reset)
    assert set(errors) == {"input", "0.linear.W", "1.batchnorm.gamma", "1.batchnorm.beta", "4.linear.W",
                           "4.linear.b"}
    assert max(errors.values()) < TOL, errors
    assert len(reset_calls) == 1 + 2 * (x.size + net.num_params())


def test_network_check_detects_a_wrong_backward() -> None:
    rng = np.random.default_rng(5)
    net = Sequential([Linear(4, 3, rng=rng, dtype=F64), Tanh()])
    net.layers[1].backward = lambda dy: 1.1 * dy  # deliberately wrong: tanh' is not 1.1
    errors = check_network(net, mean_squared_error, rng.standard_normal((3, 4)), rng.standard_normal((3, 3)))
    assert min(errors.values()) > 1e-3


def test_gradient_checks_refuse_float32_layers() -> None:
    rng = np.random.default_rng(6)
    with pytest.raises(ValueError, match="float64.*W"):
        check_layer(Linear(3, 2, rng=rng), rng.standard_normal((2, 3)), rng)


def test_rel_error_is_norm_based() -> None:
    a = np.array([1.0, 0.0, 3.0])
    b = np.array([1.0, 1e-9, 3.0])
    assert rel_error(a, b) == pytest.approx(1e-9 / (np.sqrt(10) + np.sqrt(10)), rel=1e-6)
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0


def test_numerical_gradient_of_known_function() -> None:
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    grad = numerical_gradient(lambda: float(np.sum(x ** 3)), x)
    np.testing.assert_allclose(grad, 3 * x ** 2, rtol=1e-8)
    np.testing.assert_array_equal(x, [[1.0, -2.0], [0.5, 3.0]])
