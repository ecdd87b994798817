"""Checkpoint files: written atomically, read so that opening one can never run code or exhaust memory.

    save_checkpoint(run_dir / "checkpoints" / "best.npz", meta, {"model.0.linear.W": W, ...})
    meta, arrays = load_checkpoint(path, expect=expected_arrays, allowed_model_types=set(REGISTRY))

A checkpoint is one `.npz` file: a zip archive whose members are STORED (uncompressed), `meta.json` first and
then one `<name>.npy` per array. `meta.json` is a JSON object holding whatever the caller saves (model type
and config, preprocessing statistics, epoch, metrics, optimizer and RNG state) plus, added here:

    "format": "mlcli-checkpoint", "format_version": 1, "mlcli_version": "0.1.0",
    "arrays": {name: {"dtype": "float32", "shape": [64, 10], "sha256": "<hex of the C-order bytes>"}}

`load_checkpoint` trusts nothing in the file. Before reading any array data it checks, in this order: a
regular file no larger than `max_bytes`; the zip magic; that `zipfile` can open it; unique, well-named, STORED
members no larger than the archive; `meta.json` (at most 1 MiB, strict JSON without NaN/Infinity or duplicate
keys) against the schema; that the arrays declared in `meta.json`, the `.npy` members and the arrays the
caller expects (`expect(meta)`, derived from the model config) are the same sets; each declared dtype against
an allow-list and the expected spec, each declared shape against the expected spec, and that the declared data
fits in its member (so a forged huge shape fails without allocating). Only then does it read each member: the
npy header must repeat the declared dtype and shape (C order, no objects), the data is read with
`allow_pickle=False` semantics (raw bytes into a preallocated buffer) and its sha256 verified. Every failure
is one `CheckpointError("<path>: <reason>")`; no `zipfile`, `OSError` or `ValueError` traceback reaches the
caller.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from mlcli.errors import CheckpointError, MlcliError
from mlcli.runs.atomic import atomic_writer
from mlcli.version import __version__

FORMAT = "mlcli-checkpoint"
FORMAT_VERSION = 1
META_MEMBER = "meta.json"
MAX_META_BYTES = 1 << 20
DEFAULT_MAX_BYTES = 8 << 30
ALLOWED_DTYPES = ("float32", "float64", "int64", "int32", "uint8", "bool")
NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,199}")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_ZIP_MAGIC = b"PK\x03\x04"
# Array data is read in chunks of this size: zipfile's readinto reads into a temporary bytes object first.
_READ_CHUNK = 1 << 24
# A fixed member timestamp makes the bytes of a checkpoint depend only on its content.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)

ArraySpec = tuple[str | None, tuple[int | None, ...]]
"""What the caller expects of one array: (dtype, or None for any allowed one; shape, None = a free size)."""


def save_checkpoint(
    path: str | os.PathLike[str], meta: dict[str, Any], arrays: Mapping[str, np.ndarray]
) -> None:
    """Write `meta` and `arrays` to the checkpoint file `path` atomically (see `mlcli.runs.atomic`).

    `meta` must be JSON-serializable without NaN/Infinity and contain `"model_type"`; the keys `format`,
    `format_version`, `mlcli_version` and `arrays` are set here (overwriting any given). Array names must
    match `NAME_RE` (e.g. `"model.0.linear.W"`, `"optim.0.linear.W.m"`, `"prep.mean"`) and dtypes be in
    `ALLOWED_DTYPES`; arrays are stored in C order and native byte order. `meta` is not modified.
    Raises `TypeError`/`ValueError` for a programming error (no model_type; bad name, dtype or meta) and
    `RunIOError` if writing fails.
    """
    if not isinstance(meta.get("model_type"), str):
        raise TypeError("checkpoint meta must contain 'model_type' as a string")
    stored: dict[str, np.ndarray] = {}
    declared: dict[str, dict[str, Any]] = {}
    for name, arr in arrays.items():
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            raise ValueError(f"checkpoint array name {name!r} does not match {NAME_RE.pattern}")
        arr = np.asarray(arr)
        if arr.dtype.name not in ALLOWED_DTYPES:
            raise ValueError(
                f"checkpoint array {name!r} has dtype {arr.dtype}; allowed: {', '.join(ALLOWED_DTYPES)}"
            )
        arr = np.asarray(arr, dtype=arr.dtype.newbyteorder("="), order="C")
        stored[name] = arr
        declared[name] = {
            "dtype": arr.dtype.name,
            "shape": list(arr.shape),
            "sha256": hashlib.sha256(arr.data).hexdigest(),
        }
    full_meta = {
        **meta,
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "mlcli_version": __version__,
        "arrays": declared,
    }
    try:
        meta_bytes = json.dumps(full_meta, allow_nan=False, ensure_ascii=True).encode("ascii")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"checkpoint meta is not strict JSON: {exc}") from None
    if len(meta_bytes) > MAX_META_BYTES:
        raise ValueError(
            f"checkpoint meta.json would be {len(meta_bytes)} bytes; the limit is {MAX_META_BYTES}"
        )
    with atomic_writer(path) as f, zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr(zipfile.ZipInfo(META_MEMBER, date_time=_ZIP_DATE), meta_bytes)
        for name, arr in stored.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE)
            with zf.open(info, "w", force_zip64=arr.nbytes > (1 << 30)) as member:
                np.lib.format.write_array(member, arr, allow_pickle=False)


def load_checkpoint(
    path: str | os.PathLike[str],
    *,
    expect: Callable[[dict[str, Any]], Mapping[str, ArraySpec]],
    allowed_model_types: set[str],
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read and verify the checkpoint at `path`; return `(meta, arrays)`.

    `expect(meta)` returns the arrays the model described by `meta` must have, name -> `ArraySpec`; it is
    called after `meta.json` passed the schema. It may raise `CheckpointError` itself (with or without the
    path); the errors a malformed meta causes in it (`KeyError`, `TypeError`, `ValueError`, ...) are reported
    as a `CheckpointError` too. Raises `CheckpointError(f"{path}: <reason>")` for any problem with the file.
    """
    try:
        return _load(Path(path), expect, allowed_model_types, max_bytes)
    except CheckpointError:
        raise
    except zipfile.BadZipFile as exc:
        raise CheckpointError(f"{path}: corrupt zip archive: {_one_line(exc)}") from None
    except (OSError, ValueError, EOFError, RuntimeError, NotImplementedError, zipfile.LargeZipFile) as exc:
        raise CheckpointError(f"{path}: cannot read: {type(exc).__name__}: {_one_line(exc)}") from None


