"""Golden-value tests of the update rules, exact resume through state_dict, and hyperparameter validation.

Each rule runs 3 steps on f(w) = 0.5 w^T A w - b^T w (grad A w - b) and is compared with the same rule written
out by hand here in plain arithmetic.
"""

from __future__ import annotations

import numpy as np
import pytest

from mlcli.optim import OPTIMIZERS, Adam, Momentum, Nesterov, RMSProp, make_optimizer

A = np.array([[3.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 1.0]])  # symmetric, diagonally dominant -> SPD
B = np.array([1.0, -2.0, 0.5])
W0 = np.array([0.5, -1.0, 2.0])
LR = 0.1
STEPS = 3


def grad(w: np.ndarray) -> np.ndarray:
    return A @ w - B


def run_ours(opt, steps: int = STEPS) -> np.ndarray:
    w = W0.copy()
    params = {"w": w}
    for _ in range(steps):
        opt.step(params, {"w": grad(w)})
    assert params["w"] is w
    return w


def test_sgd_matches_hand_rule():
    w = W0.copy()
    for _ in range(STEPS):
        w = w - LR * grad(w)
    np.testing.assert_allclose(run_ours(make_optimizer("sgd", lr=LR)), w, rtol=1e-13, atol=1e-15)


def test_momentum_matches_hand_rule():
    mu = 0.9
    w, v = W0.copy(), np.zeros(3)
    for _ in range(STEPS):
        v = mu * v - LR * grad(w)
        w = w + v
    np.testing.assert_allclose(run_ours(Momentum(LR, momentum=mu)), w, rtol=1e-13, atol=1e-15)


def test_momentum_equals_pytorch_form_at_constant_lr():
    # PyTorch SGD(momentum): buf = mu * buf + g; w -= lr * buf  (so v = -lr * buf)
    mu = 0.8
    w, buf = W0.copy(), np.zeros(3)
    for _ in range(STEPS):
        buf = mu * buf + grad(w)
        w = w - LR * buf
    np.testing.assert_allclose(run_ours(Momentum(LR, momentum=mu)), w, rtol=1e-13, atol=1e-15)


def test_nesterov_matches_hand_rule():
    mu = 0.9
    w, v = W0.copy(), np.zeros(3)
    for _ in range(STEPS):
        v_prev = v
        v = mu * v - LR * grad(w)
        w = w - mu * v_prev + (1 + mu) * v
    np.testing.assert_allclose(run_ours(Nesterov(LR, momentum=mu)), w, rtol=1e-13, atol=1e-15)


def test_nesterov_equals_pytorch_nesterov_at_constant_lr():
    # PyTorch SGD(momentum=mu, nesterov=True): buf = mu * buf + g; w -= lr * (g + mu * buf).
    # With v = -lr * buf: w += -lr * g + mu * v, and -mu * v_prev + (1 + mu) * v = mu * v - lr * g since
    # v - mu * v_prev = -lr * g. So both forms give the same iterates.
    mu = 0.9
    w, buf = W0.copy(), np.zeros(3)
    for _ in range(STEPS):
        g = grad(w)
        buf = mu * buf + g
        w = w - LR * (g + mu * buf)
    np.testing.assert_allclose(run_ours(Nesterov(LR, momentum=mu)), w, rtol=1e-13, atol=1e-15)


def test_nesterov_differs_from_plain_momentum():
    assert not np.allclose(run_ours(Nesterov(LR)), run_ours(Momentum(LR)))


def test_adagrad_matches_hand_rule():
    eps = 1e-7
    w, a = W0.copy(), np.zeros(3)
    for _ in range(STEPS):
        g = grad(w)
        a = a + g * g
        w = w - LR * g / (np.sqrt(a) + eps)
    np.testing.assert_allclose(run_ours(make_optimizer("adagrad", lr=LR)), w, rtol=1e-13, atol=1e-15)


def test_rmsprop_matches_hand_rule():
    beta, eps = 0.9, 1e-7
    w, a = W0.copy(), np.zeros(3)
    for _ in range(STEPS):
        g = grad(w)
        a = beta * a + (1 - beta) * g * g
        w = w - LR * g / (np.sqrt(a) + eps)
    np.testing.assert_allclose(run_ours(RMSProp(LR, beta=beta)), w, rtol=1e-13, atol=1e-15)


def test_rmsprop_with_momentum_matches_hand_rule():
    beta, eps, mu = 0.95, 1e-7, 0.8
    w, a, v = W0.copy(), np.zeros(3), np.zeros(3)
    for _ in range(STEPS):
        g = grad(w)
        a = beta * a + (1 - beta) * g * g
        v = mu * v - LR * g / (np.sqrt(a) + eps)
        w = w + v
    ours = run_ours(RMSProp(LR, beta=beta, momentum=mu))
    np.testing.assert_allclose(ours, w, rtol=1e-13, atol=1e-15)
    assert not np.allclose(ours, run_ours(RMSProp(LR, beta=beta)))


