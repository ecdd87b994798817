"""Tests of mlcli.nn.conv, pooling and BatchNorm2d: output sizes, forward values against loop references, gradients by central differences."""

from __future__ import annotations

import numpy as np
import pytest

from mlcli.nn.conv import Conv2d, conv_backward, conv_forward, conv_output_size
from mlcli.nn.gradcheck import check_layer, rel_error
from mlcli.nn.layers import BatchNorm2d
from mlcli.nn.pooling import AvgPool2d, MaxPool2d


def conv_reference(x: np.ndarray, W: np.ndarray, b: np.ndarray, stride: int, pad: int) -> np.ndarray:
    """Plain nested-loop cross-correlation, the definition written out."""
    N, _, H, Wd = x.shape
    F, _, KH, KW = W.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    OH = (H + 2 * pad - KH) // stride + 1
    OW = (Wd + 2 * pad - KW) // stride + 1
    y = np.zeros((N, F, OH, OW))
    for n in range(N):
        for f in range(F):
            for i in range(OH):
                for j in range(OW):
                    patch = xp[n, :, i * stride:i * stride + KH, j * stride:j * stride + KW]
                    y[n, f, i, j] = np.sum(patch * W[f]) + b[f]
    return y


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


# ---------------------------------------------------------------------------------------------- output size
def test_output_size_formula_values():
    assert conv_output_size(32, 4, 1, 0) == 29
    assert conv_output_size(7, 3, 1, 0) == 5
    assert conv_output_size(7, 3, 2, 0) == 3
    assert conv_output_size(5, 3, 1, 1) == 5
    assert conv_output_size(3, 3, 1, 0) == 1


def test_output_size_rejects_fractional_output():
    with pytest.raises(ValueError, match=r"^conv: \(7 \+ 2\*0 - 3\) / 3 \+ 1 = 2\.33 is not a whole number$"):
        conv_output_size(7, 3, 3, 0)


def test_output_size_rejects_kernel_larger_than_padded_input():
    with pytest.raises(ValueError, match=r"maxpool: \(3 \+ 2\*0 - 5\) / 1 \+ 1 = -1\.00: the kernel \(5\)"):
        conv_output_size(3, 5, 1, 0, what="maxpool")


def test_course_example_shape_and_param_count(rng):
    conv = Conv2d(3, 100, 4, stride=1, padding=0, rng=rng)
    assert conv.output_shape((3, 32, 32)) == (100, 29, 29)
    assert sum(p.size for p in conv.params.values()) == 4900
    assert conv.params["W"].shape == (100, 3, 4, 4) and conv.params["W"].dtype == np.float32
    y = conv.forward(rng.standard_normal((2, 3, 32, 32)).astype(np.float32))
    assert y.shape == (2, 100, 29, 29) and y.dtype == np.float32


def test_conv_output_shape_rejects_wrong_channels_and_bad_stride(rng):
    conv = Conv2d(3, 4, 3, stride=3, rng=rng)
    with pytest.raises(ValueError, match=r"not a whole number"):
        conv.output_shape((3, 7, 7))
    with pytest.raises(ValueError, match=r"conv expects input \(C=3, H, W\), got \(4, 9, 9\)"):
        conv.output_shape((4, 9, 9))
    assert conv.output_shape((3, 9, 6)) == (4, 3, 2)


def test_conv_forward_rejects_fractional_geometry(rng):
    x = rng.standard_normal((1, 1, 7, 7))
    with pytest.raises(ValueError, match="2.33 is not a whole number"):
        conv_forward(x, rng.standard_normal((1, 1, 3, 3)), None, stride=3)


def test_conv_he_init_variance(rng):
    conv = Conv2d(8, 16, 3, rng=rng, init="he", init_mode="fan_in")
    assert conv.params["W"].std() == pytest.approx(np.sqrt(2 / (8 * 9)), rel=0.1)
    assert np.all(conv.params["b"] == 0)
    assert "b" not in Conv2d(8, 16, 3, rng=rng, bias=False).params


