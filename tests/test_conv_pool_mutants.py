"""Conv2d and pooling behaviours that mutation testing (tools/mutate.py) found untested: values against plain
float64 loops on the geometries the other tests miss (ceil-mode edges, overlapping windows, padding wider than
the kernel, scratch buffers reused across calls), the output-size rounding and the argument checks' messages."""

from __future__ import annotations

import numpy as np
import pytest

from mlcli.nn import pooling
from mlcli.nn.conv import Conv2d, Workspace, conv_backward, conv_forward, conv_output_size
from mlcli.nn.pooling import AvgPool2d, MaxPool2d, avgpool_backward, avgpool_forward, maxpool_backward, maxpool_forward


@pytest.mark.parametrize("kernel_size", [2.0, np.float64(3.0), None, (2, 2.0), (0, 2), (2, 2, 2)])
def test_conv2d_kernel_size_of_a_wrong_type_is_a_value_error_naming_it(kernel_size):
    with pytest.raises(ValueError, match="kernel_size must be a positive int or a pair of positive ints"):
        Conv2d(1, 1, kernel_size, rng=np.random.default_rng(0))


@pytest.mark.parametrize(("kernel_size", "pair"), [(3, (3, 3)), ((2, 3), (2, 3)), ([1, 4], (1, 4)),
                                                    (np.int64(2), (2, 2)), (np.array([3, 2]), (3, 2))])
def test_conv2d_kernel_size_int_or_pair(kernel_size, pair):
    layer = Conv2d(2, 1, kernel_size, rng=np.random.default_rng(0))
    assert layer.kernel_size == pair
    assert layer.params["W"].shape == (1, 2, *pair)


# ------------------------------------------------------------------------------------------------------- pooling
def clipped_pool(x, k, s, out, op, dy):
    """Plain loops, PyTorch's semantics: window (i, j) covers rows i*s .. i*s+k-1 clipped to the input; max takes
    the first maximum in row-major order (and gets its dy), avg divides by the cells inside."""
    N, C, H, W = x.shape
    y, dx = np.zeros((N, C, *out)), np.zeros(x.shape)
    for n in range(N):
        for c in range(C):
            for i in range(out[0]):
                for j in range(out[1]):
                    r0, c0 = i * s, j * s
                    win = x[n, c, r0:min(r0 + k, H), c0:min(c0 + k, W)]
                    if op == "max":
                        u, v = np.unravel_index(int(np.argmax(win)), win.shape)
                        y[n, c, i, j] = win[u, v]
                        dx[n, c, r0 + u, c0 + v] += dy[n, c, i, j]
                    else:
                        y[n, c, i, j] = win.mean()
                        dx[n, c, r0:r0 + win.shape[0], c0:c0 + win.shape[1]] += dy[n, c, i, j] / win.size
    return y, dx


POOL_CASES = [  # (N, C, H, W), kernel, stride, ceil_mode, (H', W')
    ((1, 2, 5, 4), 2, 2, True, (3, 2)),     # ceil pads the rows only: W fits exactly
    ((1, 2, 4, 5), 2, 2, True, (2, 3)),     # ... the columns only
    ((2, 1, 6, 7), 2, 2, True, (3, 4)),
    ((1, 2, 7, 8), 3, 2, True, (3, 4)),     # overlapping windows, ceil in the rows only (8 = 2*2 + 3 + 1 is cut)
    ((1, 1, 8, 7), 3, 2, True, (4, 3)),
    ((2, 2, 5, 5), 2, 1, False, (4, 4)),    # overlapping 2x2 windows: not a tiling
    ((1, 2, 8, 11), 2, 3, False, (3, 4)),   # stride > kernel: rows/columns between windows are skipped
    ((1, 2, 6, 9), 2, 3, True, (2, 3)),     # ceil drops a window that would start past the input: the last
                                            # row/column is in no window (cut, gradient 0)
    ((1, 1, 8, 8), 3, 5, True, (2, 2)),     # gaps and a last window that runs off the edge
    ((2, 1, 6, 9), 3, 3, False, (2, 3)),    # 3x3 tiling
    ((1, 1, 7, 7), 3, 3, True, (3, 3)),     # 3x3 tiling in ceil mode, last window of one row/column
]


