"""Newton's method for small models: exact loss, gradient and Hessian, and the damped Newton step.

The parameters are flattened as theta = concat(W.ravel(), b), W (K, D) row-major, b (K,), P = K*D + K entries.
Each objective returns the mean loss over the N rows plus l2/2 ||W||^2 (the bias is not penalized), its
gradient (P,) and its full Hessian (P, P), all float64:

- "softmax"  W (C, D), b (C,), y (N,) int labels: softmax cross-entropy; with p = softmax(X W^T + b),
             grad_W = (P - Y)^T X / N + l2 W, and on the augmented rows a = [x, 1] the Hessian block of classes
             (c, c') is (1/N) sum_n (p_nc [c = c'] - p_nc p_nc') a_n a_n^T.
- "logistic" W (1, D), b (1,), y (N,) in {0, 1}: sigmoid binary cross-entropy; s = sigmoid(X w + b),
             grad = A^T (s - y) / N, Hessian A^T diag(s (1 - s)) A / N.
- "linear"   W (K, D), b (K,), y (N,) or (N, K): MSE = mean over all N*K elements of (X W^T + b - Y)^2,
             grad = 2 A^T R / (N K), Hessian block-diagonal with 2 A^T A / (N K) per output.

`newton_step` solves (H + damping I) delta = grad by Cholesky (lstsq when the matrix is not positive definite,
e.g. softmax's flat direction of adding one constant to every bias) and returns theta - delta. A Hessian has P^2
entries: `check_hessian_memory` refuses models whose Hessian would exceed the budget.
"""

from __future__ import annotations

import math

import numpy as np

from mlcli.optim.optimizers import Optimizer

KINDS = ("softmax", "logistic", "linear")


def _augment(X: np.ndarray) -> np.ndarray:
    """Rows a = [x, 1]: (N, D + 1)."""
    return np.hstack([X, np.ones((X.shape[0], 1))])


def _blocks_to_theta_order(H4: np.ndarray, K: int, D: int) -> np.ndarray:
    """Reorder a Hessian indexed (k, j, k', j') over augmented [W | b] (j = D is the bias) to theta's order."""
    perm = np.concatenate([(np.arange(K)[:, None] * (D + 1) + np.arange(D)).ravel(),
                           np.arange(K) * (D + 1) + D])  # theta index -> (k, j) index
    H = H4.reshape(K * (D + 1), K * (D + 1))
    return H[np.ix_(perm, perm)]


def _penalize(loss: float, grad: np.ndarray, hess: np.ndarray, theta: np.ndarray, n_w: int, l2: float):
    """Add l2/2 ||W||^2 to the loss, l2 W to the gradient, l2 to the W diagonal of the Hessian."""
    w = theta[:n_w]
    grad[:n_w] += l2 * w
    hess[np.arange(n_w), np.arange(n_w)] += l2
    return loss + 0.5 * l2 * float(w @ w), grad, hess


def softmax_objective(theta: np.ndarray, X: np.ndarray, y: np.ndarray, n_classes: int, l2: float = 0.0):
    """Softmax cross-entropy at theta: (loss, grad (P,), hess (P, P)), P = C*D + C. X: (N, D), y: (N,) ints."""
    N, D = X.shape
    C = n_classes
    W, b = theta[:C * D].reshape(C, D), theta[C * D:]
    z = X @ W.T + b  # (N, C)
    z -= z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    p = np.exp(log_p)
    loss = -float(log_p[np.arange(N), y].mean())
    dz = p.copy()
    dz[np.arange(N), y] -= 1.0
    dz /= N
    grad = np.concatenate([(dz.T @ X).ravel(), dz.sum(axis=0)])
    A = _augment(X)  # (N, D+1)
    M = (p[:, :, None] * A[:, None, :]).reshape(N, C * (D + 1))  # p_nc a_n, (N, C*(D+1))
    H4 = -(M.T @ M).reshape(C, D + 1, C, D + 1) / N
    diag = np.einsum("nc,nj,nk->cjk", p, A, A, optimize=True) / N  # (C, D+1, D+1)
    H4[np.arange(C), :, np.arange(C), :] += diag
    hess = _blocks_to_theta_order(H4, C, D)
    return _penalize(loss, grad, hess, theta, C * D, l2)