# -------------------------------------------------------------------------------------------- conv forward
@pytest.mark.parametrize(
    ("shape", "kernel", "stride", "pad"),
    [((2, 3, 7, 9), (3, 3), 1, 0), ((2, 3, 7, 9), (3, 3), 2, 1), ((1, 2, 6, 5), (2, 3), 1, 1),
     ((2, 2, 8, 8), (4, 2), 2, 0)],
)
def test_conv_forward_matches_loop_reference(rng, shape, kernel, stride, pad):
    x = rng.standard_normal(shape)
    W = rng.standard_normal((4, shape[1], *kernel))
    b = rng.standard_normal(4)
    y, _ = conv_forward(x, W, b, stride, pad)
    ref = conv_reference(x, W, b, stride, pad)
    assert y.shape == ref.shape
    assert y.flags.c_contiguous
    assert rel_error(y, ref) < 1e-12


# ------------------------------------------------------------------------------------------ conv gradients
@pytest.mark.parametrize(
    ("shape", "kernel", "stride", "pad"),
    [((2, 3, 7, 9), 3, 1, 0), ((2, 3, 7, 9), 3, 2, 1), ((1, 2, 5, 7), (2, 3), 1, 1), ((1, 2, 6, 6), (3, 2), 1, 0)],
)
def test_conv_gradients_match_numerical(rng, shape, kernel, stride, pad):
    conv = Conv2d(shape[1], 3, kernel, stride=stride, padding=pad, rng=rng, dtype=np.float64)
    conv.params["b"][:] = rng.standard_normal(3)
    errors = check_layer(conv, rng.standard_normal(shape), rng)
    assert set(errors) == {"x", "W", "b"}
    assert max(errors.values()) < 1e-6, errors
    conv.forward(rng.standard_normal(shape), True)
    conv.backward(np.ones((shape[0], *conv.output_shape(shape[1:]))))
    assert conv.cache is None  # backward consumed the columns


def test_conv_backward_of_sum_counts_window_coverage():
    # d(sum y)/dx counts how many windows cover each input; for 3x3, stride 1, pad 1 on 4x4 that is 4/6/9.
    x = np.zeros((1, 1, 4, 4))
    W = np.ones((1, 1, 3, 3))
    y, cache = conv_forward(x, W, np.zeros(1), 1, 1)
    dx, dW, db = conv_backward(np.ones_like(y), cache)
    expected = np.array([[4, 6, 6, 4], [6, 9, 9, 6], [6, 9, 9, 6], [4, 6, 6, 4]])
    np.testing.assert_array_equal(dx[0, 0], expected)
    assert db[0] == 16 and dW.shape == (1, 1, 3, 3)


# ---------------------------------------------------------------------------------------------------- pooling
def test_maxpool_fast_path_values_and_first_tie():
    x = np.array([[[[1., 3., 2., 2.],
                    [0., 3., 2., 2.],
                    [5., 0., 0., 0.],
                    [0., 0., 0., 0.]]]])
    pool = MaxPool2d(2)
    y = pool.forward(x, True)
    np.testing.assert_array_equal(y[0, 0], [[3, 2], [5, 0]])
    dx = pool.backward(np.array([[[[10., 20.], [30., 40.]]]]))
    expected = np.zeros((4, 4))
    expected[0, 1], expected[0, 2], expected[2, 0], expected[2, 2] = 10, 20, 30, 40
    np.testing.assert_array_equal(dx[0, 0], expected)


def test_maxpool_overlapping_windows_accumulate_gradient():
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 2, 2] = 1.0  # the centre is in all four 3x3 windows of stride 2
    pool = MaxPool2d(3, stride=2)
    y = pool.forward(x, True)
    np.testing.assert_array_equal(y[0, 0], np.ones((2, 2)))
    dx = pool.backward(np.array([[[[1., 2.], [3., 4.]]]]))
    assert dx[0, 0, 2, 2] == 10 and dx.sum() == 10


@pytest.mark.parametrize(("kernel", "stride", "shape"), [(2, None, (2, 3, 4, 6)), (3, 2, (2, 2, 7, 9)),
                                                         (2, 1, (1, 2, 3, 4))])
