"""Behaviour of initializers, layers, activations and Sequential (their gradients: test_nn_gradients.py)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from mlcli.nn.activations import ACTIVATIONS, ELU, PReLU, ReLU, Sigmoid, Softplus, make_activation
from mlcli.nn.init import INIT_SCHEMES, XAVIER_MODES, fans, init_weight
from mlcli.nn.layers import BatchNorm1d, Dropout, Flatten, Linear
from mlcli.nn.network import Sequential

# ------------------------------------------------------------------------------------------------ init


@pytest.mark.parametrize(("scheme", "mode", "expected_var"), [
    ("xavier", "fan_in", 1 / 384),
    ("xavier", "fan_out", 1 / 512),
    ("xavier", "avg", 2 / (384 + 512)),
    ("he", "fan_in", 2 / 384),
    ("he", "fan_out", 2 / 512),
    ("he", "avg", 4 / (384 + 512)),
])
def test_init_weight_has_the_stated_variance(scheme: str, mode: str, expected_var: float) -> None:
    fan_in, fan_out = fans((512, 384))
    w = init_weight((512, 384), scheme, fan_in=fan_in, fan_out=fan_out, rng=np.random.default_rng(0), mode=mode)
    assert w.dtype == np.float32 and w.shape == (512, 384)
    assert abs(float(w.mean())) < 0.05 * np.sqrt(expected_var)
    assert float(w.var()) == pytest.approx(expected_var, rel=0.05)


def test_small_init_has_std_scale_and_zeros_are_zero() -> None:
    rng = np.random.default_rng(1)
    w = init_weight((512, 512), "small", fan_in=512, fan_out=512, rng=rng, scale=0.03, dtype=np.float64)
    assert w.dtype == np.float64
    assert float(w.std()) == pytest.approx(0.03, rel=0.05)
    z = init_weight((3, 4), "zeros", fan_in=4, fan_out=3, rng=rng)
    assert z.dtype == np.float32 and not z.any()


def test_init_rejects_unknown_scheme_and_mode() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="one of zeros, small, xavier, he; got 'glorot'"):
        init_weight((2, 2), "glorot", fan_in=2, fan_out=2, rng=rng)
    with pytest.raises(ValueError, match="one of fan_in, fan_out, avg; got 'mean'"):
        init_weight((2, 2), "he", fan_in=2, fan_out=2, rng=rng, mode="mean")
    assert INIT_SCHEMES == ("zeros", "small", "xavier", "he") and XAVIER_MODES == ("fan_in", "fan_out", "avg")


def test_fans_include_the_receptive_field() -> None:
    assert fans((10, 64)) == (64, 10)
    assert fans((16, 3, 5, 5)) == (75, 400)
    with pytest.raises(ValueError):
        fans((7,))


# ---------------------------------------------------------------------------------------------- linear


def test_linear_is_an_affine_map_with_pytorch_weight_layout() -> None:
    layer = Linear(3, 2, rng=np.random.default_rng(0))
    assert layer.params["W"].shape == (2, 3) and layer.params["W"].dtype == np.float32
    assert not layer.params["b"].any()
    layer.params["b"][...] = [1.0, -1.0]
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    y = layer.forward(x)
    np.testing.assert_allclose(y, x @ layer.params["W"].T + [1.0, -1.0], rtol=1e-6)
    assert y.dtype == np.float32
    assert layer.output_shape((3,)) == (2,)
    assert Linear(3, 2, rng=np.random.default_rng(0), bias=False).params.keys() == {"W"}


def test_linear_grads_are_written_into_stable_arrays() -> None:
    layer = Linear(3, 2, rng=np.random.default_rng(0))
    grad_w = layer.grads["W"]
    x = np.ones((4, 3), dtype=np.float32)
    layer.forward(x, train=True)
    layer.backward(np.ones((4, 2), dtype=np.float32))
    assert layer.grads["W"] is grad_w
    np.testing.assert_array_equal(grad_w, np.full((2, 3), 4.0))
    np.testing.assert_array_equal(layer.grads["b"], [4.0, 4.0])


# --------------------------------------------------------------------------------------------- dropout


def test_dropout_keeps_expected_activation_and_drops_fraction_p() -> None:
    layer = Dropout(0.3, rng=np.random.default_rng(0))
    x = np.full((400, 250), 2.0, dtype=np.float32)
    y = layer.forward(x, train=True)
    assert y.dtype == np.float32
    assert float(y.mean()) == pytest.approx(2.0, rel=0.01)
    assert float((y == 0).mean()) == pytest.approx(0.3, abs=0.01)
    np.testing.assert_allclose(y[y != 0], 2.0 / 0.7, rtol=1e-6)
    dx = layer.backward(np.ones_like(x))
    np.testing.assert_array_equal(dx == 0, y == 0)


def test_dropout_is_identity_at_eval() -> None:
    layer = Dropout(0.5, rng=np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((5, 4))
    np.testing.assert_array_equal(layer.forward(x, train=False), x)
    dy = np.ones_like(x)
    np.testing.assert_array_equal(layer.backward(dy), dy)


def test_dropout_mask_follows_its_generator() -> None:
    layer = Dropout(0.5, rng=np.random.default_rng(7))
    x = np.ones((6, 6))
    first = layer.forward(x, train=True)
    layer.rng = np.random.default_rng(7)
    np.testing.assert_array_equal(layer.forward(x, train=True), first)
    with pytest.raises(ValueError, match=r"\[0, 1\); got 1.0"):
        Dropout(1.0, rng=np.random.default_rng(0))


# ------------------------------------------------------------------------------------------- batchnorm


def test_batchnorm_train_output_is_normalized_per_feature() -> None:
    x = np.random.default_rng(0).normal(5.0, 3.0, size=(64, 4)).astype(np.float32)
    y = BatchNorm1d(4).forward(x, train=True)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=0), 1.0, rtol=1e-3)


def test_batchnorm_matches_hand_computation_and_updates_running_stats() -> None:
    x = np.array([[1.0, 2.0], [3.0, 6.0], [5.0, 1.0]])
    layer = BatchNorm1d(2, momentum=0.1, eps=1e-5, dtype=np.float64)
    layer.params["gamma"][...] = [2.0, 0.5]
    layer.params["beta"][...] = [1.0, -1.0]
    y = layer.forward(x, train=True)
    mean = np.array([3.0, 3.0])
    biased_var = np.array([8 / 3, 14 / 3])
    unbiased_var = np.array([4.0, 7.0])
    np.testing.assert_allclose(y, [2.0, 0.5] * (x - mean) / np.sqrt(biased_var + 1e-5) + [1.0, -1.0])
    np.testing.assert_allclose(layer.buffers["running_mean"], 0.9 * 0.0 + 0.1 * mean)
    np.testing.assert_allclose(layer.buffers["running_var"], 0.9 * 1.0 + 0.1 * unbiased_var)


def test_batchnorm_eval_uses_running_stats() -> None:
    x = np.array([[1.0, 2.0], [3.0, 6.0], [5.0, 1.0]])
    layer = BatchNorm1d(2, dtype=np.float64)
    train_out = layer.forward(x, train=True)
    eval_out = layer.forward(x, train=False)
    rm, rv = layer.buffers["running_mean"], layer.buffers["running_var"]
    np.testing.assert_allclose(eval_out, (x - rm) / np.sqrt(rv + 1e-5))
    assert not np.allclose(eval_out, train_out)
    np.testing.assert_array_equal(layer.forward(x, train=False), eval_out)


def test_batchnorm_rejects_wrong_shapes() -> None:
    layer = BatchNorm1d(3)
    with pytest.raises(ValueError, match=r"expects input \(N, 3\); got \(2, 4\)"):
        layer.forward(np.ones((2, 4), dtype=np.float32), train=True)
    with pytest.raises(ValueError, match="at least 2 samples"):
        layer.forward(np.ones((1, 3), dtype=np.float32), train=True)


def test_flatten_round_trips_shapes() -> None:
    layer = Flatten()
    x = np.arange(24.0).reshape(2, 3, 2, 2)
    y = layer.forward(x)
    assert y.shape == (2, 12) and layer.output_shape((3, 2, 2)) == (12,)
    assert layer.backward(y).shape == x.shape


# ------------------------------------------------------------------------------------------ activations


def test_activation_registry_is_keyed_by_kind() -> None:
    assert set(ACTIVATIONS) == {"relu", "leaky_relu", "prelu", "elu", "sigmoid", "tanh", "softplus"}
    assert all(cls.kind == name for name, cls in ACTIVATIONS.items())
    layer = make_activation("leaky_relu", negative_slope=0.2)
    np.testing.assert_allclose(layer.forward(np.array([-1.0, 2.0])), [-0.2, 2.0])
    with pytest.raises(ValueError, match="one of relu, .*; got 'gelu'"):
        make_activation("gelu")


def test_activation_values() -> None:
    x = np.array([-2.0, -0.5, 0.5, 2.0])
    np.testing.assert_allclose(ReLU().forward(x), [0, 0, 0.5, 2.0])
    np.testing.assert_allclose(ELU(0.5).forward(x), [0.5 * np.expm1(-2.0), 0.5 * np.expm1(-0.5), 0.5, 2.0])
    np.testing.assert_allclose(Sigmoid().forward(x), 1 / (1 + np.exp(-x)))
    np.testing.assert_allclose(Softplus().forward(x), np.log1p(np.exp(x)))


def test_sigmoid_and_softplus_are_stable_for_huge_inputs() -> None:
    x = np.array([-1000.0, -101.0, 0.0, 101.0, 1000.0], dtype=np.float32)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        s = Sigmoid().forward(x)
        softplus = Softplus()
        sp = softplus.forward(x)
        dsp = softplus.backward(np.ones_like(x))
    assert s.dtype == np.float32 and sp.dtype == np.float32
    np.testing.assert_allclose(dsp, s, atol=1e-30)
    np.testing.assert_allclose(s, [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-30)
    np.testing.assert_allclose(sp, [0.0, 0.0, np.log(2.0), 101.0, 1000.0], atol=1e-30, rtol=1e-6)


def test_prelu_learns_one_slope_per_channel_on_nchw() -> None:
    layer = PReLU(2, init=0.25, dtype=np.float64)
    layer.params["alpha"][...] = [0.1, 0.5]
    x = -np.ones((3, 2, 2, 2))
    y = layer.forward(x, train=True)
    np.testing.assert_allclose(y[:, 0], -0.1)
    np.testing.assert_allclose(y[:, 1], -0.5)
    layer.backward(np.ones_like(x))
    np.testing.assert_allclose(layer.grads["alpha"], [-12.0, -12.0])
    with pytest.raises(ValueError, match="2 channels on axis 1"):
        layer.forward(np.ones((3, 4)))


# ------------------------------------------------------------------------------------------- sequential


def _mlp(seed: int, dtype: type = np.float32) -> Sequential:
    rng = np.random.default_rng(seed)
    return Sequential([Linear(4, 6, rng=rng, dtype=dtype), BatchNorm1d(6, dtype=dtype), ReLU(),
                       Dropout(0.2, rng=rng), Linear(6, 3, rng=rng, dtype=dtype)])


def test_sequential_names_params_and_exposes_the_layer_arrays() -> None:
    net = _mlp(0)
    params = net.params()
    assert list(params) == ["0.linear.W", "0.linear.b", "1.batchnorm.gamma", "1.batchnorm.beta",
                            "4.linear.W", "4.linear.b"]
    assert params["0.linear.W"] is net.layers[0].params["W"]
    assert list(net.grads()) == list(params)
    assert list(net.buffers()) == ["1.batchnorm.running_mean", "1.batchnorm.running_var"]
    assert net.num_params() == 4 * 6 + 6 + 6 + 6 + 6 * 3 + 3
    params["4.linear.b"] += 1.0
    np.testing.assert_array_equal(net.layers[4].params["b"], 1.0)
    assert net.output_shape((4,)) == (3,)


def test_sequential_float32_stays_float32_through_forward_and_backward() -> None:
    net = _mlp(0)
    x = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    y = net.forward(x, train=True)
    dx = net.backward(np.ones_like(y))
    assert y.dtype == dx.dtype == np.float32
    assert all(g.dtype == np.float32 for g in net.grads().values())


def test_state_dict_round_trip_reproduces_outputs() -> None:
    source, target = _mlp(0), _mlp(1)
    x = np.random.default_rng(2).standard_normal((8, 4)).astype(np.float32)
    source.forward(x, train=True)
    state = source.state_dict()
    assert "1.batchnorm.running_var" in state
    assert state["0.linear.W"] is not source.layers[0].params["W"]
    target.load_state_dict(state)
    np.testing.assert_array_equal(target.forward(x), source.forward(x))
    state["0.linear.W"] += 1.0
    assert not np.array_equal(source.layers[0].params["W"], state["0.linear.W"])


def test_load_state_dict_is_strict() -> None:
    net = _mlp(0)
    good = net.state_dict()
    bad = dict(good)
    del bad["0.linear.b"]
    bad["9.linear.W"] = np.zeros(2, dtype=np.float32)
    bad["4.linear.W"] = np.zeros((3, 5), dtype=np.float32)
    bad["1.batchnorm.gamma"] = good["1.batchnorm.gamma"].astype(np.float64)
    before = net.layers[4].params["W"].copy()
    with pytest.raises(ValueError) as info:
        net.load_state_dict(bad)
    message = str(info.value)
    assert "missing 0.linear.b" in message and "unexpected 9.linear.W" in message
    assert "4.linear.W expected float32[3, 6], got float32[3, 5]" in message
    assert "1.batchnorm.gamma expected float32[6], got float64[6]" in message
    np.testing.assert_array_equal(net.layers[4].params["W"], before)


def test_predict_batches_in_eval_mode_and_forward_until_stops_early() -> None:
    net = _mlp(0)
    x = np.random.default_rng(3).standard_normal((10, 4)).astype(np.float32)
    np.testing.assert_allclose(net.predict(x, batch_size=3), net.forward(x, train=False), rtol=1e-6)
    codes = net.forward_until(x, 1)
    np.testing.assert_allclose(codes, net.layers[0].forward(x), rtol=1e-6)
    assert codes.shape == (10, 6)


def test_backward_without_input_grad_fills_the_same_grads_into_stable_arrays() -> None:
    net = _mlp(0, np.float64)
    grads = net.grads()  # fetched once, as the trainer does
    x = np.random.default_rng(4).standard_normal((6, 4))
    dy = np.random.default_rng(5).standard_normal((6, 3))
    net.layers[3].rng = np.random.default_rng(9)
    net.forward(x, train=True)
    assert net.backward(dy).shape == x.shape
    full = {name: g.copy() for name, g in grads.items()}
    net.layers[3].rng = np.random.default_rng(9)
    net.forward(x, train=True)
    for g in grads.values():
        g[...] = 0.0
    assert net.backward(dy, input_grad=False) is None
    assert all(np.abs(g).sum() > 1e-6 for name, g in full.items() if name != "0.linear.b")  # b: cancelled by BN
    for name, g in net.grads().items():
        assert g is grads[name]
        np.testing.assert_allclose(g, full[name], rtol=1e-12)
