"""Task functions for tests/test_executors.py, in a module of their own so that spawned
pool workers and Dask workers can import them by name (pytest puts tests/ on sys.path, which spawn children
inherit; the `dask worker` processes of the CLI-cluster fixture get it through PYTHONPATH).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np


def seeded_fit(seed: int, n: int = 64) -> dict:
    """A small seeded least-squares fit: the same seed gives the same arrays on any backend."""
    rng = np.random.default_rng(np.random.SeedSequence([7, seed]))
    X = rng.standard_normal((n, 8))
    y = X @ rng.standard_normal(8) + 0.1 * rng.standard_normal(n)
    w, *_ = np.linalg.lstsq(X, y, rcond=None)
    return {"seed": seed, "w": w, "loss": float(np.mean((X @ w - y) ** 2))}


def with_shared(data: np.ndarray, seed: int) -> float:
    """Uses a broadcast array: its checksum plus something seeded."""
    return float(data.sum()) + float(np.random.default_rng(seed).random())


def fail_if(seed: int, bad: int) -> int:
    if seed == bad:
        raise ValueError(f"bad seed {seed}\nsecond line that the error line drops")
    return seed * 10


def kill_self_once(marker: str, value: int) -> int:
    """SIGKILLs its own process the first time (no marker file yet), returns `value` on the retry."""
    path = Path(marker)
    if not path.exists():
        path.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return value


def kill_self_always() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def sleep_and_record(seconds: float, log: str, name: str) -> str:
    """Appends `name` to the file `log` when it starts, then sleeps."""
    with open(log, "a") as f:
        f.write(name + "\n")
    time.sleep(seconds)
    return name


def report_pid_then_sleep(pid_file: str, seconds: float, seed: int) -> dict:
    """Writes its pid (so that a test can kill the worker mid-task), sleeps, then computes seeded_fit(seed)."""
    Path(pid_file + ".tmp").write_text(str(os.getpid()))
    os.replace(pid_file + ".tmp", pid_file)
    time.sleep(seconds)
    return seeded_fit(seed)


def environ(name: str) -> str | None:
    return os.environ.get(name)


# --- for tests/test_executor_mutants.py -----------------------------------------------------------------------


def getpid() -> int:
    return os.getpid()


def block_first_run(log: str, value: str, seconds: float = 30.0, until: str | None = None) -> str:
    """Appends its pid to `log`; the first run (an empty log before it) then sleeps `seconds` (after the file
    `until` appeared, if given: another task's start on a starved machine can take long), later runs return at once."""
    with open(log, "a") as f:
        f.write(f"{os.getpid()}\n")
    if len(Path(log).read_text().split()) == 1:
        while until is not None and not Path(until).exists():
            time.sleep(0.01)
        time.sleep(seconds)
    return value


def exit_with(code: int) -> None:
    """Ends its worker process at once, without an exception (as a library calling os._exit would)."""
    os._exit(code)


def unpicklable_result() -> object:
    import threading

    return threading.Lock()


def shared_sum_and_pid(data: np.ndarray) -> tuple[float, int]:
    return float(data.sum()), os.getpid()


def explode() -> None:
    raise RuntimeError("this object cannot be loaded")


class LoadsBadly:
    """Pickles fine, but unpickling it raises: a broadcast object the pool workers cannot load."""

    def __reduce__(self):
        return explode, ()


def thread_vars_and_pid() -> tuple[tuple[str | None, ...], int]:
    from mlcli.sweeps.executors import THREAD_VARS

    return tuple(os.environ.get(name) for name in THREAD_VARS), os.getpid()


def kill_self_when(path: str) -> None:
    """SIGKILLs its own process once the file `path` exists (another task's start, say)."""
    while not Path(path).exists() or not Path(path).read_text():
        time.sleep(0.01)
    os.kill(os.getpid(), signal.SIGKILL)