def logistic_objective(theta: np.ndarray, X: np.ndarray, y: np.ndarray, l2: float = 0.0):
    """Sigmoid BCE at theta = [w (D), b]: (loss, grad (D+1,), hess (D+1, D+1)). y: (N,) in {0, 1}."""
    N, D = X.shape
    z = X @ theta[:D] + theta[D]  # (N,)
    loss = float(np.mean(np.logaddexp(0.0, z) - y * z))
    s = 0.5 * (1.0 + np.tanh(0.5 * z))  # sigmoid without overflow
    A = _augment(X)
    grad = A.T @ (s - y) / N
    hess = (A * (s * (1.0 - s))[:, None]).T @ A / N
    return _penalize(loss, grad, hess, theta, D, l2)


def linear_objective(theta: np.ndarray, X: np.ndarray, y: np.ndarray, n_outputs: int, l2: float = 0.0):
    """MSE at theta = [W (K, D).ravel(), b (K,)]: (loss, grad, hess). y: (N,) or (N, K)."""
    N, D = X.shape
    K = n_outputs
    W, b = theta[:K * D].reshape(K, D), theta[K * D:]
    R = X @ W.T + b - y.reshape(N, K)  # (N, K) residuals
    loss = float(np.mean(R**2))
    scale = 2.0 / (N * K)
    grad = np.concatenate([(scale * R.T @ X).ravel(), scale * R.sum(axis=0)])
    A = _augment(X)
    H4 = np.zeros((K, D + 1, K, D + 1))
    H4[np.arange(K), :, np.arange(K), :] = scale * (A.T @ A)
    hess = _blocks_to_theta_order(H4, K, D)
    return _penalize(loss, grad, hess, theta, K * D, l2)


def objective(kind: str, theta: np.ndarray, X: np.ndarray, y: np.ndarray, n_out: int, l2: float = 0.0):
    """Dispatch to the objective of `kind` ("softmax", "logistic", "linear"); n_out = W's row count."""
    if kind == "softmax":
        return softmax_objective(theta, X, y, n_out, l2)
    if kind == "logistic":
        return logistic_objective(theta, X, y, l2)
    if kind == "linear":
        return linear_objective(theta, X, y, n_out, l2)
    raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")


def newton_step(theta: np.ndarray, grad: np.ndarray, hess: np.ndarray, damping: float = 0.0) -> np.ndarray:
    """theta - delta with (H + damping I) delta = grad: Cholesky, or lstsq when not positive definite."""
    A = hess + damping * np.eye(len(theta))
    try:
        L = np.linalg.cholesky(A)
        delta = np.linalg.solve(L.T, np.linalg.solve(L, grad))
    except np.linalg.LinAlgError:
        delta = np.linalg.lstsq(A, grad, rcond=None)[0]
    return theta - delta


def hessian_nbytes(n_params: int, dtype: np.dtype | type = np.float64) -> int:
    """Bytes of an (n_params, n_params) Hessian of `dtype`."""
    return n_params * n_params * np.dtype(dtype).itemsize


def check_hessian_memory(n_params: int, max_memory_mb: float) -> None:
    """ValueError when the float64 Hessian of `n_params` parameters exceeds `max_memory_mb` MiB."""
    nbytes = hessian_nbytes(n_params)
    if nbytes > max_memory_mb * 2**20:
        size = f"{nbytes / 2**20:.1f} MB" if nbytes >= 0.1 * 2**20 else f"{nbytes / 2**10:.1f} KB"
        raise ValueError(f"Newton's method needs a {n_params}x{n_params} Hessian ({size}); "
                         f"max_memory_mb is {max_memory_mb:g}")


