"""Convolution, pooling and spatial batch normalization for NCHW image batches.

Each operation is a pure function pair, `*_forward(...) -> (y, cache)` and `*_backward(dy, cache) -> grads`, with a
thin `Layer` class over it (`Conv2d`, `MaxPool2d`, `AvgPool2d`; `BatchNorm2d` reuses
`mlcli.nn.functional`'s batchnorm pair on the (N*H*W, C) view of its input). Shapes, for a batch of N images:

    x: (N, C, H, W)    W: (F, C, KH, KW)    b: (F,)    y: (N, F, H', W')
    H' = 1 + (H + 2*pad - KH) / stride      W' = 1 + (W + 2*pad - KW) / stride

As in the course (and unlike PyTorch, which floors), a geometry whose division is not exact is rejected by
`conv_output_size` rather than silently dropping the last rows and columns.

Speed: the convolution pads once, takes im2col as a strided view of the padded input, copies it once into a
contiguous `(C*KH*KW, N*H'*W')` matrix and does one GEMM. Its backward gets dW and db by GEMM and dx by a GEMM to the
column gradient followed by col2im, which adds the KH*KW column slices into a padded buffer (no `np.add.at`).
Pooling with stride equal to the window and divisible sizes is a reshape; overlapping windows use strided slices.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mlcli.nn import functional
from mlcli.nn.base import Layer
from mlcli.nn.init import fans, init_weight


def conv_output_size(size: int, kernel: int, stride: int, padding: int = 0, *, what: str = "conv") -> int:
    """Output length along one spatial axis: `1 + (size + 2*padding - kernel) / stride`.

    Raises ValueError, naming the formula's values, when the kernel does not fit the padded input or when the
    division is not exact (e.g. a 7-wide input, 3-wide kernel, stride 3: `(7 + 2*0 - 3) / 3 + 1 = 2.33`).
    `what` ("conv", "maxpool", "avgpool") prefixes the message.
    """
    span = size + 2 * padding - kernel
    formula = f"({size} + 2*{padding} - {kernel}) / {stride} + 1"
    if span < 0:
        raise ValueError(
            f"{what}: {formula} = {span / stride + 1:.2f}: the kernel ({kernel}) is larger than the padded input "
            f"({size + 2 * padding})"
        )
    if span % stride:
        raise ValueError(f"{what}: {formula} = {span / stride + 1:.2f} is not a whole number")
    return span // stride + 1


def _pair(value: int | tuple[int, int], name: str) -> tuple[int, int]:
    """`3 -> (3, 3)`; a pair is checked and returned; both entries must be positive ints."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and v >= 1 for v in pair):
        raise ValueError(f"{name} must be a positive int or a pair of positive ints, got {value!r}")
    return int(pair[0]), int(pair[1])


def _check_int(value: int, name: str, minimum: int) -> int:
    if not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------------------------------- convolution
def conv_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray | None, stride: int = 1, pad: int = 0
                 ) -> tuple[np.ndarray, tuple]:
    """Cross-correlation `y[n, f, i, j] = b[f] + sum_{c,u,v} W[f, c, u, v] * xp[n, c, i*stride + u, j*stride + v]`.

    x: (N, C, H, W); W: (F, C, KH, KW); b: (F,) or None; xp is x zero-padded by `pad` on each side.
    Returns y: (N, F, H', W') and the cache (cols, W, x shape, stride, pad) for `conv_backward`.
    """
    N, C, H, Wd = x.shape
    F, _, KH, KW = W.shape
    OH = conv_output_size(H, KH, stride, pad)
    OW = conv_output_size(Wd, KW, stride, pad)
    if pad:
        xp = np.zeros((N, C, H + 2 * pad, Wd + 2 * pad), dtype=x.dtype)
        xp[:, :, pad:pad + H, pad:pad + Wd] = x
    else:
        xp = x
    win = sliding_window_view(xp, (KH, KW), axis=(2, 3))[:, :, ::stride, ::stride]  # (N, C, OH, OW, KH, KW)
    cols = np.ascontiguousarray(win.transpose(1, 4, 5, 0, 2, 3)).reshape(C * KH * KW, N * OH * OW)
    y2 = W.reshape(F, -1) @ cols  # (F, N*OH*OW)
    y = np.empty((N, F, OH, OW), dtype=y2.dtype)
    y4 = y2.reshape(F, N, OH, OW).transpose(1, 0, 2, 3)
    if b is None:
        np.copyto(y, y4)
    else:
        np.add(y4, b.reshape(1, F, 1, 1), out=y)
    return y, (cols, W, x.shape, stride, pad)