def _load(
    path: Path,
    expect: Callable[[dict[str, Any]], Mapping[str, ArraySpec]],
    allowed_model_types: set[str],
    max_bytes: int,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """`load_checkpoint` without the final wrapping of unexpected library errors."""

    def fail(reason: str) -> CheckpointError:
        return CheckpointError(f"{path}: {reason}")

    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise fail("no such checkpoint file") from None
    if not stat.S_ISREG(st.st_mode):
        raise fail("not a regular file")
    if st.st_size > max_bytes:
        raise fail(f"file is {st.st_size} bytes, more than the limit of {max_bytes}")
    with open(path, "rb") as f:
        if f.read(len(_ZIP_MAGIC)) != _ZIP_MAGIC:
            raise fail("not a zip archive (an mlcli checkpoint is a .npz file)")
        f.seek(0)
        size = os.fstat(f.fileno()).st_size
        try:
            zf = zipfile.ZipFile(f)
        except (zipfile.BadZipFile, EOFError, ValueError, OSError) as exc:
            raise fail(f"corrupt or truncated zip ({_one_line(exc)})") from None
        with zf:
            members = _check_members(zf, size, fail)
            meta = _read_meta(zf, members.get(META_MEMBER), fail)
            _check_meta(meta, allowed_model_types, fail)
            specs = _expected(expect, meta, path)
            _check_declared(meta["arrays"], members, specs, fail)
            arrays = {
                name: _read_array(zf, members[f"{name}.npy"], meta["arrays"][name], fail)
                for name in meta["arrays"]
            }
    return meta, arrays


def _check_members(
    zf: zipfile.ZipFile, archive_size: int, fail: Callable[[str], CheckpointError]
) -> dict[str, zipfile.ZipInfo]:
    """Member name -> info, after checking names, uniqueness, compression, encryption and declared sizes."""
    members: dict[str, zipfile.ZipInfo] = {}
    for info in zf.infolist():
        name = info.filename
        if name in members:
            raise fail(f"duplicate member {name!r}")
        if name != META_MEMBER and not (name.endswith(".npy") and NAME_RE.fullmatch(name[: -len(".npy")])):
            raise fail(f"unexpected member {name!r} (expected 'meta.json' and '<array name>.npy' members)")
        if info.compress_type != zipfile.ZIP_STORED:
            raise fail(f"member {name!r} is compressed (method {info.compress_type}); only STORED is allowed")
        if info.flag_bits & 0x1:
            raise fail(f"member {name!r} is encrypted")
        if info.file_size > archive_size:
            raise fail(f"member {name!r} declares {info.file_size} bytes in an archive of {archive_size}")
        if info.compress_size != info.file_size:
            raise fail(
                f"member {name!r} declares {info.compress_size} stored bytes for {info.file_size} bytes"
            )
        members[name] = info
    if META_MEMBER not in members:
        raise fail("no meta.json member")
    return members


def _read_meta(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, fail: Callable[[str], CheckpointError]
) -> dict[str, Any]:
    """Parse `meta.json` as strict JSON: at most 1 MiB of UTF-8, an object, no NaN/Infinity, no key twice."""
    if info.file_size > MAX_META_BYTES:
        raise fail(f"meta.json is {info.file_size} bytes, more than the limit of {MAX_META_BYTES}")
    with zf.open(info) as member:
        raw = member.read(MAX_META_BYTES + 1)
    if len(raw) > MAX_META_BYTES:
        raise fail(f"meta.json is more than {MAX_META_BYTES} bytes")

    def no_constants(name: str) -> Any:
        raise ValueError(f"non-standard JSON constant {name}")

    def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            seen: set[str] = set()
            duplicate = next(k for k, _ in pairs if k in seen or seen.add(k))
            raise ValueError(f"duplicate key {duplicate!r}")
        return obj

    try:
        meta = json.loads(raw.decode("utf-8"), parse_constant=no_constants, object_pairs_hook=unique_keys)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise fail(f"meta.json is not valid JSON: {_one_line(exc)}") from None
    if not isinstance(meta, dict):
        raise fail(f"meta.json must be a JSON object, found {type(meta).__name__}")
    return meta


def _check_meta(
    meta: dict[str, Any], allowed_model_types: set[str], fail: Callable[[str], CheckpointError]
) -> None:
    """Check the fields this module owns: format, versions, model type and the array table."""
    if meta.get("format") != FORMAT:
        raise fail(f"meta.json: format must be {FORMAT!r}, found {meta.get('format')!r}")
    version = meta.get("format_version")
    if not _is_int(version) or version < 1:
        raise fail(f"meta.json: format_version must be a positive integer, found {version!r}")
    if version > FORMAT_VERSION:
        raise fail(
            f"written by a newer mlcli (format_version {version}, mlcli {meta.get('mlcli_version')!r}); "
            f"this mlcli {__version__} reads format_version {FORMAT_VERSION}: upgrade mlcli"
        )
    if not isinstance(meta.get("mlcli_version"), str):
        raise fail(f"meta.json: mlcli_version must be a string, found {meta.get('mlcli_version')!r}")
    model_type = meta.get("model_type")
    if not isinstance(model_type, str) or model_type not in allowed_model_types:
        allowed = ", ".join(sorted(allowed_model_types))
        raise fail(f"meta.json: unknown model_type {model_type!r}; expected one of {allowed}")
    table = meta.get("arrays")
    if not isinstance(table, dict):
        raise fail(
            f"meta.json: arrays must be an object of name -> {{dtype, shape, sha256}}, found {table!r:.80}"
        )
    for name, entry in table.items():
        where = f"meta.json: arrays[{name!r}]"
        if not NAME_RE.fullmatch(name):
            raise fail(f"{where}: invalid array name")
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "sha256"}:
            raise fail(f"{where} must be an object with exactly dtype, shape, sha256; found {entry!r:.80}")
        if entry["dtype"] not in ALLOWED_DTYPES:
            raise fail(
                f"{where}: dtype {entry['dtype']!r} is not allowed; allowed: {', '.join(ALLOWED_DTYPES)}"
            )
        shape = entry["shape"]
        if not isinstance(shape, list) or not all(_is_int(n) and n >= 0 for n in shape):
            raise fail(f"{where}: shape must be a list of non-negative integers, found {shape!r:.80}")
        if not isinstance(entry["sha256"], str) or not _SHA256_RE.fullmatch(entry["sha256"]):
            raise fail(f"{where}: sha256 must be 64 lowercase hex digits, found {entry['sha256']!r:.80}")