def test_maxpool_gradients_match_numerical(rng, kernel, stride, shape):
    x = rng.permutation(np.prod(shape)).reshape(shape) / 10.0  # distinct values: no ties, differentiable
    errors = check_layer(MaxPool2d(kernel, stride), x, rng)
    assert errors["x"] < 1e-6, errors


@pytest.mark.parametrize(("kernel", "stride", "shape"), [(2, None, (2, 3, 4, 6)), (3, 2, (2, 2, 7, 9)),
                                                         (3, 1, (1, 1, 5, 4))])
def test_avgpool_forward_and_gradients(rng, kernel, stride, shape):
    x = rng.standard_normal(shape)
    pool = AvgPool2d(kernel, stride)
    y = pool.forward(x, True)
    s = stride or kernel
    ref = np.array([[[[x[n, c, i * s:i * s + kernel, j * s:j * s + kernel].mean()
                       for j in range(y.shape[3])] for i in range(y.shape[2])]
                     for c in range(shape[1])] for n in range(shape[0])])
    assert rel_error(y, ref) < 1e-12
    assert check_layer(pool, x, rng)["x"] < 1e-6


def test_pool_output_shape_and_rejection():
    assert MaxPool2d(2).output_shape((32, 32, 32)) == (32, 16, 16)
    assert AvgPool2d(3, stride=2).output_shape((4, 7, 9)) == (4, 3, 4)
    with pytest.raises(ValueError, match=r"^maxpool: \(7 \+ 2\*0 - 2\) / 2 \+ 1 = 3\.50 is not a whole number$"):
        MaxPool2d(2).output_shape((1, 7, 8))
    with pytest.raises(ValueError, match="avgpool"):
        AvgPool2d(2).forward(np.zeros((1, 1, 5, 4)))


def test_pool_keeps_float32():
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)
    for pool in (MaxPool2d(2), AvgPool2d(2), MaxPool2d(3, 1), AvgPool2d(3, 1)):
        y = pool.forward(x, True)
        assert y.dtype == np.float32 and pool.backward(np.ones_like(y)).dtype == np.float32


