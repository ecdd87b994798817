"""End-to-end tests of `mlcli train`: the run directory, reproducibility, early stopping, divergence, signals.

Most tests read one shared run of a tiny iris MLP (module-scoped) whose validation loss is lowest at epoch 3 of 6,
so that "best" and "last" are different checkpoints.
"""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import (
    TIMING_KEYS,
    TINY_IRIS,
    assert_one_line_error,
    checkpoint_arrays,
    checkpoint_meta,
    invoke,
    read_json,
    read_jsonl,
    run_mlcli,
    train_run,
    tree_snapshot,
)

from mlcli.runs.rundir import create_run_dir

EPOCH_KEYS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds",
              "samples_per_sec")
# lr 0.3 makes the tiny MLP overshoot after epoch 3: val_loss is lowest at epoch 3 of 6.
OVERSHOOT = ("--set", "train.epochs=6", "--set", "train.optimizer.lr=0.3")


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("train")
    config = root / "tiny.yaml"
    config.write_text(TINY_IRIS)
    runs = root / "runs"
    return {"config": config, "runs": runs, "run": train_run(config, runs, *OVERSHOOT)}


def without_timing(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in TIMING_KEYS} for row in rows]


# ------------------------------------------------------------------------------------------ run directory


def test_run_directory_holds_config_metrics_summary_and_checkpoints(shared):
    run = shared["run"]
    assert run.parent == shared["runs"]
    assert run.name.startswith("tiny-")
    for name in ("config.yaml", "metrics.jsonl", "metrics.csv", "summary.json", "checkpoints/best.npz",
                 "checkpoints/last.npz"):
        assert (run / name).is_file(), name


def test_config_yaml_is_resolved_with_seed_defaults_and_overrides(shared):
    assert "seed" not in TINY_IRIS
    resolved = yaml.safe_load((shared["run"] / "config.yaml").read_text())
    assert resolved["seed"] == 0
    assert resolved["train"]["epochs"] == 6
    assert resolved["train"]["optimizer"] == {"type": "momentum", "lr": 0.3, "momentum": 0.9}
    assert resolved["data"]["test_fraction"] == 0.15
    assert resolved["model"]["activation"] == "relu"


def test_metrics_jsonl_has_one_row_per_epoch_with_the_documented_keys(shared):
    rows = read_jsonl(shared["run"] / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5, 6]
    for row in rows:
        assert set(EPOCH_KEYS) <= set(row), row
        assert 0.0 <= row["train_accuracy"] <= 1.0 and 0.0 <= row["val_accuracy"] <= 1.0
        assert row["lr"] == pytest.approx(0.3)
        assert row["seconds"] > 0 and row["samples_per_sec"] > 0


