"""Behaviour that speed work promises, tested without timing anything: bounded memory and unchanged results.

`predict` streams its inputs in batches (`mlcli.workflows.predict.BATCH_ROWS`): 100,000 rows of a memory-mapped
.npy file are predicted with a traced peak (tracemalloc, which sees NumPy's allocations) far below one float64
copy of them, beyond the rows it returns, and the batched predictions are bit-identical to one call.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import mlcli
from mlcli.runs.rundir import checkpoint_path
from mlcli.runs.snapshot import load_model, prepare_inputs
from mlcli.workflows.predict import BATCH_ROWS, open_inputs, predict_arrays

DIGITS_MLP = {"name": "speed", "data": {"type": "digits"}, "model": {"type": "mlp", "hidden": [32]},
              "train": {"epochs": 1, "batch_size": 64, "optimizer": {"type": "momentum", "lr": 0.05}}}
ROWS = 100_000


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return mlcli.train(DIGITS_MLP, runs_dir=tmp_path_factory.mktemp("runs"), name="speed").run_dir


def test_predict_of_100k_rows_from_npy_streams_with_memory_far_below_a_float64_copy(run_dir, tmp_path):
    x = np.random.default_rng(0).uniform(0, 16, (ROWS, 64)).astype(np.float32)
    path = tmp_path / "big.npy"
    np.save(path, x)
    full_copy = ROWS * 64 * 8  # the float64 copy of every input that an unbatched predict makes
    del x
    loaded = load_model(checkpoint_path(run_dir))
    tracemalloc.start()
    try:
        pred, _ = predict_arrays(loaded, open_inputs(path), str(path))
        arrays_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        rows = mlcli.predict(run_dir, path, out=tmp_path / "p.csv")
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert pred.shape == (ROWS,) and len(rows) == ROWS and rows[-1]["index"] == ROWS - 1
    mib = 2**20
    assert arrays_peak < 0.2 * full_copy, f"predict_arrays peak {arrays_peak / mib:.1f} MiB"
    # beyond the rows it returns (Python dicts, the API's output), predict holds only batches and the CSV text
    assert peak - kept < 0.25 * full_copy, f"transient peak {(peak - kept) / mib:.1f} MiB over {kept / mib:.1f}"


def test_batched_predictions_and_probabilities_equal_one_call_bit_for_bit(run_dir):
    loaded = load_model(checkpoint_path(run_dir))
    x = np.random.default_rng(1).uniform(0, 16, (2 * 1024 + 37, 64))
    pred, proba = predict_arrays(loaded, x, "x", proba=True, batch_rows=1024)
    whole = prepare_inputs(loaded, x, "x")
    np.testing.assert_array_equal(pred, loaded.model.predict(whole))
    np.testing.assert_array_equal(proba, loaded.model.probabilities(whole))
    assert BATCH_ROWS % 1024 == 0  # batches align with the networks' inference batches


def test_a_bad_value_in_a_later_batch_names_its_row_in_the_whole_input(run_dir):
    from mlcli.errors import DataError

    loaded = load_model(checkpoint_path(run_dir))
    x = np.zeros((3000, 64))
    x[2500, 7] = np.nan
    with pytest.raises(DataError, match="sample 2500, feature 7 is nan"):
        predict_arrays(loaded, x, "x", batch_rows=1024)
