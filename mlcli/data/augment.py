"""Per-batch image augmentation: random crop with zero padding, horizontal flip, Gaussian noise.

`Augmenter` is built once from the config's augmentation section and called on every training batch with the
augmentation generator derived from the run's seed (never the global one), so the same seed gives the same
augmented batches. A batch is handled as one array: the crop gathers every sample's window from one padded
array with fancy indexing over a strided view, the flip is a boolean mask over samples; there is no per-sample
Python loop. The input batch is never modified; the result is a new array of the same shape and dtype.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mlcli.errors import ConfigError


class Augmenter:
    """Random per-sample transforms of an image batch `x: (N, C, H, W)` (float), applied in this order:

    1. crop (`crop_padding = p > 0`): pad H and W with p zeros on each side, then take for each sample the
       (H, W) window at offsets `(dy, dx)` drawn uniformly from `{0, ..., 2p}`, i.e.
       `out[n] = pad(x)[n, :, dy[n]:dy[n] + H, dx[n]:dx[n] + W]` (offset p is the identity);
    2. horizontal flip (`hflip`): each sample independently with probability 1/2,
       `out[n] = out[n, :, :, ::-1]`;
    3. noise (`noise_std = s > 0`): `out += s * z` with `z ~ N(0, 1)` elementwise.

    The random numbers are drawn in that order from the generator given to `__call__`.
    """

    def __init__(self, hflip: bool = False, crop_padding: int = 0, noise_std: float = 0.0) -> None:
        is_int = isinstance(crop_padding, (int, np.integer)) and not isinstance(crop_padding, bool)
        if not is_int or crop_padding < 0:
            raise ConfigError(f"augment.crop_padding must be an int >= 0, got {crop_padding!r}")
        if not np.isfinite(noise_std) or noise_std < 0:
            raise ConfigError(f"augment.noise_std must be a finite number >= 0, got {noise_std!r}")
        self.hflip = bool(hflip)
        self.crop_padding = int(crop_padding)
        self.noise_std = float(noise_std)

    @property
    def enabled(self) -> bool:
        """Whether any transform is on; when not, `__call__` returns an unchanged copy."""
        return self.hflip or self.crop_padding > 0 or self.noise_std > 0

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Return the augmented copy of `x` (float32 or float64), same shape and dtype: `(N, C, H, W)` images,
        or any `(N, ...)` batch when only noise is on (tabular data)."""
        images_only = self.hflip or self.crop_padding > 0
        if x.dtype.kind != "f" or (x.ndim != 4 if images_only else x.ndim < 2):
            want = "(N, C, H, W) images for flips and crops" if images_only else "(N, ...) samples"
            raise ValueError(f"Augmenter expects a float batch of {want}, got {x.dtype} {x.shape}")
        out = self._crop(x, rng) if self.crop_padding else x.copy()
        if self.hflip:
            flip = rng.random(x.shape[0]) < 0.5  # (N,)
            out[flip] = out[flip, :, :, ::-1]
        if self.noise_std:
            dtype = np.float64 if out.dtype == np.float64 else np.float32  # the dtypes the generator draws
            noise = rng.standard_normal(out.shape, dtype=dtype)
            out += (self.noise_std * noise).astype(out.dtype, copy=False)
        return out

    def _crop(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n, _, h, w = x.shape
        p = self.crop_padding
        padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))  # (N, C, H+2p, W+2p), zeros around
        dy, dx = rng.integers(0, 2 * p + 1, size=(2, n))
        windows = sliding_window_view(padded, (h, w), axis=(2, 3))  # (N, C, 2p+1, 2p+1, H, W), a view
        return windows[np.arange(n), :, dy, dx]  # (N, C, H, W), a new array