@pytest.mark.parametrize("bias_correction", [True, False])
def test_adam_matches_hand_rule(bias_correction):
    b1, b2, eps = 0.9, 0.999, 1e-7
    w, m, a = W0.copy(), np.zeros(3), np.zeros(3)
    for t in range(1, STEPS + 1):
        g = grad(w)
        m = b1 * m + (1 - b1) * g
        a = b2 * a + (1 - b2) * g * g
        if bias_correction:
            m_hat, a_hat = m / (1 - b1**t), a / (1 - b2**t)
        else:
            m_hat, a_hat = m, a
        w = w - LR * m_hat / (np.sqrt(a_hat) + eps)
    ours = run_ours(Adam(LR, bias_correction=bias_correction))
    np.testing.assert_allclose(ours, w, rtol=1e-13, atol=1e-15)


def test_adam_first_step_with_and_without_bias_correction():
    g = grad(W0)
    with_bc = W0 - run_ours(Adam(LR), steps=1)
    without = W0 - run_ours(Adam(LR, bias_correction=False), steps=1)
    # with: lr * g / (|g| + eps) ~ lr * sign(g) per coordinate
    np.testing.assert_allclose(with_bc, LR * g / (np.abs(g) + 1e-7), rtol=1e-12)
    np.testing.assert_allclose(np.abs(with_bc), LR, rtol=1e-6)
    # without: lr * (1 - b1) g / (sqrt((1 - b2) g^2) + eps) ~ lr * 0.1 / sqrt(0.001) ~ 3.16 lr
    np.testing.assert_allclose(without, LR * 0.1 * g / (np.sqrt(0.001 * g * g) + 1e-7), rtol=1e-12)
    np.testing.assert_allclose(np.abs(without), LR * 0.1 / np.sqrt(0.001), rtol=1e-5)


CONFIGS = [
    ("sgd", {}),
    ("momentum", {"momentum": 0.9}),
    ("nesterov", {"momentum": 0.8}),
    ("adagrad", {}),
    ("rmsprop", {}),
    ("rmsprop", {"momentum": 0.9}),
    ("adam", {}),
    ("adam", {"bias_correction": False}),
]


def make_params(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "0.linear.W": rng.standard_normal((4, 3)).astype(np.float32),
        "0.linear.b": rng.standard_normal(4).astype(np.float32),
        "2.linear.W": rng.standard_normal((2, 4)).astype(np.float32),
    }


