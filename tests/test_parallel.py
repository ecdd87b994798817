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