@pytest.mark.parametrize("op", ["max", "avg"])
@pytest.mark.parametrize(("shape", "k", "s", "ceil", "out"), POOL_CASES)
def test_pooling_matches_clipped_loops_on_every_geometry(op, shape, k, s, ceil, out):
    rng = np.random.default_rng(7)
    layer = (MaxPool2d if op == "max" else AvgPool2d)(k, s, ceil_mode=ceil)
    assert layer.output_shape(shape[1:]) == (shape[1], *out)
    for values in ("normal", "ties"):  # small integers: many ties, the first maximum must take the gradient
        x = rng.standard_normal(shape) if values == "normal" else rng.integers(-2, 1, shape).astype(float) - 5.0
        y = layer.forward(x, train=True)
        dy = rng.standard_normal(y.shape)
        dx = layer.backward(dy)
        ry, rdx = clipped_pool(x, k, s, out, op, dy)
        assert y.shape == ry.shape and dx.shape == x.shape
        np.testing.assert_allclose(y, ry, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(dx, rdx, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("forward", "backward"), [(maxpool_forward, maxpool_backward),
                                                   (avgpool_forward, avgpool_backward)])
def test_functional_pooling_is_exact_by_default_and_ceil_on_request(forward, backward):
    x = np.arange(2 * 5 * 5, dtype=float).reshape(1, 2, 5, 5)
    with pytest.raises(ValueError, match="pool: \\(5 \\+ 2\\*0 - 2\\) / 2 \\+ 1 = 2.50 is not a whole number"):
        forward(x, 2, 2)
    y, cache = forward(x, 2, 2, True)
    assert y.shape == (1, 2, 3, 3)
    assert backward(np.ones_like(y), cache).shape == x.shape


# --------------------------------------------------------------------------------------------------- convolution
def torch_output_size(size, k, s, p, ceil):
    """PyTorch's pooling_output_shape / conv output length, written out."""
    out = (size + 2 * p - k + (s - 1 if ceil else 0)) // s + 1
    if ceil and (out - 1) * s >= size + p:
        out -= 1
    return out


def test_output_size_matches_pytorchs_formula_over_a_grid():
    for size in range(1, 12):
        for k in range(1, 6):
            for s in range(1, 5):
                for p in range(0, 3):
                    if size + 2 * p < k:
                        with pytest.raises(ValueError, match="is larger than the padded input"):
                            conv_output_size(size, k, s, p, rounding="floor")
                        continue
                    floor = torch_output_size(size, k, s, p, False)
                    assert conv_output_size(size, k, s, p, rounding="floor") == floor
                    assert conv_output_size(size, k, s, p, rounding="ceil") == torch_output_size(size, k, s, p, True)
                    if (size + 2 * p - k) % s:
                        with pytest.raises(ValueError, match="is not a whole number"):
                            conv_output_size(size, k, s, p)
                    else:
                        assert conv_output_size(size, k, s, p) == floor


def test_output_size_messages_name_the_values():
    with pytest.raises(ValueError, match=r"^conv: \(2 \+ 2\*1 - 5\) / 1 \+ 1 = 0.00: the kernel \(5\) is larger than "
                                         r"the padded input \(4\)$"):
        conv_output_size(2, 5, 1, 1)
    assert conv_output_size(2, 4, 1, 1) == 1  # a kernel exactly as wide as the padded input fits once
    assert conv_output_size(5, 3, 1) == 3  # no padding unless asked
    with pytest.raises(ValueError, match="^maxpool: rounding must be one of exact, floor, ceil, got 'round'$"):
        conv_output_size(4, 2, 2, what="maxpool", rounding="round")


def naive_conv_floor(x, W, b, stride, pad, dy):
    """Plain loops over outputs and kernel cells (float64), PyTorch's floor rounding."""
    N, _, H, Wd = x.shape
    F, _, KH, KW = W.shape
    OH, OW = (H + 2 * pad - KH) // stride + 1, (Wd + 2 * pad - KW) // stride + 1
    y = np.zeros((N, F, OH, OW)) + (0.0 if b is None else b[None, :, None, None])
    dx, dW = np.zeros(x.shape), np.zeros(W.shape)
    for i in range(OH):
        for j in range(OW):
            for u in range(KH):
                for v in range(KW):
                    r, c = i * stride + u - pad, j * stride + v - pad
                    if 0 <= r < H and 0 <= c < Wd:
                        y[:, :, i, j] += x[:, :, r, c] @ W[:, :, u, v].T
                        dx[:, :, r, c] += dy[:, :, i, j] @ W[:, :, u, v]
                        dW[:, :, u, v] += dy[:, :, i, j].T @ x[:, :, r, c]
    return y, dx, dW, dy.sum(axis=(0, 2, 3))


CONV_CASES = [  # (N, C, H, W), F, kernel, stride, pad
    ((2, 2, 5, 5), 3, 3, 1, 1),     # "same" padding: the flat-shift col2im
    ((1, 2, 6, 7), 2, 5, 1, 2),     # "same" with pad 2: shifts that wrap rows are zeroed first
    ((1, 1, 4, 4), 2, 1, 1, 0),     # 1x1 kernel: stride 1, output as large as the input, no padding
    ((1, 2, 3, 4), 2, 1, 1, 1),     # padding wider than the kernel reaches: the border outputs see zeros only
    ((2, 1, 1, 3), 2, 2, 2, 1),     # a kernel row that only ever reads padding (clipped to nothing)
    ((1, 2, 7, 6), 2, (3, 2), 2, 2),
    ((2, 2, 8, 9), 3, (2, 3), 3, 1),  # floor: the last rows/columns fit no window and get gradient 0
    ((1, 1, 5, 6), 1, (4, 1), 1, 3),
    ((1, 2, 3, 3), 2, 1, 3, 2),     # stride 3 with an output as large as the input: not the stride-1 shortcut
    ((2, 1, 2, 2), 2, 1, 2, 1),     # ... stride 2
    # batches of several fixed sample groups (conv.sample_groups: n // 16 groups, at most 4, sizes within 1)
    ((36, 3, 4, 5), 4, 3, 1, 1),    # two groups of 18, channels-last columns, grouped GEMMs
    ((33, 1, 4, 7), 2, 3, 1, 1),    # two groups of 16 and 17, planar columns (W' > KW*C)
    ((70, 2, 3, 3), 3, 2, 1, 0),    # four groups of 17 and 18
    # outputs of at least 256 positions: one GEMM per sample, in the forward and the backward
    ((34, 2, 16, 16), 3, 3, 1, 1),  # "same": two groups of 17 samples
    ((17, 1, 33, 33), 2, 3, 2, 1),  # stride 2, 17x17 outputs: one group of 17, the general col2im
]


@pytest.mark.parametrize(("shape", "F", "kernel", "stride", "pad"), CONV_CASES)
def test_conv2d_matches_plain_loops_on_padding_and_stride_edges(shape, F, kernel, stride, pad):
    rng = np.random.default_rng(11)
    layer = Conv2d(shape[1], F, kernel, stride=stride, padding=pad, rng=rng, dtype=np.float64, rounding="floor")
    layer.params["b"][...] = rng.standard_normal(F)
    for _ in range(2):  # the second call reuses the layer's scratch buffers
        x = rng.standard_normal(shape)
        y = layer.forward(x, train=True)
        dy = rng.standard_normal(y.shape)
        ry, rdx, rdW, rdb = naive_conv_floor(x, layer.params["W"], layer.params["b"], stride, pad, dy)
        assert y.shape == ry.shape
        np.testing.assert_allclose(y, ry, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(layer.backward(dy), rdx, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(layer.grads["W"], rdW, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(layer.grads["b"], rdb, rtol=1e-10, atol=1e-12)
        layer.forward(x, train=True)
        layer.grads["W"][...], layer.grads["b"][...] = 0.0, 0.0
        layer.backward_params(dy)  # a first layer's step: the same parameter gradients, no dx
        np.testing.assert_allclose(layer.grads["W"], rdW, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(layer.grads["b"], rdb, rtol=1e-10, atol=1e-12)


def test_conv2d_one_layer_over_changing_shapes_and_dtypes():
    """A layer's padded-input buffer is reused: a new shape of the same or a smaller size must see a zero border
    again, and an input of another dtype must get its own buffer."""
    rng = np.random.default_rng(12)
    layer = Conv2d(1, 2, 3, padding=1, rng=rng, dtype=np.float64)
    layer.params["b"][...] = rng.standard_normal(2)
    for shape, dtype in [((2, 1, 4, 6), np.float64), ((2, 1, 6, 4), np.float64), ((1, 1, 3, 3), np.float64),
                         ((2, 1, 6, 4), np.float32), ((2, 1, 6, 4), np.float64), ((3, 1, 5, 5), np.float64)]:
        x = (rng.standard_normal(shape) + 3.0).astype(dtype)  # far from 0: a stale border would show
        y = layer.forward(x, train=True)
        dy = rng.standard_normal(y.shape)
        ry, rdx, rdW, _ = naive_conv_floor(x.astype(np.float64), layer.params["W"], layer.params["b"], 1, 1, dy)
        tol = 1e-5 if dtype == np.float32 else 1e-10
        np.testing.assert_allclose(y, ry, rtol=tol, atol=tol)
        np.testing.assert_allclose(layer.backward(dy), rdx, rtol=tol, atol=tol)
        np.testing.assert_allclose(layer.grads["W"], rdW, rtol=tol, atol=tol)


def test_workspace_buffers_grow_keep_their_dtype_and_rezero_on_a_new_shape():
    work = Workspace()
    a = work.get("xp", (2, 3), np.float64, zeroed=True)
    assert a.shape == (2, 3) and a.dtype == np.float64 and not a.any()
    a[...] = 7.0
    same = work.get("xp", (2, 3), np.float64, zeroed=True)
    assert np.shares_memory(a, same)  # reused: no allocation per batch
    other = work.get("xp", (3, 2), np.float64, zeroed=True)
    assert np.shares_memory(a, other) and not other.any()  # same size, new shape: zeroed
    other[...] = 5.0
    small = work.get("xp", (2, 2), np.float64, zeroed=True)
    assert np.shares_memory(a, small) and not small.any()
    big = work.get("xp", (4, 4), np.float64)
    assert big.shape == (4, 4) and not np.shares_memory(a, big)
    f32 = work.get("xp", (2, 2), np.float32)
    assert f32.dtype == np.float32 and f32.flags.c_contiguous
    work.clear()
    assert not work.get("xp", (2, 2), np.float32).any()


def test_conv_forward_defaults_to_stride_1_without_padding():
    rng = np.random.default_rng(13)
    x, W, b = rng.standard_normal((2, 2, 5, 4)), rng.standard_normal((3, 2, 2, 3)), rng.standard_normal(3)
    y, cache = conv_forward(x, W, b)
    dy = rng.standard_normal(y.shape)
    ry, rdx, rdW, rdb = naive_conv_floor(x, W, b, 1, 0, dy)
    assert y.shape == (2, 3, 4, 2)
    np.testing.assert_allclose(y, ry, rtol=1e-10, atol=1e-12)
    dx, dW, db = conv_backward(dy, cache)
    np.testing.assert_allclose(dx, rdx, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dW, rdW, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(db, rdb, rtol=1e-10, atol=1e-12)


def test_conv2d_small_init_default_scale_is_0_01():
    W = Conv2d(16, 32, 5, init="small", rng=np.random.default_rng(14), dtype=np.float64).params["W"]
    assert abs(W.std() / 0.01 - 1) < 0.05  # 12,800 draws of N(0, 0.01**2)


@pytest.mark.parametrize("kernel", [2, 3, 4])
def test_maxpool_tiling_any_kernel_matches_loops_forward_and_backward(kernel):
    """Windows equal to the stride that tile a C-contiguous input: the written-out path is for 2x2 only; 3x3 and
    4x4 tilings must give their own windows' maxima (and route the gradient to them)."""
    rng = np.random.default_rng(kernel)
    x = rng.standard_normal((2, 3, 3 * kernel, 2 * kernel))
    y, cache = maxpool_forward(x, kernel, kernel)
    expected = x.reshape(2, 3, 3, kernel, 2, kernel).max(axis=(3, 5))
    assert y.shape == (2, 3, 3, 2) and np.array_equal(y, expected)
    dy = rng.standard_normal(y.shape)
    dx = maxpool_backward(dy, cache)
    windows = x.reshape(2, 3, 3, kernel, 2, kernel)
    winners = windows == expected[:, :, :, None, :, None]
    assert np.array_equal(dx.reshape(windows.shape), np.where(winners, dy[:, :, :, None, :, None], 0.0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(2, 3, 2, 2), (3, 2, 4, 6), (2, 2, 8, 8), (1, 2, 6, 10), (2, 1, 10, 16)])
def test_maxpool_2x2_paths_match_loops_with_ties_and_each_other(shape, dtype, monkeypatch):
    """2x2 tiling pooling has two paths, by plane width: the gather of window pairs (W <= GATHER_WIDTH) and the
    strided stages (wider). Both must give every window's first maximum in row-major order (as PyTorch) and
    route its dy there alone, bit for bit the same, for either float type, ties everywhere included."""
    rng = np.random.default_rng(sum(shape))
    out = (shape[2] // 2, shape[3] // 2)
    for values in ("normal", "ties", "relu"):
        x = {"normal": rng.standard_normal(shape), "ties": rng.integers(-1, 2, shape).astype(float),
             "relu": np.maximum(rng.integers(-3, 2, shape), 0).astype(float)}[values].astype(dtype)
        dy = rng.standard_normal((shape[0], shape[1], *out)).astype(dtype)
        ry, rdx = clipped_pool(x.astype(float), 2, 2, out, "max", dy.astype(float))
        results = []
        for width in (0, 64):  # every plane on the strided path, then on the gather path
            monkeypatch.setattr(pooling, "GATHER_WIDTH", width)
            y, cache = maxpool_forward(x, 2, 2)
            dx = maxpool_backward(dy, cache)
            assert y.dtype == dx.dtype == dtype and y.shape == ry.shape and dx.shape == x.shape
            np.testing.assert_array_equal(y, ry.astype(dtype))
            np.testing.assert_array_equal(dx, rdx.astype(dtype))
            results.append((y, dx))
        assert all(np.array_equal(a, b) for a, b in zip(*results, strict=True))


def test_maxpool_2x2_takes_the_gather_path_up_to_width_8_only():
    x = np.random.default_rng(3).standard_normal((2, 3, 4, 8)).astype(np.float32)
    _, narrow = maxpool_forward(x, 2, 2)
    _, wide = maxpool_forward(np.concatenate([x, x], axis=3), 2, 2)
    assert narrow[0].shape == (2 * 3 * 2 * 4,) and narrow[1] == x.shape  # the flat index of each window's max
    assert wide[0].shape == (2, 3, 4, 8) and wide[1].shape == (2, 3, 2, 8)  # the two stages' argument arrays


def test_maxpool_gather_indices_are_cached_read_only():
    """The window indices are cached per shape and shared by every batch: no caller may write into them."""
    top, corner = pooling._window_pairs(2, 4, 6)
    assert pooling._window_pairs(2, 4, 6)[0] is top
    np.testing.assert_array_equal(corner, 2 * top)
    for cached in (top, corner):
        with pytest.raises(ValueError, match="read-only"):
            cached[0] = 1