def _expected(
    expect: Callable[[dict[str, Any]], Mapping[str, ArraySpec]],
    meta: dict[str, Any],
    path: Path,
) -> Mapping[str, ArraySpec]:
    """Call the caller's `expect(meta)`, reporting a meta.json that does not describe a model as a bad file.

    A `CheckpointError` from `expect` gets the `<path>: ` prefix if it lacks it; an error that a malformed
    meta causes in `expect` (`KeyError`, `IndexError`, `TypeError`, `AttributeError`, `ValueError`,
    `ArithmeticError`, any `MlcliError`) becomes a `CheckpointError`. All are made one line.
    """
    try:
        return expect(meta)
    except CheckpointError as exc:
        message = _one_line(exc)
        if message.startswith(f"{path}: "):
            raise CheckpointError(message) from None
        raise CheckpointError(f"{path}: meta.json: {message}") from None
    except (KeyError, IndexError, TypeError, AttributeError, ValueError, ArithmeticError, MlcliError) as exc:
        reason = f"{type(exc).__name__}: {_one_line(exc)}"
        raise CheckpointError(
            f"{path}: meta.json does not describe a valid {meta['model_type']!r} model: {reason}"
        ) from None


def _check_declared(
    table: dict[str, dict[str, Any]],
    members: dict[str, zipfile.ZipInfo],
    specs: Mapping[str, ArraySpec],
    fail: Callable[[str], CheckpointError],
) -> None:
    """Compare declared arrays, `.npy` members and expected arrays; check dtypes, shapes and sizes."""
    stored = {name[: -len(".npy")] for name in members if name != META_MEMBER}
    if set(table) != stored:
        if set(table) - stored:
            raise fail(
                f"arrays declared in meta.json without a member: {', '.join(sorted(set(table) - stored))}"
            )
        undeclared = ", ".join(f"{n}.npy" for n in sorted(stored - set(table)))
        raise fail(f"members not declared in meta.json: {undeclared}")
    if set(table) != set(specs):
        missing, unexpected = sorted(set(specs) - set(table)), sorted(set(table) - set(specs))
        parts = ([f"missing arrays {', '.join(missing)}"] if missing else []) + (
            [f"unexpected arrays {', '.join(unexpected)}"] if unexpected else []
        )
        raise fail(f"{'; '.join(parts)} (compared with what the model described in meta.json needs)")
    for name, entry in table.items():
        want_dtype, want_shape = specs[name]
        if want_dtype is not None and entry["dtype"] != want_dtype:
            raise fail(f"array {name!r}: expected dtype {want_dtype}, found {entry['dtype']}")
        shape = entry["shape"]
        if len(shape) != len(want_shape) or any(
            w is not None and w != n for w, n in zip(want_shape, shape, strict=True)
        ):
            raise fail(f"array {name!r}: expected shape {_fmt_shape(want_shape)}, found {tuple(shape)}")
        nbytes = math.prod(shape) * np.dtype(entry["dtype"]).itemsize
        if nbytes > members[f"{name}.npy"].file_size:
            raise fail(
                f"array {name!r}: shape {tuple(shape)} needs {nbytes} bytes but its member holds "
                f"{members[f'{name}.npy'].file_size}"
            )


