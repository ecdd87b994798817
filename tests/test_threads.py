"""Training threads: convolutional networks run BLAS on one thread (mlcli's pool splits the batch); dense ones
keep BLAS's own threads."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from mlcli.nn import parallel
from mlcli.nn.conv import Conv2d
from mlcli.nn.layers import Flatten, Linear
from mlcli.nn.network import Sequential
from mlcli.training.threads import training_threads


def _blas_threads() -> list[int]:
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_conv_nets_train_with_one_blas_thread_and_restore_it_after(monkeypatch):
    monkeypatch.setenv("MLCLI_NUM_THREADS", "2")
    rng = np.random.default_rng(0)
    net = Sequential([Conv2d(1, 2, 3, rng=rng), Flatten(), Linear(2 * 4 * 4, 3, rng=rng)])
    before = _blas_threads()
    if not before:
        pytest.skip("no BLAS library visible to threadpoolctl")
    with training_threads(net):
        assert set(_blas_threads()) == {1}
    assert _blas_threads() == before


def test_dense_nets_and_single_thread_runs_leave_blas_alone(monkeypatch):
    rng = np.random.default_rng(0)
    dense = Sequential([Linear(4, 3, rng=rng)])
    conv = Sequential([Conv2d(1, 2, 3, rng=rng)])
    before = _blas_threads()
    monkeypatch.setenv("MLCLI_NUM_THREADS", "2")
    with training_threads(dense):
        assert _blas_threads() == before
    monkeypatch.setenv("MLCLI_NUM_THREADS", "1")
    assert parallel.num_threads() == 1
    with training_threads(conv):
        assert _blas_threads() == before
