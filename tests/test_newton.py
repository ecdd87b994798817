"""Newton's method: gradients and Hessians against finite differences, convergence on iris, memory guard."""

from __future__ import annotations

import numpy as np
import pytest

from mlcli.optim.newton import Newton, check_hessian_memory, hessian_nbytes, newton_step, objective

CASES = [("softmax", 3), ("logistic", 1), ("linear", 1), ("linear", 2)]


def make_problem(kind, k, seed=0, n=12, d=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    if kind == "softmax":
        y = rng.integers(0, k, n)
    elif kind == "logistic":
        y = rng.integers(0, 2, n).astype(np.float64)
    else:
        y = rng.normal(size=(n, k)) if k > 1 else rng.normal(size=n)
    return X, y, rng.normal(size=k * d + k)


@pytest.mark.parametrize("kind, k", CASES)
def test_gradient_and_hessian_match_central_differences(kind, k):
    X, y, theta = make_problem(kind, k)
    l2, h = 0.3, 1e-5
    _, grad, hess = objective(kind, theta, X, y, k, l2)
    num_grad, num_hess = np.zeros_like(grad), np.zeros_like(hess)
    for i in range(len(theta)):
        e = np.zeros_like(theta)
        e[i] = h
        lp, gp, _ = objective(kind, theta + e, X, y, k, l2)
        lm, gm, _ = objective(kind, theta - e, X, y, k, l2)
        num_grad[i] = (lp - lm) / (2 * h)
        num_hess[:, i] = (gp - gm) / (2 * h)
    np.testing.assert_allclose(grad, num_grad, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(hess, num_hess, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(hess, hess.T, atol=1e-12)


def test_loss_includes_half_l2_of_weights_only():
    X, y, theta = make_problem("linear", 1)
    plain, *_ = objective("linear", theta, X, y, 1, 0.0)
    pen, *_ = objective("linear", theta, X, y, 1, 0.4)
    assert pen - plain == pytest.approx(0.2 * np.sum(theta[:3] ** 2))
    W, b = theta[:3], theta[3]
    assert plain == pytest.approx(np.mean((X @ W + b - y) ** 2))


def test_newton_step_solves_the_damped_system_and_falls_back_when_singular():
    hess = np.array([[4.0, 1.0], [1.0, 3.0]])
    grad = np.array([1.0, 2.0])
    new = newton_step(np.zeros(2), grad, hess, damping=0.5)
    np.testing.assert_allclose((hess + 0.5 * np.eye(2)) @ -new, grad)
    singular = np.array([[1.0, 1.0], [1.0, 1.0]])
    np.testing.assert_allclose(newton_step(np.zeros(2), np.array([2.0, 2.0]), singular), [-1.0, -1.0])


def iris_standardized():
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    return (X - X.mean(axis=0)) / X.std(axis=0), y


def softmax_loss_and_grads(W, b, X, y, l2):
    """Plain reference: mean softmax cross-entropy + l2/2 ||W||^2 and its gradients."""
    z = X @ W.T + b
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    n = len(y)
    loss = -np.mean(np.log(p[np.arange(n), y])) + 0.5 * l2 * np.sum(W**2)
    p[np.arange(n), y] -= 1.0
    return loss, p.T @ X / n + l2 * W, p.mean(axis=0)


def test_converges_on_iris_in_a_few_steps_to_the_gradient_descent_optimum():
    X, y = iris_standardized()
    l2 = 0.05
    W, b = np.zeros((3, 4)), np.zeros(3)
    opt = Newton(damping=1e-8)
    losses = [opt.step_model(W, b, X, y, "softmax", l2) for _ in range(8)]
    newton_loss = softmax_loss_and_grads(W, b, X, y, l2)[0]
    assert losses[0] == pytest.approx(np.log(3))
    assert abs(losses[-1] - newton_loss) < 1e-12  # converged: the 8th step no longer changes the loss

    Wg, bg = np.zeros((3, 4)), np.zeros(3)
    for _ in range(3000):
        loss, gW, gb = softmax_loss_and_grads(Wg, bg, X, y, l2)
        Wg -= 1.0 * gW
        bg -= 1.0 * gb
    assert newton_loss == pytest.approx(loss, abs=1e-9)
    np.testing.assert_allclose(W, Wg, atol=1e-5)


def test_step_model_updates_float32_arrays_in_place_for_logistic_and_linear():
    X, y = iris_standardized()
    W, b = np.zeros((1, 4), dtype=np.float32), np.zeros(1, dtype=np.float32)
    before = W
    opt = Newton()
    first = opt.step_model(W, b, X, (y == 2).astype(float), "logistic", 0.01)
    assert first == pytest.approx(np.log(2))
    assert W is before and W.dtype == np.float32 and np.abs(W).sum() > 0
    # linear regression: without damping one Newton step lands on the least-squares solution
    Wl, bl = np.zeros((1, 3)), np.zeros(1)
    Newton(damping=0.0).step_model(Wl, bl, X[:, :3], X[:, 3], "linear", 0.0)
    theta, *_ = np.linalg.lstsq(np.hstack([X[:, :3], np.ones((150, 1))]), X[:, 3], rcond=None)
    np.testing.assert_allclose(np.append(Wl[0], bl), theta, atol=1e-10)


def test_hessian_memory_guard():
    assert hessian_nbytes(650) == 650 * 650 * 8
    assert hessian_nbytes(10, np.float32) == 400
    with pytest.raises(ValueError, match=r"^Newton's method needs a 650x650 Hessian \(3.2 MB\); max_memory_mb is 1$"):
        check_hessian_memory(650, 1)
    check_hessian_memory(650, 4)
    W, b = np.zeros((10, 64)), np.zeros(10)
    with pytest.raises(ValueError, match="needs a 650x650 Hessian"):
        Newton(max_memory_mb=1).step_model(W, b, np.zeros((5, 64)), np.zeros(5, dtype=int), "softmax")
    with pytest.raises(ValueError, match="kind must be one of softmax, logistic, linear, got 'mlp'"):
        Newton().step_model(np.zeros((1, 2)), np.zeros(1), np.zeros((3, 2)), np.zeros(3), "mlp")
    with pytest.raises(ValueError, match="damping must be a number >= 0, got -1"):
        Newton(damping=-1)
