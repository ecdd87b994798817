"""Readers for user data files: NumPy `.npz` archives and CSV tables with a header row.

Both return a `Dataset` with float64 features as read and never run code from the file (`allow_pickle=False`,
the csv module); an npz array whose declared shape would not fit in memory is refused from its header
(`mlcli.data.limits`) before it is read, and a CSV costs memory in proportion to its size. They report
malformed files as one-line `DataError`s naming the file and the row/column/key; values that parse but are
unusable (empty cells and "nan" read as NaN, a class without samples) are left for `check_dataset` to report.
Class labels are encoded the same way for both formats: integer labels (integral floats accepted) become the
sorted distinct values (class names their str, so 1, 2, 10 sort numerically), string labels the sorted distinct
strings; y holds indices 0..C-1 into `class_names`. Non-integral numeric labels are refused.
"""

from __future__ import annotations

import csv
import difflib
import math
import zipfile
import zlib
from pathlib import Path

import numpy as np

from mlcli.data.dataset import Dataset, multitask_dataset
from mlcli.data.limits import check_fits
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


# ----------------------------------------------------------------------------------------------------------- npz


NPZ_ERRORS = (OSError, EOFError, ValueError, zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, NotImplementedError,
              RuntimeError, UnicodeDecodeError)  # what zipfile and numpy raise on a malformed archive or member
NPY_MAGIC = b"\x93NUMPY"


