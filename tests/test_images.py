"""Tests for the image readers (IDX, CIFAR-10 binary and python versions) and the restricted unpickler."""

from __future__ import annotations

import gzip
import io
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from mlcli.data.images import (
    CIFAR10_CLASSES,
    FASHION_MNIST_CLASSES,
    load_cifar10,
    load_cifar10_binary_batch,
    load_fashion_mnist,
    load_idx_images,
    load_idx_labels,
    load_mnist,
)
from mlcli.data.restricted_unpickle import RestrictedUnpickler, load_restricted, read_cifar_python_batch
from mlcli.errors import ConfigError, DataError

RNG = np.random.default_rng(0)


def idx_images_bytes(x: np.ndarray, magic: int = 2051) -> bytes:
    n, rows, cols = x.shape
    return struct.pack(">4I", magic, n, rows, cols) + x.astype(np.uint8).tobytes()


def idx_labels_bytes(y: np.ndarray, magic: int = 2049) -> bytes:
    return struct.pack(">2I", magic, len(y)) + y.astype(np.uint8).tobytes()


def write_mnist(folder: Path, prefix: str, n: int, *, gz: bool) -> tuple[np.ndarray, np.ndarray]:
    x = RNG.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    y = RNG.integers(0, 10, size=n).astype(np.uint8)
    for name, data in ((f"{prefix}-images-idx3-ubyte", idx_images_bytes(x)),
                       (f"{prefix}-labels-idx1-ubyte", idx_labels_bytes(y))):
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return x, y


# ---------------------------------------------------------------- IDX


def test_idx_plain_round_trip_shapes_and_values(tmp_path):
    x = RNG.integers(0, 256, size=(5, 4, 3), dtype=np.uint8)
    (tmp_path / "img").write_bytes(idx_images_bytes(x))
    (tmp_path / "lab").write_bytes(idx_labels_bytes(np.array([0, 9, 3, 3, 1])))
    images = load_idx_images(tmp_path / "img")
    labels = load_idx_labels(tmp_path / "lab")
    assert images.shape == (5, 1, 4, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(images[:, 0], x)
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, [0, 9, 3, 3, 1])
    images[0, 0, 0, 0] = 7  # returned arrays are writable, not views of a read-only buffer


def test_idx_gzip_detected_by_magic_bytes_not_suffix(tmp_path):
    x = RNG.integers(0, 256, size=(3, 2, 2), dtype=np.uint8)
    (tmp_path / "images-without-gz-suffix").write_bytes(gzip.compress(idx_images_bytes(x)))
    np.testing.assert_array_equal(load_idx_images(tmp_path / "images-without-gz-suffix")[:, 0], x)


def test_idx_bad_magic_names_file_and_both_numbers(tmp_path):
    path = tmp_path / "swapped"
    path.write_bytes(idx_labels_bytes(np.array([1, 2])))
    with pytest.raises(DataError, match=r"swapped: bad magic number 2049, expected 2051"):
        load_idx_images(path)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_truncated_file_is_refused_before_reading(tmp_path, gz):
    data = idx_images_bytes(RNG.integers(0, 256, size=(4, 3, 3), dtype=np.uint8))[:-5]
    path = tmp_path / "cut"
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(DataError, match=r"cut: header dims \(4, 3, 3\) need 52 bytes but the .* is 47"):
        load_idx_images(path)


def test_idx_header_claiming_huge_dims_is_refused_without_allocating(tmp_path):
    path = tmp_path / "huge"
    path.write_bytes(struct.pack(">4I", 2051, 4_000_000_000, 28, 28) + b"\0" * 10)
    with pytest.raises(DataError, match=r"huge: header dims \(4000000000, 28, 28\) ask for"):
        load_idx_images(path)