def conv_backward(dy: np.ndarray, cache: tuple, *, need_dx: bool = True
                  ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Gradients of `conv_forward`: returns dx: (N, C, H, W), dW: (F, C, KH, KW), db: (F,).

    With dy2 = dy as (F, N*H'*W') and cols as in the forward: `dW = dy2 @ cols.T`, `db = sum(dy2, axis=1)`,
    `dcols = W.T @ dy2`, and col2im adds dcols for each kernel offset (u, v) into the strided slice of the padded
    input it was read from, then crops the padding. The cache is consumed: `cols` is released once dW is
    computed, before the equally large dcols is allocated, which lowers the peak memory of a training step.
    With `need_dx=False` (a network's first layer in training) dx is not computed and None is returned for it.
    """
    cols, W, (N, C, H, Wd), stride, pad = cache
    del cache
    F, _, KH, KW = W.shape
    OH, OW = dy.shape[2], dy.shape[3]
    dy2 = dy.transpose(1, 0, 2, 3).reshape(F, N * OH * OW)
    db = dy2.sum(axis=1)
    dW = (dy2 @ cols.T).reshape(W.shape)
    del cols
    if not need_dx:
        return None, dW, db
    dcols = (W.reshape(F, -1).T @ dy2).reshape(C, KH, KW, N, OH, OW)
    dxp = np.zeros((N, C, H + 2 * pad, Wd + 2 * pad), dtype=dcols.dtype)
    dxp_t = dxp.transpose(1, 0, 2, 3)  # (C, N, Hp, Wp) view, matching dcols' leading axes
    for u in range(KH):
        for v in range(KW):
            dxp_t[:, :, u:u + stride * OH:stride, v:v + stride * OW:stride] += dcols[:, u, v]
    dx = dxp[:, :, pad:pad + H, pad:pad + Wd] if pad else dxp
    return dx, dW, db


# ------------------------------------------------------------------------------------------------------- pooling
# Pooling works in two separable stages, along W then along H, so that every NumPy call runs over long runs of
# memory rather than over k x k windows one by one: max pooling of a window is the max over its rows of the max
# within each row, and row-major "first maximum" is kept by resolving ties towards the lower index in both stages.


def _pool_is_tiling(x_shape: tuple[int, ...], kernel: int, stride: int, what: str) -> bool:
    """Check the pooling geometry (ValueError if H' or W' is not whole); True when the windows tile the input
    exactly (stride == kernel, H and W divisible), the fast path where a reshape gives the windows."""
    for size in x_shape[2:]:
        conv_output_size(size, kernel, stride, 0, what=what)
    return stride == kernel and x_shape[2] % kernel == 0 and x_shape[3] % kernel == 0


def _offset_views(a: np.ndarray, axis: int, kernel: int, stride: int, tiling: bool) -> list[np.ndarray]:
    """For each offset v < kernel, the view of `a` holding element v of every window along `axis`.

    Each view has `n = 1 + (a.shape[axis] - kernel) // stride` entries along `axis`. Fast path (`tiling`): `axis`
    reshaped to (n, kernel) and index v taken on the new axis; otherwise the strided slice `v : v + stride*n`.
    Views of a writable buffer are writable, so the backward scatters through the same function.
    """
    n = 1 + (a.shape[axis] - kernel) // stride
    lead = (slice(None),) * axis
    if tiling:
        split = a.reshape(a.shape[:axis] + (n, kernel) + a.shape[axis + 1:])
        return [split[lead + (slice(None), v)] for v in range(kernel)]
    return [a[lead + (slice(v, v + stride * (n - 1) + 1, stride),)] for v in range(kernel)]


def _max_first(views: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Elementwise max over same-shape arrays and the index (uint8) of the first array that attains it."""
    best = np.array(views[0], copy=True)
    arg = np.zeros(best.shape, dtype=np.uint8)
    took = np.empty(best.shape, dtype=bool)
    for v in range(1, len(views)):
        np.greater(views[v], best, out=took)  # strict: an equal later value does not take the maximum
        np.maximum(best, views[v], out=best)
        # v exceeds every index stored so far, so max(arg, v * took) writes v exactly where `took`.
        np.maximum(arg, took.view(np.uint8) * np.uint8(v), out=arg)
    return best, arg


def _route(grad: np.ndarray, arg: np.ndarray, targets: list[np.ndarray], tiling: bool) -> None:
    """Send `grad` to `targets[arg]` elementwise; assign when the targets tile their buffer, else accumulate."""
    for v, target in enumerate(targets):
        if tiling:
            np.multiply(grad, arg == v, out=target)
        else:
            target += grad * (arg == v)


def _spread(grad: np.ndarray, targets: list[np.ndarray], tiling: bool) -> None:
    """Copy `grad` to every target; assign when the targets tile their buffer, else accumulate."""
    for target in targets:
        if tiling:
            np.copyto(target, grad)
        else:
            target += grad


def maxpool_forward(x: np.ndarray, kernel: int, stride: int) -> tuple[np.ndarray, tuple]:
    """`y[n, c, i, j] = max_{u,v < k} x[n, c, i*stride + u, j*stride + v]`; x: (N, C, H, W) -> y: (N, C, H', W').

    Stage 1 takes, in every input row, the max over each window's k columns: rowmax (N, C, H, W') and its column
    offset col_arg; stage 2 the max of rowmax over each window's k rows: y and the row offset row_arg. Ties go to
    the first element in row-major order, as in PyTorch, so the backward routes each window's gradient to exactly
    one input. The cache holds the two uint8 offset arrays, (N, C, H, W') and (N, C, H', W').
    """
    tiling = _pool_is_tiling(x.shape, kernel, stride, "maxpool")
    rowmax, col_arg = _max_first(_offset_views(x, 3, kernel, stride, tiling))
    y, row_arg = _max_first(_offset_views(rowmax, 2, kernel, stride, tiling))
    return y, (col_arg, row_arg, x.shape, kernel, stride, tiling)


def maxpool_backward(dy: np.ndarray, cache: tuple) -> np.ndarray:
    """dx: (N, C, H, W) is zero except at each window's first argmax, which receives that window's dy (summed
    over the windows that share it when they overlap)."""
    col_arg, row_arg, x_shape, kernel, stride, tiling = cache
    alloc = np.empty if tiling else np.zeros
    drow = alloc(col_arg.shape, dtype=dy.dtype)  # (N, C, H, W'), gradient of the row maxima
    _route(dy, row_arg, _offset_views(drow, 2, kernel, stride, tiling), tiling)
    dx = alloc(x_shape, dtype=dy.dtype)
    _route(drow, col_arg, _offset_views(dx, 3, kernel, stride, tiling), tiling)
    return dx


def avgpool_forward(x: np.ndarray, kernel: int, stride: int) -> tuple[np.ndarray, tuple]:
    """`y[n, c, i, j] = mean_{u,v < k} x[n, c, i*stride + u, j*stride + v]`; x: (N, C, H, W) -> y: (N, C, H', W').

    Summed along each window's columns, then its rows, then scaled by 1/k**2. The cache is only the geometry.
    """
    tiling = _pool_is_tiling(x.shape, kernel, stride, "avgpool")
    cols = _offset_views(x, 3, kernel, stride, tiling)
    rowsum = np.array(cols[0], copy=True)  # (N, C, H, W')
    for view in cols[1:]:
        rowsum += view
    rows = _offset_views(rowsum, 2, kernel, stride, tiling)
    y = np.array(rows[0], copy=True)  # (N, C, H', W')
    for view in rows[1:]:
        y += view
    y *= x.dtype.type(1.0 / (kernel * kernel))
    return y, (x.shape, rowsum.shape, kernel, stride, tiling)


def avgpool_backward(dy: np.ndarray, cache: tuple) -> np.ndarray:
    """dx: (N, C, H, W); every input of a window receives `dy / k**2` (summed over the windows that contain it)."""
    x_shape, rowsum_shape, kernel, stride, tiling = cache
    alloc = np.empty if tiling else np.zeros
    drow = alloc(rowsum_shape, dtype=dy.dtype)
    _spread(dy * dy.dtype.type(1.0 / (kernel * kernel)), _offset_views(drow, 2, kernel, stride, tiling), tiling)
    dx = alloc(x_shape, dtype=dy.dtype)
    _spread(drow, _offset_views(dx, 3, kernel, stride, tiling), tiling)
    return dx


# --------------------------------------------------------------------------------------------------- batch norm
def _to_rows(x: np.ndarray) -> np.ndarray:
    """NCHW (N, C, H, W) -> (N*H*W, C): one row per pixel, one column per channel."""
    return x.transpose(0, 2, 3, 1).reshape(-1, x.shape[1])


def _from_rows(y2: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """(N*H*W, C) -> contiguous NCHW of `shape`, the inverse of `_to_rows`."""
    N, C, H, W = shape
    return np.ascontiguousarray(y2.reshape(N, H, W, C).transpose(0, 3, 1, 2))


# -------------------------------------------------------------------------------------------------------- layers
class Conv2d(Layer):
    """2-D convolution (cross-correlation) over NCHW batches; params `W`: (C_out, C_in, KH, KW), `b`: (C_out,).

    Shape: (N, C_in, H, W) -> (N, C_out, H', W') with `H' = 1 + (H + 2*padding - KH) / stride`. Weights come
    from `mlcli.nn.init.init_weight` with fan_in = C_in*KH*KW and fan_out = C_out*KH*KW; the bias starts at 0.
    """

    kind = "conv"

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int], *,
                 stride: int = 1, padding: int = 0, rng: np.random.Generator, init: str = "he",
                 init_mode: str = "avg", init_scale: float = 0.01, bias: bool = True,
                 dtype: type | np.dtype = np.float32) -> None:
        super().__init__()
        self.in_channels = _check_int(in_channels, "in_channels", 1)
        self.out_channels = _check_int(out_channels, "out_channels", 1)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _check_int(stride, "stride", 1)
        self.padding = _check_int(padding, "padding", 0)
        shape = (self.out_channels, self.in_channels, *self.kernel_size)
        fan_in, fan_out = fans(shape)
        self.params["W"] = init_weight(shape, init, fan_in=fan_in, fan_out=fan_out, rng=rng, mode=init_mode,
                                       scale=init_scale, dtype=dtype)
        if bias:
            self.params["b"] = np.zeros(self.out_channels, dtype=dtype)
        # gradient arrays live as long as the layer and are overwritten in place, so that a dict of them taken
        # once (by the trainer, through Sequential.named_grads) stays valid
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        """x: (N, C_in, H, W) -> (N, C_out, H', W')."""
        y, self.cache = conv_forward(x, self.params["W"], self.params.get("b"), self.stride, self.padding)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """dy: (N, C_out, H', W') -> dx: (N, C_in, H, W); fills grads `W` and `b`."""
        dx, dW, db = conv_backward(dy, self._take_cache())
        self.grads["W"][...] = dW
        if "b" in self.params:
            self.grads["b"][...] = db
        return dx

    def backward_params(self, dy: np.ndarray) -> None:
        """Fill `grads` like `backward` without the input gradient (GEMM + col2im): for a network's first layer."""
        _, dW, db = conv_backward(dy, self._take_cache(), need_dx=False)
        self.grads["W"][...] = dW
        if "b" in self.params:
            self.grads["b"][...] = db

    def _take_cache(self) -> tuple:
        """Hand the cache to backward and drop this layer's reference, so that backward can free the columns."""
        cache, self.cache = self.cache, None
        return cache

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """(C_in, H, W) -> (C_out, H', W'); ValueError if the channels differ or the geometry does not fit."""
        if len(input_shape) != 3 or input_shape[0] != self.in_channels:
            raise ValueError(f"conv expects input (C={self.in_channels}, H, W), got {tuple(input_shape)}")
        _, H, W = input_shape
        KH, KW = self.kernel_size
        return (self.out_channels, conv_output_size(H, KH, self.stride, self.padding),
                conv_output_size(W, KW, self.stride, self.padding))

    def extra_repr(self) -> str:
        return (f"in={self.in_channels}, out={self.out_channels}, kernel={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, bias={'b' in self.params}")


class _Pool2d(Layer):
    """Shared constructor and shape logic of the pooling layers: a k x k window moved by `stride` (default k)."""

    def __init__(self, kernel_size: int, stride: int | None = None) -> None:
        super().__init__()
        self.kernel_size = _check_int(kernel_size, "kernel_size", 1)
        if self.kernel_size > 255:  # window offsets are stored as uint8
            raise ValueError(f"kernel_size must be <= 255, got {kernel_size}")
        self.stride = self.kernel_size if stride is None else _check_int(stride, "stride", 1)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """(C, H, W) -> (C, H', W') with `H' = 1 + (H - k) / stride`; ValueError if that is not whole."""
        if len(input_shape) != 3:
            raise ValueError(f"{self.kind} expects input (C, H, W), got {tuple(input_shape)}")
        C, H, W = input_shape
        return (C, conv_output_size(H, self.kernel_size, self.stride, 0, what=self.kind),
                conv_output_size(W, self.kernel_size, self.stride, 0, what=self.kind))

    def extra_repr(self) -> str:
        return f"kernel={self.kernel_size}, stride={self.stride}"


class MaxPool2d(_Pool2d):
    """Max pooling: (N, C, H, W) -> (N, C, H', W'); the gradient goes to each window's first maximum."""

    kind = "maxpool"

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        y, self.cache = maxpool_forward(x, self.kernel_size, self.stride)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return maxpool_backward(dy, self.cache)


class AvgPool2d(_Pool2d):
    """Average pooling: (N, C, H, W) -> (N, C, H', W'); each input gets `dy / k**2` from every window it is in."""

    kind = "avgpool"

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        y, self.cache = avgpool_forward(x, self.kernel_size, self.stride)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return avgpool_backward(dy, self.cache)


class BatchNorm2d(Layer):
    """Per-channel batch normalization of NCHW batches, statistics over (N, H, W).

    Train: `y = gamma * (x - mean_b) / sqrt(var_b + eps) + beta` with the biased batch variance, and
    `running = (1 - momentum) * running + momentum * batch` (unbiased variance for `running_var`, as PyTorch).
    Eval: the same with `running_mean` / `running_var`. Params `gamma` (ones), `beta` (zeros): (C,);
    buffers `running_mean` (zeros), `running_var` (ones): (C,).
    """

    kind = "batchnorm2d"

    def __init__(self, num_features: int, *, momentum: float = 0.1, eps: float = 1e-5,
                 dtype: type | np.dtype = np.float32) -> None:
        super().__init__()
        self.num_features = _check_int(num_features, "num_features", 1)
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum!r}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps!r}")
        self.momentum = float(momentum)
        self.eps = float(eps)
        self.params["gamma"] = np.ones(self.num_features, dtype=dtype)
        self.params["beta"] = np.zeros(self.num_features, dtype=dtype)
        self.buffers["running_mean"] = np.zeros(self.num_features, dtype=dtype)
        self.buffers["running_var"] = np.ones(self.num_features, dtype=dtype)
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        """x: (N, C, H, W) -> (N, C, H, W); in train mode also updates the running statistics."""
        gamma, beta = self.params["gamma"], self.params["beta"]
        rows = _to_rows(x)  # (N*H*W, C)
        if not train:
            y2, cache = functional.batchnorm_inference_forward(
                rows, gamma, beta, self.buffers["running_mean"], self.buffers["running_var"], self.eps)
            self.cache = (False, cache)
            return _from_rows(y2, x.shape)
        y2, cache = functional.batchnorm_forward(rows, gamma, beta, self.eps)
        self.cache = (True, cache)
        count = rows.shape[0]
        m = self.momentum
        running_mean, running_var = self.buffers["running_mean"], self.buffers["running_var"]
        running_mean[...] = (1 - m) * running_mean + m * cache.mean
        running_var[...] = (1 - m) * running_var + m * cache.var * (count / max(count - 1, 1))
        return _from_rows(y2, x.shape)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """dy: (N, C, H, W) -> dx: (N, C, H, W); fills grads `gamma` and `beta`."""
        train, cache = self.cache
        grad = functional.batchnorm_backward if train else functional.batchnorm_inference_backward
        dx2, self.grads["gamma"][...], self.grads["beta"][...] = grad(_to_rows(dy), cache)
        return _from_rows(dx2, dy.shape)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(input_shape) != 3 or input_shape[0] != self.num_features:
            raise ValueError(f"batchnorm2d expects input (C={self.num_features}, H, W), got {tuple(input_shape)}")
        return tuple(input_shape)

    def extra_repr(self) -> str:
        return f"features={self.num_features}, momentum={self.momentum}, eps={self.eps}"
