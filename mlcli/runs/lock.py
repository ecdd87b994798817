"""One writer per run directory: an advisory lock on `run.lock` inside it, holding the owner's pid and host.

    with RunLock(run_dir):            # RunInUseError (exit 7) when a live process holds it
        ...train...

The lock is `fcntl.flock` on the file (released by the kernel when its process dies, however it dies), so a
lock file left by a killed process is stale: the next `RunLock` takes it over, with a warning naming the dead
pid. `mlcli runs list` reads the file to show `running`. On systems without `fcntl` the file is written and
read but not enforced.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from pathlib import Path

from mlcli.errors import RunInUseError, RunIOError

LOCK_NAME = "run.lock"


def read_owner(run_dir: Path) -> dict:
    """The pid and host written in a run's lock file ({} when there is none or it is unreadable)."""
    try:
        data = json.loads((Path(run_dir) / LOCK_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class RunLock:
    """Hold the lock of `run_dir` while the `with` block runs (or from `acquire()` to `release()`)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> RunLock:
        previous = read_owner(self.run_dir) if self.path.exists() else {}
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise RunIOError(f"{self.path}: cannot create the run's lock: {err.strerror or err}") from None
        try:
            import fcntl
        except ImportError:  # not POSIX: recorded, not enforced
            fcntl = None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                owner = read_owner(self.run_dir)
                raise RunInUseError(f"{self.run_dir}: in use by pid {owner.get('pid', '?')} on "
                                    f"{owner.get('host', '?')}; wait for it to end or stop it first") from None
        if previous.get("pid") and previous.get("pid") != os.getpid():
            sys.stderr.write(f"warning: {self.run_dir}: took over the lock of pid {previous['pid']} on "
                             f"{previous.get('host', '?')}, which is gone\n")
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode())
        os.fsync(fd)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self.fd)  # closing releases the flock
        self.fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
