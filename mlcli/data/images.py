"""Readers for the image dataset formats: MNIST / Fashion-MNIST IDX files and CIFAR-10 batches.

Every reader returns plain arrays: images `x` uint8 NCHW, `(N, 1, 28, 28)` for MNIST and `(N, 3, 32, 32)` for
CIFAR-10, labels `y` int64 `(N,)`, and the class names. `load_mnist`, `load_fashion_mnist` and `load_cifar10`
take the folder a dataset was unpacked (or downloaded, see `mlcli.data.download`) into and a split name.

IDX (http://yann.lecun.com/exdb/mnist/): a big-endian header, magic 2051 then N, rows, cols for images, magic
2049 then N for labels, followed by the unsigned bytes. Files may be gzipped; gzip is recognised by its magic
bytes `1f 8b`, not by the suffix. The dimensions in the header are checked against the file size (for gzip,
the uncompressed size in its trailer) and against the memory the images will take as float64
(`mlcli.data.limits`) before anything is allocated, so a corrupt header cannot ask for gigabytes.

CIFAR-10 binary version (cifar-10-batches-bin): each batch file is a sequence of 3073-byte records, one label
byte then 3072 pixel bytes (the red, green and blue 32x32 planes in turn, so a record reshapes straight to
(3, 32, 32)). The python version (cifar-10-batches-py) is read by `mlcli.data.restricted_unpickle`.
Any malformed input raises `DataError` naming the file and what was wrong.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np

from mlcli.data.limits import check_fits
from mlcli.data.restricted_unpickle import read_cifar_python_batch, read_cifar_python_meta
from mlcli.errors import ConfigError, DataError

IDX_IMAGES_MAGIC = 2051
IDX_LABELS_MAGIC = 2049
GZIP_MAGIC = b"\x1f\x8b"
IDX_MAX_BYTES = 1 << 31  # largest decoded IDX payload we agree to allocate
FLOAT64_BYTES = 8  # each pixel byte becomes a float64 in the loaded dataset

MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
CIFAR_RECORD_BYTES = 1 + 3 * 32 * 32
CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST_BATCHES = ("test_batch",)


class ImageData(NamedTuple):
    """One split of an image dataset: `x` uint8 (N, C, H, W), `y` int64 (N,), `class_names` (K,)."""

    x: np.ndarray
    y: np.ndarray
    class_names: list[str]


def load_idx_images(path: str | Path, *, max_bytes: int = IDX_MAX_BYTES) -> np.ndarray:
    """Read an IDX image file (magic 2051, plain or gzipped) into uint8 `(N, 1, rows, cols)`."""
    path = Path(path)
    (n, rows, cols), payload = _read_idx(path, IDX_IMAGES_MAGIC, 3, "IDX images", max_bytes)
    return np.frombuffer(payload, dtype=np.uint8).reshape(n, 1, rows, cols)


def load_idx_labels(path: str | Path, *, max_bytes: int = IDX_MAX_BYTES) -> np.ndarray:
    """Read an IDX label file (magic 2049, plain or gzipped) into int64 `(N,)`."""
    path = Path(path)
    _, payload = _read_idx(path, IDX_LABELS_MAGIC, 1, "IDX labels", max_bytes)
    return np.frombuffer(payload, dtype=np.uint8).astype(np.int64)


def load_mnist(folder: str | Path, split: str = "train") -> ImageData:
    """Load MNIST `split` ("train" or "test") from the standard IDX files in `folder`.

    Looks for `train-images-idx3-ubyte[.gz]` / `train-labels-idx1-ubyte[.gz]` (or the `t10k-` pair for
    "test"). Returns x uint8 (N, 1, 28, 28), y int64 (N,) in [0, 10) and the class names "0".."9".
    """
    return _load_idx_split(Path(folder), split, MNIST_CLASSES)


def load_fashion_mnist(folder: str | Path, split: str = "train") -> ImageData:
    """Load Fashion-MNIST `split`: the same file names and layout as MNIST, with its ten clothing classes."""
    return _load_idx_split(Path(folder), split, FASHION_MNIST_CLASSES)


def load_cifar10_binary_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 binary batch into x uint8 (N, 3, 32, 32) and y int64 (N,) in [0, 10)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size == 0 or size % CIFAR_RECORD_BYTES:
            raise DataError(
                f"{path}: size {size} bytes is not a positive multiple of {CIFAR_RECORD_BYTES} "
                "(1 label byte + 3072 pixel bytes per record); the file is truncated or not a CIFAR-10 batch"
            )
        check_fits(path, f"{size // CIFAR_RECORD_BYTES} CIFAR-10 records", size * (2 + FLOAT64_BYTES))
        records = np.fromfile(path, dtype=np.uint8).reshape(-1, CIFAR_RECORD_BYTES)  # (N, 3073)
    except OSError as exc:
        raise DataError(f"{path}: cannot read file: {exc.strerror or exc}") from exc
    y = records[:, 0].astype(np.int64)
    _check_labels(path, y, len(CIFAR10_CLASSES))
    x = np.ascontiguousarray(records[:, 1:]).reshape(-1, 3, 32, 32)
    return x, y


def load_cifar10(folder: str | Path, split: str = "train") -> ImageData:
    """Load CIFAR-10 `split` ("train": data_batch_1..5, "test": test_batch) from `folder`.

    `folder` may be `cifar-10-batches-bin` / `cifar-10-batches-py` itself or the folder holding one of them.
    The binary version (`*.bin`) is preferred when both are present. Class names come from
    `batches.meta.txt` (binary) or `batches.meta` (python), and default to the standard ten when that file is
    absent. Returns x uint8 (N, 3, 32, 32), y int64 (N,).
    """
    folder = Path(folder)
    batches = _split_names(split, CIFAR_TRAIN_BATCHES, CIFAR_TEST_BATCHES)
    root, binary = _find_cifar_root(folder)
    suffix = ".bin" if binary else ""
    paths = [root / f"{name}{suffix}" for name in batches]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise DataError(f"{root}: CIFAR-10 {split} split incomplete: missing {', '.join(missing)}")
    read = load_cifar10_binary_batch if binary else read_cifar_python_batch
    parts = [read(p) for p in paths]
    x = np.concatenate([xp for xp, _ in parts])
    y = np.concatenate([yp for _, yp in parts])
    if binary:
        names = _read_meta_txt(root / "batches.meta.txt")
    else:
        meta = root / "batches.meta"
        names = read_cifar_python_meta(meta) if meta.is_file() else list(CIFAR10_CLASSES)
    return ImageData(x, y, names)


def _load_idx_split(folder: Path, split: str, class_names: tuple[str, ...]) -> ImageData:
    prefix = _split_names(split, ("train",), ("t10k",))[0]
    images_path = _find_idx_file(folder, f"{prefix}-images-idx3-ubyte")
    labels_path = _find_idx_file(folder, f"{prefix}-labels-idx1-ubyte")
    x = load_idx_images(images_path)
    y = load_idx_labels(labels_path)
    if x.shape[0] != y.shape[0]:
        raise DataError(
            f"{images_path}: holds {x.shape[0]} images but {labels_path.name} holds {y.shape[0]} labels; "
            "the counts must match"
        )
    _check_labels(labels_path, y, len(class_names))
    return ImageData(x, y, list(class_names))


def _split_names(split: str, train: tuple[str, ...], test: tuple[str, ...]) -> tuple[str, ...]:
    if split == "train":
        return train
    if split == "test":
        return test
    raise ConfigError(f"image dataset split must be 'train' or 'test', got {split!r}")


def _find_idx_file(folder: Path, name: str) -> Path:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise DataError(f"{folder}: no {name} or {name}.gz found (the standard MNIST / Fashion-MNIST file names)")


def _read_idx(
    path: Path, magic: int, n_dims: int, what: str, max_bytes: int
) -> tuple[tuple[int, ...], bytearray]:
    """Check an IDX header against the file size, then read exactly the payload it announces.

    Returns the header's dimensions and the payload bytes (a writable bytearray of prod(dims) bytes).
    """
    header_len = 4 + 4 * n_dims
    try:
        with open(path, "rb") as raw:
            gzipped = raw.read(2) == GZIP_MAGIC
            if gzipped:
                raw.seek(-4, os.SEEK_END)
                decoded_size = struct.unpack("<I", raw.read(4))[0]  # ISIZE: uncompressed size mod 2**32
                raw.seek(0)
                stream: BinaryIO = gzip.GzipFile(fileobj=raw, mode="rb")
            else:
                raw.seek(0)
                decoded_size = os.fstat(raw.fileno()).st_size
                stream = raw
            header = _read_exact(stream, header_len)
            found = struct.unpack(">I", header[:4])[0] if len(header) >= 4 else None
            if found != magic:
                raise DataError(f"{path}: bad magic number {found}, expected {magic} ({what})")
            if len(header) < header_len:
                raise DataError(
                    f"{path}: truncated: {len(header)} bytes, an {what} header needs {header_len}"
                )
            dims = struct.unpack(f">{n_dims}I", header[4:])
            payload_len = math.prod(dims)
            if payload_len > max_bytes:
                raise DataError(
                    f"{path}: header dims {tuple(dims)} ask for {payload_len} bytes, over the {max_bytes} "
                    "allowed"
                )
            check_fits(path, f"{what} of dims {tuple(dims)}", payload_len * (1 + FLOAT64_BYTES))
            expected = header_len + payload_len
            if decoded_size != (expected % 2**32 if gzipped else expected):
                kind = "uncompressed size (gzip trailer)" if gzipped else "file size"
                raise DataError(
                    f"{path}: header dims {tuple(dims)} need {expected} bytes but the {kind} is "
                    f"{decoded_size}; the file is truncated or corrupt"
                )
            payload = _read_exact(stream, payload_len)
            if len(payload) != payload_len or stream.read(1):
                raise DataError(f"{path}: truncated: expected {payload_len} data bytes after the header")
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read {what} file: {exc}") from exc
    return tuple(dims), payload


def _read_exact(stream: BinaryIO, n: int) -> bytearray:
    """Read up to `n` bytes into one preallocated buffer; shorter only at end of stream."""
    buf = bytearray(n)
    got = 0
    with memoryview(buf) as view:
        while got < n:
            k = stream.readinto(view[got:])
            if not k:
                break
            got += k
    del buf[got:]
    return buf


def _check_labels(path: Path, y: np.ndarray, n_classes: int) -> None:
    bad = np.flatnonzero(y >= n_classes)
    if bad.size:
        raise DataError(f"{path}: label at row {bad[0]} is {y[bad[0]]}, expected 0..{n_classes - 1}")


def _find_cifar_root(folder: Path) -> tuple[Path, bool]:
    """The folder holding the batches and whether it is the binary version."""
    for root in (folder, folder / "cifar-10-batches-bin", folder / "cifar-10-batches-py"):
        if any((root / f"{name}.bin").is_file() for name in CIFAR_TRAIN_BATCHES + CIFAR_TEST_BATCHES):
            return root, True
        if any((root / name).is_file() for name in CIFAR_TRAIN_BATCHES + CIFAR_TEST_BATCHES):
            return root, False
    raise DataError(
        f"{folder}: no CIFAR-10 batches found: expected data_batch_1..5.bin and test_batch.bin "
        "(cifar-10-batches-bin) or data_batch_1..5 and test_batch (cifar-10-batches-py)"
    )


def _read_meta_txt(path: Path) -> list[str]:
    if not path.is_file():
        return list(CIFAR10_CLASSES)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise DataError(f"{path}: cannot read file: {exc.strerror or exc}") from exc
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if len(names) != len(CIFAR10_CLASSES):
        raise DataError(
            f"{path}: expected {len(CIFAR10_CLASSES)} class names, one per line, found {len(names)}"
        )
    return names