def test_idx_truncated_gzip_stream_is_data_error(tmp_path):
    blob = gzip.compress(idx_images_bytes(RNG.integers(0, 256, size=(50, 8, 8), dtype=np.uint8)))
    path = tmp_path / "cut.gz"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match=r"cut\.gz: "):
        load_idx_images(path)


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_finds_standard_names(tmp_path, gz):
    x_train, y_train = write_mnist(tmp_path, "train", 6, gz=gz)
    x_test, y_test = write_mnist(tmp_path, "t10k", 3, gz=gz)
    train, test = load_mnist(tmp_path, "train"), load_mnist(tmp_path, split="test")
    assert train.x.shape == (6, 1, 28, 28) and test.x.shape == (3, 1, 28, 28)
    np.testing.assert_array_equal(train.x[:, 0], x_train)
    np.testing.assert_array_equal(test.x[:, 0], x_test)
    np.testing.assert_array_equal(test.y, y_test)
    np.testing.assert_array_equal(train.y, y_train)
    assert train.class_names == [str(d) for d in range(10)]


def test_load_fashion_mnist_uses_clothing_class_names(tmp_path):
    write_mnist(tmp_path, "train", 2, gz=True)
    data = load_fashion_mnist(tmp_path)
    assert data.class_names == list(FASHION_MNIST_CLASSES) and data.class_names[9] == "Ankle boot"


def test_load_mnist_count_mismatch_names_both_files(tmp_path):
    write_mnist(tmp_path, "train", 4, gz=False)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_labels_bytes(np.array([1, 2, 3])))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: holds 4 images but "
                                        r"train-labels-idx1-ubyte holds 3 labels"):
        load_mnist(tmp_path)


def test_load_mnist_label_out_of_range_names_row(tmp_path):
    write_mnist(tmp_path, "train", 3, gz=False)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_labels_bytes(np.array([1, 12, 3])))
    with pytest.raises(DataError, match=r"label at row 1 is 12, expected 0\.\.9"):
        load_mnist(tmp_path)


def test_load_mnist_missing_files_and_bad_split(tmp_path):
    with pytest.raises(DataError, match=r"no t10k-images-idx3-ubyte or t10k-images-idx3-ubyte\.gz found"):
        load_mnist(tmp_path, "test")
    with pytest.raises(ConfigError, match=r"split must be 'train' or 'test', got 'val'"):
        load_mnist(tmp_path, "val")


# ---------------------------------------------------------------- CIFAR-10 binary


def cifar_records(n: int) -> tuple[np.ndarray, np.ndarray, bytes]:
    x = RNG.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
    y = RNG.integers(0, 10, size=n)
    records = np.concatenate([y.astype(np.uint8)[:, None], x.reshape(n, -1)], axis=1)
    return x, y, records.tobytes()


def test_cifar_binary_split_round_trip_with_meta_txt(tmp_path):
    root = tmp_path / "cifar-10-batches-bin"
    root.mkdir()
    xs, ys = [], []
    for i in range(1, 6):
        x, y, blob = cifar_records(i)
        (root / f"data_batch_{i}.bin").write_bytes(blob)
        xs.append(x)
        ys.append(y)
    x_test, y_test, blob = cifar_records(2)
    (root / "test_batch.bin").write_bytes(blob)
    names = [f"class{k}" for k in range(10)]
    (root / "batches.meta.txt").write_text("\n".join(names) + "\n\n")
    train = load_cifar10(tmp_path, "train")
    assert train.x.shape == (15, 3, 32, 32) and train.x.dtype == np.uint8 and train.y.dtype == np.int64
    np.testing.assert_array_equal(train.x, np.concatenate(xs))
    np.testing.assert_array_equal(train.y, np.concatenate(ys))
    assert train.class_names == names
    test = load_cifar10(root, "test")
    np.testing.assert_array_equal(test.x, x_test)
    np.testing.assert_array_equal(test.y, y_test)


def test_cifar_binary_record_layout_is_label_then_rgb_planes(tmp_path):
    record = bytes([7]) + bytes([1] * 1024 + [2] * 1024 + [3] * 1024)
    (tmp_path / "b.bin").write_bytes(record)
    x, y = load_cifar10_binary_batch(tmp_path / "b.bin")
    assert y.tolist() == [7]
    assert [int(x[0, c].min()) for c in range(3)] == [1, 2, 3] and x[0].max() == 3


