"""Summarize the network a config describes, for `mlcli summary`, without loading data when it can be avoided.

    rows, totals = summarize_config(cfg)                              # shapes from the dataset
    rows, totals = summarize_config(cfg, input_shape=(3, 227, 227), n_classes=1000)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlcli.errors import ConfigError
from mlcli.models.context import BuildContext
from mlcli.models.registry import build_model, n_outputs
from mlcli.models.summary import summarize

# sample shape and classes of the datasets whose shape is known without reading them
KNOWN_SHAPES = {"iris": ((4,), 3), "wine": ((13,), 3), "breast_cancer": ((30,), 2), "diabetes": ((10,), 1),
                "mnist": ((1, 28, 28), 10), "fashion_mnist": ((1, 28, 28), 10), "cifar10": ((3, 32, 32), 10)}


def data_shape(cfg, base_dir: Path | None) -> tuple[tuple[int, ...], int, int]:
    """(sample shape, classes, regression targets) of the config's data."""
    d = cfg.data
    if d.type == "digits":
        return ((1, 8, 8) if d.as_images else (64,)), 10, 1
    if d.type in KNOWN_SHAPES:
        shape, classes = KNOWN_SHAPES[d.type]
        return shape, classes, 1
    if d.type in ("spirals", "blobs", "xor", "checkerboard"):
        return (getattr(d, "features", 2),), getattr(d, "classes", 2), 1
    if d.type == "linear_regression":
        return (d.features,), 0, d.outputs
    from mlcli.data.pipeline import load_dataset
    from mlcli.seeding import generators

    ds = load_dataset(d, generators(cfg.seed).data, base_dir)
    return ds.input_shape, ds.n_classes or 0, 1 if ds.y.ndim == 1 else int(ds.y.shape[1])


def summarize_config(cfg, *, input_shape=None, n_classes=None, base_dir: Path | None = None):
    if cfg.is_fitted_in_closed_form():
        raise ConfigError(f"model.type {cfg.model.type} is not a network; summary describes networks")
    shape, classes, targets = data_shape(cfg, base_dir) if input_shape is None else (input_shape, 0, 1)
    if n_classes is not None:
        classes = n_classes
    elif input_shape is not None:
        classes = data_shape(cfg, base_dir)[1] if cfg.task() == "classification" else 0
    n_feat = int(np.prod(shape))
    ctx = BuildContext(input_shape=tuple(shape), n_outputs=n_outputs(cfg, classes, targets, n_feat),
                       dtype=np.float32, init_rng=np.random.default_rng(0), dropout_rng=np.random.default_rng(0))
    model = build_model(cfg, ctx)
    rows, totals = summarize(model.net, tuple(shape))
    totals["input_shape"] = tuple(shape)
    return rows, totals
