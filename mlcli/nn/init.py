"""Weight initializers: the starting values of Linear and conv weights.

`init_weight(shape, scheme, fan_in=..., fan_out=..., rng=...)` draws a weight array from one of `INIT_SCHEMES`:

- `zeros`:  all zero (only sensible for tests and for biases).
- `small`:  `N(0, scale**2)`, the course's `0.01 * randn`.
- `xavier`: `N(0, var)` with `var = 1/fan_in`, `1/fan_out` or `2/(fan_in + fan_out)` for mode
  `fan_in`, `fan_out`, `avg` (Glorot & Bengio, 2010).
- `he`:     `N(0, var)` with `var = 2/fan_in`, `2/fan_out` or `4/(fan_in + fan_out)` for the same modes
  (He et al., 2015): twice Xavier's variance, making up for ReLU zeroing half its inputs.

`fans(shape)` gives `(fan_in, fan_out)` of a Linear weight `(out, in)` or a conv weight `(C_out, C_in, KH, KW)`.
Biases always start at zero; the layers create them, not this module.
"""

from __future__ import annotations

import math

import numpy as np

INIT_SCHEMES = ("zeros", "small", "xavier", "he")
XAVIER_MODES = ("fan_in", "fan_out", "avg")


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """Return `(fan_in, fan_out)` of a weight of shape `(out, in)` or `(C_out, C_in, KH, KW)`.

    The receptive field `KH * KW` (the product of all axes after the first two) multiplies both fans:
    `fan_in = C_in * KH * KW`, `fan_out = C_out * KH * KW`.
    """
    if len(shape) < 2:
        raise ValueError(f"fans: weight shape must have at least 2 axes (out, in, ...); got {tuple(shape)}")
    receptive = math.prod(shape[2:])
    return int(shape[1]) * receptive, int(shape[0]) * receptive


def _fan_variance(fan_in: int, fan_out: int, mode: str) -> float:
    """`1/fan` for the chosen mode; `avg` uses the mean fan `(fan_in + fan_out) / 2`."""
    fan = {"fan_in": fan_in, "fan_out": fan_out, "avg": (fan_in + fan_out) / 2}[mode]
    return 1.0 / fan


def init_weight(
    shape: tuple[int, ...],
    scheme: str,
    *,
    fan_in: int,
    fan_out: int,
    rng: np.random.Generator,
    mode: str = "avg",
    scale: float = 0.01,
    dtype: np.dtype | type = np.float32,
) -> np.ndarray:
    """Draw a weight array of `shape` and `dtype` by `scheme` (one of `INIT_SCHEMES`).

    zeros: 0.  small: `N(0, scale**2)`.  xavier: `N(0, 1/fan)`.  he: `N(0, 2/fan)`, where `fan` is `fan_in`,
    `fan_out` or `(fan_in + fan_out)/2` by `mode` (one of `XAVIER_MODES`). Raises ValueError for an unknown
    scheme or mode, or a fan that is not positive.
    """
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"init scheme must be one of {', '.join(INIT_SCHEMES)}; got {scheme!r}")
    if mode not in XAVIER_MODES:
        raise ValueError(f"init mode must be one of {', '.join(XAVIER_MODES)}; got {mode!r}")
    if fan_in <= 0 or fan_out <= 0:
        raise ValueError(f"init fans must be positive; got fan_in={fan_in}, fan_out={fan_out}")
    if scheme == "zeros":
        return np.zeros(shape, dtype=dtype)
    if scheme == "small":
        std = scale
    else:
        gain = 2.0 if scheme == "he" else 1.0
        std = math.sqrt(gain * _fan_variance(fan_in, fan_out, mode))
    w = rng.standard_normal(shape, dtype=dtype)
    w *= std
    return w
