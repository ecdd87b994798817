"""Tests for the per-batch image augmentation (crop with zero padding, horizontal flip, noise)."""

from __future__ import annotations

import numpy as np
import pytest

from mlcli.data.augment import Augmenter
from mlcli.errors import ConfigError


def batch(n: int = 64, c: int = 3, h: int = 6, w: int = 5, dtype=np.float32) -> np.ndarray:
    # distinct positive values, so a zero in the output can only come from padding
    return (np.arange(n * c * h * w, dtype=np.float64) + 1).reshape(n, c, h, w).astype(dtype)


def test_all_off_is_identity_copy_and_not_enabled():
    aug = Augmenter()
    x = batch()
    out = aug(x, np.random.default_rng(0))
    assert not aug.enabled
    np.testing.assert_array_equal(out, x)
    assert out is not x and not np.shares_memory(out, x)


@pytest.mark.parametrize("kwargs", [{"hflip": True}, {"crop_padding": 2}, {"noise_std": 0.1}])
def test_enabled_when_any_transform_is_on(kwargs):
    assert Augmenter(**kwargs).enabled


def test_flip_mirrors_exactly_the_selected_samples_about_half():
    x = batch(n=400, h=3, w=4)
    out = Augmenter(hflip=True)(x, np.random.default_rng(1))
    flipped = np.all(out == x[:, :, :, ::-1], axis=(1, 2, 3))
    unchanged = np.all(out == x, axis=(1, 2, 3))
    assert np.all(flipped ^ unchanged)  # every sample is either mirrored or untouched, never both / neither
    # the mask is the generator's first draw: rng.random(N) < 0.5
    expected_mask = np.random.default_rng(1).random(400) < 0.5
    np.testing.assert_array_equal(flipped, expected_mask)
    assert 160 < flipped.sum() < 240


def test_crop_equals_shifted_window_of_zero_padded_input():
    p = 2
    x = batch(n=50)
    out = Augmenter(crop_padding=p)(x, np.random.default_rng(2))
    dy, dx = np.random.default_rng(2).integers(0, 2 * p + 1, size=(2, 50))
    padded = np.zeros((50, 3, 6 + 2 * p, 5 + 2 * p), np.float32)
    padded[:, :, p:-p, p:-p] = x
    assert out.shape == x.shape and out.dtype == x.dtype
    for n in (0, 1, 17, 49):
        np.testing.assert_array_equal(out[n], padded[n, :, dy[n]:dy[n] + 6, dx[n]:dx[n] + 5])
    # offsets cover the whole range and the centre offset is the identity
    assert set(dy.tolist()) == set(range(2 * p + 1))
    centre = np.flatnonzero((dy == p) & (dx == p))
    np.testing.assert_array_equal(out[centre], x[centre])
    # shifted samples gained zero borders from the padding
    assert np.any(out[(dy != p) | (dx != p)] == 0)


def test_noise_has_requested_std_and_zero_mean():
    x = np.zeros((40, 3, 16, 16), np.float64)
    out = Augmenter(noise_std=0.5)(x, np.random.default_rng(3))
    assert out.dtype == np.float64
    assert abs(out.std() - 0.5) < 0.01 and abs(out.mean()) < 0.01


def test_seeded_generator_is_deterministic_and_input_untouched():
    aug = Augmenter(hflip=True, crop_padding=3, noise_std=0.2)
    x = batch(n=20)
    before = x.copy()
    a = aug(x, np.random.default_rng(7))
    b = aug(x, np.random.default_rng(7))
    c = aug(x, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(x, before)
    assert a.dtype == np.float32 and a.shape == x.shape


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"crop_padding": -1}, r"augment\.crop_padding must be an int >= 0, got -1"),
        ({"crop_padding": 1.5}, r"augment\.crop_padding must be an int >= 0, got 1\.5"),
        ({"noise_std": -0.1}, r"augment\.noise_std must be a finite number >= 0, got -0\.1"),
        ({"noise_std": float("nan")}, r"augment\.noise_std must be a finite number >= 0, got nan"),
    ],
)
def test_invalid_settings_raise_config_error(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Augmenter(**kwargs)


def test_non_float_or_non_nchw_input_is_rejected():
    aug = Augmenter(hflip=True)
    with pytest.raises(ValueError, match=r"float batch of \(N, C, H, W\) images for flips and crops, got uint8"):
        aug(np.zeros((2, 1, 4, 4), np.uint8), np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"got float32 \(2, 16\)"):
        aug(np.zeros((2, 16), np.float32), np.random.default_rng(0))


def test_noise_alone_augments_tabular_batches():
    x = np.zeros((500, 16), np.float32)
    out = Augmenter(noise_std=0.5)(x, np.random.default_rng(0))
    assert out.shape == x.shape and out.dtype == np.float32 and not x.any()
    assert abs(out.std() - 0.5) < 0.02
