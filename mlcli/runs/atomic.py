"""Atomic file writes: a reader sees either the old file or the complete new one, never a partial write.

    atomic_write_text(run_dir / "summary.json", json.dumps(summary))
    with atomic_writer(run_dir / "checkpoints" / "last.npz") as f:   # stream large files
        f.write(...)

Each write goes to a temporary file in the destination's own folder (so that the final `os.replace` is a
rename within one file system), is flushed and fsynced, and then replaces the destination in one step; the folder
is fsynced after the rename, so that a power loss cannot bring back the old file or lose the new name. Any
`OSError` (disk full, permission denied, missing folder) becomes one `RunIOError` naming the destination; on
any failure the temporary file is removed and the previous file, if there was one, is left untouched.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from mlcli.errors import RunIOError


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Yield a binary file whose content replaces `path` atomically when the `with` block ends without error.

    The temporary file is `.<name>.<16 hex digits>.tmp` beside `path`. If the block raises, the temporary file
    is removed and the exception propagates (an `OSError` converted to `RunIOError`); `path` is unchanged.
    """
    path = Path(path)
    tmp_name = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    try:
        # os.open with mode 0o666 (not mkstemp's 0o600) so the final file gets the usual umask permissions.
        fd = os.open(tmp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as exc:
        raise RunIOError(f"{path}: cannot create a file in {path.parent}: {_reason(exc)}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
        _fsync_dir(path.parent)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        if isinstance(exc, OSError):
            raise RunIOError(f"{path}: cannot write: {_reason(exc)}") from None
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace the file at `path` with `data` atomically; raise `RunIOError` naming `path` on failure."""
    with atomic_writer(path) as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Replace the file at `path` with `text` encoded as UTF-8 atomically (newlines written as given)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (POSIX: fsync the directory); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def is_temporary(path: Path) -> bool:
    """A temporary file of `atomic_writer` (`.<name>.<16 hex>.tmp`)."""
    name = path.name
    return name.startswith(".") and name.endswith(".tmp") and len(name.rsplit(".", 2)[-2]) == 16


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove the temporary files a killed write left in `folder` (none is in use: one writer per run)."""
    removed = []
    for path in Path(folder).glob(".*.tmp"):
        if path.is_file() and is_temporary(path):
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path)
    return removed


def _reason(exc: OSError) -> str:
    """The OS's words for the failure (`No space left on device`), without the repeated file name."""
    return exc.strerror or str(exc) or type(exc).__name__