def test_metrics_csv_holds_the_same_rows_as_metrics_jsonl(shared):
    rows = read_jsonl(shared["run"] / "metrics.jsonl")
    with open(shared["run"] / "metrics.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(rows)
    for row, line in zip(rows, table, strict=False):
        assert set(line) == set(row)
        for key, value in row.items():
            assert float(line[key]) == pytest.approx(value, rel=1e-12), key


def test_summary_records_status_best_epoch_test_metrics_and_versions(shared):
    summary = read_json(shared["run"] / "summary.json")
    assert summary["status"] == "completed"
    assert summary["epochs_completed"] == 6
    assert summary["best_epoch"] == 3
    assert set(summary["test"]) == {"loss", "accuracy"}
    assert 0.0 <= summary["test"]["accuracy"] <= 1.0
    assert set(summary["versions"]) >= {"mlcli", "numpy", "python"}
    assert summary["versions"]["numpy"] == np.__version__


def test_best_checkpoint_is_the_epoch_with_the_lowest_val_loss(shared):
    rows = read_jsonl(shared["run"] / "metrics.jsonl")
    best_epoch = min(rows, key=lambda r: r["val_loss"])["epoch"]
    assert best_epoch == 3 and rows[-1]["epoch"] == 6  # the fixture's premise: best is not last
    best = shared["run"] / "checkpoints" / "best.npz"
    last = shared["run"] / "checkpoints" / "last.npz"
    assert checkpoint_meta(best)["epoch"] == best_epoch
    assert checkpoint_meta(last)["epoch"] == 6
    best_w, last_w = checkpoint_arrays(best), checkpoint_arrays(last)
    assert any(not np.array_equal(best_w[k], last_w[k]) for k in best_w if k.startswith("model."))


def test_best_checkpoint_follows_a_max_monitor(tmp_path, write_config):
    config = write_config(TINY_IRIS.replace("  epochs: 3\n", "  epochs: 4\n  early_stopping: "
                                            "{monitor: val_accuracy, patience: 10}\n"))
    run = train_run(config, tmp_path / "runs", "--set", "train.optimizer.lr=0.3")
    rows = read_jsonl(run / "metrics.jsonl")
    best = max(rows, key=lambda r: r["val_accuracy"])  # first of the ties, as a strict improvement rule picks
    assert checkpoint_meta(run / "checkpoints" / "best.npz")["epoch"] == best["epoch"]


def test_two_runs_with_the_same_name_never_share_a_directory(tmp_path, shared):
    runs = tmp_path / "runs"
    first = train_run(shared["config"], runs, "--name", "same")
    second = train_run(shared["config"], runs, "--name", "same")
    assert first != second
    assert first.name.startswith("same-") and second.name.startswith("same-")
    made = {create_run_dir(runs, "same") for _ in range(3)}  # within one second: -1, -2 suffixes
    assert len(made) == 3 and not made & {first, second}


# ------------------------------------------------------------------------------------------ reproducibility


def test_same_config_and_seed_give_identical_metrics_and_checkpoints(tmp_path, shared):
    other = train_run(shared["config"], tmp_path / "runs", *OVERSHOOT)
    assert without_timing(read_jsonl(other / "metrics.jsonl")) == without_timing(
        read_jsonl(shared["run"] / "metrics.jsonl"))
    a = checkpoint_arrays(shared["run"] / "checkpoints" / "best.npz")
    b = checkpoint_arrays(other / "checkpoints" / "best.npz")
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_a_different_seed_gives_different_metrics_and_weights(tmp_path, shared):
    other = train_run(shared["config"], tmp_path / "runs", *OVERSHOOT, "--seed", "1")
    assert yaml.safe_load((other / "config.yaml").read_text())["seed"] == 1
    ours = read_jsonl(shared["run"] / "metrics.jsonl")
    theirs = read_jsonl(other / "metrics.jsonl")
    assert [r["train_loss"] for r in ours] != [r["train_loss"] for r in theirs]
    w0 = checkpoint_arrays(shared["run"] / "checkpoints" / "last.npz")
    w1 = checkpoint_arrays(other / "checkpoints" / "last.npz")
    weights = [k for k in w0 if k.startswith("model.") and k.endswith(".W")]
    assert weights
    for key in weights:
        assert not np.array_equal(w0[key], w1[key]), key


# ------------------------------------------------------------------------------------------ early stopping


def test_early_stopping_with_patience_1_stops_after_the_first_worse_epoch(tmp_path, write_config):
    config = write_config(TINY_IRIS.replace("  epochs: 3\n", "  epochs: 6\n  early_stopping: {patience: 1}\n"))
    run = train_run(config, tmp_path / "runs", "--set", "train.optimizer.lr=0.3")
    summary = read_json(run / "summary.json")
    assert summary["status"] == "early_stopped"
    assert summary["best_epoch"] == 3
    assert summary["stopped_epoch"] == 4
    assert [r["epoch"] for r in read_jsonl(run / "metrics.jsonl")] == [1, 2, 3, 4]
    assert checkpoint_meta(run / "checkpoints" / "best.npz")["epoch"] == 3
    assert checkpoint_meta(run / "checkpoints" / "last.npz")["epoch"] == 4
    # restore_best (the default): the reported test metrics are those of the best weights
    result = invoke("eval", run / "checkpoints" / "best.npz", "--json")
    assert result.exit_code == 0, result.stderr
    tested = json.loads(result.stdout)["metrics"]
    assert tested["accuracy"] == pytest.approx(summary["test"]["accuracy"])
    assert tested["loss"] == pytest.approx(summary["test"]["loss"], rel=1e-5)


@pytest.mark.parametrize("checkpoint", ["train.checkpoint_seconds=3600", "train.checkpoint_every=1"])
def test_last_checkpoint_of_a_run_that_restored_its_best_weights_holds_the_last_epochs(tmp_path, write_config,
                                                                                       checkpoint):
    """restore_best ends the run on the best weights, but last.npz is the resume point: the end of the last
    epoch, weights and optimizer state together, whether that epoch was written as it ended (every epoch) or
    only at the end of training (checkpoint_seconds not yet elapsed). Resuming it with more epochs must continue
    the run's own trajectory, not restart from the best epoch's weights."""
    config = write_config(TINY_IRIS.replace("  epochs: 3\n", "  epochs: 6\n  early_stopping: {patience: 1}\n"))
    stopped = train_run(config, tmp_path / "stopped", "--set", "train.optimizer.lr=0.3", "--set", checkpoint)
    plain = train_run(config, tmp_path / "plain", "--set", "train.optimizer.lr=0.3", "--set", "train.epochs=4",
                      "--set", "train.early_stopping=null")
    assert read_json(stopped / "summary.json")["best_epoch"] == 3
    last = checkpoint_arrays(stopped / "checkpoints" / "last.npz")
    unstopped = checkpoint_arrays(plain / "checkpoints" / "last.npz")
    best = checkpoint_arrays(stopped / "checkpoints" / "best.npz")
    assert checkpoint_meta(stopped / "checkpoints" / "last.npz")["epoch"] == 4
    weights = [k for k in last if k.startswith("model.")]
    assert weights
    for key in weights:
        np.testing.assert_array_equal(last[key], unstopped[key], err_msg=key)
    assert any(not np.array_equal(last[k], best[k]) for k in weights)


# ------------------------------------------------------------------------------------------ failures


def test_divergence_exits_5_with_one_line_naming_epoch_and_step(tmp_path, shared):
    runs = tmp_path / "runs"
    result = invoke("train", shared["config"], "--runs-dir", runs, "--quiet", "--set", "train.optimizer.lr=1e6")
    line = assert_one_line_error(result, 5, "epoch", "step")
    assert "nan" in line.lower() or "inf" in line.lower()
    (run,) = runs.iterdir()
    summary = read_json(run / "summary.json")
    assert summary["status"] == "diverged"
    assert "epoch" in summary["error"]


def test_divergence_in_validation_prints_only_the_error_line(tmp_path, shared):
    proc = run_mlcli("train", shared["config"], "--runs-dir", tmp_path / "runs", "--quiet",
                     "--set", "train.optimizer.lr=1e6", "--set", "train.batch_size=64")
    assert proc.returncode == 5
    assert_one_line_error(proc, 5, "epoch", "step")


def test_a_failing_run_leaves_existing_run_directories_untouched(tmp_path, shared, write_config):
    runs = shared["runs"]
    before = tree_snapshot(runs)
    assert len(before) >= 6
    diverged = invoke("train", shared["config"], "--runs-dir", runs, "--quiet", "--set", "train.optimizer.lr=1e6")
    assert diverged.exit_code == 5
    bad = invoke("train", write_config(TINY_IRIS + "bogus: 1\n", "bad.yaml"), "--runs-dir", runs, "--quiet")
    assert bad.exit_code == 2
    after = tree_snapshot(runs)
    assert {k: v for k, v in after.items() if k in before} == before
    new_dirs = {Path(k).parts[0] for k in after} - {Path(k).parts[0] for k in before}
    assert len(new_dirs) == 1  # the diverged run got its own directory; the config error created none


# ------------------------------------------------------------------------------------------ signals


def _interrupt(config: Path, runs: Path, signum: int) -> tuple[subprocess.CompletedProcess, Path]:
    """Start a long run, wait for its first epoch line on stderr, send `signum`, and wait for the exit."""
    cmd = [sys.executable, "-m", "mlcli", "train", str(config), "--runs-dir", str(runs),
           "--set", "train.epochs=100000"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    deadline = time.monotonic() + 30
    try:
        for line in proc.stderr:
            seen.append(line)
            if line.startswith("epoch 1:") or time.monotonic() > deadline:
                break
        assert any(s.startswith("epoch 1:") for s in seen), "".join(seen)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    (run,) = runs.iterdir()
    return subprocess.CompletedProcess(cmd, proc.returncode, out, "".join(seen) + err), run


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_training_after_the_batch_and_writes_last_and_summary(tmp_path, shared, signum, code):
    proc, run = _interrupt(shared["config"], tmp_path / "runs", signum)
    assert proc.returncode == code, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    summary = read_json(run / "summary.json")
    assert summary["status"] == "interrupted"
    assert summary["stopped_at"]["epoch"] >= 1
    assert summary["epochs_completed"] < 100000
    assert (run / "checkpoints" / "last.npz").is_file()
    assert (run / "checkpoints" / "best.npz").is_file()
    last_epoch = read_jsonl(run / "metrics.jsonl")[-1]["epoch"]
    assert checkpoint_meta(run / "checkpoints" / "last.npz")["epoch"] == last_epoch