def _read_array(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, entry: dict[str, Any], fail: Callable[[str], CheckpointError]
) -> np.ndarray:
    """Read one `.npy` member whose header must match `entry`, into a fresh buffer; verify its sha256."""
    name = info.filename
    dtype, shape = np.dtype(entry["dtype"]), tuple(entry["shape"])
    with zf.open(info) as member:
        header = _read_npy_header(member, name, fail)
        found_shape, fortran_order, found_dtype = header
        if found_dtype.hasobject:
            raise fail(f"member {name!r} holds Python objects (dtype {found_dtype}); refusing to unpickle")
        if fortran_order:
            raise fail(f"member {name!r} is in Fortran order; expected C order")
        if found_dtype != dtype or tuple(found_shape) != shape:
            raise fail(
                f"member {name!r}: npy header says dtype {found_dtype.str} shape {tuple(found_shape)}, "
                f"meta.json says {entry['dtype']} {shape}"
            )
        buf = bytearray(math.prod(shape) * dtype.itemsize)
        view = memoryview(buf)
        filled = 0
        while filled < len(buf):
            n = member.readinto(view[filled : filled + _READ_CHUNK])
            if not n:
                raise fail(f"member {name!r} is truncated: {filled} of {len(buf)} data bytes")
            filled += n
        if member.read(1):
            raise fail(f"member {name!r} has bytes after its {len(buf)} data bytes")
    if hashlib.sha256(buf).hexdigest() != entry["sha256"]:
        raise fail(f"array {name[: -len('.npy')]!r}: sha256 mismatch (the data is corrupt or was modified)")
    return np.frombuffer(buf, dtype=dtype).reshape(shape)