def _npy_member(archive: np.lib.npyio.NpzFile, key: str, path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """The (shape, dtype) an archive member declares in its .npy header, read without reading the data."""
    names = archive.zip.namelist()
    member = f"{key}.npy" if f"{key}.npy" in names else key
    try:
        with archive.zip.open(member) as f:
            if f.read(len(NPY_MAGIC)) != NPY_MAGIC:
                raise DataError(f"{path}: member {member!r} is not a .npy array")
            f.seek(0)
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise DataError(f"{path}: member {member!r} has .npy format version {version}; expected 1.0 or 2.0")
    except (*NPZ_ERRORS, SyntaxError, RecursionError, MemoryError, TypeError) as exc:
        raise DataError(f"{path}: array {key!r} has an unreadable .npy header ({_one_line(exc)})") from None
    return tuple(int(d) for d in shape), dtype


def _npz_array(archive: np.lib.npyio.NpzFile, key: str, path: Path, keys: str, budget: int | None) -> np.ndarray:
    """Read array `key` once its declared shape and dtype are known to fit: in memory (stored + float64 copy) and
    in the member (an uncompressed member must hold the bytes its header announces)."""
    shape, dtype = _npy_member(archive, key, path)
    if dtype.hasobject:
        raise DataError(
            f"{path}: array {key!r} is an object array, which cannot be loaded safely; save plain numeric or "
            f"string arrays (keys found: {keys})"
        )
    n = math.prod(shape)
    check_fits(path, f"array {key!r} of shape {shape} {dtype}", n * (dtype.itemsize + 8), budget)
    info = archive.zip.getinfo(f"{key}.npy" if f"{key}.npy" in archive.zip.namelist() else key)
    if info.compress_type == zipfile.ZIP_STORED and n * dtype.itemsize > info.file_size:
        raise DataError(
            f"{path}: array {key!r}: shape {shape} {dtype} needs {n * dtype.itemsize} bytes but its member holds "
            f"{info.file_size}; the file is truncated or corrupt"
        )
    try:
        return archive[key]
    except (*NPZ_ERRORS, MemoryError) as exc:
        raise DataError(f"{path}: array {key!r} is unreadable ({_one_line(exc)}); keys found: {keys}") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _npz_labels(
    y: np.ndarray, task: str, path: Path, class_names: list[str] | None
) -> tuple[np.ndarray, list[str] | None]:
    if y.ndim == 0 or (task == "classification" and y.ndim != 1):
        raise DataError(f"{path}: y must have shape (N,) for {task}; found shape {y.shape}")
    if task == "regression":
        if y.dtype.kind not in "biuf":
            raise DataError(f"{path}: regression targets y must be numeric; found dtype {y.dtype}")
        return y.astype(np.float64), None
    if y.dtype.kind in "US":
        if class_names is not None:
            raise DataError(f"{path}: class_names is only allowed with integer labels; y holds strings")
        return _encode_classes(y.astype(str))
    if y.dtype.kind == "f":
        integral = np.isfinite(y) & (y == np.round(y)) & (np.abs(y) < 2**53)
        if not integral.all():
            i = int(np.argmax(~integral))
            raise DataError(
                f"{path}: sample {i} has label {y[i].item()!r}; classification labels must be integers (1.0 is "
                f"accepted as 1) or strings; for numeric targets use task: regression"
            )
        y = y.astype(np.int64)
    elif y.dtype.kind not in "iub":
        raise DataError(f"{path}: classification labels y must be integers or strings; found dtype {y.dtype}")
    if class_names is not None:
        return y.astype(np.int64), class_names
    return _encode_classes(y.astype(np.int64))


def _open_npz(path: Path) -> np.lib.npyio.NpzFile:
    """The archive at `path`, opened without unpickling; DataError for a missing, empty or non-npz file."""
    _require_file(path)
    with path.open("rb") as f:
        magic = f.read(len(NPY_MAGIC))
    if not magic:
        raise DataError(f"{path}: file is empty; expected an .npz archive written by np.savez(x=..., y=...)")
    if magic == NPY_MAGIC:
        raise DataError(f"{path}: holds a single .npy array; expected an .npz archive with arrays x and y")
    try:
        archive = np.load(path, allow_pickle=False)
    except NPZ_ERRORS:
        raise DataError(f"{path}: not a NumPy .npz archive; expected one written by np.savez(x=..., y=...)") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: not a NumPy .npz archive; expected one written by np.savez(x=..., y=...)")
    return archive


def _check_features(x: np.ndarray, path: Path) -> None:
    if x.ndim not in (2, 4):
        raise DataError(
            f"{path}: x must have shape (N, D) (one row per sample) or (N, C, H, W) (images); found shape "
            f"{x.shape}" + ("; add a channel axis with x[:, None] for grey images" if x.ndim == 3 else "")
        )
    if x.dtype.kind not in "biuf":
        raise DataError(f"{path}: features x must be numeric (bool, int or float); found dtype {x.dtype}")


def load_npz(path: str | Path, *, task: str, budget: int | None = None) -> Dataset:
    """Read `x` (N, ...) and `y` from a `.npz` archive written by `np.savez`, never unpickling anything.

    Optional arrays: `class_names` (C,) strings naming integer labels 0..C-1 (then y is kept as is), and
    `feature_names` (D,) strings. Other keys are ignored. Each array's .npy header is read first and an array
    whose declared shape would not fit in `budget` bytes (default: `limits.memory_budget()`) is refused before
    it is read. Returns x as float64 (N, D) or (N, C, H, W); y as described in the module docstring. Raises
    DataError for a missing or empty file, a file that is not an npz archive, missing keys (naming the keys
    found), object arrays, oversized or truncated arrays, or arrays of the wrong kind or shape.
    """
    path = Path(path)
    archive = _open_npz(path)
    with archive:
        keys = ", ".join(archive.files) or "none"
        missing = [k for k in ("x", "y") if k not in archive.files]
        if missing:
            raise DataError(f"{path}: missing array(s) {', '.join(missing)}; expected x and y; keys found: {keys}")
        x = _npz_array(archive, "x", path, keys, budget)
        y = _npz_array(archive, "y", path, keys, budget)
        names = {
            k: [str(s) for s in _npz_array(archive, k, path, keys, budget).reshape(-1).tolist()]
            for k in ("class_names", "feature_names")
            if k in archive.files
        }
    _check_features(x, path)
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


def _check_header(header: list[str], path: Path, label_columns: list[str]) -> None:
    """Header names must be unique and include every label column plus at least one feature column."""
    cells = np.array(header)
    unique, counts = np.unique(cells, return_counts=True)
    if (counts > 1).any():
        raise DataError(f"{path}: column {str(unique[counts > 1][0])!r} appears more than once in the header")
    for label_column in label_columns:
        if label_column in header:
            continue
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
    if len(header) <= len(label_columns):
        which = "column" if len(label_columns) == 1 else "columns"
        raise DataError(f"{path}: only the label {which} {', '.join(map(repr, label_columns))}; expected at least "
                        f"one feature column")


def _parse_column(cells: list[str]) -> np.ndarray | int:
    """(N,) stripped strings -> float64 with empty -> NaN, or the index of the first cell that is no number.

    Parsed column by column from the Python strings (not through a fixed-width string array, whose size would be
    N x the longest cell: one 100 kB cell in a million-row file would ask for hundreds of gigabytes)."""
    values = [c if c else "nan" for c in cells]
    try:
        return np.array(values, dtype=np.float64)
    except (ValueError, OverflowError):
        pass
    for i, cell in enumerate(values):
        try:
            float(cell)
        except ValueError:
            return i
    raise AssertionError("a column numpy cannot parse has a cell float() cannot parse")


def _parse_floats(columns: list[list[str]], path: Path, names: list[str], lines: np.ndarray) -> np.ndarray:
    """D columns of N stripped strings -> (N, D) float64; DataError at the first bad cell in file order."""
    x = np.empty((len(lines), len(columns)), dtype=np.float64)
    bad: list[tuple[int, int]] = []
    for j, cells in enumerate(columns):
        parsed = _parse_column(cells)
        if isinstance(parsed, int):
            bad.append((parsed, j))
        else:
            x[:, j] = parsed
    if bad:
        i, j = min(bad)
        raise DataError(f"{path}: row {lines[i]}, column {names[j]!r}: expected a number, found {columns[j][i]!r}")
    return x


def _class_labels(labels: list[str], path: Path, label_column: str, lines: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Classification labels from stripped strings: integers (also written 1.0) encoded numerically, other
    numbers refused (a classifier needs classes), anything else as the sorted distinct strings."""
    empty = [i for i, c in enumerate(labels) if not c]
    if empty:
        raise DataError(f"{path}: row {lines[empty[0]]}, column {label_column!r}: class label is empty")
    try:
        return _encode_classes(np.array(labels, dtype=np.int64))
    except (ValueError, OverflowError):
        pass
    try:
        numbers = np.array(labels, dtype=np.float64)
    except (ValueError, OverflowError):
        classes = sorted(set(labels))
        index = {c: k for k, c in enumerate(classes)}
        return np.fromiter((index[c] for c in labels), dtype=np.int64, count=len(labels)), classes
    integral = np.isfinite(numbers) & (numbers == np.round(numbers)) & (np.abs(numbers) < 2**53)
    if not integral.all():
        i = int(np.argmax(~integral))
        raise DataError(
            f"{path}: row {lines[i]}, column {label_column!r}: class label {labels[i]!r} is not an integer; "
            f"classification labels must be integers or names; for numeric targets use task: regression"
        )
    return _encode_classes(numbers.astype(np.int64))


def load_csv(path: str | Path, *, label_column: str, task: str, delimiter: str = ",") -> Dataset:
    """Read a CSV table with a header row; `label_column` (by name) is y, every other column a feature.

    Features must be numbers; empty cells and "nan" read as NaN (reported later by `check_dataset`). Labels:
    integers (`1.0` accepted as 1) or strings for classification (encoded as in the module docstring), numbers
    for regression (empty -> NaN). Returns x: (N, D) float64, `feature_names` from the header and `rows` the
    1-based file line of each sample (the header is row 1). Raises DataError for a missing or empty file, a
    missing header, a header without data rows, a missing label column (listing the columns found, with a
    did-you-mean), a row with the wrong number of cells, a non-numeric feature cell, an empty class label or a
    non-integral numeric one, each naming the row and column.
    """
    path = Path(path)
    x, feature_names, lines, labels = _read_table(path, [label_column], delimiter)
    y, class_names = _labels(labels[label_column], task, path, label_column, lines)
    return Dataset(x=x, y=y, task=task, class_names=class_names, source=str(path), feature_names=feature_names,
                   rows=lines)


def load_csv_columns(path: str | Path, *, columns: dict[str, tuple[str, str]], delimiter: str = ",",
                     also_labels: tuple[str, ...] = ()) -> Dataset:
    """Read a CSV table with several label columns as a multitask dataset (`multitask_dataset`): `columns` maps
    each target name to its (column, task); `also_labels` are label columns no head reads (not features either).
    Every other column is a feature. Each target is encoded as `load_csv` encodes one label column. Errors as
    `load_csv`'s."""
    path = Path(path)
    wanted = [c for c, _ in columns.values()]
    x, feature_names, lines, labels = _read_table(path, [*wanted, *(c for c in also_labels if c not in wanted)],
                                                  delimiter)
    encoded = {name: _labels(labels[column], task, path, column, lines) for name, (column, task) in columns.items()}
    return multitask_dataset(x, encoded, {name: task for name, (_, task) in columns.items()}, source=str(path),
                             feature_names=feature_names, rows=lines)


def _labels(cells: list[str], task: str, path: Path, column: str,
            lines: np.ndarray) -> tuple[np.ndarray, list[str] | None]:
    """One label column's stripped cells as regression targets (N,) float64 or encoded class labels."""
    if task == "regression":
        return _parse_floats([cells], path, [column], lines)[:, 0], None
    return _class_labels(cells, path, column, lines)


def _read_table(path: Path, label_columns: list[str],
                delimiter: str) -> tuple[np.ndarray, list[str], np.ndarray, dict[str, list[str]]]:
    """(x (N, D) float64 of the feature columns, their names, each row's file line, label column -> cells)."""
    _require_file(path)
    header, body, line_list = _read_rows(path, delimiter)
    header = [h.strip() for h in header]
    _check_header(header, path, label_columns)
    lines = np.asarray(line_list, dtype=np.int64)
    widths = np.fromiter((len(r) for r in body), dtype=np.int64, count=len(body))
    wrong = widths != len(header)
    if wrong.any():
        i = int(np.argmax(wrong))
        raise DataError(f"{path}: row {lines[i]} has {widths[i]} cells; expected {len(header)} as in the header")
    if not body:
        raise DataError(f"{path}: has a header row but no data rows; expected at least one sample below it")
    label_js = {header.index(c) for c in label_columns}
    feature_js = [j for j in range(len(header)) if j not in label_js]
    feature_names = [header[j] for j in feature_js]
    columns = [[row[j].strip() for row in body] for j in range(len(header))]
    x = _parse_floats([columns[j] for j in feature_js], path, feature_names, lines)
    return x, feature_names, lines, {c: columns[header.index(c)] for c in label_columns}


def load_npz_targets(path: str | Path, *, targets: dict[str, str], budget: int | None = None) -> Dataset:
    """Read `x` and one array per target from a `.npz` archive as a multitask dataset (`multitask_dataset`):
    `targets` maps each array's name to its task. Each target array has shape (N,) and is encoded as `load_npz`
    encodes `y` (class labels to indices 0..C-1; `<name>_class_names` names integer labels when present). Checks
    and errors as `load_npz`'s."""
    path = Path(path)
    archive = _open_npz(path)
    with archive:
        keys = ", ".join(archive.files) or "none"
        missing = [k for k in ("x", *targets) if k not in archive.files]
        if missing:
            raise DataError(f"{path}: missing array(s) {', '.join(missing)}; a multitask dataset needs x and one "
                            f"array per target ({', '.join(targets)}); keys found: {keys}")
        x = _npz_array(archive, "x", path, keys, budget)
        raw = {name: _npz_array(archive, name, path, keys, budget) for name in targets}
        names = {name: [str(s) for s in _npz_array(archive, f"{name}_class_names", path, keys, budget)
                        .reshape(-1).tolist()]
                 for name in targets if f"{name}_class_names" in archive.files}
    _check_features(x, path)
    encoded = {}
    for name, task in targets.items():
        y = raw[name]
        if y.ndim != 1:
            raise DataError(f"{path}: target array {name!r} must have shape (N,); found shape {y.shape}")
        encoded[name] = _npz_labels(y, task, path, names.get(name))
    return multitask_dataset(x.astype(np.float64), encoded, targets, source=str(path))
