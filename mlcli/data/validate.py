"""`check_dataset`: the one place a loaded dataset is checked before training or evaluation uses it.

Loaders only parse; they read NaN cells as NaN and leave inconsistencies in place. `check_dataset` turns each
problem into a one-line `DataError` that names `ds.source` and, for bad values, the row and column of the FIRST
bad value (the file's 1-based row and the header name where known), so that the user can go and fix it.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from mlcli.data.dataset import Dataset
from mlcli.errors import DataError


def _describe_value(v: float) -> str:
    return "NaN" if np.isnan(v) else ("+inf" if v > 0 else "-inf")


def _row_label(ds: Dataset, i: int) -> str:
    """'row 17' (file row) when the source rows are known, else 'sample 16' (0-based index)."""
    if ds.rows is not None:
        return f"row {int(ds.rows[i])}"
    return f"sample {i}"


def _column_label(ds: Dataset, j: int) -> str:
    """The column of flat feature index `j`: its header name, or its index within one sample's shape."""
    if ds.feature_names is not None and len(ds.feature_names) == int(np.prod(ds.input_shape)):
        return f"column {ds.feature_names[j]!r}"
    if len(ds.input_shape) == 1:
        return f"feature {j}"
    return f"feature {tuple(int(k) for k in np.unravel_index(j, ds.input_shape))}"


def _first_nonfinite(a: np.ndarray) -> tuple[int, int] | None:
    """(row, flat column) of the first non-finite value of (N, ...) array `a` in row-major order, or None."""
    flat = a.reshape(a.shape[0], -1)
    bad = ~np.isfinite(flat)
    if not bad.any():
        return None
    row, col = np.unravel_index(int(np.argmax(bad)), flat.shape)
    return int(row), int(col)


def _check_classes(ds: Dataset) -> None:
    src = ds.source
    y = ds.y
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DataError(
            f"{src}: classification labels must be a 1-D integer array; found dtype {y.dtype}, shape {y.shape}"
        )
    n_classes = ds.n_classes
    out_of_range = (y < 0) | (y >= n_classes)
    if out_of_range.any():
        i = int(np.argmax(out_of_range))
        raise DataError(
            f"{src}: {_row_label(ds, i)} has label {int(y[i])}; expected a class index in [0, {n_classes - 1}]"
        )
    counts = np.bincount(y, minlength=n_classes)
    present = np.flatnonzero(counts)
    names = ds.class_names if ds.class_names is not None else [str(c) for c in range(n_classes)]
    if present.size < 2:
        found = ", ".join(repr(names[c]) for c in present)
        raise DataError(
            f"{src}: classification needs at least 2 classes; found {present.size} ({found}); "
            f"use more data or task: regression"
        )
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        c = int(empty[0])
        raise DataError(
            f"{src}: class {names[c]!r} (label {c}) has no samples; every class in class_names must appear "
            f"({empty.size} of {n_classes} are empty)"
        )


def check_dataset(ds: Dataset) -> Dataset:
    """Check `ds` for the problems that would make training meaningless and return it unchanged.

    Checked, in this order: empty dataset; number of labels != number of feature rows; NaN/inf in features
    (reports the first bad value's row and column); for classification, 1-D integer labels in
    [0, n_classes), at least 2 classes present and no class of `class_names` without samples; for regression,
    NaN/inf targets. Raises `DataError` naming `ds.source` for the first problem found.
    """
    src = ds.source
    if ds.n == 0:
        raise DataError(f"{src}: dataset is empty; expected at least one sample")
    if ds.y.shape[0] != ds.n:
        raise DataError(f"{src}: {ds.n} feature rows but {ds.y.shape[0]} labels; expected one label per row")
    if ds.rows is not None and ds.rows.shape[0] != ds.n:
        raise ValueError(f"{src}: rows has {ds.rows.shape[0]} entries for {ds.n} samples")
    if not np.issubdtype(ds.x.dtype, np.number):
        raise DataError(f"{src}: features must be numeric; found dtype {ds.x.dtype}")
    bad = _first_nonfinite(ds.x)
    if bad is not None:
        i, j = bad
        value = ds.x.reshape(ds.n, -1)[i, j]
        raise DataError(
            f"{src}: {_row_label(ds, i)}, {_column_label(ds, j)} is {_describe_value(value)}; clean or drop it"
        )
    if ds.task == "multitask":
        for t, spec in enumerate(ds.targets):
            column = ds.y[:, t]
            part = replace(ds, task=spec.task, targets=None,
                           y=column.astype(np.int64) if spec.task == "classification" else column,
                           class_names=None if spec.class_names is None else list(spec.class_names),
                           source=f"{src}: target {spec.name!r}")
            _check_targets(part)
    else:
        _check_targets(ds)
    return ds


def _check_targets(ds: Dataset) -> None:
    """The labels or regression targets of a single-task dataset (or of one target of a multitask one)."""
    src = ds.source
    if ds.task == "classification":
        _check_classes(ds)
    else:
        if not np.issubdtype(ds.y.dtype, np.number):
            raise DataError(f"{src}: regression targets must be numeric; found dtype {ds.y.dtype}")
        bad = _first_nonfinite(ds.y.reshape(ds.n, -1))
        if bad is not None:
            i, j = bad
            value = ds.y.reshape(ds.n, -1)[i, j]
            which = "target" if ds.y.ndim == 1 else f"target {j}"
            raise DataError(f"{src}: {_row_label(ds, i)}, {which} is {_describe_value(value)}; clean or drop it")