def grad_sequence(params: dict[str, np.ndarray], steps: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(1)
    return [
        {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in params.items()} for _ in range(steps)
    ]


@pytest.mark.parametrize(("kind", "hyper"), CONFIGS)
def test_resume_from_state_dict_is_bit_exact(kind, hyper):
    n, k = 6, 2
    p_full = make_params(np.random.default_rng(0))
    p_first = {name: a.copy() for name, a in p_full.items()}
    gs = grad_sequence(p_full, n)

    full = make_optimizer(kind, lr=0.05, **hyper)
    for g in gs:
        full.step(p_full, g)

    first = make_optimizer(kind, lr=0.05, **hyper)
    for g in gs[:k]:
        first.step(p_first, g)
    state = first.state_dict()
    p_saved = {name: a.copy() for name, a in p_first.items()}
    first.step(p_first, gs[0])  # steps after saving must not leak into the saved state

    second = make_optimizer(kind, lr=0.05, **hyper)
    second.load_state_dict(state)
    assert second.t == k
    for g in gs[k:]:
        second.step(p_saved, g)
    for name in p_full:
        assert p_saved[name].dtype == np.float32
        np.testing.assert_array_equal(p_saved[name], p_full[name])


@pytest.mark.parametrize(("kind", "hyper"), CONFIGS)
def test_state_is_float32_and_keyed_by_name(kind, hyper):
    params = make_params(np.random.default_rng(0))
    opt = make_optimizer(kind, lr=0.01, **hyper)
    opt.step(params, grad_sequence(params, 1)[0])
    state = opt.state_dict()
    assert state["type"] == kind and state["t"] == 1 and state["lr"] == 0.01
    assert set(state["slots"]) == set(params)
    for name, slots in state["slots"].items():
        assert set(slots) == set(opt.slot_names)
        for a in slots.values():
            assert a.dtype == np.float32 and a.shape == params[name].shape


@pytest.mark.parametrize(("kind", "hyper"), CONFIGS)
def test_dict_order_does_not_matter(kind, hyper):
    p1 = make_params(np.random.default_rng(0))
    p2 = dict(reversed(list({k: v.copy() for k, v in p1.items()}.items())))
    gs = grad_sequence(p1, 3)
    o1, o2 = make_optimizer(kind, lr=0.05, **hyper), make_optimizer(kind, lr=0.05, **hyper)
    for g in gs:
        o1.step(p1, g)
        o2.step(p2, dict(reversed(list(g.items()))))
    for name in p1:
        np.testing.assert_array_equal(p1[name], p2[name])


def test_lr_attribute_is_used_by_next_step():
    w = np.array([1.0, 2.0])
    opt = make_optimizer("sgd", lr=0.1)
    opt.step({"w": w}, {"w": np.array([1.0, 1.0])})
    opt.lr = 0.5
    opt.step({"w": w}, {"w": np.array([1.0, -1.0])})
    np.testing.assert_allclose(w, [1.0 - 0.1 - 0.5, 2.0 - 0.1 + 0.5])


def test_update_is_in_place_through_views():
    w = np.zeros((2, 3))
    view = w[0]
    make_optimizer("adam", lr=0.1).step({"w": w}, {"w": np.ones((2, 3))})
    np.testing.assert_allclose(view, -0.1, rtol=1e-5)


@pytest.mark.parametrize(
    ("kind", "hyper", "message"),
    [
        ("sgd", {"lr": -1}, "lr must be > 0, got -1"),
        ("sgd", {"lr": 0}, "lr must be > 0, got 0"),
        ("sgd", {"lr": float("nan")}, "lr must be > 0, got nan"),
        ("momentum", {"lr": 0.1, "momentum": 1.5}, "momentum must be in [0, 1), got 1.5"),
        ("adagrad", {"lr": 0.1, "eps": 0}, "eps must be > 0, got 0"),
        ("rmsprop", {"lr": 0.1, "beta": -0.1}, "beta must be in [0, 1), got -0.1"),
        ("adam", {"lr": 0.1, "beta2": 1.0}, "beta2 must be in [0, 1), got 1"),
    ],
)
def test_invalid_hyperparameters_are_rejected(kind, hyper, message):
    with pytest.raises(ValueError) as info:
        make_optimizer(kind, **hyper)
    assert str(info.value) == message


def test_make_optimizer_unknown_type_lists_choices():
    with pytest.raises(
        ValueError, match=r"one of sgd, momentum, nesterov, adagrad, rmsprop, adam, newton; got 'adamw'"
    ):
        make_optimizer("adamw", lr=0.1)


def test_make_optimizer_unknown_hyperparameter_names_it():
    with pytest.raises(
        ValueError, match=r"unknown hyperparameter\(s\) \['momentum'\]; accepted: \['lr', 'beta1'"
    ):
        make_optimizer("adam", lr=0.1, momentum=0.9)


def test_registry_maps_to_classes_with_matching_type():
    assert list(OPTIMIZERS) == ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "newton"]
    for key, cls in OPTIMIZERS.items():
        assert cls.type == key


def test_step_rejects_mismatched_names():
    opt = make_optimizer("sgd", lr=0.1)
    with pytest.raises(ValueError, match=r"in only one: \['b', 'c'\]"):
        opt.step({"a": np.zeros(1), "b": np.zeros(1)}, {"a": np.zeros(1), "c": np.zeros(1)})


def test_load_state_dict_rejects_other_type_and_wrong_shapes():
    adam = make_optimizer("adam", lr=0.1)
    adam.step({"w": np.zeros(3)}, {"w": np.ones(3)})
    with pytest.raises(ValueError, match="optimizer state is for type 'adam', expected 'momentum'"):
        make_optimizer("momentum", lr=0.1).load_state_dict(adam.state_dict())
    fresh = make_optimizer("adam", lr=0.1)
    fresh.load_state_dict(adam.state_dict())
    with pytest.raises(
        ValueError, match=r"slot '(m|a)' of parameter 'w' has shape \(3,\), expected \(1, 3\)"
    ):
        fresh.step({"w": np.zeros((1, 3))}, {"w": np.ones((1, 3))})
    broken = adam.state_dict()
    del broken["slots"]["w"]["a"]
    with pytest.raises(ValueError, match=r"slots for 'w' must be \['a', 'm'\], got \['m'\]"):
        fresh.load_state_dict(broken)


def test_loaded_state_takes_the_parameter_dtype():
    w64 = {"w": np.zeros(3)}
    opt = make_optimizer("momentum", lr=0.1)
    opt.step(w64, {"w": np.ones(3)})
    fresh = make_optimizer("momentum", lr=0.1)
    fresh.load_state_dict(opt.state_dict())
    w32 = {"w": np.zeros(3, dtype=np.float32)}
    fresh.step(w32, {"w": np.ones(3, dtype=np.float32)})
    assert fresh.slots["w"]["v"].dtype == np.float32
    np.testing.assert_allclose(w32["w"], -0.1 * 0.9 - 0.1, rtol=1e-6)
