"""Weight initialization edge cases: the fans it refuses and accepts, the default scale of `small`."""

from __future__ import annotations

import numpy as np
import pytest

from mlcli.nn.init import init_weight


@pytest.mark.parametrize(("fan_in", "fan_out"), [(0, 3), (3, 0), (-1, 3), (3, -2), (0, 0)])
def test_a_fan_that_is_not_positive_is_refused(fan_in, fan_out):
    with pytest.raises(ValueError, match="init fans must be positive"):
        init_weight((3, 3), "xavier", fan_in=fan_in, fan_out=fan_out, rng=np.random.default_rng(0))


def test_fans_of_one_are_accepted():
    w = init_weight((1, 1), "he", fan_in=1, fan_out=1, rng=np.random.default_rng(0), dtype=np.float64)
    assert w.shape == (1, 1) and np.isfinite(w).all()


def test_small_defaults_to_a_standard_deviation_of_0_01():
    rng = np.random.default_rng(0)
    w = init_weight((400, 500), "small", fan_in=500, fan_out=400, rng=rng, dtype=np.float64)
    expected = np.random.default_rng(0).standard_normal((400, 500)) * 0.01
    np.testing.assert_allclose(w, expected, rtol=1e-15)
