"""Convolution for NCHW image batches: the output-size rule, the im2col forward/backward pair, `Conv2d`.

Shapes, for a batch of N images:

    x: (N, C, H, W)    W: (F, C, KH, KW)    b: (F,)    y: (N, F, H', W')
    exact (default):   H' = 1 + (H + 2*pad - KH) / stride, rejected unless whole (the course's rule)
    floor (PyTorch's conv):        H' = 1 + floor((H + 2*pad - KH) / stride), the last rows/cols that do not fit
                                   a window are ignored (their gradient is 0)
    ceil (PyTorch's ceil_mode pooling): H' = 1 + ceil((H - K) / stride), minus 1 if the last window would start
                                   past the input; windows may run off the bottom/right edge

Speed: im2col copies the longest contiguous runs it can get. Channels-last (the usual case): the input is copied,
padded, into a persistent zero-bordered buffer (N, H + 2*pad, W + 2*pad, C), where a window's row of KW pixels
is one run of KW*C values, and the windows (a strided view of it) are copied once into columns
(N*H'*W', KH*KW*C). Planar (few input channels, W' > KW*C: a grey or RGB first layer): per group of samples the
columns (KH*KW*C, n*H'*W'), one copy of runs of W' per kernel offset. The columns meet the weights in one GEMM
per fixed group of samples, `Wk @ cols -> (F, n*H'*W')`, copied to NCHW with the bias add (large outputs: one
GEMM per sample straight into NCHW, and likewise in the backward, without a transposed copy of dy). The backward gets
db by a sum and, per group in one pass, dW by a GEMM against the group's columns (summed over the groups
afterwards, in a fixed order), the column gradient by a GEMM written over those (now dead) columns, laid out
(KH, KW, C, n, H', W'), and col2im: for each of the KH*KW kernel offsets one add into a channel-major gradient
(with "same" padding one shifted add over the group's whole flat buffer, edge entries zeroed first; no padded
buffer, no `np.add.at`), then one transposing copy to NCHW. The GEMMs are made per fixed group of samples
(`sample_groups`), never per thread, so that results do not depend on the thread count; the groups are taken
dynamically by the threads (`parallel.for_each_item`). The `Conv2d` layer keeps these work buffers between
batches (`Workspace`): no allocation or page faults per batch, a flat memory profile. Pooling lives in
`mlcli.nn.pooling`, spatial batch normalization (`BatchNorm2d`) in `mlcli.nn.layers`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np

from mlcli.nn import parallel
from mlcli.nn.base import Layer
from mlcli.nn.init import fans, init_weight

ROUNDINGS = ("exact", "floor", "ceil")
GROUPS = 4  # the convolution's GEMMs work on at most this many fixed groups of samples (parallel.MAX_THREADS),
GROUP_SAMPLES = 16  # of at least this many samples each (smaller GEMMs lose more to their edges and calls)
PER_SAMPLE_POSITIONS = 256  # outputs of at least this many positions: one GEMM per sample, straight to NCHW


def conv_output_size(size: int, kernel: int, stride: int, padding: int = 0, *, what: str = "conv",
                     rounding: str = "exact") -> int:
    """Output length along one spatial axis, `1 + (size + 2*padding - kernel) / stride` rounded by `rounding`.

    "exact": ValueError, naming the formula's values, when the division is not exact (e.g. a 7-wide input, 3-wide
    kernel, stride 3: `(7 + 2*0 - 3) / 3 + 1 = 2.33`). "floor": `1 + floor(...)` (PyTorch's convolution).
    "ceil": `1 + ceil(...)`, less one when the last window would start at or past `size + padding` (PyTorch's
    `ceil_mode`). Always ValueError when the kernel does not fit the padded input. `what` ("conv", "maxpool",
    "avgpool") prefixes the message.
    """
    if rounding not in ROUNDINGS:
        raise ValueError(f"{what}: rounding must be one of {', '.join(ROUNDINGS)}, got {rounding!r}")
    span = size + 2 * padding - kernel
    formula = f"({size} + 2*{padding} - {kernel}) / {stride} + 1"
    if span < 0:
        raise ValueError(
            f"{what}: {formula} = {span / stride + 1:.2f}: the kernel ({kernel}) is larger than the padded input "
            f"({size + 2 * padding})"
        )
    if rounding == "exact" and span % stride:
        raise ValueError(f"{what}: {formula} = {span / stride + 1:.2f} is not a whole number")
    if rounding == "ceil":
        out = -(-span // stride) + 1
        return out - 1 if (out - 1) * stride >= size + padding else out
    return span // stride + 1


def _pair(value: int | tuple[int, int], name: str) -> tuple[int, int]:
    """`3 -> (3, 3)`; a pair is checked and returned; both entries must be positive ints."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value) if np.iterable(value) else ()
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and v >= 1 for v in pair):
        raise ValueError(f"{name} must be a positive int or a pair of positive ints, got {value!r}")
    return int(pair[0]), int(pair[1])


