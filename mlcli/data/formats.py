"""Readers for user data files: NumPy `.npz` archives and CSV tables with a header row.

Both return a `Dataset` with float64 features as read and never run code from the file (`allow_pickle=False`,
the csv module). They report malformed files as one-line `DataError`s naming the file and the row/column/key;
values that parse but are unusable (empty cells and "nan" read as NaN, a class without samples) are left for
`check_dataset` to report. Class labels are encoded the same way for both formats: integer labels become the
sorted distinct values (class names their str, so 1, 2, 10 sort numerically), string labels the sorted
distinct strings; y holds indices 0..C-1 into `class_names`.
"""

from __future__ import annotations

import csv
import difflib
import zipfile
from pathlib import Path

import numpy as np

from mlcli.data.dataset import Dataset
from mlcli.errors import DataError


def _require_file(path: Path) -> None:
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if not path.is_file():
        raise DataError(f"{path}: is not a file; expected a data file")


def _encode_classes(labels: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Map (N,) integer or string labels to (N,) int64 indices into the sorted distinct labels, and their names."""
    classes, y = np.unique(labels, return_inverse=True)
    return y.astype(np.int64).reshape(-1), [str(c) for c in classes.tolist()]


def _strip_cells(a: np.ndarray) -> np.ndarray:
    return np.char.strip(a) if a.size else a


# ----------------------------------------------------------------------------------------------------------- npz


def _npz_array(archive: np.lib.npyio.NpzFile, key: str, path: Path, keys: str) -> np.ndarray:
    try:
        return archive[key]
    except ValueError:
        raise DataError(
            f"{path}: array {key!r} is an object array, which cannot be loaded safely; save plain numeric or "
            f"string arrays (keys found: {keys})"
        ) from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: array {key!r} is unreadable ({exc}); keys found: {keys}") from None


def _npz_labels(
    y: np.ndarray, task: str, path: Path, class_names: list[str] | None
) -> tuple[np.ndarray, list[str] | None]:
    if y.ndim == 0 or (task == "classification" and y.ndim != 1):
        raise DataError(f"{path}: y must have shape (N,) for {task}; found shape {y.shape}")
    if task == "regression":
        if not (np.issubdtype(y.dtype, np.number) or y.dtype == np.bool_):
            raise DataError(f"{path}: regression targets y must be numeric; found dtype {y.dtype}")
        return y.astype(np.float64), None
    if y.dtype.kind in "US":
        if class_names is not None:
            raise DataError(f"{path}: class_names is only allowed with integer labels; y holds strings")
        return _encode_classes(y.astype(str))
    if y.dtype.kind == "f":
        integral = np.isfinite(y) & (y == np.round(y))
        if not integral.all():
            i = int(np.argmax(~integral))
            raise DataError(
                f"{path}: sample {i} has label {y[i].item()!r}; classification labels must be integers or strings"
            )
        y = y.astype(np.int64)
    elif y.dtype.kind not in "iub":
        raise DataError(f"{path}: classification labels y must be integers or strings; found dtype {y.dtype}")
    if class_names is not None:
        return y.astype(np.int64), class_names
    return _encode_classes(y.astype(np.int64))


def load_npz(path: str | Path, *, task: str) -> Dataset:
    """Read `x` (N, ...) and `y` from a `.npz` archive written by `np.savez`, never unpickling anything.

    Optional arrays: `class_names` (C,) strings naming integer labels 0..C-1 (then y is kept as is), and
    `feature_names` (D,) strings. Other keys are ignored. Returns x as float64; y as described in the module
    docstring. Raises DataError for a missing file, a file that is not an npz archive, missing keys (naming the
    keys found), object arrays, or arrays of the wrong kind or shape.
    """
    path = Path(path)
    _require_file(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError):
        raise DataError(f"{path}: not a NumPy .npz archive; expected one written by np.savez(x=..., y=...)") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: holds a single .npy array; expected an .npz archive with arrays x and y")
    with archive:
        keys = ", ".join(archive.files) or "none"
        missing = [k for k in ("x", "y") if k not in archive.files]
        if missing:
            raise DataError(f"{path}: missing array(s) {', '.join(missing)}; expected x and y; keys found: {keys}")
        x = _npz_array(archive, "x", path, keys)
        y = _npz_array(archive, "y", path, keys)
        names = {
            k: [str(s) for s in _npz_array(archive, k, path, keys).reshape(-1).tolist()]
            for k in ("class_names", "feature_names")
            if k in archive.files
        }
    if x.ndim < 2:
        raise DataError(f"{path}: x must have shape (N, D) or (N, C, H, W); found shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise DataError(f"{path}: features x must be numeric; found dtype {x.dtype}")
    y, class_names = _npz_labels(y, task, path, names.get("class_names"))
    return Dataset(
        x=x.astype(np.float64),
        y=y,
        task=task,
        class_names=class_names,
        source=str(path),
        feature_names=names.get("feature_names"),
    )


# ----------------------------------------------------------------------------------------------------------- csv


def _read_rows(path: Path, delimiter: str) -> tuple[list[str], list[list[str]], list[int]]:
    """Header, data rows and each data row's 1-based line number; blank lines are skipped."""
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter=delimiter)
            for row in reader:
                if row:
                    rows.append(row)
                    lines.append(reader.line_num)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8") from None
    except csv.Error as exc:
        raise DataError(f"{path}: row {reader.line_num}: malformed CSV ({exc})") from None
    if not rows:
        raise DataError(f"{path}: file is empty; expected a header row naming the columns")
    return rows[0], rows[1:], lines[1:]


