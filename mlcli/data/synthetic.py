"""Seeded synthetic datasets: small 2-D problems for classification demos and a linear regression problem.

Each generator is `make_<name>(n, *, rng, ...) -> Dataset` and draws everything (points, noise, centers, true
weights) from the `numpy.random.Generator` it is given, so the same seed gives the same dataset bit for bit.
Classification generators split the `n` samples as evenly as possible over the classes (the first `n % C`
classes get one more) and return them in a random order. `SYNTHETIC` maps the name used in configs
(`data: {type: spirals}`) to its generator; `mlcli.data.registry` reads its loaders from it, and the facts
(task, description) are the rows of `mlcli.config.data_schema.DATASET_FACTS`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mlcli.data.dataset import Dataset


def _check_n(n: int, minimum: int, what: str) -> None:
    if n < minimum:
        raise ValueError(f"{what} needs n >= {minimum} samples; got {n}")


def _balanced_labels(n: int, classes: int) -> np.ndarray:
    """(n,) int64 labels 0..classes-1 in blocks, sizes differing by at most one: [0, 0, 1, 1, 2]."""
    if classes < 2:
        raise ValueError(f"a classification dataset needs classes >= 2; got {classes}")
    counts = np.full(classes, n // classes)
    counts[: n % classes] += 1
    return np.repeat(np.arange(classes, dtype=np.int64), counts)


def _classification(
    name: str, x: np.ndarray, y: np.ndarray, n_classes: int, rng: np.random.Generator
) -> Dataset:
    order = rng.permutation(x.shape[0])
    return Dataset(
        x=x[order],
        y=y[order],
        task="classification",
        class_names=[str(c) for c in range(n_classes)],
        source=f"synthetic:{name}",
        feature_names=[f"x{j}" for j in range(x.shape[1])],
    )


def make_spirals(
    n: int, *, rng: np.random.Generator, classes: int = 3, noise: float = 0.2, turns: float = 1.0
) -> Dataset:
    """Interleaved spiral arms, one per class (the cs231n toy problem).

    Sample i of class k, at position t in [0, 1] along its arm, is at radius r = t and angle
    theta = 2*pi*(k / classes + turns * t) + noise * eps, eps ~ N(0, 1): x = r * (sin theta, cos theta).
    Returns x: (n, 2) float64, y: (n,) int64 in [0, classes).
    """
    _check_n(n, classes, "spirals")
    y = _balanced_labels(n, classes)
    counts = np.bincount(y, minlength=classes)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position = np.arange(n) - starts[y]  # index of each sample along its arm
    t = position / np.maximum(counts[y] - 1, 1)
    theta = 2 * np.pi * (y / classes + turns * t) + noise * rng.standard_normal(n)
    x = t[:, None] * np.stack([np.sin(theta), np.cos(theta)], axis=1)  # (n, 2)
    return _classification("spirals", x, y, classes, rng)


def make_blobs(
    n: int, *, rng: np.random.Generator, classes: int = 3, features: int = 2, std: float = 1.0
) -> Dataset:
    """Isotropic Gaussian blobs: class k is N(c_k, std^2 I) with centers c_k ~ Uniform[-10, 10]^features.

    Returns x: (n, features) float64, y: (n,) int64 in [0, classes).
    """
    _check_n(n, classes, "blobs")
    centers = rng.uniform(-10.0, 10.0, size=(classes, features))
    y = _balanced_labels(n, classes)
    x = centers[y] + std * rng.standard_normal((n, features))
    return _classification("blobs", x, y, classes, rng)


def make_xor(n: int, *, rng: np.random.Generator, noise: float = 0.1) -> Dataset:
    """The XOR problem: u ~ Uniform[-1, 1]^2, y = (u0 > 0) xor (u1 > 0), x = u + noise * N(0, I).

    The label depends on the sign of u0 * u1, so no line separates the classes. Returns x: (n, 2) float64,
    y: (n,) int64 in {0, 1}.
    """
    _check_n(n, 2, "xor")
    u = rng.uniform(-1.0, 1.0, size=(n, 2))
    y = ((u[:, 0] > 0) ^ (u[:, 1] > 0)).astype(np.int64)
    x = u + noise * rng.standard_normal((n, 2))
    return _classification("xor", x, y, 2, rng)


def make_checkerboard(n: int, *, rng: np.random.Generator, tiles: int = 4) -> Dataset:
    """A `tiles` x `tiles` checkerboard on [-1, 1]^2: y = (floor(i) + floor(j)) mod 2 for the tile (i, j).

    Points are uniform on the square; neighbouring tiles alternate class, so no line separates them.
    Returns x: (n, 2) float64, y: (n,) int64 in {0, 1}.
    """
    _check_n(n, 2, "checkerboard")
    if tiles < 2:
        raise ValueError(f"checkerboard needs tiles >= 2; got {tiles}")
    x = rng.uniform(-1.0, 1.0, size=(n, 2))
    tile = np.minimum(np.floor((x + 1.0) / 2.0 * tiles), tiles - 1).astype(np.int64)  # (n, 2)
    y = (tile.sum(axis=1) % 2).astype(np.int64)
    return _classification("checkerboard", x, y, 2, rng)


def make_linear_regression(
    n: int, *, rng: np.random.Generator, features: int = 5, outputs: int = 1, noise: float = 0.1
) -> Dataset:
    """A linear model with Gaussian noise: y = x W + b + noise * eps.

    x ~ N(0, I): (n, features); true weights W ~ N(0, 1): (features, outputs) and bias b ~ N(0, 1): (outputs,)
    drawn from `rng`; eps ~ N(0, I). Returns y: (n,) float64 for outputs = 1, else (n, outputs).
    """
    _check_n(n, 1, "linear_regression")
    weights = rng.standard_normal((features, outputs))
    bias = rng.standard_normal(outputs)
    x = rng.standard_normal((n, features))
    y = x @ weights + bias + noise * rng.standard_normal((n, outputs))  # (n, outputs)
    return Dataset(
        x=x,
        y=y[:, 0] if outputs == 1 else y,
        task="regression",
        source="synthetic:linear_regression",
        feature_names=[f"x{j}" for j in range(features)],
    )


SYNTHETIC: dict[str, Callable[..., Dataset]] = {
    "spirals": make_spirals,
    "blobs": make_blobs,
    "xor": make_xor,
    "checkerboard": make_checkerboard,
    "linear_regression": make_linear_regression,
}
