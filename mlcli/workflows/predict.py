"""Predict with a checkpoint on new inputs, standardized exactly as in training.

    rows = predict_file(Path("runs/r/checkpoints/best.npz"), Path("new.npz"))
    -> [{"index": 0, "prediction": "setosa"}, ...]   (class names for classifiers, numbers for regression)

Inputs: a `.npz` with an array `x` (N, ...) (a `y` in it is ignored) or a `.npy` array (N, ...), each sample of the
shape the model was trained on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlcli.errors import DataError
from mlcli.runs.snapshot import load_model, prepare_inputs


def read_inputs(path: Path) -> np.ndarray:
    """x: (N, ...) float64 from a .npz (array `x`) or .npy file, read without pickle."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        if path.suffix == ".npy":
            x = np.load(path, allow_pickle=False)
        elif path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                if "x" not in archive.files:
                    raise DataError(f"{path}: needs an array named 'x'; found {', '.join(archive.files) or 'none'}")
                x = archive["x"]
        else:
            raise DataError(f"{path}: predict reads a .npz (array x) or a .npy file; got '{path.suffix}'")
    except (ValueError, OSError) as err:
        raise DataError(f"{path}: cannot read: {err}") from None
    if x.dtype.kind not in "fiub" or x.ndim < 2:
        raise DataError(f"{path}: x must be a numeric array (N, ...) of samples; got {x.dtype} {x.shape}")
    x = x.astype(np.float64)
    bad = ~np.isfinite(x.reshape(len(x), -1))
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(f"{path}: sample {row}, feature {col} is {x.reshape(len(x), -1)[row, col]}; clean it first")
    return x


def predict_file(checkpoint: Path, inputs: Path) -> list[dict]:
    loaded = load_model(checkpoint)
    x = prepare_inputs(loaded, read_inputs(inputs), str(inputs))
    pred = loaded.model.predict(x)
    names = loaded.meta.get("class_names")
    if loaded.model.task == "classification" and names:
        values = [names[int(p)] for p in pred]
    elif pred.ndim == 1:
        values = [float(p) for p in pred]
    else:
        values = [[float(v) for v in row] for row in pred.reshape(len(pred), -1)]
    return [{"index": i, "prediction": v} for i, v in enumerate(values)]
