"""Pure forward/backward function pairs, the math under every layer class (cs231n style).

Each operation is a pair `op_forward(x, ...) -> (y, cache)` and `op_backward(dy, cache) -> grads`, where `cache`
holds exactly what the backward pass needs and `grads` is `dx` alone or `(dx, dparam, ...)`. The functions keep
the input dtype (float32 stays float32), never modify their inputs and hold no state; the classes in `layers.py`
and `activations.py` store the cache between the two calls and the gradients in `layer.grads`.

Shapes: `N` samples, `D` input features, `M` output features. Activations and dropout accept any shape.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from mlcli.nn import parallel

# ---------------------------------------------------------------------------------------------------- linear


def linear_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray | None) -> tuple[np.ndarray, tuple]:
    """Affine map `y = x @ W.T + b` as one GEMM.

    x: (N, D), W: (M, D), b: (M,) or None -> y: (N, M). The cache is `(x, W, has_bias)`.
    """
    y = x @ W.T
    if b is not None:
        y += b
    return y, (x, W, b is not None)


def linear_backward(
    dy: np.ndarray,
    cache: tuple,
    *,
    dW: np.ndarray | None = None,
    db: np.ndarray | None = None,
    need_dx: bool = True,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """Gradients of `y = x @ W.T + b`: `dx = dy @ W`, `dW = dy.T @ x`, `db = dy.sum(0)`.

    dy: (N, M) -> dx: (N, D), dW: (M, D), db: (M,) (None without a bias). When the arrays `dW`/`db` are given,
    the gradients are written into them (no allocation; the layer passes its `grads` arrays so that their
    identity is stable across steps). `need_dx=False` skips the GEMM for `dx` (returned as None): the first
    layer of a network needs no input gradient.
    """
    x, W, has_bias = cache
    dW = np.matmul(dy.T, x, out=dW)
    db = np.sum(dy, axis=0, out=db) if has_bias else None
    return (dy @ W if need_dx else None), dW, db


# ----------------------------------------------------------------------------------------------- activations


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic `1 / (1 + exp(-x))`: only `exp(-|x|) <= 1` is ever computed.

    For `x >= 0` it is `1 / (1 + e)`, for `x < 0` it is `e / (1 + e)`, with `e = exp(-|x|)`.
    """
    e = np.exp(-np.abs(x))
    y = np.where(x >= 0, 1, e).astype(e.dtype, copy=False)
    y /= 1 + e
    return y


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`y = max(x, 0)`; the cache is the output `y` (its sign is the mask). Large batches are split over threads."""
    if x.size < parallel.MIN_ELEMENTS:  # one call, as for_each_chunk would make it, without its set-up
        y = np.maximum(x, 0)
        return y, y
    y = np.empty(x.shape, dtype=np.result_type(x, 0))
    parallel.for_each_chunk(lambda s: np.maximum(x[s], 0, out=y[s]), len(x), x.size)
    return y, y


def relu_backward(dy: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """`dx = dy * [y > 0]`. Large batches are split over threads."""
    if dy.size < parallel.MIN_ELEMENTS:
        return np.multiply(dy, cache > 0)
    dx = np.empty(dy.shape, dtype=np.result_type(dy, np.bool_))
    parallel.for_each_chunk(lambda s: np.multiply(dy[s], cache[s] > 0, out=dx[s]), len(dy), dy.size)
    return dx


def leaky_relu_forward(x: np.ndarray, negative_slope: float) -> tuple[np.ndarray, tuple]:
    """`y = x` where `x > 0`, else `negative_slope * x`; the cache is the boolean mask `x > 0` and the slope."""
    mask = x > 0
    return np.where(mask, x, x * negative_slope), (mask, negative_slope)


def leaky_relu_backward(dy: np.ndarray, cache: tuple) -> np.ndarray:
    """`dx = dy` where `x > 0`, else `negative_slope * dy`."""
    mask, negative_slope = cache
    return np.where(mask, dy, dy * negative_slope)


def _channel_view(alpha: np.ndarray, ndim: int) -> np.ndarray:
    """Reshape a per-channel `(P,)` array to broadcast over axis 1 of an `ndim`-D batch: `(1, P, 1, ...)`."""
    return alpha.reshape((1, -1) + (1,) * (ndim - 2))


def prelu_forward(x: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Parametric ReLU `y = x` where `x > 0`, else `alpha_c * x` with a learned slope per channel.

    x: (N, C) or (N, C, H, W); alpha: (1,) shared by all channels or (C,), broadcast over axis 1.
    The cache is `(x, alpha)`: `x` is needed for `dalpha`.
    """
    a = _channel_view(alpha, x.ndim)
    return np.where(x > 0, x, a * x), (x, alpha)