def _check_int(value: int, name: str, minimum: int) -> int:
    if not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


class Workspace:
    """Named scratch arrays kept between calls, so that batches of the same (or a smaller) size reuse memory.

    `get(name, shape, dtype)` returns a C-contiguous array of `shape` over a flat buffer that grows only when a
    larger one is asked for; its contents are whatever the last user left. `zero_border` buffers (padded inputs)
    are zeroed when (re)allocated or reshaped, so that only their interior has to be written.
    """

    def __init__(self) -> None:
        self._flat: dict[str, np.ndarray] = {}
        self._shape: dict[str, tuple] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: np.dtype, *, zeroed: bool = False) -> np.ndarray:
        """An array of `shape` and `dtype` named `name`; `zeroed=True`: all zeros whenever the shape changed."""
        size = math.prod(shape)
        flat = self._flat.get(name)
        if flat is None or flat.dtype != dtype or flat.size < size:
            flat = self._flat[name] = np.zeros(size, dtype=dtype)
        elif zeroed and self._shape.get(name) != shape:
            flat[:size] = 0
        self._shape[name] = shape
        return flat[:size].reshape(shape)

    def clear(self) -> None:
        """Release every buffer."""
        self._flat.clear()
        self._shape.clear()


def _scratch(work: Workspace | None, name: str, shape: tuple[int, ...], dtype: np.dtype,
             zeroed: bool = False) -> np.ndarray:
    """A work buffer from `work`, or a fresh array (zeros when `zeroed`) without one."""
    if work is None:
        return np.zeros(shape, dtype=dtype) if zeroed else np.empty(shape, dtype=dtype)
    return work.get(name, shape, dtype, zeroed=zeroed)


