"""Newton's method details: the objectives without l2 are the plain losses, huge logits stay finite, the Hessian
memory bound and its message, the constructor's checks, the step count."""

from __future__ import annotations

import numpy as np
import pytest

from mlcli.optim.newton import Newton, check_hessian_memory, linear_model_closure, objective, softmax_objective

RNG = np.random.default_rng(0)
X = RNG.standard_normal((12, 3))
Y_CLASS = np.array([0, 1, 2] * 4)
Y_BIN = np.array([0, 1] * 6)
Y_REG = RNG.standard_normal(12)


@pytest.mark.parametrize(("kind", "y", "k"), [("softmax", Y_CLASS, 3), ("logistic", Y_BIN, 1), ("linear", Y_REG, 1)])
def test_objectives_default_to_no_penalty(kind, y, k):
    theta = RNG.standard_normal(k * 4)
    plain = objective(kind, theta, X, y, k)
    zero = objective(kind, theta, X, y, k, 0.0)
    for a, b in zip(plain, zero, strict=True):
        np.testing.assert_array_equal(a, b)
    W, b = theta[: k * 3].reshape(k, 3).copy(), theta[k * 3:].copy()
    closed = linear_model_closure(W, b, X, y, kind)()
    np.testing.assert_allclose(closed[0], plain[0], rtol=1e-12)
    loss_before = Newton(damping=0.0).step_model(W.copy(), b.copy(), X, y, kind)
    assert loss_before == pytest.approx(plain[0], rel=1e-12)


def test_softmax_objective_of_huge_logits_is_finite():
    theta = np.concatenate([np.array([[1000.0, 0, 0], [0, 0, 0], [-1000.0, 0, 0]]).ravel(), np.zeros(3)])
    loss, grad, hess = softmax_objective(theta, X, Y_CLASS, 3)
    assert np.isfinite(loss) and np.isfinite(grad).all() and np.isfinite(hess).all()


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="kind must be one of"):
        objective("poisson", np.zeros(4), X, Y_REG, 1)
    with pytest.raises(ValueError, match="kind must be one of"):
        linear_model_closure(np.zeros((1, 3)), np.zeros(1), X, Y_REG, "poisson")


def test_hessian_memory_bound_is_inclusive_and_its_message_sizes_the_hessian():
    check_hessian_memory(512, 2.0)  # 512 * 512 * 8 bytes = exactly 2 MiB
    with pytest.raises(ValueError, match="needs a 513x513 Hessian \\(2.0 MB\\); max_memory_mb is 2"):
        check_hessian_memory(513, 2.0)
    with pytest.raises(ValueError, match="needs a 100x100 Hessian \\(78.1 KB\\)"):
        check_hessian_memory(100, 0.01)
    with pytest.raises(ValueError, match="needs a 200x200 Hessian \\(0.3 MB\\)"):
        check_hessian_memory(200, 0.01)
    # sizes from 0.1 MiB (104,857.6 bytes) up are printed in MB: 114**2 * 8 = 103,968 bytes, 115**2 * 8 = 105,800
    with pytest.raises(ValueError, match="needs a 114x114 Hessian \\(101.5 KB\\)"):
        check_hessian_memory(114, 0.01)
    with pytest.raises(ValueError, match="needs a 115x115 Hessian \\(0.1 MB\\)"):
        check_hessian_memory(115, 0.01)


def test_defaults_and_refused_arguments():
    opt = Newton()
    assert (opt.damping, opt.max_memory_mb, opt.lr, opt.full_batch) == (1e-4, 256.0, 1.0, True)
    for bad in (0, -1.0, float("inf"), True, "64"):
        with pytest.raises(ValueError, match="max_memory_mb must be a number > 0"):
            Newton(max_memory_mb=bad)
    with pytest.raises(ValueError, match="needs a closure"):
        opt.step({"w": np.zeros(2)}, {"w": np.zeros(2)})


def test_each_step_counts_once():
    opt = Newton()
    W, b = np.zeros((1, 3)), np.zeros(1)
    opt.step_model(W, b, X, Y_REG, "linear")
    opt.step_model(W, b, X, Y_REG, "linear")
    assert opt.t == 2


def test_each_objective_defaults_to_no_penalty():
    from mlcli.optim.newton import linear_objective, logistic_objective

    theta3, theta1 = RNG.standard_normal(12), RNG.standard_normal(4)
    for plain, zero in [
        (softmax_objective(theta3, X, Y_CLASS, 3), softmax_objective(theta3, X, Y_CLASS, 3, 0.0)),
        (logistic_objective(theta1, X, Y_BIN), logistic_objective(theta1, X, Y_BIN, 0.0)),
        (linear_objective(theta1, X, Y_REG, 1), linear_objective(theta1, X, Y_REG, 1, 0.0)),
    ]:
        for a, b in zip(plain, zero, strict=True):
            np.testing.assert_array_equal(a, b)
