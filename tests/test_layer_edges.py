"""Layer details the gradient checks cannot see: the default mode is evaluation, PyTorch's running statistics of
batch normalization (momentum, unbiased variance), the hyperparameters each layer accepts and refuses."""

from __future__ import annotations

import numpy as np
import pytest

from mlcli.nn.layers import BatchNorm1d, BatchNorm2d, Dropout, Linear


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.mark.parametrize("bad", [0, -3, True, 2.0, "4"])
def test_linear_sizes_must_be_positive_ints(bad):
    with pytest.raises(ValueError, match="Linear in_features must be a positive int"):
        Linear(bad, 3, rng=rng())
    assert Linear(np.int64(1), 1, rng=rng()).in_features == 1


def test_linear_small_init_defaults_to_std_0_01():
    layer = Linear(500, 400, rng=rng(), init="small", dtype=np.float64)
    assert layer.params["W"].std() == pytest.approx(0.01, rel=0.01)


def test_linear_output_shape_checks_the_input():
    layer = Linear(4, 3, rng=rng())
    assert layer.output_shape((4,)) == (3,)
    with pytest.raises(ValueError, match="Linear expects per-sample input shape \\(4,\\); got \\(5,\\)"):
        layer.output_shape((5,))


def test_dropout_probability_range_and_default_mode():
    assert Dropout(0.0, rng=rng()).p == 0.0
    with pytest.raises(ValueError, match="must be in \\[0, 1\\)"):
        Dropout(1.0, rng=rng())
    layer = Dropout(0.5, rng=rng())
    x = np.ones((4, 8))
    np.testing.assert_array_equal(layer.forward(x), x)  # default: evaluation
    assert (layer.forward(x, train=True) == 0).any()


def expected_running(batches, momentum, axes):
    mean, var = 0.0, 1.0
    for b in batches:
        n = b.size // b.shape[1]
        mean = (1 - momentum) * mean + momentum * b.mean(axis=axes)
        var = (1 - momentum) * var + momentum * b.var(axis=axes) * n / (n - 1)
    return mean, var


