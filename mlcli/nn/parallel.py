"""Split the memory-bound array work of a layer over a few threads, along the batch axis.

Only BLAS calls (the GEMMs) use more than one core by themselves; the copies, compares and element-wise passes
of im2col, col2im, ReLU and pooling run on one. NumPy releases the GIL inside ufuncs and copies of large arrays,
so `for_each_chunk(fn, n, size)` runs `fn(slice)` over 2-4 contiguous slices of the batch `range(n)` at once:
the first slice on the calling thread, the others on a module-level pool (`ThreadPoolExecutor`, created on first
use). Each `fn` writes its own slice of preallocated outputs, so the result does not depend on the thread count.

Threads: `MLCLI_NUM_THREADS` if set, else `OPENBLAS_NUM_THREADS` / `OMP_NUM_THREADS` (so that a run pinned to
one BLAS thread is one-threaded here too), else the CPUs this process may use; at most `MAX_THREADS` (memory
bandwidth, not cores, bounds these loops). 1 means no pool at all. Work of fewer than `MIN_ELEMENTS` array
elements (1 MiB of float32) runs in one call: handing it to a thread costs about as much as it saves.
`for_each_item(fn, n, size)` runs fixed work items (a convolution's GEMMs per group of samples) taken dynamically
by the caller and the pool threads, so that a thread the OS does not schedule, on a machine shared with other
jobs, holds up one item, not a fixed share of the batch. Training a convolutional network pins OpenBLAS to one
thread (`mlcli.training.threads`), so GEMMs run in the pool without oversubscription.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

MAX_THREADS = 4
MIN_ELEMENTS = 1 << 18
_ENV_VARS = ("MLCLI_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_in_worker = threading.local()


def num_threads() -> int:
    """Threads `for_each_chunk` uses: the first of `MLCLI_NUM_THREADS`, `OPENBLAS_NUM_THREADS`,
    `OMP_NUM_THREADS` that is set, else the usable CPUs; clipped to [1, MAX_THREADS]."""
    for var in _ENV_VARS:
        value = os.environ.get(var, "").strip()
        if value:
            try:
                return max(1, min(MAX_THREADS, int(value)))
            except ValueError:
                raise ValueError(f"{var} must be a positive int, got {value!r}; unset it to use every CPU") from None
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(MAX_THREADS, cpus))


def batch_slices(n: int, chunks: int) -> list[slice]:
    """`range(n)` cut into at most `chunks` contiguous, non-empty slices of sizes differing by at most 1."""
    chunks = max(1, min(chunks, n))
    bounds = [n * i // chunks for i in range(chunks + 1)]
    return [slice(lo, hi) for lo, hi in pairwise(bounds)]


def _executor() -> ThreadPoolExecutor:
    """The shared pool (its threads start on demand, at most MAX_THREADS - 1 besides the caller)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=MAX_THREADS - 1, thread_name_prefix="mlcli",
                                       initializer=setattr, initargs=(_in_worker, "active", True))
        return _pool


def for_each_chunk(fn: Callable[[slice], object], n: int, size: int) -> None:
    """Call `fn(s)` for slices `s` covering `range(n)` (the batch axis), concurrently when the work is large.

    `size`: elements the whole call touches (e.g. the largest array's `.size`); below `MIN_ELEMENTS`, or with one
    thread, or when called from inside a pool thread (no nested pools), this is simply `fn(slice(0, n))`. The
    slices must be independent: each `fn` writes only its own rows of the outputs. An exception in any slice
    is raised here after all slices have finished.
    """
    # the cheap tests first: reading the environment (num_threads) costs microseconds, a small layer's whole pass
    if size < MIN_ELEMENTS or n < 2 or getattr(_in_worker, "active", False) or (threads := num_threads()) == 1:
        fn(slice(0, n))
        return
    first, *rest = batch_slices(n, threads)
    pool = _executor()
    futures = [pool.submit(fn, s) for s in rest]
    try:
        fn(first)
    finally:
        for future in futures:
            future.result()


def for_each_item(fn: Callable[[int], object], n: int, size: int) -> None:
    """Call `fn(i)` for every i in `range(n)` (fixed work items, e.g. groups of samples), taken dynamically.

    The calling thread and up to `num_threads() - 1` pool threads each take the next untaken index until none is
    left, so that a thread the OS does not run (a machine shared with other jobs) delays only the item it holds:
    the others do the rest; a pool task that has not started by the time the items run out is cancelled. Which
    thread runs an item never changes what the item computes. Inline, in order, under the same conditions as
    `for_each_chunk` (`size` below `MIN_ELEMENTS`, one item, one thread, or inside a pool thread). An exception
    in any item is raised here after the started items have finished.
    """
    if size < MIN_ELEMENTS or n < 2 or getattr(_in_worker, "active", False) or (threads := num_threads()) == 1:
        for i in range(n):
            fn(i)
        return
    counter = itertools.count()  # next() on it is atomic under the GIL

    def drain() -> None:
        while (i := next(counter)) < n:
            fn(i)

    pool = _executor()
    futures = [pool.submit(drain) for _ in range(min(threads, n) - 1)]
    try:
        drain()
    finally:
        for future in futures:
            if not future.cancel():
                future.result()
