"""mlcli.nn.parallel: batch slicing, thread-count resolution, and that chunked layers match one-threaded ones."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from mlcli.nn import conv, functional, parallel, pooling


@pytest.mark.parametrize(("n", "chunks"), [(1, 4), (5, 2), (64, 3), (7, 7), (3, 10)])
def test_batch_slices_cover_the_batch_in_order_without_empty_slices(n, chunks):
    slices = parallel.batch_slices(n, chunks)
    assert len(slices) == min(n, chunks)
    assert np.concatenate([np.arange(n)[s] for s in slices]).tolist() == list(range(n))
    sizes = [s.stop - s.start for s in slices]
    assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1


def test_num_threads_prefers_mlcli_variable_then_blas_and_caps(monkeypatch):
    for var in parallel._ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    assert parallel.num_threads() == 1
    monkeypatch.setenv("MLCLI_NUM_THREADS", "3")
    assert parallel.num_threads() == 3
    monkeypatch.setenv("MLCLI_NUM_THREADS", "64")
    assert parallel.num_threads() == parallel.MAX_THREADS
    monkeypatch.setenv("MLCLI_NUM_THREADS", "two")
    with pytest.raises(ValueError, match="MLCLI_NUM_THREADS must be a positive int, got 'two'"):
        parallel.num_threads()


def test_for_each_chunk_splits_large_work_over_threads_and_runs_small_work_inline(monkeypatch):
    monkeypatch.setenv("MLCLI_NUM_THREADS", "2")
    seen: list[tuple[slice, str]] = []

    def record(s: slice) -> None:
        seen.append((s, threading.current_thread().name))

    parallel.for_each_chunk(record, 10, parallel.MIN_ELEMENTS)
    assert sorted((s.start, s.stop) for s, _ in seen) == [(0, 5), (5, 10)]
    assert len({name for _, name in seen}) == 2
    seen.clear()
    parallel.for_each_chunk(record, 10, parallel.MIN_ELEMENTS - 1)
    assert seen == [(slice(0, 10), threading.current_thread().name)]


def test_for_each_chunk_raises_a_chunks_error_and_does_not_nest(monkeypatch):
    monkeypatch.setenv("MLCLI_NUM_THREADS", "2")
    inner: list[slice] = []

    def outer(s: slice) -> None:
        parallel.for_each_chunk(inner.append, 4, parallel.MIN_ELEMENTS)  # inline inside a pool thread
        if s.start:
            raise RuntimeError("second chunk failed")

    with pytest.raises(RuntimeError, match="second chunk failed"):
        parallel.for_each_chunk(outer, 2, parallel.MIN_ELEMENTS)
    assert slice(0, 4) in inner


def _run_layers(rng: np.random.Generator) -> list[np.ndarray]:
    """Forward and backward of conv (same and strided), ReLU and max pooling on a batch large enough to chunk."""
    x = rng.standard_normal((16, 8, 24, 24), dtype=np.float32)
    W = rng.standard_normal((12, 8, 3, 3), dtype=np.float32)
    b = rng.standard_normal(12, dtype=np.float32)
    out = []
    for stride, pad in ((1, 1), (2, 0)):
        y, cache = conv.conv_forward(x, W, b, stride, pad, rounding="floor", work=conv.Workspace())
        out += [y, *conv.conv_backward(np.ones_like(y) * y, cache)]
    r, mask = functional.relu_forward(x)
    out += [r, functional.relu_backward(x, mask)]
    for kernel, stride, ceil_mode in ((2, 2, False), (3, 2, True)):
        p, cache = pooling.maxpool_forward(x, kernel, stride, ceil_mode)
        out += [p, pooling.maxpool_backward(p, cache)]
    return out


def test_chunked_layers_match_one_thread_exactly(monkeypatch):
    monkeypatch.setattr(parallel, "MIN_ELEMENTS", 1)
    monkeypatch.setenv("MLCLI_NUM_THREADS", "1")
    serial = _run_layers(np.random.default_rng(0))
    monkeypatch.setenv("MLCLI_NUM_THREADS", "3")
    chunked = _run_layers(np.random.default_rng(0))
    for a, c in zip(serial, chunked, strict=True):
        assert a.dtype == c.dtype == np.float32
        np.testing.assert_array_equal(a, c)


def test_for_each_item_runs_every_item_once_over_threads_and_small_work_inline(monkeypatch):
    monkeypatch.setenv("MLCLI_NUM_THREADS", "2")
    seen: list[tuple[int, str]] = []
    lock = threading.Lock()

    def record(i: int) -> None:
        with lock:
            seen.append((i, threading.current_thread().name))

    parallel.for_each_item(record, 9, parallel.MIN_ELEMENTS)
    assert sorted(i for i, _ in seen) == list(range(9))
    seen.clear()
    parallel.for_each_item(record, 9, parallel.MIN_ELEMENTS - 1)
    assert seen == [(i, threading.current_thread().name) for i in range(9)]

    def fail(i: int) -> None:
        if i == 3:
            raise RuntimeError("item 3 failed")

    with pytest.raises(RuntimeError, match="item 3 failed"):
        parallel.for_each_item(fail, 6, parallel.MIN_ELEMENTS)


# --- the thresholds and the thread count, as documented in mlcli.nn.parallel (mutation testing found them untested)
def test_work_of_a_quarter_million_elements_is_split_and_one_less_is_not(monkeypatch):
    """MIN_ELEMENTS is 1 MiB of float32: 262,144 elements go to the threads, 262,143 run in one call."""
    monkeypatch.setenv("MLCLI_NUM_THREADS", "2")
    for run in (parallel.for_each_chunk, parallel.for_each_item):
        calls: list[object] = []
        run(calls.append, 4, 262_144)
        assert len(calls) == (2 if run is parallel.for_each_chunk else 4)
        calls.clear()
        run(calls.append, 4, 262_143)
        assert calls == ([slice(0, 4)] if run is parallel.for_each_chunk else [0, 1, 2, 3])


def test_num_threads_is_capped_at_four(monkeypatch):
    monkeypatch.setenv("MLCLI_NUM_THREADS", "64")
    assert parallel.num_threads() == 4
    monkeypatch.setenv("MLCLI_NUM_THREADS", "1")
    assert parallel.num_threads() == 1


def test_num_threads_counts_the_cpus_this_process_may_use(monkeypatch):
    for var in parallel._ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    affinity = {0: {0}, 1: {0, 1, 2}}  # pid 0 is this process; pid 1 another one
    monkeypatch.setattr(parallel.os, "sched_getaffinity", lambda pid: affinity[pid], raising=False)
    assert parallel.num_threads() == 1  # pinned to one CPU: no pool
    affinity[0] = {0, 1, 2}
    assert parallel.num_threads() == 3
    monkeypatch.delattr(parallel.os, "sched_getaffinity")  # platforms without it: os.cpu_count(), 1 if unknown
    monkeypatch.setattr(parallel.os, "cpu_count", lambda: 3)
    assert parallel.num_threads() == 3
    monkeypatch.setattr(parallel.os, "cpu_count", lambda: None)
    assert parallel.num_threads() == 1


@pytest.mark.parametrize("threads", [2, 4])
def test_for_each_item_really_runs_the_threads_it_counts_at_once(monkeypatch, threads):
    """Every item waits until all `threads` items have started: only true concurrency (the caller plus
    threads - 1 pool threads) gets past the barrier; items run inline or on too small a pool would break it."""
    monkeypatch.setenv("MLCLI_NUM_THREADS", str(threads))
    barrier = threading.Barrier(threads, timeout=20)
    names: set[str] = set()

    def meet(i: int) -> None:
        names.add(threading.current_thread().name)
        barrier.wait()

    parallel.for_each_item(meet, threads, parallel.MIN_ELEMENTS)
    assert len(names) == threads
    chunks = threading.Barrier(threads, timeout=20)
    parallel.for_each_chunk(lambda s: chunks.wait(), threads, parallel.MIN_ELEMENTS)