def test_cifar_binary_truncated_batch_is_refused(tmp_path):
    _, _, blob = cifar_records(2)
    (tmp_path / "test_batch.bin").write_bytes(blob[:-1])
    with pytest.raises(DataError, match=r"batch\.bin: size 6145 bytes is not a positive multiple of 3073"):
        load_cifar10(tmp_path, "test")


def test_cifar_missing_batches_and_empty_folder(tmp_path):
    _, _, blob = cifar_records(1)
    (tmp_path / "data_batch_1.bin").write_bytes(blob)
    with pytest.raises(DataError, match=r"train split incomplete: missing data_batch_2\.bin, .*_5\.bin"):
        load_cifar10(tmp_path, "train")
    with pytest.raises(DataError, match=r"no CIFAR-10 batches found"):
        load_cifar10(tmp_path / "nothing-here", "train")


def test_cifar_binary_bad_label_names_record(tmp_path):
    record = bytes([10]) + bytes(3072)
    (tmp_path / "test_batch.bin").write_bytes(bytes([0]) + bytes(3072) + record)
    with pytest.raises(DataError, match=r"test_batch\.bin: label at row 1 is 10, expected 0\.\.9"):
        load_cifar10(tmp_path, "test")


# ---------------------------------------------------------------- CIFAR-10 python version


def write_python_batch(path: Path, x: np.ndarray, y: np.ndarray, protocol: int = 4) -> None:
    batch = {
        b"batch_label": b"testing batch 1 of 1",
        b"labels": [int(v) for v in y],
        b"data": x.reshape(len(x), -1),
        b"filenames": [f"img_{i}.png".encode() for i in range(len(x))],
    }
    path.write_bytes(pickle.dumps(batch, protocol=protocol))


