"""Checkpoint reader and writer limits the hostile-file tests of test_checkpoint.py leave open: an archive with no
meta.json, member sizes that disagree with the data, the meta.json size limit on both sides, a truncated member
(which must fail, not loop: pytest-timeout turns a hang into a failure)."""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mlcli.errors import CheckpointError
from mlcli.runs import checkpoint as ckpt
from mlcli.runs.checkpoint import load_checkpoint, save_checkpoint

ARRAYS = {"w": np.arange(6, dtype=np.float64).reshape(2, 3), "b": np.array([1.0, -1.0])}


def expect(meta: dict) -> dict:
    return {"w": ("float64", (2, 3)), "b": ("float64", (2,))}


def error_of(path: Path) -> str:
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, expect=expect, allowed_model_types={"mlp"})
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    return message[len(f"{path}: "):]


@pytest.fixture
def good(tmp_path: Path) -> Path:
    path = tmp_path / "last.npz"
    save_checkpoint(path, {"model_type": "mlp"}, ARRAYS)
    return path


def members_of(path: Path) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(path) as zf:
        return [(info.filename, zf.read(info)) for info in zf.infolist()]


def rewrite(path: Path, members: list[tuple[str, bytes]]) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in members:
            zf.writestr(name, data)


def patch_central_sizes(path: Path, member: str, *, compressed: int | None = None, size: int | None = None) -> None:
    """Overwrite the sizes the central directory records for `member` (what `zipfile` trusts)."""
    raw = bytearray(path.read_bytes())
    start = raw.find(b"PK\x01\x02")
    while start != -1:
        name_len = struct.unpack_from("<H", raw, start + 28)[0]
        if raw[start + 46:start + 46 + name_len] == member.encode():
            if compressed is not None:
                struct.pack_into("<I", raw, start + 20, compressed)
            if size is not None:
                struct.pack_into("<I", raw, start + 24, size)
            path.write_bytes(bytes(raw))
            return
        start = raw.find(b"PK\x01\x02", start + 4)
    raise AssertionError(f"no central directory entry for {member}")


def test_round_trip(good: Path):
    meta, arrays = load_checkpoint(good, expect=expect, allowed_model_types={"mlp"})
    assert meta["model_type"] == "mlp"
    for name, a in ARRAYS.items():
        np.testing.assert_array_equal(arrays[name], a)


def test_archive_without_meta_json_is_a_checkpoint_error(good: Path):
    rewrite(good, [m for m in members_of(good) if m[0] != "meta.json"])
    assert error_of(good) == "no meta.json member"


def test_member_whose_stored_size_disagrees_with_its_size_is_refused(good: Path):
    size = dict((n, len(d)) for n, d in members_of(good))["w.npy"]
    patch_central_sizes(good, "w.npy", size=size - 8)
    assert error_of(good) == f"member 'w.npy' declares {size} stored bytes for {size - 8} bytes"


def test_member_declaring_more_bytes_than_the_archive_is_refused(good: Path):
    archive = good.stat().st_size
    patch_central_sizes(good, "w.npy", compressed=archive + 1, size=archive + 1)
    assert error_of(good) == f"member 'w.npy' declares {archive + 1} bytes in an archive of {archive}"


def test_member_as_large_as_the_archive_passes_the_size_check(good: Path):
    """The bound is `file_size > archive size`: a member of exactly the archive's size is not refused for it
    (it fails later, on its data)."""
    archive = good.stat().st_size
    patch_central_sizes(good, "w.npy", compressed=archive, size=archive)
    assert "declares" not in error_of(good)


def test_truncated_member_fails_instead_of_looping(good: Path):
    """A member whose npy header promises more data than the member holds, by less than the header's size (so the
    declared-size check passes): the chunked reader must stop at the member's end."""
    members = dict(members_of(good))
    meta = json.loads(members["meta.json"])
    meta["arrays"]["b"]["shape"] = [4]
    header_len = len(members["b.npy"]) - 16
    members["b.npy"] = members["b.npy"].replace(b"(2,)", b"(4,)", 1)
    assert len(members["b.npy"]) == header_len + 16 and header_len >= 16

    def expect4(_meta):
        return {"w": ("float64", (2, 3)), "b": ("float64", (4,))}

    members["meta.json"] = json.dumps(meta).encode()
    rewrite(good, list(members.items()))
    with pytest.raises(CheckpointError, match="member 'b.npy' is truncated: 16 of 32 data bytes"):
        load_checkpoint(good, expect=expect4, allowed_model_types={"mlp"})


def meta_size(path: Path) -> int:
    with zipfile.ZipFile(path) as zf:
        return zf.getinfo("meta.json").file_size


def test_meta_json_of_exactly_the_limit_is_written_and_read(tmp_path: Path):
    path = tmp_path / "big.npz"
    save_checkpoint(path, {"model_type": "mlp", "note": ""}, ARRAYS)
    pad = ckpt.MAX_META_BYTES - meta_size(path)
    save_checkpoint(path, {"model_type": "mlp", "note": "x" * pad}, ARRAYS)
    assert meta_size(path) == ckpt.MAX_META_BYTES
    meta, _ = load_checkpoint(path, expect=expect, allowed_model_types={"mlp"})
    assert len(meta["note"]) == pad


def test_meta_json_over_the_limit_cannot_be_written(tmp_path: Path):
    """The writer refuses what the reader would refuse, before creating the file."""
    path = tmp_path / "big.npz"
    save_checkpoint(path, {"model_type": "mlp", "note": ""}, ARRAYS)
    pad = ckpt.MAX_META_BYTES - meta_size(path) + 1
    path.unlink()
    with pytest.raises(ValueError, match=f"meta.json would be {ckpt.MAX_META_BYTES + 1} bytes; the limit is"):
        save_checkpoint(path, {"model_type": "mlp", "note": "x" * pad}, ARRAYS)
    assert not path.exists()