class Newton(Optimizer):
    """Damped Newton optimizer: theta <- theta - (H + damping I)^-1 grad, one full-batch step per `step`.

    It has the step interface of every optimizer, `step(params, grads, closure)`, where `closure()` returns the
    model's exact objective at the current parameters, `(loss, grad (P,), hess (P, P))` over `params` flattened
    row-major and concatenated in their dict order (as `torch.optim.LBFGS` takes a closure that re-evaluates the
    model). The first-order `grads` are not used: the closure's gradient includes the l2 term exactly.
    `full_batch` tells the trainer to give each step the whole training set, in its stored order. No learning rate
    (`lr` is kept at 1 only so that a trainer that sets one per epoch can), no state besides the step count;
    `max_memory_mb` bounds the Hessian (`check_params` refuses a model before training starts).
    """

    type = "newton"
    full_batch = True

    def __init__(self, damping: float = 1e-4, max_memory_mb: float = 256.0) -> None:
        if isinstance(damping, bool) or not isinstance(damping, (int, float)) or not (
                damping >= 0 and math.isfinite(damping)):
            raise ValueError(f"damping must be a number >= 0, got {damping!r}")
        if isinstance(max_memory_mb, bool) or not isinstance(max_memory_mb, (int, float)) or not (
                max_memory_mb > 0 and math.isfinite(max_memory_mb)):
            raise ValueError(f"max_memory_mb must be a number > 0, got {max_memory_mb!r}")
        super().__init__(lr=1.0)
        self.damping = float(damping)
        self.max_memory_mb = max_memory_mb

    def check_params(self, params: dict[str, np.ndarray]) -> None:
        """ValueError when the Hessian of these parameters would exceed `max_memory_mb`."""
        check_hessian_memory(sum(p.size for p in params.values()), self.max_memory_mb)

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray], closure=None) -> None:
        """One Newton step on every array of `params`, in place, from the objective `closure()` evaluates."""
        if closure is None:
            raise ValueError("Newton's method needs a closure that returns the exact (loss, grad, hessian)")
        self.check_params(params)
        arrays = list(params.values())
        theta = np.concatenate([a.ravel() for a in arrays]).astype(np.float64)
        _loss, grad, hess = closure()
        new = newton_step(theta, grad, hess, self.damping)
        self.t += 1
        start = 0
        for a in arrays:
            a[...] = new[start:start + a.size].reshape(a.shape)
            start += a.size

    def step_model(self, W: np.ndarray, b: np.ndarray, X: np.ndarray, y: np.ndarray, kind: str,
                   l2: float = 0.0) -> float:
        """One Newton step on W (K, D), b (K,) IN PLACE over the full set X (N, D), y; returns the loss before it.

        kind: "softmax" (y int labels), "logistic" (K = 1, y in {0, 1}) or "linear" (y (N,) or (N, K)).
        """
        closure = linear_model_closure(W, b, X, y, kind, l2)
        loss = {}

        def evaluate():
            loss["before"], grad, hess = closure()
            return loss["before"], grad, hess

        self.step({"W": W, "b": b}, {}, closure=evaluate)
        return loss["before"]

    def __repr__(self) -> str:
        return f"Newton(damping={self.damping:g})"


def linear_model_closure(W: np.ndarray, b: np.ndarray, X: np.ndarray, y: np.ndarray, kind: str, l2: float = 0.0):
    """The closure of a one-Linear-layer model W (K, D), b (K,) on X (N, D), y: its objective at the current W, b.

    Checks `kind` at once, so that a wrong one fails before any step.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    X64, y = np.asarray(X, dtype=np.float64), np.asarray(y)

    def closure():
        theta = np.concatenate([W.ravel(), b]).astype(np.float64)
        return objective(kind, theta, X64, y, W.shape[0], l2)

    return closure
