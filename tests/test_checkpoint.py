"""Checkpoints: round trip, atomic writes, and a one-line CheckpointError for every hostile or broken file."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import tracemalloc
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

import mlcli
from mlcli.errors import CheckpointError, RunIOError
from mlcli.runs import checkpoint as ckpt
from mlcli.runs.atomic import atomic_write_bytes, atomic_write_text
from mlcli.runs.checkpoint import load_checkpoint, save_checkpoint

MODEL_TYPES = {"mlp", "knn"}


def make_arrays() -> dict[str, np.ndarray]:
    return {
        "model.0.linear.W": np.arange(6, dtype=np.float32).reshape(3, 2) / 7,
        "model.0.linear.b": np.array([1.5, -2.0, 0.25], dtype=np.float32),
        "prep.mean": np.array([0.1, 0.2], dtype=np.float64),
        "data.X": np.arange(10, dtype=np.int64).reshape(5, 2),
    }


def expect(meta: dict) -> dict:
    """Expected arrays of the test 'model': fixed shapes, plus training rows of any count and dtype (KNN)."""
    hidden = meta["model"]["hidden"]
    return {
        "model.0.linear.W": ("float32", (hidden, 2)),
        "model.0.linear.b": ("float32", (hidden,)),
        "prep.mean": ("float64", (2,)),
        "data.X": (None, (None, 2)),
    }


def load(path: Path, **kwargs):
    return load_checkpoint(
        path, expect=kwargs.pop("expect", expect), allowed_model_types=MODEL_TYPES, **kwargs
    )


def error_of(path: Path, **kwargs) -> str:
    with pytest.raises(CheckpointError) as info:
        load(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    return message[len(f"{path}: ") :]


@pytest.fixture
def good(tmp_path: Path) -> Path:
    path = tmp_path / "best.npz"
    save_checkpoint(path, {"model_type": "mlp", "model": {"hidden": 3}, "epoch": 4}, make_arrays())
    return path


def read_members(path: Path) -> list[list]:
    with zipfile.ZipFile(path) as zf:
        return [[info.filename, zf.read(info)] for info in zf.infolist()]


def write_members(path: Path, members: list[list], compress_type: int = zipfile.ZIP_STORED) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate names some tests write on purpose
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in members:
                zf.writestr(name, data, compress_type=compress_type)


def edit_meta(path: Path, change) -> None:
    members = read_members(path)
    meta = json.loads(members[0][1])
    change(meta)
    members[0][1] = json.dumps(meta).encode()
    write_members(path, members)


def npy_bytes(arr: np.ndarray, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def test_round_trip_keeps_values_dtypes_shapes_and_records_sha256(good: Path):
    meta, arrays = load(good)
    assert meta["model_type"] == "mlp" and meta["epoch"] == 4 and meta["model"] == {"hidden": 3}
    assert meta["format"] == "mlcli-checkpoint" and meta["format_version"] == 1
    assert meta["mlcli_version"] == mlcli.__version__
    for name, original in make_arrays().items():
        assert arrays[name].dtype == original.dtype and arrays[name].shape == original.shape
        np.testing.assert_array_equal(arrays[name], original)
        assert meta["arrays"][name] == {
            "dtype": original.dtype.name,
            "shape": list(original.shape),
            "sha256": hashlib.sha256(original.tobytes(order="C")).hexdigest(),
        }
    arrays["prep.mean"][0] = 5.0  # loaded arrays are ordinary writable arrays


def test_round_trip_of_every_allowed_dtype_and_odd_layouts(tmp_path: Path):
    arrays = {
        "f32": np.ones((2, 3), np.float32),
        "f64": np.zeros(0),
        "i32": np.array(-7, np.int32),
        "u8": np.arange(256, dtype=np.uint8),
        "b": np.array([True, False]),
        "t": np.arange(6, dtype=np.int64).reshape(2, 3).T,  # not C-contiguous
        "be": np.arange(3, dtype=">f8"),  # big-endian is stored in native order
    }
    path = tmp_path / "all.npz"
    save_checkpoint(path, {"model_type": "knn"}, arrays)
    specs = {name: (None, tuple(a.shape)) for name, a in arrays.items()}
    _, loaded = load_checkpoint(path, expect=lambda meta: specs, allowed_model_types={"knn"})
    for name, original in arrays.items():
        np.testing.assert_array_equal(loaded[name], original)
        assert loaded[name].dtype == original.dtype.newbyteorder("=")
    assert loaded["t"].flags.c_contiguous


def test_file_layout_is_stored_members_meta_first_and_deterministic(good: Path, tmp_path: Path):
    with zipfile.ZipFile(good) as zf:
        infos = zf.infolist()
    assert infos[0].filename == "meta.json"
    assert [i.filename for i in infos[1:]] == [f"{n}.npy" for n in make_arrays()]
    assert {i.compress_type for i in infos} == {zipfile.ZIP_STORED}
    again = tmp_path / "again.npz"
    save_checkpoint(again, {"model_type": "mlp", "model": {"hidden": 3}, "epoch": 4}, make_arrays())
    assert again.read_bytes() == good.read_bytes()


def test_missing_directory_and_size_limit(good: Path, tmp_path: Path):
    assert error_of(tmp_path / "nope.npz") == "no such checkpoint file"
    assert error_of(tmp_path) == "not a regular file"
    size = good.stat().st_size
    assert error_of(good, max_bytes=size - 1) == f"file is {size} bytes, more than the limit of {size - 1}"


def test_truncated_file(good: Path):
    good.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert error_of(good).startswith("corrupt or truncated zip (")


@pytest.mark.parametrize("content", [os.urandom(2000), b"model_type: mlp\nweights: [1, 2]\n", b""])
def test_not_a_zip(tmp_path: Path, content: bytes):
    path = tmp_path / "x.npz"
    path.write_bytes(content.replace(b"PK", b"pk"))
    assert error_of(path) == "not a zip archive (an mlcli checkpoint is a .npz file)"


class Bomb:
    """Unpickling an instance would call `record` and leave a trace in CALLS."""

    def __reduce__(self):
        return (record, ("unpickled",))


CALLS: list[str] = []


def record(what: str) -> str:
    CALLS.append(what)
    return what


def test_object_array_member_is_refused_without_unpickling(good: Path):
    members = read_members(good)
    objects = np.array([Bomb(), Bomb()], dtype=object)
    members[3][1] = npy_bytes(objects, allow_pickle=True)  # prep.mean.npy, declared float64 (2,)
    write_members(good, members)
    assert error_of(good) == (
        "member 'prep.mean.npy' holds Python objects (dtype object); refusing to unpickle"
    )
    edit_meta(good, lambda m: m["arrays"]["prep.mean"].update(dtype="object"))
    assert error_of(good) == (
        "meta.json: arrays['prep.mean']: dtype 'object' is not allowed; allowed: "
        "float32, float64, int64, int32, uint8, bool"
    )
    assert CALLS == []


def test_declared_huge_shape_fails_fast_without_allocating(good: Path):
    edit_meta(good, lambda m: m["arrays"]["data.X"].update(shape=[10**12, 2]))
    tracemalloc.start()
    try:
        message = error_of(good)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert message.startswith(
        "array 'data.X': shape (1000000000000, 2) needs 16000000000000 bytes but its member"
    )
    assert peak < 2_000_000


def test_npy_header_with_a_huge_shape_must_match_meta(good: Path):
    members = read_members(good)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<i8", "fortran_order": False, "shape": (10**12, 2)}
    )
    members[4][1] = header.getvalue() + b"\0" * 80
    write_members(good, members)
    tracemalloc.start()
    try:
        message = error_of(good)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert message == (
        "member 'data.X.npy': npy header says dtype <i8 shape (1000000000000, 2), meta.json says int64 (5, 2)"
    )
    assert peak < 2_000_000


@pytest.mark.parametrize("name", ["../evil.npy", "/abs.npy", "sub/model.npy", "evil.txt", ".hidden.npy"])
def test_oddly_named_member(good: Path, name: str):
    write_members(good, [*read_members(good), [name, npy_bytes(np.zeros(2))]])
    assert error_of(good) == (
        f"unexpected member {name!r} (expected 'meta.json' and '<array name>.npy' members)"
    )


def test_duplicate_member(good: Path):
    members = read_members(good)
    write_members(good, [*members, members[1]])
    assert error_of(good) == "duplicate member 'model.0.linear.W.npy'"


def test_deflated_member(good: Path):
    write_members(good, read_members(good), compress_type=zipfile.ZIP_DEFLATED)
    assert error_of(good) == "member 'meta.json' is compressed (method 8); only STORED is allowed"


def test_sha256_mismatch_with_a_consistent_zip(good: Path):
    members = read_members(good)
    data = bytearray(members[2][1])
    data[-1] ^= 0x01  # last byte of model.0.linear.b's data
    members[2][1] = bytes(data)
    write_members(good, members)  # zipfile computes a fresh, matching CRC
    assert error_of(good) == "array 'model.0.linear.b': sha256 mismatch (the data is corrupt or was modified)"


def test_flipped_byte_in_the_file_is_caught(good: Path):
    raw = bytearray(good.read_bytes())
    at = raw.index(np.array([1.5, -2.0, 0.25], dtype=np.float32).tobytes())
    raw[at] ^= 0x40
    good.write_bytes(bytes(raw))
    assert error_of(good).startswith("corrupt zip archive: Bad CRC-32 for file 'model.0.linear.b.npy'")


def test_missing_and_unexpected_arrays_against_expect(good: Path):
    members = read_members(good)
    write_members(good, [m for m in members if m[0] != "prep.mean.npy"])
    assert error_of(good) == "arrays declared in meta.json without a member: prep.mean"
    write_members(good, [*members, ["extra.npy", npy_bytes(np.zeros(2))]])
    assert error_of(good) == "members not declared in meta.json: extra.npy"

    def without_mean(meta):
        return {k: v for k, v in expect(meta).items() if k != "prep.mean"}

    def with_std(meta):
        return {**expect(meta), "prep.std": ("float64", (2,))}

    write_members(good, members)
    assert error_of(good, expect=without_mean) == (
        "unexpected arrays prep.mean (compared with what the model described in meta.json needs)"
    )
    assert error_of(good, expect=with_std) == (
        "missing arrays prep.std (compared with what the model described in meta.json needs)"
    )


def test_declared_dtype_and_shape_must_match_expect(good: Path):
    members = read_members(good)
    edit_meta(good, lambda m: m["model"].update(hidden=4))
    assert error_of(good) == "array 'model.0.linear.W': expected shape (4, 2), found (3, 2)"
    write_members(good, members)
    edit_meta(good, lambda m: m["arrays"]["prep.mean"].update(dtype="float32"))
    assert error_of(good) == "array 'prep.mean': expected dtype float64, found float32"


def test_npy_header_must_repeat_meta_and_be_c_order(good: Path):
    original = read_members(good)
    members = [list(m) for m in original]
    members[2][1] = npy_bytes(np.array([1.5, -2.0, 0.25], dtype=np.float64))
    write_members(good, members)
    assert error_of(good) == (
        "member 'model.0.linear.b.npy': npy header says dtype <f8 shape (3,), meta.json says float32 (3,)"
    )
    members = [list(m) for m in original]
    members[1][1] = npy_bytes(np.asfortranarray(make_arrays()["model.0.linear.W"]))
    write_members(good, members)
    assert error_of(good) == "member 'model.0.linear.W.npy' is in Fortran order; expected C order"


def test_unknown_model_type(good: Path):
    edit_meta(good, lambda m: m.update(model_type="builtins.eval"))
    assert error_of(good) == "meta.json: unknown model_type 'builtins.eval'; expected one of knn, mlp"


def test_meta_that_does_not_describe_the_model_is_a_checkpoint_error(good: Path):
    edit_meta(good, lambda m: m.pop("model"))
    assert error_of(good) == "meta.json does not describe a valid 'mlp' model: KeyError: 'model'"

    def refuse(meta):
        raise CheckpointError("model.hidden must be\na positive int")

    assert error_of(good, expect=refuse) == "meta.json: model.hidden must be a positive int"


@pytest.mark.parametrize(
    ("meta_bytes", "expected"),
    [
        (b"{not json", "meta.json is not valid JSON: Expecting property name enclosed in double quotes"),
        (b'{"epoch": NaN}', "meta.json is not valid JSON: non-standard JSON constant NaN"),
        (b'{"a": 1, "a": 2}', "meta.json is not valid JSON: duplicate key 'a'"),
        (b"[1, 2]", "meta.json must be a JSON object, found list"),
        (b"\xff\xfe", "meta.json is not valid JSON: 'utf-8' codec can't decode"),
        (b"[" * 100_000 + b"]" * 100_000, "meta.json is not valid JSON: maximum recursion depth exceeded"),
    ],
)
def test_meta_json_must_be_strict_json(good: Path, meta_bytes: bytes, expected: str):
    members = read_members(good)
    members[0][1] = meta_bytes
    write_members(good, members)
    assert error_of(good).startswith(expected)


def test_meta_json_over_one_mib(good: Path):
    members = read_members(good)
    members[0][1] = b" " * (ckpt.MAX_META_BYTES + 1)
    write_members(good, members)
    assert error_of(good) == f"meta.json is {ckpt.MAX_META_BYTES + 1} bytes, more than the limit of 1048576"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda m: m.update(format="pickle"), "meta.json: format must be 'mlcli-checkpoint', found 'pickle'"),
        (
            lambda m: m.update(format_version=True),
            "meta.json: format_version must be a positive integer, found True",
        ),
        (lambda m: m.update(mlcli_version=2), "meta.json: mlcli_version must be a string, found 2"),
        (
            lambda m: m["arrays"]["prep.mean"].update(shape=[-2]),
            "meta.json: arrays['prep.mean']: shape must be a list of non-negative integers, found [-2]",
        ),
        (
            lambda m: m["arrays"]["prep.mean"].update(sha256="abc"),
            "meta.json: arrays['prep.mean']: sha256 must be 64 lowercase hex digits, found 'abc'",
        ),
        (
            lambda m: m["arrays"]["prep.mean"].update(code="os.system"),
            "meta.json: arrays['prep.mean'] must be an object with exactly dtype, shape, sha256; found",
        ),
    ],
)
def test_meta_schema_is_strict(good: Path, change, expected: str):
    edit_meta(good, change)
    assert error_of(good).startswith(expected)


def test_newer_format_version(good: Path):
    edit_meta(good, lambda m: m.update(format_version=2, mlcli_version="9.0.0"))
    assert error_of(good) == (
        f"written by a newer mlcli (format_version 2, mlcli '9.0.0'); this mlcli {mlcli.__version__} "
        "reads format_version 1: upgrade mlcli"
    )


def test_save_refuses_what_it_could_not_load(tmp_path: Path):
    path = tmp_path / "c.npz"
    with pytest.raises(ValueError, match=r"checkpoint array name '\.\./x' does not match"):
        save_checkpoint(path, {"model_type": "mlp"}, {"../x": np.zeros(1)})
    with pytest.raises(ValueError, match=r"checkpoint array 'w' has dtype float16; allowed: float32"):
        save_checkpoint(path, {"model_type": "mlp"}, {"w": np.zeros(1, np.float16)})
    with pytest.raises(ValueError, match=r"checkpoint meta is not strict JSON: Out of range float"):
        save_checkpoint(path, {"model_type": "mlp", "loss": float("nan")}, {})
    with pytest.raises(TypeError, match="model_type"):
        save_checkpoint(path, {}, {})
    assert list(tmp_path.iterdir()) == []


def test_write_is_atomic_when_it_fails_midway(good: Path, monkeypatch: pytest.MonkeyPatch):
    before = good.read_bytes()
    real_write_array = np.lib.format.write_array
    calls = []

    def write_then_fail(f, arr, **kwargs):
        calls.append(arr.shape)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write_array(f, arr, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", write_then_fail)
    with pytest.raises(RunIOError, match=rf"^{good}: cannot write: No space left on device$"):
        save_checkpoint(good, {"model_type": "mlp", "model": {"hidden": 3}, "epoch": 9}, make_arrays())
    assert len(calls) == 3
    assert good.read_bytes() == before
    assert [p.name for p in good.parent.iterdir()] == ["best.npz"]
    assert load(good)[0]["epoch"] == 4


def test_non_io_failure_midway_also_leaves_no_temp_file(good: Path, monkeypatch: pytest.MonkeyPatch):
    def boom(f, arr, **kwargs):
        f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(np.lib.format, "write_array", boom)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(good, {"model_type": "mlp"}, make_arrays())
    assert [p.name for p in good.parent.iterdir()] == ["best.npz"]
    assert load(good)[0]["epoch"] == 4


def test_atomic_write_replaces_content_and_names_the_path_on_failure(tmp_path: Path):
    path = tmp_path / "summary.json"
    atomic_write_text(path, "{}\n")
    atomic_write_text(path, '{"best": 0.9}\n')
    assert path.read_text() == '{"best": 0.9}\n'
    atomic_write_bytes(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    missing = tmp_path / "no" / "dir" / "x.npz"
    with pytest.raises(
        RunIOError, match=rf"^{missing}: cannot create a file in {missing.parent}: No such file"
    ):
        atomic_write_bytes(missing, b"x")
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_unwritable_directory_raises_run_io_error(tmp_path: Path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running with privileges that can write to a read-only directory (root)")
        with pytest.raises(
            RunIOError, match=rf"^{locked / 'c.npz'}: cannot create a file in .*Permission denied"
        ):
            save_checkpoint(locked / "c.npz", {"model_type": "mlp"}, make_arrays())
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


def test_replace_failure_is_run_io_error_and_cleans_up(tmp_path: Path):
    target = tmp_path / "last.npz"
    target.mkdir()  # os.replace of a file onto a directory fails
    with pytest.raises(RunIOError, match=rf"^{target}: cannot write: Is a directory$"):
        atomic_write_bytes(target, b"data")
    assert [p.name for p in tmp_path.iterdir()] == ["last.npz"]


def test_array_data_is_read_in_chunks(good: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(ckpt, "_READ_CHUNK", 5)
    _, arrays = load(good)
    for name, original in make_arrays().items():
        np.testing.assert_array_equal(arrays[name], original)


def test_member_with_trailing_bytes(good: Path):
    members = read_members(good)
    members[3][1] += b"\0" * 8
    write_members(good, members)
    assert error_of(good) == "member 'prep.mean.npy' has bytes after its 16 data bytes"


def test_member_shorter_than_its_header_says(good: Path):
    members = read_members(good)
    full = members[4][1]  # data.X: (5, 2) int64, a 128-byte npy header and 80 data bytes
    members[4][1] = full[:-8]
    write_members(good, members)
    assert error_of(good) == "member 'data.X.npy' is truncated: 72 of 80 data bytes"
    members[4][1] = full[:40]
    write_members(good, members)
    assert error_of(good) == "array 'data.X': shape (5, 2) needs 80 bytes but its member holds 40"