# ------------------------------------------------------------------------------------------------- batchnorm
def test_batchnorm2d_train_normalizes_per_channel_and_updates_running_stats(rng):
    x = rng.standard_normal((4, 3, 5, 6)) * np.array([1.0, 2.0, 3.0]).reshape(1, 3, 1, 1) + 5.0
    bn = BatchNorm2d(3, momentum=0.1, dtype=np.float64)
    y = bn.forward(x, True)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, rtol=1e-4)
    np.testing.assert_allclose(bn.buffers["running_mean"], 0.1 * x.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(bn.buffers["running_var"], 0.9 + 0.1 * x.var(axis=(0, 2, 3), ddof=1), rtol=1e-12)


def test_batchnorm2d_gradients_train_mode(rng):
    bn = BatchNorm2d(3, dtype=np.float64)
    bn.params["gamma"][:] = rng.standard_normal(3)
    bn.params["beta"][:] = rng.standard_normal(3)
    errors = check_layer(bn, rng.standard_normal((2, 3, 3, 4)), rng)
    assert set(errors) == {"x", "gamma", "beta"}
    assert max(errors.values()) < 1e-6, errors


def test_batchnorm2d_eval_uses_running_stats(rng):
    bn = BatchNorm2d(2, dtype=np.float64)
    bn.buffers["running_mean"][:] = [1.0, -2.0]
    bn.buffers["running_var"][:] = [4.0, 0.25]
    x = rng.standard_normal((2, 2, 3, 3))
    y = bn.forward(x, False)
    expected = (x - np.array([1.0, -2.0]).reshape(1, 2, 1, 1)) / np.sqrt(
        np.array([4.0, 0.25]).reshape(1, 2, 1, 1) + 1e-5)
    assert rel_error(y, expected) < 1e-12
    assert check_layer(bn, x, rng, train=False)["x"] < 1e-6
    np.testing.assert_array_equal(bn.buffers["running_mean"], [1.0, -2.0])


def test_extra_repr_names_hyperparameters(rng):
    assert Conv2d(3, 8, (3, 5), stride=2, padding=1, rng=rng).extra_repr() == \
        "in=3, out=8, kernel=(3, 5), stride=2, padding=1, bias=True"
    assert MaxPool2d(3, 2).extra_repr() == "kernel=3, stride=2"
    assert BatchNorm2d(4).output_shape((4, 5, 5)) == (4, 5, 5)


# ------------------------------------------------------------------------------ rounding: floor conv, ceil pool
def clipped_pool_reference(x: np.ndarray, kernel: int, stride: int, out: tuple[int, int], how) -> np.ndarray:
    """Loop reference of ceil-mode pooling: `how` (max or mean) over the part of each window inside x."""
    N, C = x.shape[:2]
    return np.array([[[[how(x[n, c, i * stride:i * stride + kernel, j * stride:j * stride + kernel])
                        for j in range(out[1])] for i in range(out[0])] for c in range(C)] for n in range(N)])


def test_output_size_rounding_modes_match_pytorch_formulas():
    assert conv_output_size(224, 7, 2, 1, rounding="floor") == 110  # ZFNet conv1: (224 + 2 - 7) / 2 + 1 = 110.5
    assert conv_output_size(110, 3, 2, 0, rounding="ceil") == 55  # ZFNet pool1: ceil(107 / 2) + 1
    assert conv_output_size(110, 3, 2, 0, rounding="floor") == 54
    assert conv_output_size(9, 3, 2, 0, rounding="ceil") == 4  # whole: every mode agrees
    assert conv_output_size(5, 1, 3, 0, rounding="ceil") == 2  # a 3rd window would start at 6, past the input
    with pytest.raises(ValueError, match=r"^conv: \(224 \+ 2\*1 - 7\) / 2 \+ 1 = 110\.50 is not a whole number$"):
        conv_output_size(224, 7, 2, 1)
    with pytest.raises(ValueError, match="rounding must be one of exact, floor, ceil, got 'round'"):
        conv_output_size(8, 3, 1, 0, rounding="round")


def test_conv_floor_rounding_shape_values_and_unused_pixels_get_zero_gradient(rng):
    conv = Conv2d(3, 96, 7, stride=2, padding=1, rng=rng, rounding="floor")
    assert conv.output_shape((3, 224, 224)) == (96, 110, 110)
    assert conv.extra_repr().endswith("padding=1, bias=True, rounding=floor")
    with pytest.raises(ValueError, match="not a whole number"):
        Conv2d(3, 96, 7, stride=2, padding=1, rng=rng).output_shape((3, 224, 224))
    with pytest.raises(ValueError, match="rounding must be 'exact' or 'floor', got 'ceil'"):
        Conv2d(3, 4, 3, rng=rng, rounding="ceil")
    x = rng.standard_normal((2, 2, 6, 7))
    W, b = rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)
    y, cache = conv_forward(x, W, b, 2, 0, rounding="floor")  # (6 - 3) / 2 + 1 = 2.5 -> 2 rows, 3 cols
    assert y.shape == (2, 3, 2, 3)
    assert rel_error(y, conv_reference(x, W, b, 2, 0)) < 1e-12
    dx, _, _ = conv_backward(np.ones_like(y), cache)
    assert dx.shape == x.shape
    assert np.all(dx[:, :, 5, :] == 0) and np.all(dx[:, :, :5, :] != 0)  # row 5 is in no window


@pytest.mark.parametrize(("shape", "kernel", "stride", "pad"),
                         [((2, 2, 8, 7), 3, 2, 1), ((1, 2, 7, 6), (3, 2), 3, 0), ((1, 1, 9, 9), 4, 2, 2)])