def prelu_backward(dy: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray]:
    """`dx = dy` where `x > 0`, else `alpha_c * dy`; `dalpha_c = sum of dy * x over x <= 0 in channel c`.

    Returns `(dx, dalpha)` with `dalpha` of alpha's shape: summed over all axes but 1, or over everything
    when one alpha is shared.
    """
    x, alpha = cache
    negative = x <= 0
    dx = np.where(negative, _channel_view(alpha, x.ndim) * dy, dy)
    contrib = np.where(negative, dy * x, 0).astype(dy.dtype, copy=False)
    # one shared slope sums over everything; per-channel slopes over all axes but the channel axis 1
    axes = None if alpha.size == 1 else (0, *range(2, x.ndim))
    return dx, contrib.sum(axis=axes).reshape(alpha.shape)


def elu_forward(x: np.ndarray, alpha: float) -> tuple[np.ndarray, tuple]:
    """`y = x` where `x > 0`, else `alpha * (exp(x) - 1)` (alpha > 0); the cache is `(y, alpha)`.

    For `x <= 0`, `dy/dx = alpha * exp(x) = y + alpha`, and `y > 0` exactly where `x > 0`, so `y` suffices.
    """
    y = np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))
    return y, (y, alpha)


def elu_backward(dy: np.ndarray, cache: tuple) -> np.ndarray:
    """`dx = dy` where `y > 0`, else `dy * (y + alpha)`."""
    y, alpha = cache
    return np.where(y > 0, dy, dy * (y + alpha))


def sigmoid_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`y = 1 / (1 + exp(-x))`, stable for any `x`; the cache is `y`."""
    y = sigmoid(x)
    return y, y


def sigmoid_backward(dy: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """`dx = dy * y * (1 - y)`."""
    return dy * cache * (1 - cache)


def tanh_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`y = tanh(x)`; the cache is `y`."""
    y = np.tanh(x)
    return y, y