@pytest.mark.parametrize("momentum", [0.1, 0.3, 0.0, 1.0])
def test_batchnorm1d_running_statistics_are_pytorchs(momentum):
    layer = BatchNorm1d(3, momentum=momentum, dtype=np.float64)
    batches = [rng(s).standard_normal((5, 3)) * (s + 1) + s for s in range(3)]
    for b in batches:
        layer.forward(b, train=True)
    mean, var = expected_running(batches, momentum, 0)
    np.testing.assert_allclose(layer.buffers["running_mean"], mean, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(layer.buffers["running_var"], var, rtol=1e-12)


@pytest.mark.parametrize("momentum", [0.1, 0.3, 0.0, 1.0])
def test_batchnorm2d_running_statistics_are_pytorchs(momentum):
    layer = BatchNorm2d(2, momentum=momentum, dtype=np.float64)
    batches = [rng(s).standard_normal((3, 2, 4, 5)) * (s + 1) + s for s in range(3)]
    for b in batches:
        layer.forward(b, train=True)
    mean, var = expected_running(batches, momentum, (0, 2, 3))
    np.testing.assert_allclose(layer.buffers["running_mean"], mean, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(layer.buffers["running_var"], var, rtol=1e-12)


@pytest.mark.parametrize("cls", [BatchNorm1d, BatchNorm2d])
def test_batchnorm_defaults_are_pytorchs_and_forward_defaults_to_evaluation(cls):
    layer = cls(2, dtype=np.float64)
    assert (layer.momentum, layer.eps) == (0.1, 1e-5)
    x = rng().standard_normal((4, 2) if cls is BatchNorm1d else (4, 2, 3, 3)) + 5
    y = layer.forward(x)  # evaluation: running statistics (0, 1), which stay as they are
    np.testing.assert_allclose(y, x / np.sqrt(1 + 1e-5), rtol=1e-12)
    np.testing.assert_array_equal(layer.buffers["running_mean"], 0.0)
    dx = layer.backward(np.ones_like(x))
    np.testing.assert_allclose(dx, 1 / np.sqrt(1 + 1e-5), rtol=1e-12)


@pytest.mark.parametrize("cls", [BatchNorm1d, BatchNorm2d])
@pytest.mark.parametrize(("kwargs", "message"), [
    ({"momentum": 1.5}, "momentum must be in \\[0, 1\\]"),
    ({"momentum": -0.1}, "momentum must be in \\[0, 1\\]"),
    ({"eps": 0.0}, "eps must be > 0"),
    ({"eps": -1e-5}, "eps must be > 0"),
])
def test_batchnorm_refuses_bad_hyperparameters(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(2, **kwargs)


def test_batchnorm1d_needs_two_samples_to_train():
    layer = BatchNorm1d(2)
    with pytest.raises(ValueError, match="at least 2 samples"):
        layer.forward(np.ones((1, 2)), train=True)
    layer.forward(np.array([[0.0, 1.0], [1.0, 0.0]]), train=True)
    layer.forward(np.ones((1, 2)))  # evaluation works on one sample


def test_batchnorm2d_output_shape_checks_the_channels():
    layer = BatchNorm2d(3)
    assert layer.output_shape((3, 4, 4)) == (3, 4, 4)
    for bad in [(2, 4, 4), (3, 4), (3, 4, 4, 1)]:
        with pytest.raises(ValueError, match="batchnorm2d expects input \\(C=3, H, W\\)"):
            layer.output_shape(bad)


def test_batchnorm2d_normalizes_each_channel_over_n_h_w():
    layer = BatchNorm2d(2, dtype=np.float64)
    x = rng().standard_normal((3, 2, 4, 5)) * np.array([1.0, 10.0]).reshape(1, 2, 1, 1)
    y = layer.forward(x, train=True)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), x.var(axis=(0, 2, 3)) / (x.var(axis=(0, 2, 3)) + 1e-5))
    assert y.flags.c_contiguous


def test_tied_linear_uses_the_transposed_source_and_its_own_bias():
    from mlcli.nn.layers import TiedLinear

    source = Linear(3, 2, rng=rng(), dtype=np.float64)  # W: (2, 3)
    tied = TiedLinear(source)
    tied.params["b"][...] = [1.0, -2.0, 0.5]
    x = rng(1).standard_normal((4, 2))
    W = source.params["W"]
    np.testing.assert_allclose(tied.forward(x), x @ W + tied.params["b"], rtol=1e-12)
    dy = rng(2).standard_normal((4, 3))
    np.testing.assert_allclose(tied.backward(dy), dy @ W.T, rtol=1e-12)
    np.testing.assert_allclose(tied.grads["b"], dy.sum(axis=0), rtol=1e-12)
    source.grads["W"][...] = 1.0
    tied.add_shared_grads()
    np.testing.assert_allclose(source.grads["W"], 1.0 + x.T @ dy, rtol=1e-12)


def test_dropout_scale_at_test_scales_in_evaluation_and_names_its_mode():
    layer = Dropout(0.25, rng=rng(), mode="scale_at_test")
    x = np.ones((2, 4), dtype=np.float32)
    np.testing.assert_array_equal(layer.forward(x), np.full((2, 4), 0.75, dtype=np.float32))
    assert layer.extra_repr() == "p=0.25, scale_at_test"
    assert Dropout(0.5, rng=rng()).extra_repr() == "p=0.5"
    with pytest.raises(ValueError, match="Dropout mode must be one of inverted, scale_at_test"):
        Dropout(0.5, rng=rng(), mode="course")


def test_batchnorm2d_running_variance_is_unbiased_with_two_values_per_channel():
    layer = BatchNorm2d(1, momentum=1.0, dtype=np.float64)
    layer.forward(np.array([1.0, 3.0]).reshape(2, 1, 1, 1), train=True)
    np.testing.assert_allclose(layer.buffers["running_var"], [2.0])  # biased 1.0 * 2 / (2 - 1)
    np.testing.assert_allclose(layer.buffers["running_mean"], [2.0])
