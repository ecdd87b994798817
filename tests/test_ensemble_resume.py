"""`mlcli resume` of an interrupted ensemble run of independent members: finished members are kept, the
interrupted one continues from its last.npz, the rest are trained, and the ensemble equals an unbroken run's,
bit for bit. Snapshot ensembles and finished ensembles say why they cannot be resumed."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TIMING_KEYS, assert_one_line_error, checkpoint_arrays, invoke, read_jsonl

import mlcli
from mlcli.errors import ConfigError

ENSEMBLE = {"name": "ens", "seed": 5, "data": {"type": "digits"},
            "model": {"type": "mlp", "hidden": [16], "dropout": 0.1, "ensemble": {"members": 3}},
            "train": {"epochs": 3, "batch_size": 64, "optimizer": {"type": "momentum", "lr": 0.05},
                      "checkpoint_seconds": 0}}
STEPS_PER_EPOCH = 20  # ceil(1257 / 64) training batches of digits at the default split


def _stop_after(calls: int):
    """should_stop: true from the `calls`-th batch on (the trainer asks once per batch)."""
    count = {"n": 0}

    def should_stop() -> bool:
        count["n"] += 1
        return count["n"] >= calls

    return should_stop


def _models(path) -> dict[str, np.ndarray]:
    return {k: v for k, v in checkpoint_arrays(path).items() if k.startswith("model.")}


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory):
    return mlcli.train(ENSEMBLE, runs_dir=tmp_path_factory.mktemp("unbroken"))


def test_an_interrupted_ensemble_resumes_to_the_unbroken_ensemble_bit_for_bit(unbroken, tmp_path):
    # member 1 finishes (3 epochs), member 2 is stopped in its second epoch, member 3 never starts
    broken = mlcli.train(ENSEMBLE, runs_dir=tmp_path / "a", should_stop=_stop_after(4 * STEPS_PER_EPOCH + 5))
    assert broken.status == "interrupted"
    assert [m["status"] for m in broken.summary["members"]] == ["completed", "interrupted"]
    resumed = mlcli.resume(broken.run_dir, runs_dir=tmp_path / "b")
    assert resumed.status == "completed" and resumed.run_dir != broken.run_dir
    assert [m["status"] for m in resumed.summary["members"]] == ["completed"] * 3
    for name in ("best.npz", "last.npz"):
        a, b = _models(unbroken.run_dir / "checkpoints" / name), _models(resumed.run_dir / "checkpoints" / name)
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a), name
    assert resumed.metrics == unbroken.metrics
    def curve(run):  # the members' mean per epoch, without the timings
        return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in read_jsonl(run.run_dir / "metrics.jsonl")]

    assert curve(resumed) == curve(unbroken) and len(curve(resumed)) == 3
    assert resumed.summary["resumed_from"] == {"run_dir": str(broken.run_dir)}
    assert (broken.run_dir / "members" / "member-2").is_dir()  # the broken run is left as it was
    assert not (broken.run_dir / "checkpoints" / "best.npz").exists()


def test_resume_with_more_epochs_continues_every_member(unbroken, tmp_path):
    longer = mlcli.resume(unbroken.run_dir, epochs=4, runs_dir=tmp_path)
    assert [r["epoch"] for r in read_jsonl(longer.run_dir / "metrics.jsonl")] == [1, 2, 3, 4]
    fresh = mlcli.train(ENSEMBLE, overrides={"train.epochs": 4}, runs_dir=tmp_path / "fresh")
    a, b = _models(longer.best_checkpoint), _models(fresh.best_checkpoint)
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_a_finished_ensemble_has_nothing_to_resume(unbroken, tmp_path):
    result = invoke("resume", unbroken.run_dir, "--runs-dir", tmp_path)
    assert_one_line_error(result, 2, "every member already finished", "--epochs")


def test_a_snapshot_ensemble_is_not_resumable(tmp_path):
    cfg = {**ENSEMBLE, "model": {"type": "mlp", "hidden": [8], "ensemble": {"snapshot": True}},
           "train": {**ENSEMBLE["train"], "epochs": 4, "schedule": {"type": "cosine_restarts", "t0": 2}}}
    broken = mlcli.train(cfg, runs_dir=tmp_path, should_stop=_stop_after(STEPS_PER_EPOCH + 3))
    assert broken.status == "interrupted"
    with pytest.raises(ConfigError, match="snapshot ensemble run is not resumable"):
        mlcli.resume(broken.run_dir, runs_dir=tmp_path)


def test_members_trained_in_worker_processes_resume_on_one_blas_thread_as_the_workers_ran(tmp_path):
    """A workers: 2 ensemble trained 2 epochs, resumed to 3 (here, on one BLAS thread), equals one trained 3
    epochs in the workers."""
    cfg = {**ENSEMBLE, "model": {**ENSEMBLE["model"], "ensemble": {"members": 2, "workers": 2}},
           "train": {**ENSEMBLE["train"], "epochs": 2}}
    short = mlcli.train(cfg, runs_dir=tmp_path / "a")
    resumed = mlcli.resume(short.run_dir, epochs=3, runs_dir=tmp_path / "b")
    full = mlcli.train(cfg, overrides={"train.epochs": 3}, runs_dir=tmp_path / "c")
    a, b = _models(resumed.best_checkpoint), _models(full.best_checkpoint)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