def test_conv_floor_gradients_match_numerical(rng, shape, kernel, stride, pad):
    conv = Conv2d(shape[1], 3, kernel, stride=stride, padding=pad, rng=rng, dtype=np.float64, rounding="floor")
    conv.params["b"][:] = rng.standard_normal(3)
    errors = check_layer(conv, rng.standard_normal(shape), rng)
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize(("shape", "kernel", "pad"), [((2, 3, 6, 5), 3, 1), ((1, 2, 6, 7), 5, 2)])
def test_conv_same_padding_gradients_match_numerical(rng, shape, kernel, pad):
    # stride 1 with H' = H takes the flattened-plane col2im
    conv = Conv2d(shape[1], 4, kernel, padding=pad, rng=rng, dtype=np.float64)
    conv.params["b"][:] = rng.standard_normal(4)
    errors = check_layer(conv, rng.standard_normal(shape), rng)
    assert max(errors.values()) < 1e-6, errors


def test_conv_reuses_buffers_without_aliasing_results(rng):
    conv = Conv2d(2, 3, 3, padding=1, rng=rng, dtype=np.float64)
    W, b = conv.params["W"], conv.params["b"]
    a, c = rng.standard_normal((4, 2, 5, 5)), rng.standard_normal((2, 2, 5, 5))
    ya = conv.forward(a, True)
    dxa = conv.backward(np.ones_like(ya))
    ya_copy, dxa_copy = ya.copy(), dxa.copy()
    yc = conv.forward(c, True)  # smaller batch: the same buffers, a different shape
    dxc = conv.backward(np.ones_like(yc))
    np.testing.assert_array_equal(ya, ya_copy)
    np.testing.assert_array_equal(dxa, dxa_copy)
    assert rel_error(yc, conv_reference(c, W, b, 1, 1)) < 1e-12
    _, cache = conv_forward(c, W, b, 1, 1)
    assert rel_error(dxc, conv_backward(np.ones_like(yc), cache)[0]) < 1e-12


def test_maxpool_ceil_mode_values_shape_and_gradient(rng):
    x = rng.permutation(2 * 3 * 7 * 6).reshape(2, 3, 7, 6) / 10.0
    pool = MaxPool2d(3, 2, ceil_mode=True)
    assert pool.output_shape((3, 7, 6)) == (3, 3, 3)  # (7 - 3) / 2 + 1 = 3; ceil(3 / 2) + 1 = 3
    assert MaxPool2d(3, 2, ceil_mode=True).output_shape((96, 110, 110)) == (96, 55, 55)
    assert pool.extra_repr() == "kernel=3, stride=2, ceil_mode=True"
    y = pool.forward(x, True)
    np.testing.assert_array_equal(y, clipped_pool_reference(x, 3, 2, (3, 3), np.max))
    assert check_layer(pool, x, rng)["x"] < 1e-6
    tiled = MaxPool2d(2, ceil_mode=True)  # 5 -> 3 with a last window of one row/column
    x5 = rng.permutation(25).reshape(1, 1, 5, 5) - 30.0  # all negative: a -inf pad must not win, 0 would
    y5 = tiled.forward(x5, True)
    np.testing.assert_array_equal(y5, clipped_pool_reference(x5, 2, 2, (3, 3), np.max))
    assert y5[0, 0, 2, 2] == x5[0, 0, 4, 4]
    assert check_layer(tiled, x5.astype(float), rng)["x"] < 1e-6


def test_avgpool_ceil_mode_divides_by_cells_inside(rng):
    x = rng.standard_normal((2, 2, 5, 7))
    pool = AvgPool2d(2, ceil_mode=True)
    y = pool.forward(x, True)
    assert y.shape == (2, 2, 3, 4)
    assert rel_error(y, clipped_pool_reference(x, 2, 2, (3, 4), np.mean)) < 1e-12
    assert y[0, 0, 2, 3] == x[0, 0, 4, 6]  # a corner window of one cell is that cell
    assert check_layer(pool, x, rng)["x"] < 1e-6
    overlap = AvgPool2d(3, 2, ceil_mode=True)
    x2 = rng.standard_normal((1, 2, 6, 8))
    assert rel_error(overlap.forward(x2), clipped_pool_reference(x2, 3, 2, (3, 4), np.mean)) < 1e-12
    assert check_layer(overlap, x2, rng)["x"] < 1e-6
    with pytest.raises(ValueError, match="ceil_mode must be True or False, got 'yes'"):
        AvgPool2d(2, ceil_mode="yes")
