"""Predict with a checkpoint on new inputs, standardized exactly as in training; `mlcli.predict`.

    rows = predict("runs/r", "new.npz")                 # a run directory (its best.npz) or a checkpoint file
    -> [{"index": 0, "prediction": "setosa"}, ...]   (class names for classifiers, numbers for regression)
    predict("runs/r", x_array, out="preds.csv")       # an array (N, ...) works too; `out` writes a CSV atomically
    predict("runs/r", "new.npz", proba=True)          # a classifier's class probabilities too
    -> [{"index": 0, "prediction": "setosa", "probabilities": {"setosa": 0.97, "versicolor": 0.02, ...}}, ...]
       (in the CSV: columns index, prediction, then one per class, named by the class)

The label is what `model.predict` decides (the argmax of the probabilities, for every classifier mlcli has).

Inputs: a `.npz` with an array `x` (N, ...) (a `y` in it is ignored) or a `.npy` array (N, ...), each sample of the
shape the model was trained on.

Memory: the inputs stream through in batches of `BATCH_ROWS` rows (checked, converted to float64, standardized,
predicted, then dropped), so that only the predictions, never a float64 copy of all inputs, are held at once. A
`.npy` file is memory-mapped and read batch by batch; a `.npz` member is read whole (a zip member cannot be mapped)
in its stored dtype. `BATCH_ROWS` is a multiple of the networks' inference batch (1024), so that every row meets
the same GEMMs as in one call: the predictions are bit-identical to predicting all rows at once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlcli.errors import DataError
from mlcli.runs.rundir import checkpoint_path
from mlcli.runs.snapshot import load_model, prepare_inputs

BATCH_ROWS = 4096


def read_inputs(path: Path) -> np.ndarray:
    """x: (N, ...) float64 from a .npz (array `x`) or .npy file, read without pickle."""
    return check_samples(open_inputs(path), str(path))


def open_inputs(path: Path) -> np.ndarray:
    """x: (N, ...) as stored, without pickle: a .npy memory-mapped (read only), a .npz's array `x` loaded.
    Only the dtype kind and the rank are checked here; `check_samples` checks values, batch by batch."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        if path.suffix == ".npy":
            x = np.load(path, mmap_mode="r", allow_pickle=False)
        elif path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                if "x" not in archive.files:
                    raise DataError(f"{path}: needs an array named 'x'; found {', '.join(archive.files) or 'none'}")
                x = archive["x"]
        else:
            raise DataError(f"{path}: predict reads a .npz (array x) or a .npy file; got '{path.suffix}'")
    except (ValueError, OSError) as err:
        raise DataError(f"{path}: cannot read: {err}") from None
    _check_kind(x, str(path))
    return x


def _check_kind(x: np.ndarray, source: str) -> None:
    if x.dtype.kind not in "fiub" or x.ndim < 2:
        raise DataError(f"{source}: x must be a numeric array (N, ...) of samples; got {x.dtype} {x.shape}")


def check_samples(x: np.ndarray, source: str, first_row: int = 0) -> np.ndarray:
    """x as float64 (N, ...) samples; DataError naming `source` for a non-numeric array or a NaN/inf entry
    (its row counted from `first_row`, for a batch of a larger array)."""
    _check_kind(x, source)
    x = x.astype(np.float64)
    bad = ~np.isfinite(x.reshape(len(x), -1))
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(f"{source}: sample {first_row + row}, feature {col} is {x.reshape(len(x), -1)[row, col]}; "
                        f"clean it first")
    return x


def predict_arrays(loaded, x: np.ndarray, source: str, *, proba: bool = False,
                   batch_rows: int = BATCH_ROWS) -> tuple[np.ndarray, np.ndarray | None]:
    """(predictions (N,) or (N, k), class probabilities (N, C) or None) of `loaded`'s model for raw samples x
    (N, ...), any numeric dtype, e.g. a memory map: each batch of `batch_rows` rows is checked, standardized and
    predicted on its own, so the memory beyond the outputs is a few batches."""
    _check_kind(x, source)
    preds, probs = [], []
    for start in range(0, max(len(x), 1), batch_rows):
        xb = prepare_inputs(loaded, check_samples(x[start:start + batch_rows], source, start), source)
        preds.append(loaded.model.predict(xb))
        if proba:
            probs.append(loaded.model.probabilities(xb))
    return _concatenate(preds), (_concatenate(probs) if proba else None)


def _concatenate(parts: list):
    """Batches of arrays, or of a multitask model's {head: array}, joined along the rows."""
    if parts and isinstance(parts[0], dict):
        return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    return np.concatenate(parts)


