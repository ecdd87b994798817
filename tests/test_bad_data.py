"""Bad data files, as scikit-learn's `check_X_y` sees them, and arrays too large for memory: each ends in one
`DataError` (exit 3) that names the file and what is wrong, before anything large is allocated."""

from __future__ import annotations

import io
import re
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mlcli.data import limits
from mlcli.data.formats import load_csv, load_npz
from mlcli.data.images import load_idx_images
from mlcli.data.validate import check_dataset
from mlcli.errors import DataError


def npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def npy_bytes(shape: tuple[int, ...], descr: str = "<f8", data: bytes = b"") -> bytes:
    f = io.BytesIO()
    np.lib.format.write_array_header_1_0(f, {"descr": descr, "fortran_order": False, "shape": shape})
    return f.getvalue() + data


def raw_npz(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


# ------------------------------------------------------------------------------ what check_X_y checks


@pytest.mark.parametrize(("x", "hint"), [(np.zeros(6), ""), (np.zeros((6, 4, 4)), "add a channel axis")])
def test_npz_features_must_be_rows_or_images(tmp_path, x, hint):
    with pytest.raises(DataError, match=rf"x must have shape \(N, D\) .*found shape {re.escape(str(x.shape))}.*{hint}"):
        load_npz(npz(tmp_path / "d.npz", x=x, y=np.arange(6) % 2), task="classification")


def test_a_single_class_is_refused_with_a_next_step(tmp_path):
    ds = load_npz(npz(tmp_path / "d.npz", x=np.zeros((4, 2)), y=np.full(4, 7)), task="classification")
    with pytest.raises(DataError, match=r"d.npz: classification needs at least 2 classes; found 1 \('7'\); "
                                        r"use more data or task: regression"):
        check_dataset(ds)


def test_integral_float_labels_are_cast_and_non_integral_ones_refused(tmp_path):
    ds = load_npz(npz(tmp_path / "ok.npz", x=np.zeros((3, 2)), y=np.array([1.0, 0.0, 1.0])), task="classification")
    assert ds.y.dtype == np.int64 and ds.y.tolist() == [1, 0, 1] and ds.class_names == ["0", "1"]
    with pytest.raises(DataError, match=r"sample 1 has label 0.5; .*for numeric targets use task: regression"):
        load_npz(npz(tmp_path / "bad.npz", x=np.zeros((3, 2)), y=np.array([1.0, 0.5, 1.0])), task="classification")
    ds = load_csv(csv(tmp_path / "ok.csv", "a,y\n1,2.0\n2,1.0\n"), label_column="y", task="classification")
    assert ds.y.tolist() == [1, 0] and ds.class_names == ["1", "2"]
    with pytest.raises(DataError, match=r"row 3, column 'y': class label '1.5' is not an integer; .*task: regression"):
        load_csv(csv(tmp_path / "bad.csv", "a,y\n1,2.0\n2,1.5\n"), label_column="y", task="classification")


def test_labels_not_numbered_from_zero_are_mapped_and_their_names_recorded(tmp_path):
    ds = load_npz(npz(tmp_path / "d.npz", x=np.zeros((4, 1)), y=np.array([9, 3, 7, 3])), task="classification")
    assert ds.y.tolist() == [2, 0, 1, 0] and ds.class_names == ["3", "7", "9"]
    ds = load_csv(csv(tmp_path / "d.csv", "a,y\n1,cat\n2,ant\n3,cat\n"), label_column="y", task="classification")
    assert ds.y.tolist() == [1, 0, 1] and ds.class_names == ["ant", "cat"]


def test_empty_files_are_refused(tmp_path):
    (tmp_path / "e.npz").write_bytes(b"")
    with pytest.raises(DataError, match=r"e.npz: file is empty"):
        load_npz(tmp_path / "e.npz", task="classification")
    with pytest.raises(DataError, match=r"e.csv: file is empty"):
        load_csv(csv(tmp_path / "e.csv", "\n\n"), label_column="y", task="classification")


def test_header_only_csv_is_refused(tmp_path):
    with pytest.raises(DataError, match=r"h.csv: has a header row but no data rows"):
        load_csv(csv(tmp_path / "h.csv", "a,b,y\n"), label_column="y", task="classification")


def test_non_numeric_cell_names_row_and_column(tmp_path):
    path = csv(tmp_path / "d.csv", "a,b,y\n1,2,0\n3,4,1\n5,x5,0\n6,y6,1\n")
    with pytest.raises(DataError, match=r"d.csv: row 4, column 'b': expected a number, found 'x5'"):
        load_csv(path, label_column="y", task="classification")


def test_first_bad_cell_is_the_first_in_file_order(tmp_path):
    path = csv(tmp_path / "d.csv", "a,b,y\n1,2,0\n3,oops,1\nbad,4,0\n")
    with pytest.raises(DataError, match=r"row 3, column 'b': expected a number, found 'oops'"):
        load_csv(path, label_column="y", task="regression")


# ------------------------------------------------------------------------- sizes declared in headers


def test_npz_array_too_large_for_memory_is_refused_from_its_header(tmp_path):
    path = raw_npz(tmp_path / "huge.npz", {"x.npy": npy_bytes((10**7, 10**7)), "y.npy": npy_bytes((2,), "<i8")})
    with pytest.raises(DataError, match=r"huge.npz: array 'x' of shape \(10000000, 10000000\) float64 would need "
                                        r"[0-9.]+ PiB \(\d+ bytes\) in memory, more than the .* available"):
        load_npz(path, task="classification")


def test_npz_budget_counts_the_float64_copy(tmp_path):
    path = npz(tmp_path / "d.npz", x=np.zeros((10, 10), np.uint8), y=np.arange(10) % 2)
    load_npz(path, task="classification", budget=900)  # 100 bytes stored + 800 as float64
    with pytest.raises(DataError, match=r"array 'x' of shape \(10, 10\) uint8 would need 900 bytes"):
        load_npz(path, task="classification", budget=899)


def test_npz_member_shorter_than_its_header_says_is_refused(tmp_path):
    path = raw_npz(tmp_path / "t.npz", {"x.npy": npy_bytes((100, 4), data=b"\0" * 16), "y.npy": npy_bytes((0,))})
    with pytest.raises(DataError, match=r"array 'x': shape \(100, 4\) float64 needs 3200 bytes but its member"):
        load_npz(path, task="classification")


@pytest.mark.parametrize(("members", "message"), [
    ({"x": b"not an npy", "y.npy": npy_bytes((0,))}, r"member 'x' is not a .npy array"),
    ({"x.npy": b"\x93NUMPY\x01\x00\x10\x00{'descr': <f8}    \n", "y.npy": b""}, r"array 'x' has an unreadable"),
    ({"x.npy": npy_bytes((2,), "|O"), "y.npy": npy_bytes((0,))}, r"array 'x' is an object array"),
])
def test_npz_members_that_are_not_plain_arrays_are_refused(tmp_path, members, message):
    with pytest.raises(DataError, match=message):
        load_npz(raw_npz(tmp_path / "m.npz", members), task="classification")


def test_single_npy_file_is_refused_without_reading_it(tmp_path):
    (tmp_path / "a.npz").write_bytes(npy_bytes((10**9, 10**9)))
    with pytest.raises(DataError, match=r"a.npz: holds a single .npy array"):
        load_npz(tmp_path / "a.npz", task="classification")


def test_idx_images_over_the_memory_budget_are_refused_naming_the_size(tmp_path, monkeypatch):
    path = tmp_path / "img"
    path.write_bytes(struct.pack(">4I", 2051, 2, 28, 28) + bytes(2 * 28 * 28))
    assert load_idx_images(path).shape == (2, 1, 28, 28)
    monkeypatch.setattr(limits, "memory_budget", lambda: 10_000)
    with pytest.raises(DataError, match=r"img: IDX images of dims \(2, 28, 28\) would need 13.8 KiB \(14112 bytes\)"):
        load_idx_images(path)


def test_memory_budget_follows_rlimit_as():
    resource = pytest.importorskip("resource")
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = 1 << 40 if hard == resource.RLIM_INFINITY else hard
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        assert limits.memory_budget() <= cap
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