def _read_npy_header(
    member: BinaryIO, name: str, fail: Callable[[str], CheckpointError]
) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) of an npy header of version 1.0 or 2.0 (numpy parses it without eval)."""
    try:
        version = np.lib.format.read_magic(member)
    except ValueError as exc:
        raise fail(f"member {name!r} is not an .npy array: {_one_line(exc)}") from None
    try:
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(member)
        if version == (2, 0):
            return np.lib.format.read_array_header_2_0(member)
    except ValueError as exc:
        raise fail(f"member {name!r} has an invalid .npy header: {_one_line(exc)}") from None
    raise fail(f"member {name!r} has .npy format version {version}; expected 1.0 or 2.0")


def _is_int(value: Any) -> bool:
    """True for a JSON integer (`bool` is an `int` subclass in Python but not an integer here)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _fmt_shape(shape: tuple[int | None, ...]) -> str:
    """`(None, 4)` as `(any, 4)`."""
    return (
        "("
        + ", ".join("any" if n is None else str(n) for n in shape)
        + ("," if len(shape) == 1 else "")
        + ")"
    )


def _one_line(exc: BaseException) -> str:
    """An exception's message with its whitespace (newlines included) collapsed: errors stay one line."""
    return " ".join(str(exc).split()) or type(exc).__name__
