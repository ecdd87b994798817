"""How much memory a data file may ask for, checked from the sizes it declares before anything is allocated.

    check_fits(path, "array 'x' of shape (60000, 784) uint8", n_bytes)   # DataError when over the budget

A loader computes what reading a file will allocate (the array as stored plus its float64 copy) from the header
alone (an .npy header, an IDX header, a CIFAR-10 file size) and calls `check_fits` first, so that a corrupt or
hostile header cannot make mlcli allocate gigabytes and die with a MemoryError: the user gets a `DataError`
naming the file and the size instead. The budget is the machine's physical memory, or the address-space limit
(`ulimit -v`, RLIMIT_AS) when that is lower.
"""

from __future__ import annotations

import os
from pathlib import Path

from mlcli.errors import DataError

try:
    import resource
except ImportError:  # not on Windows
    resource = None  # type: ignore[assignment]


def memory_budget() -> int:
    """The most bytes a data file may make mlcli allocate: physical memory, or RLIMIT_AS when lower."""
    try:
        budget = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        budget = 1 << 40
    if resource is not None:
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY and soft > 0:
            budget = min(budget, soft)
    return int(budget)


def format_bytes(n: int) -> str:
    """`1536` -> `'1.5 KiB'`, `3 << 30` -> `'3.0 GiB'`."""
    size = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if size < 1024 or unit == "PiB":
            return f"{int(size)} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def check_fits(path: str | Path, what: str, n_bytes: int, budget: int | None = None) -> None:
    """Raise `DataError` when reading `what` from `path` would allocate more than `budget` bytes (default
    `memory_budget()`); `what` says what was declared ("array 'x' of shape (10, 4) float64")."""
    budget = memory_budget() if budget is None else budget
    if n_bytes > budget:
        raise DataError(
            f"{path}: {what} would need {format_bytes(n_bytes)} ({n_bytes} bytes) in memory, more than the "
            f"{format_bytes(budget)} available; the header is corrupt or the data too large for this machine"
        )
