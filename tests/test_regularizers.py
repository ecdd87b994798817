"""L1/L2 penalties (value, numerically checked gradient, exempt biases) and clipping by global norm."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlcli.optim import add_penalty_grads, clip_grad_norm, is_penalized, penalty


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("0.linear.W", True),
        ("encoder.2.conv.W", True),
        ("W", True),
        ("0.linear.b", False),
        ("1.batchnorm.gamma", False),
        ("1.batchnorm.beta", False),
        ("3.prelu.alpha", False),
        ("0.linear.Wx", False),
    ],
)
def test_only_weights_are_penalized_by_default(name, expected):
    assert is_penalized(name) is expected
    assert is_penalized(name, include_bias=True) is True


def small_params() -> dict[str, np.ndarray]:
    return {
        "0.linear.W": np.array([[1.0, -2.0], [0.5, 3.0]]),
        "0.linear.b": np.array([4.0, -5.0]),
        "1.batchnorm.gamma": np.array([2.0, 2.0]),
    }


def test_penalty_value_by_hand():
    p = small_params()
    # W: sum(w^2) = 1 + 4 + 0.25 + 9 = 14.25, sum|w| = 6.5
    assert penalty(p, l2=0.1) == pytest.approx(0.05 * 14.25)
    assert penalty(p, l1=0.01) == pytest.approx(0.01 * 6.5)
    assert penalty(p, l1=0.01, l2=0.1) == pytest.approx(0.05 * 14.25 + 0.065)
    # include_bias adds b (16 + 25, |.| 9) and gamma (4 + 4, |.| 4)
    assert penalty(p, l1=0.01, l2=0.1, include_bias=True) == pytest.approx(0.05 * 63.25 + 0.01 * 19.5)
    assert penalty(p) == 0.0


@pytest.mark.parametrize("include_bias", [False, True])
def test_penalty_grads_match_numerical_gradient(include_bias):
    rng = np.random.default_rng(0)
    params = {"0.linear.W": rng.standard_normal((3, 4)), "0.linear.b": rng.standard_normal(3)}
    l1, l2, h = 0.03, 0.2, 1e-6
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    add_penalty_grads(params, grads, l1=l1, l2=l2, include_bias=include_bias)
    for name, w in params.items():
        numeric = np.zeros_like(w)
        for i in np.ndindex(w.shape):  # test-only loop over a dozen entries
            old = w[i]
            w[i] = old + h
            up = penalty(params, l1=l1, l2=l2, include_bias=include_bias)
            w[i] = old - h
            down = penalty(params, l1=l1, l2=l2, include_bias=include_bias)
            w[i] = old
            numeric[i] = (up - down) / (2 * h)
        np.testing.assert_allclose(grads[name], numeric, rtol=1e-6, atol=1e-9)
    if not include_bias:
        np.testing.assert_array_equal(grads["0.linear.b"], 0.0)


def test_penalty_grads_are_added_in_place_and_biases_untouched():
    p = small_params()
    grads = {k: np.ones_like(v) for k, v in p.items()}
    g_w = grads["0.linear.W"]
    add_penalty_grads(p, grads, l1=0.5, l2=0.1)
    assert grads["0.linear.W"] is g_w
    np.testing.assert_allclose(g_w, 1.0 + 0.1 * p["0.linear.W"] + 0.5 * np.sign(p["0.linear.W"]))
    np.testing.assert_array_equal(grads["0.linear.b"], 1.0)
    np.testing.assert_array_equal(grads["1.batchnorm.gamma"], 1.0)


def test_l1_gradient_of_zero_weight_is_zero():
    p = {"W": np.array([0.0, 2.0])}
    g = {"W": np.zeros(2)}
    add_penalty_grads(p, g, l1=0.3)
    np.testing.assert_allclose(g["W"], [0.0, 0.3])


def test_penalty_keeps_float32_grads():
    p = {"W": np.ones(3, dtype=np.float32)}
    g = {"W": np.zeros(3, dtype=np.float32)}
    add_penalty_grads(p, g, l1=0.1, l2=0.1)
    assert g["W"].dtype == np.float32
    np.testing.assert_allclose(g["W"], 0.2, rtol=1e-6)


def test_negative_strength_is_rejected():
    with pytest.raises(ValueError, match="l2 must be >= 0, got -0.1"):
        penalty(small_params(), l2=-0.1)


def test_clip_scales_to_max_norm_by_global_norm():
    grads = {"a": np.array([3.0, 0.0]), "b": np.array([[0.0], [4.0]])}  # global norm 5, each under 5
    norm = clip_grad_norm(grads, max_norm=1.0)
    assert norm == pytest.approx(5.0)
    np.testing.assert_allclose(grads["a"], [0.6, 0.0])
    np.testing.assert_allclose(grads["b"], [[0.0], [0.8]])
    total = math.sqrt(sum(float((g**2).sum()) for g in grads.values()))
    assert total == pytest.approx(1.0)


def test_clip_leaves_small_gradients_alone():
    grads = {"a": np.array([0.3, 0.4])}
    assert clip_grad_norm(grads, max_norm=1.0) == pytest.approx(0.5)
    np.testing.assert_array_equal(grads["a"], [0.3, 0.4])


def test_clip_leaves_non_finite_gradients_for_the_caller():
    grads = {"a": np.array([np.nan, 1.0])}
    assert math.isnan(clip_grad_norm(grads, max_norm=1.0))
    assert grads["a"][1] == 1.0


def test_clip_rejects_non_positive_max_norm():
    with pytest.raises(ValueError, match="max_norm must be > 0, got 0"):
        clip_grad_norm({"a": np.ones(2)}, max_norm=0.0)