def tanh_backward(dy: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """`dx = dy * (1 - y**2)`."""
    return dy * (1 - cache * cache)


def softplus_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`y = log(1 + exp(x))`, computed stably as `log1p(exp(-|x|)) + max(x, 0)`; the cache is `y`."""
    y = np.log1p(np.exp(-np.abs(x)))
    y += np.maximum(x, 0)
    return y, y


def softplus_backward(dy: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """`dx = dy * sigmoid(x)`, where `sigmoid(x) = 1 - exp(-y) = -expm1(-y)` recovers it from the output."""
    return dy * -np.expm1(-cache)


# --------------------------------------------------------------------------------------------------- dropout


def dropout_forward(x: np.ndarray, p: float, rng: np.random.Generator,
                    inverted: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Dropout at training time: `y = x * mask`, `mask = [u >= p]`, `u ~ U[0, 1)`, scaled by `1/(1 - p)` when
    `inverted` (inverted dropout).

    `p` is the probability of DROPPING a unit (0 <= p < 1). Inverted dropout keeps the expected activation at
    training time, so evaluation is the identity; without the scale (the course's first form) evaluation must
    multiply by `1 - p` instead. x: any shape; the cache is the (scaled) mask, x's shape.
    """
    mask = rng.random(x.shape, dtype=x.dtype)
    np.greater_equal(mask, p, out=mask)
    if inverted:
        mask *= 1.0 / (1.0 - p)
    return x * mask, mask


def dropout_backward(dy: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """`dx = dy * mask` with the scaled mask of the forward pass."""
    return dy * cache


# ------------------------------------------------------------------------------------------------- batchnorm


class BatchNormCache(NamedTuple):
    """What `batchnorm_backward` needs, plus the batch statistics for the running averages.

    xhat: (M, D) normalized input; gamma: (D,); inv_std: (D,) `1/sqrt(var + eps)`;
    mean: (D,) batch mean; var: (D,) BIASED batch variance (divided by M).
    """

    xhat: np.ndarray
    gamma: np.ndarray
    inv_std: np.ndarray
    mean: np.ndarray
    var: np.ndarray


def batchnorm_forward(
    x2d: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float
) -> tuple[np.ndarray, BatchNormCache]:
    """Training-mode batch normalization of a 2-D batch, per column.

    `mean = x.mean(0)`, `var = ((x - mean)**2).mean(0)` (biased), `xhat = (x - mean) / sqrt(var + eps)`,
    `y = gamma * xhat + beta`. x2d: (M, D), gamma/beta: (D,) -> y: (M, D). (BatchNorm2d has its own NCHW pair,
    `batchnorm2d_forward`, the same map on the rows `(N*H*W, C)` without transposing to them.) The cache (a
    `BatchNormCache`) also carries `mean` and `var` so the caller can update running statistics.
    """
    mean = x2d.mean(axis=0)
    xhat = x2d - mean
    var = np.mean(xhat * xhat, axis=0)
    inv_std = 1.0 / np.sqrt(var + eps)
    xhat *= inv_std
    y = xhat * gamma
    y += beta
    return y, BatchNormCache(xhat, gamma, inv_std, mean, var)


def batchnorm_backward(dy: np.ndarray, cache: BatchNormCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of training-mode batchnorm, through the batch statistics.

    `dbeta = sum(dy)`, `dgamma = sum(dy * xhat)`, and in closed form
    `dx = gamma * inv_std * (dy - dbeta/M - xhat * dgamma/M)`.
    dy: (M, D) -> dx: (M, D), dgamma: (D,), dbeta: (D,).
    """
    xhat, gamma, inv_std = cache.xhat, cache.gamma, cache.inv_std
    m = dy.shape[0]
    dbeta = dy.sum(axis=0)
    dgamma = (dy * xhat).sum(axis=0)
    dx = xhat * (dgamma / m)
    dx += dbeta / m
    np.subtract(dy, dx, out=dx)
    dx *= gamma * inv_std
    return dx, dgamma, dbeta


def batchnorm_inference_forward(
    x2d: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    running_mean: np.ndarray,
    running_var: np.ndarray,
    eps: float,
) -> tuple[np.ndarray, tuple]:
    """Evaluation-mode batchnorm with fixed statistics: `y = gamma * (x - running_mean) / sqrt(running_var + eps)
    + beta`. x2d: (M, D), the others (D,) -> y: (M, D). The cache is `(xhat, gamma * inv_std)`.
    """
    inv_std = 1.0 / np.sqrt(running_var + eps)
    xhat = x2d - running_mean
    xhat *= inv_std
    y = xhat * gamma
    y += beta
    return y, (xhat, gamma * inv_std)


def batchnorm_inference_backward(dy: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of evaluation-mode batchnorm (an affine map per column): `dx = dy * gamma * inv_std`,
    `dgamma = sum(dy * xhat)`, `dbeta = sum(dy)`. Returns `(dx, dgamma, dbeta)`.
    """
    xhat, scale = cache
    return dy * scale, (dy * xhat).sum(axis=0), dy.sum(axis=0)


# ----------------------------------------------------------------------------------------------- batchnorm2d


class BatchNorm2dCache(NamedTuple):
    """What `batchnorm2d_backward` needs (and the batch statistics for the running averages), all per channel.

    xc: (N, C, H*W) the centred input `x - mean`; inv_std: (C,) `1/sqrt(var + eps)`; scale: (C,)
    `gamma * inv_std`; mean: (C,) batch mean; var: (C,) BIASED batch variance (divided by N*H*W).
    """

    xc: np.ndarray
    inv_std: np.ndarray
    scale: np.ndarray
    mean: np.ndarray
    var: np.ndarray


def _per_channel_sum(a: np.ndarray) -> np.ndarray:
    """(N, C, P) -> (C,): the sum over samples (adding whole (C, P) planes, contiguous) and then positions."""
    return np.add.reduce(np.add.reduce(a, axis=0), axis=1)


def _plane(v: np.ndarray, positions: int) -> np.ndarray:
    """(C,) -> (C*positions,), each channel's value repeated over its positions: broadcasting it against an
    (N, C*positions) batch runs over long contiguous rows (a (C, 1) broadcast runs over rows of `positions`)."""
    return v.repeat(positions)


def batchnorm2d_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float
                        ) -> tuple[np.ndarray, BatchNorm2dCache]:
    """Training-mode batch normalization of an NCHW batch per channel, statistics over (N, H, W), in place on
    NCHW (no transpose to rows): the same map as `batchnorm_forward` on `(N*H*W, C)` rows.

    x: (N, C, H, W), gamma/beta: (C,) -> y: (N, C, H, W), and the cache (`BatchNorm2dCache`, which keeps the
    centred input: `xhat = xc * inv_std` is never stored). Passes: one centring, one square, one fused
    `y = xc * scale + beta` (two ufuncs), and the sums.
    """
    N, C = x.shape[:2]
    x3 = x.reshape(N, C, -1)
    P = x3.shape[2]
    m = x.dtype.type(N * P)
    mean = _per_channel_sum(x3) / m
    xc = (x3.reshape(N, C * P) - _plane(mean, P)).reshape(N, C, P)
    sq = xc * xc
    var = _per_channel_sum(sq) / m
    inv_std = (1.0 / np.sqrt(var + eps)).astype(var.dtype, copy=False)
    scale = gamma * inv_std
    y = np.multiply(xc.reshape(N, C * P), _plane(scale, P), out=sq.reshape(N, C * P))
    y += _plane(beta, P)
    return y.reshape(x.shape), BatchNorm2dCache(xc, inv_std, scale, mean, var)


def batchnorm2d_backward(dy: np.ndarray, cache: BatchNorm2dCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of `batchnorm2d_forward`: dy (N, C, H, W) -> dx (N, C, H, W), dgamma (C,), dbeta (C,).

    `dbeta = sum(dy)`, `dgamma = sum(dy * xhat) = inv_std * sum(dy * xc)`, and
    `dx = gamma * inv_std * (dy - dbeta/M - xhat * dgamma/M)` (M = N*H*W), computed as
    `dx = (dy - (xc * a + b)) * scale` with per-channel `a = inv_std * dgamma / M`, `b = dbeta / M`: four
    passes, written over the product buffer.
    """
    xc, inv_std, scale = cache.xc, cache.inv_std, cache.scale
    N, C, P = xc.shape
    dy2 = dy.reshape(N, C * P)
    m = dy.dtype.type(N * P)
    dbeta = _per_channel_sum(dy.reshape(N, C, P))
    prod = dy.reshape(N, C, P) * xc
    dgamma = _per_channel_sum(prod) * inv_std
    dx = np.multiply(xc.reshape(N, C * P), _plane(inv_std * dgamma / m, P), out=prod.reshape(N, C * P))
    dx += _plane(dbeta / m, P)
    np.subtract(dy2, dx, out=dx)
    dx *= _plane(scale, P)
    return dx.reshape(dy.shape), dgamma, dbeta


def batchnorm2d_inference_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
                                  running_mean: np.ndarray, running_var: np.ndarray, eps: float
                                  ) -> tuple[np.ndarray, tuple]:
    """Evaluation-mode batchnorm of an NCHW batch with fixed statistics: `y = x * scale + shift` per channel,
    `scale = gamma / sqrt(running_var + eps)`, `shift = beta - running_mean * scale`. x: (N, C, H, W), the
    others (C,) -> y: (N, C, H, W). The cache is `(x, running_mean, inv_std, scale)`.
    """
    inv_std = (1.0 / np.sqrt(running_var + eps)).astype(running_var.dtype, copy=False)
    scale = gamma * inv_std
    shift = beta - running_mean * scale
    y = x * scale[:, None, None]
    y += shift[:, None, None]
    return y, (x, running_mean, inv_std, scale)


def batchnorm2d_inference_backward(dy: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of evaluation-mode batchnorm2d (an affine map per channel): `dx = dy * scale`,
    `dgamma = sum(dy * (x - running_mean)) * inv_std`, `dbeta = sum(dy)`. Returns `(dx, dgamma, dbeta)`."""
    x, running_mean, inv_std, scale = cache
    N, C = dy.shape[:2]
    dy3 = dy.reshape(N, C, -1)
    xc = x.reshape(N, C, -1) - running_mean[:, None]
    xc *= dy3
    return dy * scale[:, None, None], _per_channel_sum(xc) * inv_std, _per_channel_sum(dy3)