def test_cifar_python_version_round_trip_with_meta(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    x, y, _ = cifar_records(4)
    write_python_batch(root / "test_batch", x, y)
    names = [n.encode() for n in CIFAR10_CLASSES[::-1]]
    meta = {b"num_cases_per_batch": 10000, b"label_names": names, b"num_vis": 3072}
    (root / "batches.meta").write_bytes(pickle.dumps(meta, protocol=4))
    data = load_cifar10(tmp_path, "test")
    assert data.x.shape == (4, 3, 32, 32) and data.x.dtype == np.uint8 and data.y.dtype == np.int64
    np.testing.assert_array_equal(data.x, x)
    np.testing.assert_array_equal(data.y, y)
    assert data.class_names == list(CIFAR10_CLASSES[::-1])


@pytest.mark.parametrize("protocol", [2, 3, 4])
def test_numpy_array_pickles_rebuild_across_protocols(tmp_path, protocol):
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    path = tmp_path / "arr"
    path.write_bytes(pickle.dumps({b"data": arr}, protocol=protocol))
    if protocol == 2:  # Python 3 writes bytes through _codecs.encode under protocol 2: a call we refuse
        with pytest.raises(DataError, match=r"refusing to unpickle _codecs\.encode"):
            load_restricted(path, max_bytes=10_000)
        return
    np.testing.assert_array_equal(load_restricted(path, max_bytes=10_000)[b"data"], arr)


def py2_str(b: bytes) -> bytes:
    return b"U" + bytes([len(b)]) + b  # SHORT_BINSTRING: how Python 2 wrote its str


def test_python2_style_batch_with_legacy_numpy_core_name_loads():
    # what cPickle.dump(batch, f, 2) wrote for {"data": uint8 array (2, 3), "labels": [1, 2]} under numpy 1.x
    blob = (b"\x80\x02}q\x00(" + py2_str(b"data")
            + b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + py2_str(b"b") + b"\x87R"
            + b"(K\x01K\x02K\x03\x86cnumpy\ndtype\n" + py2_str(b"u1") + b"K\x00K\x01\x87R"
            + b"(K\x03" + py2_str(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89"
            + py2_str(bytes(range(6))) + b"tb" + py2_str(b"labels") + b"]q\x01(K\x01K\x02eu.")
    d = RestrictedUnpickler(io.BytesIO(blob), source="py2").load()
    assert d[b"labels"] == [1, 2]
    np.testing.assert_array_equal(d[b"data"], np.arange(6, dtype=np.uint8).reshape(2, 3))
    assert d[b"data"].dtype == np.uint8


class Payload:
    """Unpickling this calls `record_call`, standing in for os.system in a hostile file."""

    def __reduce__(self):
        return (record_call, ("pwned",))


CALLS: list[str] = []


def record_call(arg: str) -> str:
    CALLS.append(arg)
    return arg


def test_hostile_pickle_is_refused_and_not_executed(tmp_path):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": Payload(), b"labels": []}, protocol=4))
    CALLS.clear()
    expected = (r"data_batch_1: refusing to unpickle (tests\.)?test_images\.record_call: "
                r"only plain containers, bytes and numpy arrays are allowed")
    with pytest.raises(DataError, match=expected):
        read_cifar_python_batch(path)
    assert CALLS == []
    pickle.loads(path.read_bytes())  # the same bytes do run the call under the plain unpickler
    assert CALLS == ["pwned"]


def test_os_system_reference_is_refused():
    blob = b"cos\nsystem\n(S'echo hacked'\ntR."  # protocol 0: os.system("echo hacked")
    with pytest.raises(DataError, match=r"src: refusing to unpickle os\.system"):
        RestrictedUnpickler(io.BytesIO(blob), source="src").load()


def test_array_reconstruct_with_huge_shape_is_refused(tmp_path):
    blob = (b"\x80\x04cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n"
            b"J\x00\xe4\x0bT\x85C\x01b\x87R.")  # _reconstruct(ndarray, (1_410_065_408,), b"b")
    path = tmp_path / "big"
    path.write_bytes(blob)
    with pytest.raises(DataError, match=r"big: refusing an array reconstruction .* shape \(1410065408,\)"):
        load_restricted(path, max_bytes=1000)


def test_restricted_load_checks_size_type_and_keys(tmp_path):
    path = tmp_path / "p"
    path.write_bytes(pickle.dumps([1, 2, 3], protocol=4))
    with pytest.raises(DataError, match=r"p: file is \d+ bytes, more than the 5 allowed"):
        load_restricted(path, max_bytes=5)
    with pytest.raises(DataError, match=r"p: expected a pickled dict, found list"):
        load_restricted(path, max_bytes=1000)
    path.write_bytes(pickle.dumps({b"labels": [1]}, protocol=4))
    with pytest.raises(DataError, match=r"p: missing key b'data'; found keys b'labels'"):
        load_restricted(path, max_bytes=1000, required={b"data": np.ndarray})
    path.write_bytes(b"not a pickle at all")
    with pytest.raises(DataError, match=r"p: not a valid pickle file"):
        load_restricted(path, max_bytes=1000)


def test_cifar_python_batch_validates_dtype_shape_and_labels(tmp_path):
    path = tmp_path / "test_batch"
    write_python_batch(path, np.zeros((2, 3, 32, 32), np.float32), np.array([0, 1]))
    with pytest.raises(DataError, match=r"b'data' should be a uint8 array of shape \(N, 3072\), found float"):
        read_cifar_python_batch(path)
    x, _, _ = cifar_records(2)
    write_python_batch(path, x, np.array([0, 1, 2]))
    with pytest.raises(DataError, match=r"b'labels' should be a list of 2 ints, found 3 items"):
        read_cifar_python_batch(path)
    write_python_batch(path, x, np.array([0, 11]))
    with pytest.raises(DataError, match=r"label at row 1 is 11, expected 0\.\.9"):
        read_cifar_python_batch(path)
