"""Reading the CIFAR-10 "python version" batches without letting the file run code.

This is the only module of mlcli that may use `pickle`. The CIFAR-10 python batches are pickled dicts
(`{b"data": uint8 (N, 3072), b"labels": [int] * N, b"batch_label": ..., b"filenames": [...]}`), and a
pickle can name any importable callable and call it. `RestrictedUnpickler.find_class` therefore refuses every
global except the three numpy names a plain ndarray is rebuilt from, and even those are narrowed:

- `numpy.core.multiarray._reconstruct` / `numpy._core.multiarray._reconstruct` is replaced by a wrapper that
  accepts only `(ndarray, (0,), dtype)`, the exact call `ndarray.__reduce__` writes (so it cannot allocate);
- `numpy.ndarray` resolves to a token that only that wrapper accepts (so it cannot be called to allocate);
- `numpy.dtype` is the real class (building a dtype allocates nothing).

The array's bytes then arrive through `ndarray.__setstate__`, which checks them against the shape. Everything
else (dicts, lists, bytes, ints) is built by the unpickler's own opcodes and never through `find_class`.
`load_restricted` caps the file size and checks the result is a dict with the expected keys and types;
`read_cifar_python_batch` and `read_cifar_python_meta` add the CIFAR-specific checks.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from mlcli.errors import DataError

try:
    from numpy._core.multiarray import _reconstruct as _np_reconstruct
except ImportError:  # numpy < 2 has no numpy._core
    from numpy.core.multiarray import _reconstruct as _np_reconstruct

CIFAR_PIXELS = 3 * 32 * 32
CIFAR10_NUM_CLASSES = 10
BATCH_MAX_BYTES = 64 * 1024 * 1024  # a CIFAR-10 batch is about 31 MB
META_MAX_BYTES = 64 * 1024

_RECONSTRUCT_NAMES = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")}


class _NdarrayToken:
    """Stands for `numpy.ndarray` inside a restricted unpickle; only `_reconstruct` accepts it."""


_NDARRAY_TOKEN = _NdarrayToken()


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds plain containers, bytes and numpy arrays and refuses every other global.

    `source` is the file name used in error messages. Strings are decoded with `encoding="bytes"`, so the
    Python 2 `str` keys and values of the CIFAR files load as `bytes`.
    """

    def __init__(self, file: io.BufferedIOBase, *, source: str) -> None:
        super().__init__(file, encoding="bytes")
        self._source = source

    def find_class(self, module: str, name: str) -> object:
        """Resolve a global named in the stream: the narrowed numpy names above, else `DataError`."""
        if (module, name) in _RECONSTRUCT_NAMES:
            return self._reconstruct
        if (module, name) == ("numpy", "ndarray"):
            return _NDARRAY_TOKEN
        if (module, name) == ("numpy", "dtype"):
            return np.dtype
        raise DataError(
            f"{self._source}: refusing to unpickle {module}.{name}: only plain containers, bytes and numpy "
            "arrays are allowed"
        )

    def _reconstruct(self, subtype: object, shape: object, dtype: object) -> np.ndarray:
        """The empty ndarray `ndarray.__reduce__` starts from; its data is filled in by `__setstate__`."""
        if subtype is not _NDARRAY_TOKEN or shape != (0,):
            raise DataError(
                f"{self._source}: refusing an array reconstruction other than (numpy.ndarray, (0,), dtype); "
                f"got shape {shape!r}"
            )
        return _np_reconstruct(np.ndarray, (0,), dtype)


def load_restricted(
    path: str | Path,
    *,
    max_bytes: int,
    required: Mapping[bytes, type | tuple[type, ...]] | None = None,
) -> dict[bytes, object]:
    """Unpickle the dict stored in `path` with `RestrictedUnpickler`.

    The file must be at most `max_bytes` long (checked before reading), hold a dict, and contain every key of
    `required` with a value of the given type(s). Any failure is a `DataError` naming the file.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise DataError(f"{path}: file is {size} bytes, more than the {max_bytes} allowed for this file")
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read file: {exc.strerror or exc}") from exc
    try:
        obj = RestrictedUnpickler(io.BytesIO(raw), source=str(path)).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            MemoryError, OverflowError) as exc:
        raise DataError(f"{path}: not a valid pickle file ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a pickled dict, found {type(obj).__name__}")
    for key, kind in (required or {}).items():
        if key not in obj:
            found = ", ".join(repr(k) for k in list(obj)[:10])
            raise DataError(f"{path}: missing key {key!r}; found keys {found}")
        if not isinstance(obj[key], kind):
            raise DataError(
                f"{path}: key {key!r} should hold {_type_names(kind)}, found {type(obj[key]).__name__}"
            )
    return obj


def read_cifar_python_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 python batch (`data_batch_1`, ..., `test_batch`).

    Returns `x` uint8 (N, 3, 32, 32) NCHW (the stored rows are the red, green, blue 32x32 planes in turn) and
    `y` int64 (N,) with values in [0, 10).
    """
    d = load_restricted(path, max_bytes=BATCH_MAX_BYTES, required={b"data": np.ndarray, b"labels": list})
    data = d[b"data"]
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != CIFAR_PIXELS:
        raise DataError(
            f"{path}: b'data' should be a uint8 array of shape (N, {CIFAR_PIXELS}), "
            f"found {data.dtype} {data.shape}"
        )
    labels = np.array(d[b"labels"])
    if labels.shape != (data.shape[0],) or labels.dtype.kind not in "iu":
        raise DataError(
            f"{path}: b'labels' should be a list of {data.shape[0]} ints, found {len(d[b'labels'])} "
            f"items of kind {labels.dtype}"
        )
    bad = np.flatnonzero((labels < 0) | (labels >= CIFAR10_NUM_CLASSES))
    if bad.size:
        raise DataError(
            f"{path}: label at row {bad[0]} is {labels[bad[0]]}, expected 0..{CIFAR10_NUM_CLASSES - 1}"
        )
    x = np.ascontiguousarray(data.reshape(-1, 3, 32, 32))
    return x, labels.astype(np.int64)


def read_cifar_python_meta(path: str | Path) -> list[str]:
    """Read the class names (`b"label_names"`, 10 byte strings) from a CIFAR-10 `batches.meta` file."""
    d = load_restricted(path, max_bytes=META_MAX_BYTES, required={b"label_names": list})
    names = d[b"label_names"]
    if len(names) != CIFAR10_NUM_CLASSES or not all(isinstance(n, (bytes, str)) for n in names):
        raise DataError(
            f"{path}: b'label_names' should be {CIFAR10_NUM_CLASSES} strings, found {len(names)} items"
        )
    return [n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in names]


def _type_names(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)