def _check_header(header: list[str], path: Path, label_column: str) -> None:
    """Header names must be unique and include `label_column` plus at least one feature column."""
    cells = np.array(header)
    unique, counts = np.unique(cells, return_counts=True)
    if (counts > 1).any():
        raise DataError(f"{path}: column {str(unique[counts > 1][0])!r} appears more than once in the header")
    if label_column not in header:
        try:
            cells.astype(np.float64)
        except ValueError:
            close = difflib.get_close_matches(label_column, header, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise DataError(
                f"{path}: no label column {label_column!r}; columns found: {', '.join(header)}{hint}"
            ) from None
        raise DataError(
            f"{path}: row 1 looks like data ({', '.join(header[:4])}); a header row naming the columns is required"
        )
    if len(header) < 2:
        raise DataError(f"{path}: only the label column {label_column!r}; expected at least one feature column")


def _parse_floats(cells: np.ndarray, path: Path, names: list[str], lines: np.ndarray) -> np.ndarray:
    """(N, D) stripped strings -> float64, empty -> NaN; DataError at the first (row, column) that is no number."""
    cells = np.where(cells == "", "nan", cells)
    try:
        return cells.astype(np.float64)
    except ValueError:
        pass
    first = (cells.shape[0], 0)
    for j in range(cells.shape[1]):  # the error path only: find the first bad cell in file order
        try:
            cells[:, j].astype(np.float64)
        except ValueError:
            for i, cell in enumerate(cells[: first[0], j]):
                try:
                    np.asarray(cell).astype(np.float64)
                except ValueError:
                    first = (i, j)
                    break
    i, j = first
    raise DataError(
        f"{path}: row {lines[i]}, column {names[j]!r}: expected a number, found {str(cells[i, j])!r}"
    )


def load_csv(path: str | Path, *, label_column: str, task: str, delimiter: str = ",") -> Dataset:
    """Read a CSV table with a header row; `label_column` (by name) is y, every other column a feature.

    Features must be numbers; empty cells and "nan" read as NaN (reported later by `check_dataset`). Labels:
    integers or strings for classification (encoded as in the module docstring), numbers for regression (empty
    -> NaN). Returns x: (N, D) float64, `feature_names` from the header and `rows` the 1-based file line of
    each sample (the header is row 1). Raises DataError for a missing or empty file, a missing header, a missing
    label column (listing the columns found, with a did-you-mean), a row with the wrong number of cells, a
    non-numeric feature cell or an empty class label, each naming the row and column.
    """
    path = Path(path)
    _require_file(path)
    header, body, line_list = _read_rows(path, delimiter)
    header = [h.strip() for h in header]
    _check_header(header, path, label_column)
    lines = np.asarray(line_list, dtype=np.int64)
    widths = np.fromiter((len(r) for r in body), dtype=np.int64, count=len(body))
    wrong = widths != len(header)
    if wrong.any():
        i = int(np.argmax(wrong))
        raise DataError(f"{path}: row {lines[i]} has {widths[i]} cells; expected {len(header)} as in the header")
    label_j = header.index(label_column)
    feature_js = [j for j in range(len(header)) if j != label_j]
    feature_names = [header[j] for j in feature_js]
    cells = _strip_cells(np.array(body, dtype=str).reshape(len(body), len(header)))
    x = _parse_floats(cells[:, feature_js], path, feature_names, lines)
    labels = cells[:, label_j]
    if task == "regression":
        y = _parse_floats(labels[:, None], path, [label_column], lines)[:, 0]
        class_names = None
    else:
        empty = labels == ""
        if empty.any():
            i = int(np.argmax(empty))
            raise DataError(f"{path}: row {lines[i]}, column {label_column!r}: class label is empty")
        try:
            as_int = labels.astype(np.int64)
        except (ValueError, OverflowError):
            y, class_names = _encode_classes(labels)
        else:
            y, class_names = _encode_classes(as_int)
    return Dataset(
        x=x,
        y=y,
        task=task,
        class_names=class_names,
        source=str(path),
        feature_names=feature_names,
        rows=lines,
    )