@functools.lru_cache(maxsize=64)
def sample_groups(n: int) -> tuple[slice, ...]:
    """The fixed groups of a batch of n samples that the GEMMs work on: `GROUPS` at most, of `GROUP_SAMPLES` at
    least (one group below that); they depend on n alone."""
    return tuple(parallel.batch_slices(n, max(1, min(GROUPS, n // GROUP_SAMPLES))))


def _work_size(columns: int, filters: int) -> int:
    """The size a GEMM over `columns` elements with `filters` output rows counts as for `parallel.for_each_item`
    (which hands the sample groups to threads from `MIN_ELEMENTS` = 2^18 on): its multiply-adds / 128, so that
    only convolutions of at least 2^25 multiply-adds per batch are spread over threads. Waking a pool thread
    costs tens to hundreds of microseconds on a shared 2-core machine, more than a small layer's group takes:
    the digits CNN (9.4M multiply-adds per conv at batch 32) trained at 188 ms/epoch inline and 276 ms/epoch on
    two threads, while benchmarks/cnn.py (57M-302M) went from 4.68 s/epoch on one thread to 3.86 s on two."""
    return columns * filters // 128


def _for_each_group(fn: Callable[[slice], object], n: int, size: int) -> None:
    """Call `fn(s)` for the fixed slices `s` of the batch `range(n)` (`sample_groups`), spread over the threads
    by `parallel.for_each_item` (taken dynamically). A GEMM's last bits depend on its shape (OpenBLAS's edge
    kernels), so the GEMMs are made per group, never per thread's slice: the results do not depend on the
    thread count."""
    groups = sample_groups(n)
    parallel.for_each_item(lambda i: fn(groups[i]), len(groups), size)


# ------------------------------------------------------------------------------------------------ convolution
def _group_columns(flat: np.ndarray, s: slice, P: int, K: int, planar: bool) -> np.ndarray:
    """The columns of the samples `s` as a (K, n*P) matrix (a view of their block of `flat`): planar blocks are
    stored so, channels-last blocks as (n*P, K) (this is its transpose)."""
    block = flat[s.start * P * K:s.stop * P * K]
    return block.reshape(K, -1) if planar else block.reshape(-1, K).T


def conv_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray | None, stride: int = 1, pad: int = 0, *,
                 rounding: str = "exact", work: Workspace | None = None) -> tuple[np.ndarray, tuple]:
    """Cross-correlation `y[n, f, i, j] = b[f] + sum_{c,u,v} W[f, c, u, v] * xp[n, c, i*stride + u, j*stride + v]`.

    x: (N, C, H, W); W: (F, C, KH, KW); b: (F,) or None; xp is x zero-padded by `pad` on each side; H', W' by
    `conv_output_size(..., rounding)`. Returns y: (N, F, H', W') (a new array) and the cache for `conv_backward`:
    the columns (flat), the weights as (F, KH*KW*C), W's shape, x's shape, stride, pad, the columns' layout.

    im2col copies contiguous runs as long as it can get them. Channels-last (when KW*C >= W'): the padded input
    is kept as xh (N, H + 2*pad, W + 2*pad, C), where a window's row of KW pixels is one run of KW*C values,
    copied into cols (N, H', W', KH, KW, C), a (N*H'*W', K) matrix, K = KH*KW*C. Planar (few channels, e.g. an
    RGB or grey input): per group of n samples, cols (KH, KW, C, n, H', W'), a (K, n*H'*W') matrix, filled by
    one copy of runs of W' per kernel offset from the NCHW padded input. Either way one GEMM per fixed group of
    samples, `Wk @ cols -> (F, n*H'*W')`, then one copy (with the bias add) to NCHW; or, for outputs of at least
    `PER_SAMPLE_POSITIONS` positions, one GEMM per sample straight into y (no GEMM buffer, no copy). With
    `work`, the padded input, the columns and the GEMM output live in its buffers (so the cache is only valid
    until the next call with the same `work`).
    """
    N, C, H, Wd = x.shape
    F, _, KH, KW = W.shape
    OH = conv_output_size(H, KH, stride, pad, rounding=rounding)
    OW = conv_output_size(Wd, KW, stride, pad, rounding=rounding)
    P, K = OH * OW, KH * KW * C
    planar = OW > KW * C
    flat = _scratch(work, "cols", (N * P * K,), x.dtype)
    if planar:
        xp = _scratch(work, "xp", (N, C, H + 2 * pad, Wd + 2 * pad), x.dtype, zeroed=True) if pad else x
        hs, ws = stride * (OH - 1) + 1, stride * (OW - 1) + 1
    else:
        xh = _scratch(work, "xh", (N, H + 2 * pad, Wd + 2 * pad, C), x.dtype, zeroed=bool(pad))
        sn, sh, sw, sc = xh.strides  # the windows as a view (N, OH, OW, KH, KW, C) of xh (C-contiguous)
        win = np.ndarray((N, OH, OW, KH, KW, C), xh.dtype, xh, strides=(sn, stride * sh, stride * sw, sh, sw, sc))
        cols = flat.reshape(N, OH, OW, KH, KW, C)
    Wk = np.ascontiguousarray(W.transpose(0, 2, 3, 1)).reshape(F, K)  # (F, KH, KW, C): the columns' order
    dtype = np.result_type(x, W)
    per_sample = P >= PER_SAMPLE_POSITIONS  # (F, P) per sample is a GEMM large enough on its own
    # grouped: per slice s (F, len(s)*P), contiguous; the backward's dyt reuses this buffer (dead in between)
    yt = None if per_sample else _scratch(work, "ft", (N * F * P,), dtype)
    y = np.empty((N, F, P), dtype=dtype)  # NCHW
    bias = None if b is None else b.reshape(1, F, 1)

    def chunk(s: slice) -> None:
        n = s.stop - s.start
        group = _group_columns(flat, s, P, K, planar)
        if planar:
            if pad:
                xp[s, :, pad:pad + H, pad:pad + Wd] = x[s]
            blocks = group.reshape(KH, KW, C, n, OH, OW)
            for u in range(KH):
                for v in range(KW):
                    np.copyto(blocks[u, v], xp[s, :, u:u + hs:stride, v:v + ws:stride].transpose(1, 0, 2, 3))
        else:
            xh[s, pad:pad + H, pad:pad + Wd] = x[s].transpose(0, 2, 3, 1)
            np.copyto(cols[s], win[s])
        if per_sample:
            for i in range(n):
                np.matmul(Wk, group[:, i * P:(i + 1) * P], out=y[s.start + i])
            if bias is not None:
                y[s] += bias
            return
        out = yt[s.start * F * P:s.stop * F * P].reshape(F, n * P)
        np.matmul(Wk, group, out=out)
        out3 = out.reshape(F, n, P).transpose(1, 0, 2)
        if bias is None:
            np.copyto(y[s], out3)
        else:
            np.add(out3, bias, out=y[s])

    _for_each_group(chunk, N, _work_size(flat.size, F))
    return y.reshape(N, F, OH, OW), (flat, Wk, W.shape, x.shape, stride, pad, planar)


def conv_backward(dy: np.ndarray, cache: tuple, *, need_dx: bool = True, work: Workspace | None = None
                  ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Gradients of `conv_forward`: returns dx: (N, C, H, W), dW: (F, C, KH, KW), db: (F,).

    With dyt = dy as (F, N*H'*W') and, per group of n samples, cols (K, n*H'*W') as in the forward:
    `db = sum_p dyt[:, p]`, `dWk = dyt @ cols.T` (F, K) as the sum over the fixed groups of samples
    (`sample_groups`) of one GEMM each (then reordered to W's (F, C, KH, KW)), and per group
    `dcols = Wk.T @ dyt` (K, n*H'*W'), written over the group's columns (dead once dW is known), in the layout
    (KH, KW, C, n, H', W'): col2im adds, for each kernel offset (u, v), dcols[u, v] into the slice of x it was
    read from, over runs of W' (of H*W with "same" padding, see `_col2im_same`); padding and the rows/cols that
    a floor rounding ignored get nothing, dx there is 0. With `need_dx=False` (a network's first layer in
    training) dx is not computed and None is returned for it.
    """
    flat, Wk, W_shape, (N, C, H, Wd), stride, pad, planar = cache
    del cache
    F, _, KH, KW = W_shape
    OH, OW = dy.shape[2], dy.shape[3]
    P, K = OH * OW, KH * KW * C
    dy3 = dy.reshape(N, F, P)
    per_sample = P >= PER_SAMPLE_POSITIONS  # as in the forward: per-sample GEMMs, no transposed copy of dy
    if per_sample:
        dyt = None
        db = np.einsum("nfp->f", dy3)
    else:
        dyt = _scratch(work, "ft", (F, N * P), dy.dtype)
        np.copyto(dyt.reshape(F, N, P), dy3.transpose(1, 0, 2))
        db = dyt.sum(axis=1)
    # dW sums over the samples: one GEMM per group, then the sum over the groups (in a fixed order); each group
    # then takes its dcols over its (now dead) columns and its share of col2im, in the same pass
    groups = sample_groups(N)
    partial = _scratch(work, "dw", (len(groups), F, K), np.result_type(dy, flat))
    index = {g.start: i for i, g in enumerate(groups)}
    dx = np.empty((N, C, H, Wd), dtype=dy.dtype) if need_dx else None
    same = stride == 1 and (H, Wd) == (OH, OW)
    # col2im accumulates channel-major, per group a contiguous (C, n, H + 2*pad, W + 2*pad) (no border with
    # "same" padding), in the order of dcols' blocks (C, n, H', W'); one transposing copy makes dx NCHW
    Hg, Wg = (H, Wd) if same else (H + 2 * pad, Wd + 2 * pad)
    dxt = _scratch(work, "dxt", (N * C * Hg * Wg,), dy.dtype) if need_dx else None
    hs, ws = stride * (OH - 1) + 1, stride * (OW - 1) + 1

    def chunk(s: slice) -> None:
        n = s.stop - s.start
        rows = slice(s.start * P, s.stop * P)
        group = _group_columns(flat, s, P, K, planar)
        acc = partial[index[s.start]]
        if per_sample:  # the group's sum, sample by sample in order
            np.matmul(dy3[s.start], group[:, :P].T, out=acc)
            term = np.empty_like(acc)
            for i in range(1, n):
                np.matmul(dy3[s.start + i], group[:, i * P:(i + 1) * P].T, out=term)
                acc += term
        else:
            np.matmul(dyt[:, rows], group.T, out=acc)
        if dx is None:
            return
        # the group's columns are dead: its memory takes dcols, as (K, n*P) = (KH, KW, C, n, OH, OW)
        dct = flat[s.start * P * K:s.stop * P * K].reshape(K, n * P)
        if per_sample:
            for i in range(n):
                np.matmul(Wk.T, dy3[s.start + i], out=dct[:, i * P:(i + 1) * P])
        else:
            np.matmul(Wk.T, dyt[:, rows], out=dct)
        dct = dct.reshape(KH, KW, C, n, OH, OW)
        g = dxt[s.start * C * Hg * Wg:s.stop * C * Hg * Wg].reshape(C, n, Hg, Wg)
        if same:
            _col2im_same(dct, pad, g)
            np.copyto(dx[s], g.transpose(1, 0, 2, 3))
            return
        g[...] = 0
        for u in range(KH):
            for v in range(KW):
                g[:, :, u:u + hs:stride, v:v + ws:stride] += dct[u, v]
        np.copyto(dx[s], g[:, :, pad:pad + H, pad:pad + Wd].transpose(1, 0, 2, 3))

    _for_each_group(chunk, N, _work_size(flat.size, F))
    dW = np.ascontiguousarray(partial.sum(axis=0).reshape(F, KH, KW, C).transpose(0, 3, 1, 2))
    return dx, dW, db


def _col2im_same(dct: np.ndarray, pad: int, dxt: np.ndarray) -> None:
    """col2im for stride 1 and an output as large as the input ("same" padding): dct (KH, KW, C, N, H, W) ->
    dxt (C, N, H, W) (C-contiguous, written), `dxt[c, n, i + u - pad, j + v - pad] += dct[u, v, c, n, i, j]`
    where inside.

    On dxt flattened whole, each kernel offset is one shift by `d = (u - pad)*W + (v - pad)`, so each offset is
    ONE add over a single run of C*N*H*W values. The entries that would land outside their own plane's row
    (column `j + v - pad` outside [0, W)) or plane (row `i + u - pad` outside [0, H)) are zeroed in dct first
    (dct is scratch; once per kernel column v and once per kernel row u): where they land instead they add an
    exact 0. The centre offset (pad, pad) covers every pixel: it is copied first, the others are added.
    """
    KH, KW, H, W = dct.shape[0], dct.shape[1], dct.shape[4], dct.shape[5]
    flat = dxt.reshape(-1)
    for v in range(KW):
        if v < pad:
            dct[:, v, ..., :pad - v] = 0
        elif v > pad:
            dct[:, v, ..., W - (v - pad):] = 0
    for u in range(KH):
        if u < pad:
            dct[u, :, :, :, :pad - u] = 0
        elif u > pad:
            dct[u, :, :, :, H - (u - pad):] = 0
    order = [(pad, pad)] + [(u, v) for u in range(KH) for v in range(KW) if (u, v) != (pad, pad)]
    for u, v in order:
        src = dct[u, v].reshape(-1)
        d = (u - pad) * W + (v - pad)
        lo, hi = max(0, -d), min(flat.size, flat.size - d)
        if (u, v) == (pad, pad):
            np.copyto(flat, src)
        elif lo < hi:
            np.add(flat[lo + d:hi + d], src[lo:hi], out=flat[lo + d:hi + d])


class Conv2d(Layer):
    """2-D convolution (cross-correlation) over NCHW batches; params `W`: (C_out, C_in, KH, KW), `b`: (C_out,).

    Shape: (N, C_in, H, W) -> (N, C_out, H', W') with `H' = 1 + (H + 2*padding - KH) / stride`, which must be
    whole (`rounding="exact"`, the course's rule) or is floored (`rounding="floor"`, PyTorch's rule: rows/cols
    that do not fit a window are ignored). Weights come from `mlcli.nn.init.init_weight` with fan_in =
    C_in*KH*KW and fan_out = C_out*KH*KW; the bias starts at 0. The layer keeps its padded-input and column
    buffers between batches (a `Workspace`), so a training step allocates little more than its outputs.
    """

    kind = "conv"

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int], *,
                 stride: int = 1, padding: int = 0, rng: np.random.Generator, init: str = "he",
                 init_mode: str = "avg", init_scale: float = 0.01, bias: bool = True,
                 dtype: type | np.dtype = np.float32, rounding: str = "exact") -> None:
        super().__init__()
        if rounding not in ("exact", "floor"):
            raise ValueError(f"rounding must be 'exact' or 'floor', got {rounding!r}")
        self.rounding = rounding
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
        # once (by the trainer, through Sequential.grads()) stays valid
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}
        self.work = Workspace()

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        """x: (N, C_in, H, W) -> (N, C_out, H', W')."""
        y, self.cache = conv_forward(x, self.params["W"], self.params.get("b"), self.stride, self.padding,
                                     rounding=self.rounding, work=self.work)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """dy: (N, C_out, H', W') -> dx: (N, C_in, H, W); fills grads `W` and `b`."""
        dx, dW, db = conv_backward(dy, self._take_cache(), work=self.work)
        self.grads["W"][...] = dW
        if "b" in self.params:
            self.grads["b"][...] = db
        return dx

    def backward_params(self, dy: np.ndarray) -> None:
        """Fill `grads` like `backward` without the input gradient (GEMM + col2im): for a network's first layer."""
        _, dW, db = conv_backward(dy, self._take_cache(), need_dx=False, work=self.work)
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
        return (self.out_channels, conv_output_size(H, KH, self.stride, self.padding, rounding=self.rounding),
                conv_output_size(W, KW, self.stride, self.padding, rounding=self.rounding))

    def extra_repr(self) -> str:
        rounding = "" if self.rounding == "exact" else f", rounding={self.rounding}"
        return (f"in={self.in_channels}, out={self.out_channels}, kernel={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, bias={'b' in self.params}{rounding}")
