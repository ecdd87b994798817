"""Conv2d and the pooling layers against naive float64 loops (forward and backward), over strides, paddings,
rectangular kernels and repeated calls with other shapes (the layers reuse scratch buffers), and their checks."""

from __future__ import annotations

import numpy as np
import pytest

from mlcli.nn.conv import Conv2d
from mlcli.nn.pooling import AvgPool2d, MaxPool2d


def naive_conv(x, W, b, stride, pad, dy):
    N, _, H, Wd = x.shape
    F, _, KH, KW = W.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    OH, OW = (H + 2 * pad - KH) // stride + 1, (Wd + 2 * pad - KW) // stride + 1
    y = np.zeros((N, F, OH, OW))
    dxp, dW = np.zeros_like(xp), np.zeros_like(W)
    for i in range(OH):
        for j in range(OW):
            patch = xp[:, :, i * stride:i * stride + KH, j * stride:j * stride + KW]
            y[:, :, i, j] = np.einsum("nchw,fchw->nf", patch, W) + b
            dW += np.einsum("nf,nchw->fchw", dy[:, :, i, j], patch)
            dxp[:, :, i * stride:i * stride + KH, j * stride:j * stride + KW] += np.einsum("nf,fchw->nchw",
                                                                                        dy[:, :, i, j], W)
    dx = dxp[:, :, pad:pad + H, pad:pad + Wd]
    return y, dx, dW, dy.sum(axis=(0, 2, 3))


CASES = [  # (N, C, H, W), F, kernel, stride, pad
    ((2, 3, 5, 5), 4, 3, 1, 0),
    ((2, 3, 5, 5), 4, 3, 1, 1),
    ((1, 2, 7, 7), 3, 3, 2, 1),
    ((2, 1, 6, 8), 2, (3, 2), 2, 2),
    ((2, 2, 4, 4), 3, 1, 1, 0),
    ((1, 2, 5, 7), 2, (1, 3), 1, 2),
]


@pytest.mark.parametrize(("shape", "F", "kernel", "stride", "pad"), CASES)
def test_conv2d_matches_the_naive_loops(shape, F, kernel, stride, pad):
    rng = np.random.default_rng(0)
    layer = Conv2d(shape[1], F, kernel, stride=stride, padding=pad, rng=rng, dtype=np.float64, rounding="floor")
    layer.params["b"][...] = rng.standard_normal(F)
    for _ in range(2):  # a second call with the same shapes reuses the layer's buffers
        x = rng.standard_normal(shape)
        y = layer.forward(x, train=True)
        dy = rng.standard_normal(y.shape)
        dx = layer.backward(dy)
        ry, rdx, rdW, rdb = naive_conv(x, layer.params["W"], layer.params["b"], stride, pad, dy)
        np.testing.assert_allclose(y, ry, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dx, rdx, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(layer.grads["W"], rdW, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(layer.grads["b"], rdb, rtol=1e-10, atol=1e-12)


def test_conv2d_buffers_follow_a_change_of_batch_shape():
    rng = np.random.default_rng(1)
    layer = Conv2d(2, 3, 3, padding=1, rng=rng, dtype=np.float64)
    for shape in [(4, 2, 6, 6), (2, 2, 6, 6), (3, 2, 4, 4), (4, 2, 6, 6)]:
        x = rng.standard_normal(shape)
        y = layer.forward(x, train=True)
        dy = rng.standard_normal(y.shape)
        dx = layer.backward(dy)
        ry, rdx, rdW, _ = naive_conv(x, layer.params["W"], layer.params["b"], 1, 1, dy)
        np.testing.assert_allclose(y, ry, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dx, rdx, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(layer.grads["W"], rdW, rtol=1e-10, atol=1e-12)


def test_conv2d_without_bias():
    rng = np.random.default_rng(2)
    layer = Conv2d(1, 2, 2, rng=rng, bias=False, dtype=np.float64)
    assert "b" not in layer.params
    x = rng.standard_normal((1, 1, 3, 3))
    y = layer.forward(x, train=True)
    layer.backward(np.ones_like(y))
    ry, *_ = naive_conv(x, layer.params["W"], np.zeros(2), 1, 0, np.ones_like(y))
    np.testing.assert_allclose(y, ry, rtol=1e-12)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"kernel_size": 0}, "kernel_size must be a positive int or a pair"),
    ({"kernel_size": (3,)}, "kernel_size must be a positive int or a pair"),
    ({"kernel_size": (3, 0)}, "kernel_size must be a positive int or a pair"),
    ({"out_channels": 0}, "out_channels must be an int >= 1"),
    ({"stride": 0}, "stride must be an int >= 1"),
    ({"padding": -1}, "padding must be an int >= 0"),
    ({"padding": 1.0}, "padding must be an int >= 0"),
])
def test_conv2d_refuses_bad_sizes(kwargs, message):
    args = {"in_channels": 2, "out_channels": 3, "kernel_size": 3, **kwargs}
    with pytest.raises(ValueError, match=message):
        Conv2d(args.pop("in_channels"), args.pop("out_channels"), args.pop("kernel_size"), rng=np.random.default_rng(),
               **args)
    assert Conv2d(1, 1, (1, 1), rng=np.random.default_rng()).kernel_size == (1, 1)


def naive_pool(x, k, s, op, dy):
    N, C = x.shape[:2]
    OH, OW = dy.shape[2:]
    y = np.zeros(dy.shape)
    dx = np.zeros_like(x)
    for i in range(OH):
        for j in range(OW):
            win = x[:, :, i * s:i * s + k, j * s:j * s + k]
            if op == "max":
                y[:, :, i, j] = win.max(axis=(2, 3))
                flat = win.reshape(N, C, -1)
                arg = flat.argmax(axis=2)
                for n in range(N):
                    for c in range(C):
                        u, v = divmod(int(arg[n, c]), win.shape[3])
                        dx[n, c, i * s + u, j * s + v] += dy[n, c, i, j]
            else:
                y[:, :, i, j] = win.sum(axis=(2, 3)) / (k * k)
                dx[:, :, i * s:i * s + k, j * s:j * s + k] += dy[:, :, i, j][:, :, None, None] / (k * k)
    return y, dx


@pytest.mark.parametrize("cls", [MaxPool2d, AvgPool2d])
@pytest.mark.parametrize(("shape", "k", "s"), [((2, 3, 4, 4), 2, None), ((1, 2, 7, 7), 3, 2), ((2, 1, 5, 5), 3, 1),
                                               ((1, 1, 6, 6), 3, 3)])
def test_pooling_matches_the_naive_loops(cls, shape, k, s):
    rng = np.random.default_rng(3)
    layer = cls(k, s)
    stride = k if s is None else s
    for _ in range(2):
        x = rng.standard_normal(shape)  # continuous values: no ties
        y = layer.forward(x, train=True)
        dy = rng.standard_normal(y.shape)
        dx = layer.backward(dy)
        ry, rdx = naive_pool(x, k, stride, "max" if cls is MaxPool2d else "avg", dy)
        np.testing.assert_allclose(y, ry, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(dx, rdx, rtol=1e-12, atol=1e-12)


def test_pool_kernel_size_limit_and_shape_check():
    assert MaxPool2d(255).kernel_size == 255
    with pytest.raises(ValueError, match="kernel_size must be <= 255"):
        MaxPool2d(256)
    with pytest.raises(ValueError, match="kernel_size must be an int >= 1"):
        AvgPool2d(0)
    assert MaxPool2d(1).kernel_size == 1
    with pytest.raises(ValueError, match="expects input \\(C, H, W\\)"):
        MaxPool2d(2).output_shape((4, 4))
