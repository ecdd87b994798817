"""Convolution for NCHW image batches: the output-size rule, the im2col forward/backward pair, `Conv2d`.

Shapes, for a batch of N images:

    x: (N, C, H, W)    W: (F, C, KH, KW)    b: (F,)    y: (N, F, H', W')
    exact (default):   H' = 1 + (H + 2*pad - KH) / stride, rejected unless whole (the course's rule)
    floor (PyTorch's conv):        H' = 1 + floor((H + 2*pad - KH) / stride), the last rows/cols that do not fit
                                   a window are ignored (their gradient is 0)
    ceil (PyTorch's ceil_mode pooling): H' = 1 + ceil((H - K) / stride), minus 1 if the last window would start
                                   past the input; windows may run off the bottom/right edge

Speed: the convolution copies the padded input into a persistent zero-bordered buffer, takes im2col as a strided
view of it, copies that once into contiguous columns laid out per sample, `(N, C*KH*KW, H'*W')`, and does one
batched GEMM `W2 @ cols -> (N, F, H'*W')`, which is already NCHW (no transpose of the output). Its backward gets db
by a sum, dW by the same batched GEMM against the columns summed over the batch, and dx by a GEMM to the column
gradient (written over the columns, which are dead by then) followed by col2im: for each of the KH*KW kernel
offsets one strided slice add into dx, clipped to the input (no padded buffer, no `np.add.at`). The `Conv2d` layer
keeps these work buffers between batches (`Workspace`): no allocation or page faults per batch, a flat memory
profile. Pooling lives in `mlcli.nn.pooling`, spatial batch normalization (`BatchNorm2d`) in `mlcli.nn.layers`.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mlcli.nn import parallel
from mlcli.nn.base import Layer
from mlcli.nn.init import fans, init_weight

ROUNDINGS = ("exact", "floor", "ceil")


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
        size = int(np.prod(shape))
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


def _clip(size: int, out: int, offset: int, stride: int, pad: int) -> tuple[slice, slice] | None:
    """For kernel offset `offset`, the slices (input, output) of the outputs `i` whose input index
    `i*stride + offset - pad` lies in [0, size): col2im's scatter clipped to the unpadded input; None if empty."""
    lo = max(0, -((offset - pad) // stride))
    hi = min(out - 1, (size - 1 + pad - offset) // stride)
    if hi < lo:
        return None
    start = lo * stride + offset - pad
    return slice(start, start + stride * (hi - lo) + 1, stride), slice(lo, hi + 1)


# --------------------------------------------------------------------------------------------------- convolution
def conv_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray | None, stride: int = 1, pad: int = 0, *,
                 rounding: str = "exact", work: Workspace | None = None) -> tuple[np.ndarray, tuple]:
    """Cross-correlation `y[n, f, i, j] = b[f] + sum_{c,u,v} W[f, c, u, v] * xp[n, c, i*stride + u, j*stride + v]`.

    x: (N, C, H, W); W: (F, C, KH, KW); b: (F,) or None; xp is x zero-padded by `pad` on each side; H', W' by
    `conv_output_size(..., rounding)`. Returns y: (N, F, H', W') (a new array) and the cache (cols, W, x shape,
    stride, pad) for `conv_backward`. With `work`, the padded input and the columns live in its buffers (so the
    cache is only valid until the next call with the same `work`).
    """
    N, C, H, Wd = x.shape
    F, _, KH, KW = W.shape
    OH = conv_output_size(H, KH, stride, pad, rounding=rounding)
    OW = conv_output_size(Wd, KW, stride, pad, rounding=rounding)
    xp = _scratch(work, "xp", (N, C, H + 2 * pad, Wd + 2 * pad), x.dtype, zeroed=True) if pad else x
    win = sliding_window_view(xp, (KH, KW), axis=(2, 3))[:, :, ::stride, ::stride][:, :, :OH, :OW]
    cols = _scratch(work, "cols", (N, C, KH, KW, OH, OW), x.dtype)
    cols3 = cols.reshape(N, C * KH * KW, OH * OW)
    W2 = W.reshape(F, -1)
    y = np.empty((N, F, OH * OW), dtype=np.result_type(x, W))  # NCHW without a transpose

    def chunk(s: slice) -> None:
        if pad:
            xp[s, :, pad:pad + H, pad:pad + Wd] = x[s]
        np.copyto(cols[s], win[s].transpose(0, 1, 4, 5, 2, 3))  # (n, C, OH, OW, KH, KW) -> (n, C, KH, KW, OH, OW)
        np.matmul(W2, cols3[s], out=y[s])
        if b is not None:
            y[s] += b.reshape(1, F, 1)

    parallel.for_each_chunk(chunk, N, cols.size)
    return y.reshape(N, F, OH, OW), (cols3, W, x.shape, stride, pad)


def conv_backward(dy: np.ndarray, cache: tuple, *, need_dx: bool = True, work: Workspace | None = None
                  ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Gradients of `conv_forward`: returns dx: (N, C, H, W), dW: (F, C, KH, KW), db: (F,).

    With dy3 = dy as (N, F, H'*W') and cols (N, C*KH*KW, H'*W') as in the forward: `db = sum_{n,p} dy3[n, :, p]`,
    `dW = sum_n dy3[n] @ cols[n].T`, `dcols[n] = W2.T @ dy3[n]`, and col2im adds dcols for each kernel offset
    (u, v) into the strided slice of x it was read from, clipped to x (padding and the rows/cols that a floor
    rounding ignored get nothing, dx there is 0). dcols is written over cols, which is dead once dW is known: the
    step needs one column-sized buffer, not two. With `need_dx=False` (a network's first layer in training) dx
    is not computed and None is returned for it.
    """
    cols, W, (N, C, H, Wd), stride, pad = cache
    del cache
    F, _, KH, KW = W.shape
    OH, OW = dy.shape[2], dy.shape[3]
    dy3 = dy.reshape(N, F, OH * OW)
    db = np.einsum("nfp->f", dy3)
    W2 = W.reshape(F, -1)
    per_sample = _scratch(work, "dw", (N, cols.shape[1], F), dy.dtype)
    dcols = cols.reshape(N, C, KH, KW, OH, OW)
    dx = np.empty((N, C, H, Wd), dtype=dy.dtype) if need_dx else None
    rows = [_clip(H, OH, u, stride, pad) for u in range(KH)]
    cols_w = [_clip(Wd, OW, v, stride, pad) for v in range(KW)]

    def chunk(s: slice) -> None:
        np.matmul(cols[s], dy3[s].transpose(0, 2, 1), out=per_sample[s])
        if dx is None:
            return
        np.matmul(W2.T, dy3[s], out=cols[s])  # cols become dcols
        if stride == 1 and (H, Wd) == (OH, OW):
            _col2im_same(dcols[s], pad, dx[s])
            return
        dx[s] = 0
        for u in range(KH):
            for v in range(KW):
                if rows[u] is not None and cols_w[v] is not None:
                    (hx, hy), (wx, wy) = rows[u], cols_w[v]
                    dx[s, :, hx, wx] += dcols[s, :, u, v, hy, wy]

    parallel.for_each_chunk(chunk, N, cols.size)
    dW = per_sample.sum(axis=0).T.reshape(W.shape)  # (C*KH*KW, F) summed over the batch, then transposed
    return dx, dW, db


def _col2im_same(dcols: np.ndarray, pad: int, dx: np.ndarray) -> None:
    """col2im for stride 1 and an output as large as the input ("same" padding): dcols (N, C, KH, KW, H, W) ->
    dx (N, C, H, W) (written), `dx[n, c, i + u - pad, j + v - pad] += dcols[n, c, u, v, i, j]` where inside.

    On the flattened H*W plane each kernel offset is one shift by `d = (u - pad)*W + (v - pad)`, so each offset is
    one add over long contiguous runs (instead of H rows of W). The entries whose column `j + v - pad` falls
    outside [0, W) would wrap into the neighbouring row; they are zeroed in dcols first (dcols is scratch).
    """
    N, C, KH, KW, H, W = dcols.shape
    plane = H * W
    dx = dx.reshape(N * C, plane)
    flat = dcols.reshape(N * C, KH, KW, plane)
    order = [(pad, pad)] + [(u, v) for u in range(KH) for v in range(KW) if (u, v) != (pad, pad)]
    for u, v in order:
        if v < pad:
            dcols[:, :, u, v, :, :pad - v] = 0
        elif v > pad:
            dcols[:, :, u, v, :, W - (v - pad):] = 0
        d = (u - pad) * W + (v - pad)
        lo, hi = max(0, -d), min(plane, plane - d)
        if (u, v) == (pad, pad):
            np.copyto(dx, flat[:, u, v])
        elif lo < hi:
            dx[:, lo + d:hi + d] += flat[:, u, v, lo:hi]


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
