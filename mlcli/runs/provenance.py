"""Where a run comes from, recorded in its summary.json: times, command line, versions, threads, git commit.

    provenance(config_dir=Path("configs"))
    -> {"versions": {"mlcli": ..., "numpy": ..., "python": ..., "blas": [...]}, "threads": {...}, "git_commit": ...}
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np


def utc_now() -> str:
    """The current time, ISO 8601 in UTC with seconds (`2026-12-01T23:32:02Z`)."""
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def command_line() -> str:
    """How this process was started, quoted as a shell would need it."""
    argv = list(sys.argv)
    if argv and Path(argv[0]).name in ("mlcli", "__main__.py"):
        argv[0] = "mlcli"
    return shlex.join(argv)


def blas_info() -> list[dict]:
    """The BLAS libraries numpy uses (threadpoolctl): API, implementation, version, threads, kernel."""
    from threadpoolctl import threadpool_info

    keys = ("user_api", "internal_api", "version", "num_threads", "architecture")
    return [{k: info.get(k) for k in keys} for info in threadpool_info() if info.get("user_api") == "blas"]


def versions() -> dict:
    from mlcli.version import __version__

    return {"mlcli": __version__, "numpy": np.__version__, "python": platform.python_version(),
            "blas": blas_info()}


def threads() -> dict:
    """CPU cores seen, and the thread settings that change speed (not results)."""
    from mlcli.nn import parallel

    env = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                      "MLCLI_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
           if k in os.environ}
    return {"cpu_count": os.cpu_count(), "mlcli_pool": parallel.num_threads(), "env": env}


def git_commit(folder: Path | None) -> str | None:
    """The commit checked out in the git repository holding `folder` (with `+dirty` when files changed), else None."""
    if folder is None or not Path(folder).is_dir():
        return None
    try:
        head = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5, check=False)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def provenance(config_dir: Path | None, overrides: list[str] | None = None) -> dict:
    return {"command": command_line(), "overrides": list(overrides or []), "versions": versions(),
            "threads": threads(), "git_commit": git_commit(config_dir)}
