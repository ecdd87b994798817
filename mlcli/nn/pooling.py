"""Max and average pooling for NCHW batches: pure forward/backward pairs and the `MaxPool2d` / `AvgPool2d` layers.

    x: (N, C, H, W) -> y: (N, C, H', W'),  H' = 1 + (H - K) / stride (exact; `ceil_mode` as PyTorch's)

Windows equal to the stride on divisible sizes are a reshape ("tiling"); overlapping windows use strided slices.
Max pooling routes each window's gradient to its first maximum in row-major order, as PyTorch does.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from mlcli.nn import parallel
from mlcli.nn.base import Layer
from mlcli.nn.conv import _check_int, conv_output_size

# Pooling works in two separable stages, along W then along H, so that every NumPy call runs over long runs of
# memory rather than over k x k windows one by one: max pooling of a window is the max over its rows of the max
# within each row, and row-major "first maximum" is kept by resolving ties towards the lower index in both stages.
# Both stages run on the input cut or padded to the extent the windows cover, `(H' - 1)*stride + k` rows (and
# likewise columns): larger than H only in ceil mode, where the missing cells are -inf (max) or 0 (avg).


def _pool_geometry(x_shape: tuple[int, ...], kernel: int, stride: int, ceil_mode: bool, what: str
                   ) -> tuple[tuple[int, int], tuple[int, int]]:
    """(H', W') and the extent (EH, EW) = ((H' - 1)*stride + k, (W' - 1)*stride + k) the windows cover;
    ValueError if an exact (not ceil) geometry is not whole."""
    rounding = "ceil" if ceil_mode else "exact"
    out = tuple(conv_output_size(size, kernel, stride, 0, what=what, rounding=rounding) for size in x_shape[2:])
    return out, tuple((o - 1) * stride + kernel for o in out)


def _fit(x: np.ndarray, extent: tuple[int, int], fill: float) -> np.ndarray:
    """x: (N, C, H, W) cut or padded at the bottom/right with `fill` to (N, C, EH, EW); x itself if it fits."""
    (EH, EW), (H, W) = extent, x.shape[2:]
    if EH <= H and EW <= W:
        return x[:, :, :EH, :EW]
    out = np.full(x.shape[:2] + extent, fill, dtype=x.dtype)
    out[:, :, :min(H, EH), :min(W, EW)] = x[:, :, :EH, :EW]
    return out


def _unfit(dxe: np.ndarray, x_shape: tuple[int, ...]) -> np.ndarray:
    """The inverse of `_fit` for gradients: dxe (N, C, EH, EW) -> dx (N, C, H, W), 0 where no window reached."""
    if dxe.shape == tuple(x_shape):
        return dxe
    dx = np.zeros(x_shape, dtype=dxe.dtype)
    h, w = min(x_shape[2], dxe.shape[2]), min(x_shape[3], dxe.shape[3])
    dx[:, :, :h, :w] = dxe[:, :, :h, :w]
    return dx


def _offset_views(a: np.ndarray, axis: int, kernel: int, stride: int, tiling: bool) -> list[np.ndarray]:
    """For each offset v < kernel, the view of `a` holding element v of every window along `axis`.

    Each view has `n = 1 + (a.shape[axis] - kernel) // stride` entries along `axis`. Fast path (`tiling`): `axis`
    reshaped to (n, kernel) and index v taken on the new axis; otherwise the strided slice `v : v + stride*n`.
    Views of a writable buffer are writable, so the backward scatters through the same function.
    """
    n = 1 + (a.shape[axis] - kernel) // stride
    lead = (slice(None),) * axis
    if tiling:
        split = a.reshape((*a.shape[:axis], n, kernel, *a.shape[axis + 1:]))
        return [split[(*lead, slice(None), v)] for v in range(kernel)]
    return [a[(*lead, slice(v, v + stride * (n - 1) + 1, stride))] for v in range(kernel)]


def _max_first(views: list[np.ndarray], best: np.ndarray, arg: np.ndarray) -> None:
    """Elementwise max over same-shape arrays into `best`, and into `arg` (uint8) the index of the first array
    that attains it."""
    if len(views) == 2:  # 2x2 windows: one compare, one max
        np.maximum(views[0], views[1], out=best)
        np.greater(views[1], views[0], out=arg.view(np.bool_))
        return
    np.copyto(best, views[0])
    arg[...] = 0
    took = np.empty(best.shape, dtype=bool)
    for v in range(1, len(views)):
        np.greater(views[v], best, out=took)  # strict: an equal later value does not take the maximum
        np.maximum(best, views[v], out=best)
        # v exceeds every index stored so far, so max(arg, v * took) writes v exactly where `took`.
        np.maximum(arg, took.view(np.uint8) * np.uint8(v), out=arg)


def _route(grad: np.ndarray, arg: np.ndarray, targets: list[np.ndarray], tiling: bool) -> None:
    """Send `grad` to `targets[arg]` elementwise; assign when the targets tile their buffer, else accumulate."""
    if tiling and len(targets) == 2:  # arg is 0/1: targets[1] = grad * arg, targets[0] = grad - that (exact)
        np.multiply(grad, arg, out=targets[1])
        np.subtract(grad, targets[1], out=targets[0])
        return
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


def _maxpool2_forward(x: np.ndarray) -> tuple[np.ndarray, tuple]:
    """`maxpool_forward` for 2x2 windows tiling a C-contiguous x: (N, C, H, W), H and W even -> y: (N, C, H/2,
    W/2), with the two stages written out (no helper calls: a small batch is all per-call overhead). The cache
    is (col_arg (N, C, H, W/2), row_arg (N, C, H/2, W/2)), booleans: "the second of the pair is larger"."""
    N, C, H, W = x.shape
    pairs = x.reshape(N, C, H, W // 2, 2)
    rowmax = np.empty((N, C, H, W // 2), dtype=x.dtype)
    col_arg = np.empty(rowmax.shape, dtype=np.bool_)
    y = np.empty((N, C, H // 2, W // 2), dtype=x.dtype)
    row_arg = np.empty(y.shape, dtype=np.bool_)
    rows = rowmax.reshape(N, C, H // 2, 2, W // 2)

    def stages(s: slice) -> None:
        np.maximum(pairs[s, ..., 0], pairs[s, ..., 1], out=rowmax[s])
        np.greater(pairs[s, ..., 1], pairs[s, ..., 0], out=col_arg[s])  # strict: ties keep the first
        np.maximum(rows[s, :, :, 0], rows[s, :, :, 1], out=y[s])
        np.greater(rows[s, :, :, 1], rows[s, :, :, 0], out=row_arg[s])

    parallel.for_each_chunk(stages, N, x.size)
    return y, (col_arg, row_arg)


def _maxpool2_backward(dy: np.ndarray, cache: tuple) -> np.ndarray:
    """The backward of `_maxpool2_forward`: each window's dy goes to its first maximum (exact: the second of
    a pair gets `dy * arg`, the first `dy - that`)."""
    col_arg, row_arg = cache
    N, C, H, W2 = col_arg.shape
    drow = np.empty(col_arg.shape, dtype=dy.dtype)
    dx = np.empty((N, C, H, 2 * W2), dtype=dy.dtype)
    drows = drow.reshape(N, C, H // 2, 2, W2)
    dpairs = dx.reshape(N, C, H, W2, 2)

    def stages(s: slice) -> None:
        np.multiply(dy[s], row_arg[s], out=drows[s, :, :, 1])
        np.subtract(dy[s], drows[s, :, :, 1], out=drows[s, :, :, 0])
        np.multiply(drow[s], col_arg[s], out=dpairs[s, ..., 1])
        np.subtract(drow[s], dpairs[s, ..., 1], out=dpairs[s, ..., 0])

    parallel.for_each_chunk(stages, N, dx.size)
    return dx


# 2x2 windows on planes at most this wide gather each window's two rows as pairs of adjacent values: the strided
# passes of _maxpool2_forward then run over rows of 4 or fewer values, where NumPy's per-row cost dominates
# (32x8x8 and 64x4x4 planes, batch 32: forward and backward 230 -> 186 us and 188 -> 82 us; 16x16 planes lose)
GATHER_WIDTH = 8
_PAIR_DTYPES = {np.dtype(np.float32): np.dtype(np.int64), np.dtype(np.float64): np.dtype(np.complex128)}


@functools.lru_cache(maxsize=8)
def _window_pairs(planes: int, H: int, W: int) -> tuple[np.ndarray, np.ndarray]:
    """For `planes` C-contiguous (H, W) planes (H, W even) seen as pairs of adjacent values, (planes*H*W/4,) in
    output order: the index of each 2x2 window's top pair, and of its top-left value (twice that); read-only."""
    grid = (np.arange(0, H, 2)[:, None] * (W // 2) + np.arange(W // 2)).ravel()
    top = np.add.outer(np.arange(planes) * (H * W // 2), grid).ravel()
    corner = 2 * top
    top.flags.writeable = corner.flags.writeable = False
    return top, corner


def _maxpool2_gather_forward(x: np.ndarray) -> tuple[np.ndarray, tuple]:
    """`_maxpool2_forward` for planes of width <= GATHER_WIDTH: x (N, C, H, W) as pairs of adjacent values, one
    gather of each window's top pair and one of its bottom pair (a, b / c, d), then the same two stages with
    the same ties (first column in each row, then the top row). The cache is the flat index into x of each
    window's first maximum (N*C*H*W/4,) and x's shape."""
    N, C, H, W = x.shape
    top, corner = _window_pairs(N * C, H, W)
    pairs = x.reshape(-1).view(_PAIR_DTYPES[x.dtype])
    upper = pairs.take(top).view(x.dtype).reshape(-1, 2)
    lower = pairs[W // 2:].take(top).view(x.dtype).reshape(-1, 2)
    right_up = np.greater(upper[:, 1], upper[:, 0])  # strict: ties keep the first
    y = np.maximum(upper[:, 0], upper[:, 1])
    right_down = np.greater(lower[:, 1], lower[:, 0])
    down_max = np.maximum(lower[:, 0], lower[:, 1])
    down = np.greater(down_max, y)
    np.maximum(y, down_max, out=y)
    index = np.where(down, right_down + W, right_up)  # offset in the window: 0, 1, W or W + 1
    index += corner
    return y.reshape(N, C, H // 2, W // 2), (index, x.shape)


def _maxpool2_gather_backward(dy: np.ndarray, cache: tuple) -> np.ndarray:
    """The backward of `_maxpool2_gather_forward`: dx is 0 but at each window's first maximum, which gets dy."""
    index, shape = cache
    dx = np.zeros(math.prod(shape), dtype=dy.dtype)
    dx[index] = dy.reshape(-1)
    return dx.reshape(shape)


def maxpool_forward(x: np.ndarray, kernel: int, stride: int, ceil_mode: bool = False
                    ) -> tuple[np.ndarray, tuple]:
    """`y[n, c, i, j] = max_{u,v < k} x[n, c, i*stride + u, j*stride + v]`; x: (N, C, H, W) -> y: (N, C, H', W').

    Stage 1 takes, in every input row, the max over each window's k columns: rowmax (N, C, EH, W') and its
    column offset col_arg; stage 2 the max of rowmax over each window's k rows: y and the row offset row_arg.
    Ties go to the first element in row-major order, as in PyTorch, so the backward routes each window's gradient
    to exactly one input. `ceil_mode`: windows may run off the bottom/right edge, where cells count as -inf. The
    cache holds the two uint8 offset arrays, (N, C, EH, W') and (N, C, H', W').
    """
    (OH, OW), extent = _pool_geometry(x.shape, kernel, stride, ceil_mode, "maxpool")
    tiling = stride == kernel
    if tiling and kernel == 2 and extent == x.shape[2:] and x.flags.c_contiguous:
        if x.shape[3] <= GATHER_WIDTH and x.dtype in _PAIR_DTYPES:
            return _maxpool2_gather_forward(x)
        return _maxpool2_forward(x)
    xe = _fit(x, extent, -np.inf)
    N, C = x.shape[:2]
    rowmax = np.empty((N, C, extent[0], OW), dtype=x.dtype)
    col_arg = np.empty(rowmax.shape, dtype=np.uint8)
    y = np.empty((N, C, OH, OW), dtype=x.dtype)
    row_arg = np.empty(y.shape, dtype=np.uint8)

    def stages(s: slice) -> None:
        _max_first(_offset_views(xe[s], 3, kernel, stride, tiling), rowmax[s], col_arg[s])
        _max_first(_offset_views(rowmax[s], 2, kernel, stride, tiling), y[s], row_arg[s])

    parallel.for_each_chunk(stages, N, xe.size)
    return y, (col_arg, row_arg, x.shape, extent, kernel, stride, tiling)


def maxpool_backward(dy: np.ndarray, cache: tuple) -> np.ndarray:
    """dx: (N, C, H, W) is zero except at each window's first argmax, which receives that window's dy (summed
    over the windows that share it when they overlap)."""
    if len(cache) == 2:
        gathered = cache[0].ndim == 1  # (index, shape) of the gather path, else the two argument arrays
        return _maxpool2_gather_backward(dy, cache) if gathered else _maxpool2_backward(dy, cache)
    col_arg, row_arg, x_shape, extent, kernel, stride, tiling = cache
    alloc = np.empty if tiling else np.zeros
    drow = alloc(col_arg.shape, dtype=dy.dtype)  # (N, C, EH, W'), gradient of the row maxima
    dxe = alloc(x_shape[:2] + extent, dtype=dy.dtype)

    def stages(s: slice) -> None:
        _route(dy[s], row_arg[s], _offset_views(drow[s], 2, kernel, stride, tiling), tiling)
        _route(drow[s], col_arg[s], _offset_views(dxe[s], 3, kernel, stride, tiling), tiling)

    parallel.for_each_chunk(stages, len(dy), dxe.size)
    return _unfit(dxe, x_shape)


def _avg_scale(x_shape: tuple[int, ...], out: tuple[int, int], kernel: int, stride: int, dtype: np.dtype
               ) -> np.ndarray:
    """1 / (cells of each window inside the input): (H', W') (all 1/k**2 unless ceil windows run off the edge)."""
    counts = [np.minimum(np.arange(o) * stride + kernel, size) - np.arange(o) * stride
              for o, size in zip(out, x_shape[2:], strict=True)]
    return (1.0 / np.outer(counts[0], counts[1])).astype(dtype)


def avgpool_forward(x: np.ndarray, kernel: int, stride: int, ceil_mode: bool = False
                    ) -> tuple[np.ndarray, tuple]:
    """`y[n, c, i, j] = mean of x[n, c, i*stride + u, j*stride + v]` over the window's cells inside the input
    (u, v < k; all k**2 of them unless `ceil_mode` windows run off the edge, as PyTorch with padding 0);
    x: (N, C, H, W) -> y: (N, C, H', W').

    Summed along each window's columns, then its rows, then scaled by `_avg_scale`. The cache is the geometry.
    """
    out, extent = _pool_geometry(x.shape, kernel, stride, ceil_mode, "avgpool")
    tiling = stride == kernel
    cols = _offset_views(_fit(x, extent, 0.0), 3, kernel, stride, tiling)
    rowsum = np.array(cols[0], copy=True)  # (N, C, EH, W')
    for view in cols[1:]:
        rowsum += view
    rows = _offset_views(rowsum, 2, kernel, stride, tiling)
    y = np.array(rows[0], copy=True)  # (N, C, H', W')
    for view in rows[1:]:
        y += view
    scale = _avg_scale(x.shape, out, kernel, stride, x.dtype)
    y *= scale
    return y, (x.shape, extent, rowsum.shape, kernel, stride, tiling, scale)


def avgpool_backward(dy: np.ndarray, cache: tuple) -> np.ndarray:
    """dx: (N, C, H, W); every input of a window receives the window's `dy` times its 1/count (summed over the
    windows that contain it)."""
    x_shape, extent, rowsum_shape, kernel, stride, tiling, scale = cache
    alloc = np.empty if tiling else np.zeros
    drow = alloc(rowsum_shape, dtype=dy.dtype)
    _spread(dy * scale, _offset_views(drow, 2, kernel, stride, tiling), tiling)
    dxe = alloc(x_shape[:2] + extent, dtype=dy.dtype)
    _spread(drow, _offset_views(dxe, 3, kernel, stride, tiling), tiling)
    return _unfit(dxe, x_shape)


class _Pool2d(Layer):
    """Shared constructor and shape logic of the pooling layers: a k x k window moved by `stride` (default k);
    `ceil_mode` as PyTorch's (windows may run off the bottom/right edge), else the output size must be whole."""

    def __init__(self, kernel_size: int, stride: int | None = None, ceil_mode: bool = False) -> None:
        super().__init__()
        if not isinstance(ceil_mode, (bool, np.bool_)):
            raise ValueError(f"ceil_mode must be True or False, got {ceil_mode!r}")
        self.ceil_mode = bool(ceil_mode)
        self.kernel_size = _check_int(kernel_size, "kernel_size", 1)
        if self.kernel_size > 255:  # window offsets are stored as uint8
            raise ValueError(f"kernel_size must be <= 255, got {kernel_size}")
        self.stride = self.kernel_size if stride is None else _check_int(stride, "stride", 1)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """(C, H, W) -> (C, H', W') with `H' = 1 + (H - k) / stride`; ValueError if that is not whole, unless
        `ceil_mode` (then `H' = 1 + ceil((H - k) / stride)`, less one if the last window starts past the input)."""
        if len(input_shape) != 3:
            raise ValueError(f"{self.kind} expects input (C, H, W), got {tuple(input_shape)}")
        C, H, W = input_shape
        rounding = "ceil" if self.ceil_mode else "exact"
        return (C, conv_output_size(H, self.kernel_size, self.stride, 0, what=self.kind, rounding=rounding),
                conv_output_size(W, self.kernel_size, self.stride, 0, what=self.kind, rounding=rounding))

    def extra_repr(self) -> str:
        return f"kernel={self.kernel_size}, stride={self.stride}" + (", ceil_mode=True" if self.ceil_mode else "")


class MaxPool2d(_Pool2d):
    """Max pooling: (N, C, H, W) -> (N, C, H', W'); the gradient goes to each window's first maximum."""

    kind = "maxpool"

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        y, self.cache = maxpool_forward(x, self.kernel_size, self.stride, self.ceil_mode)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return maxpool_backward(dy, self.cache)


class AvgPool2d(_Pool2d):
    """Average pooling: (N, C, H, W) -> (N, C, H', W'); each input gets `dy / count` from every window it is in
    (count = k**2, or the window's cells inside the input when a `ceil_mode` window runs off the edge)."""

    kind = "avgpool"

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        y, self.cache = avgpool_forward(x, self.kernel_size, self.stride, self.ceil_mode)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return avgpool_backward(dy, self.cache)