def predict(checkpoint, inputs, *, out: str | Path | None = None, proba: bool = False) -> list[dict]:
    """Predictions of a checkpoint (file or run directory) for `inputs` (a .npz/.npy path or an array (N, ...));
    `proba`: a classifier's class probabilities per row too (ConfigError for other models)."""
    from mlcli.errors import ConfigError

    loaded = load_model(checkpoint_path(checkpoint))
    if proba and loaded.model.task == "multitask" and \
            not any(h["task"] == "classification" for h in loaded.model.heads.values()):
        raise ConfigError("--proba needs a classifier; this multitask model has no classification head")
    if proba and loaded.model.task not in ("classification", "multitask"):
        raise ConfigError(f"--proba needs a classifier; this checkpoint holds a {loaded.config.model.type} "
                          f"({loaded.model.task}), which predicts values, not classes")
    if isinstance(inputs, (str, Path)):
        x, source = open_inputs(Path(inputs)), str(inputs)
    else:
        x, source = np.asarray(inputs), "inputs"
    pred, p = predict_arrays(loaded, x, source, proba=proba)
    if loaded.model.task == "multitask":
        rows = multitask_rows(loaded, pred, p)
    else:
        rows = prediction_rows(loaded, pred)
        if p is not None:
            add_probabilities(rows, p, class_names(loaded, p.shape[1]))
    if out is not None:
        write_predictions_csv(rows, Path(out))
    return rows


def prediction_rows(loaded, pred: np.ndarray) -> list[dict]:
    """[{"index": i, "prediction": class name | number | [numbers]}] for predictions `pred` (N,) or (N, k)."""
    names = loaded.meta.get("class_names")
    if loaded.model.task == "classification" and names:
        values = [names[int(p)] for p in pred]
    elif pred.ndim == 1:
        values = [float(p) for p in pred]
    else:
        values = [[float(v) for v in row] for row in pred.reshape(len(pred), -1)]
    return [{"index": i, "prediction": v} for i, v in enumerate(values)]


def multitask_rows(loaded, pred: dict, proba: dict | None) -> list[dict]:
    """[{"index": i, "prediction": {head: class name | number}}] (and "probabilities": {head: {class: p}} for
    the classification heads) of a multitask model's predictions, head -> (N,)."""
    model = loaded.model
    columns = {}
    for head, values in pred.items():
        classes = model.head_target(head).class_names if model.heads[head]["task"] == "classification" else None
        columns[head] = [classes[int(v)] for v in values] if classes else [float(v) for v in values]
    n = len(next(iter(columns.values()))) if columns else 0
    rows = [{"index": i, "prediction": {head: col[i] for head, col in columns.items()}} for i in range(n)]
    if proba is not None:
        for head, p in proba.items():
            classes = model.head_target(head).class_names or [str(c) for c in range(p.shape[1])]
            for row, values in zip(rows, p.tolist(), strict=True):
                row.setdefault("probabilities", {})[head] = dict(zip(classes, values, strict=True))
    return rows


def class_names(loaded, n_classes: int) -> list[str]:
    """The checkpoint's class names, or "0", "1", ... when it has none."""
    names = loaded.meta.get("class_names")
    return [str(c) for c in names] if names else [str(c) for c in range(n_classes)]


def add_probabilities(rows: list[dict], proba: np.ndarray, names: list[str]) -> None:
    """Put {class name: probability} under "probabilities" in each row; proba: (N, C)."""
    for row, p in zip(rows, proba.tolist(), strict=True):
        row["probabilities"] = dict(zip(names, p, strict=True))


def write_predictions_csv(rows: list[dict], path: Path) -> None:
    """index,prediction rows (several outputs joined by spaces), then one column per class when the rows hold
    probabilities (named by the class; `p_<class>` for all when a class is called index or prediction), written
    atomically."""
    import csv
    import io

    from mlcli.runs.atomic import atomic_write_text

    buf = io.StringIO()
    writer = csv.writer(buf)
    if rows and isinstance(rows[0]["prediction"], dict):  # a multitask model: one column per head
        _multitask_csv(rows, writer)
        atomic_write_text(Path(path), buf.getvalue())
        return
    classes = list(rows[0]["probabilities"]) if rows and "probabilities" in rows[0] else []
    header = [f"p_{c}" for c in classes] if {"index", "prediction"} & set(classes) else classes
    writer.writerow(["index", "prediction", *header])
    for r in rows:
        value = r["prediction"]
        probs = [repr(r["probabilities"][c]) for c in classes]
        writer.writerow([r["index"], " ".join(map(str, value)) if isinstance(value, list) else value, *probs])
    atomic_write_text(Path(path), buf.getvalue())


def _multitask_csv(rows: list[dict], writer) -> None:
    """index, one column per head, then `<head>_p_<class>` per class of each classification head."""
    heads = list(rows[0]["prediction"])
    probs = rows[0].get("probabilities", {})
    prob_cols = [(head, c) for head, classes in probs.items() for c in classes]
    writer.writerow(["index", *heads, *(f"{head}_p_{c}" for head, c in prob_cols)])
    for r in rows:
        writer.writerow([r["index"], *(r["prediction"][h] for h in heads),
                         *(repr(r["probabilities"][h][c]) for h, c in prob_cols)])