def test_meta_json_over_the_limit_is_not_read(good: Path):
    members = members_of(good)
    meta = json.loads(members[0][1])
    meta["note"] = "x" * ckpt.MAX_META_BYTES
    rewrite(good, [("meta.json", json.dumps(meta).encode()), *members[1:]])
    assert error_of(good).startswith("meta.json is ")
    assert "more than the limit of 1048576" in error_of(good)


def npy(arr: np.ndarray, version: tuple[int, int] | None = None) -> bytes:
    import io

    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, version=version, allow_pickle=False)
    return buf.getvalue()


def test_file_of_exactly_max_bytes_is_read(good: Path):
    size = good.stat().st_size
    load_checkpoint(good, expect=expect, allowed_model_types={"mlp"}, max_bytes=size)
    with pytest.raises(CheckpointError, match=f"file is {size} bytes, more than the limit of {size - 1}"):
        load_checkpoint(good, expect=expect, allowed_model_types={"mlp"}, max_bytes=size - 1)


def test_non_ascii_meta_round_trips(tmp_path: Path):
    path = tmp_path / "u.npz"
    save_checkpoint(path, {"model_type": "mlp", "name": "réseau-Δ"}, ARRAYS)
    meta, _ = load_checkpoint(path, expect=expect, allowed_model_types={"mlp"})
    assert meta["name"] == "réseau-Δ"


def test_an_os_error_while_reading_is_a_checkpoint_error(good: Path, monkeypatch: pytest.MonkeyPatch):
    def broken(*args, **kwargs):
        raise OSError("the disk went away")

    monkeypatch.setattr(zipfile.ZipFile, "open", broken)
    with pytest.raises(CheckpointError, match="cannot read: OSError: the disk went away"):
        load_checkpoint(good, expect=expect, allowed_model_types={"mlp"})


@pytest.mark.parametrize("name", ["weights$.npy", "w b.npy", "wéight.npy"])
def test_member_with_a_bad_character_after_the_fourth_is_refused(good: Path, name: str):
    rewrite(good, [*members_of(good), (name, npy(np.zeros(2)))])
    assert error_of(good).startswith(f"unexpected member {name!r}")


def test_encrypted_member_is_refused(good: Path):
    raw = bytearray(good.read_bytes())
    start = raw.find(b"PK\x01\x02")
    while raw[start + 46:start + 46 + 5] != b"w.npy":
        start = raw.find(b"PK\x01\x02", start + 4)
    struct.pack_into("<H", raw, start + 8, struct.unpack_from("<H", raw, start + 8)[0] | 0x1)
    good.write_bytes(bytes(raw))
    assert error_of(good) == "member 'w.npy' is encrypted"


def test_duplicate_key_is_named(good: Path):
    members = members_of(good)
    rewrite(good, [("meta.json", b'{"b": 1, "a": 2, "a": 3}'), *members[1:]])
    assert error_of(good) == "meta.json is not valid JSON: duplicate key 'a'"


def edit_meta(path: Path, change) -> None:
    members = members_of(path)
    meta = json.loads(members[0][1])
    change(meta)
    rewrite(path, [("meta.json", json.dumps(meta).encode()), *members[1:]])


def test_array_table_must_be_an_object(good: Path):
    edit_meta(good, lambda m: m.update(arrays=[]))
    assert error_of(good).startswith("meta.json: arrays must be an object of name -> {dtype, shape, sha256}")


def test_array_table_names_are_checked(good: Path):
    edit_meta(good, lambda m: m["arrays"].update({"../x": m["arrays"]["b"]}))
    assert error_of(good) == "meta.json: arrays['../x']: invalid array name"


def test_an_expect_error_that_names_the_path_is_not_prefixed_twice(good: Path):
    def refuse(meta):
        raise CheckpointError(f"{good}: this model\nneeds more")

    with pytest.raises(CheckpointError) as info:
        load_checkpoint(good, expect=refuse, allowed_model_types={"mlp"})
    assert str(info.value) == f"{good}: this model needs more"


def test_npy_format_2_members_are_read(good: Path):
    members = dict(members_of(good))
    members["w.npy"] = npy(ARRAYS["w"], version=(2, 0))
    rewrite(good, list(members.items()))
    _, arrays = load_checkpoint(good, expect=expect, allowed_model_types={"mlp"})
    np.testing.assert_array_equal(arrays["w"], ARRAYS["w"])


def test_npy_format_3_members_are_refused(good: Path):
    members = dict(members_of(good))
    members["w.npy"] = npy(ARRAYS["w"], version=(3, 0))
    rewrite(good, list(members.items()))
    assert error_of(good) == "member 'w.npy' has .npy format version (3, 0); expected 1.0 or 2.0"


def test_member_that_is_not_npy_is_refused(good: Path):
    members = dict(members_of(good))
    members["w.npy"] = b"\0" * len(members["w.npy"])
    rewrite(good, list(members.items()))
    assert error_of(good).startswith("member 'w.npy' is not an .npy array:")


def test_member_with_a_broken_npy_header_is_refused(good: Path):
    members = dict(members_of(good))
    data = members["w.npy"]
    members["w.npy"] = data[:10] + b"{'descr': import os" + data[29:]
    rewrite(good, list(members.items()))
    assert error_of(good).startswith("member 'w.npy' has an invalid .npy header:")
