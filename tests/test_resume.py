"""Resume: a run continued from its last checkpoint gives exactly the metrics and weights of an unbroken run."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from mlcli.cli.app import app
from mlcli.config.load import load_config_text
from mlcli.runs.snapshot import load_model
from mlcli.workflows.train import resume, train

runner = CliRunner()
# dropout, batchnorm, a schedule, Adam and early-stopping bookkeeping: every kind of state a resume must carry
CONFIG = """
name: r
data: {type: spirals, n_samples: 300, augment: {noise_std: 0.05}}
model: {type: mlp, hidden: [16, 16], batchnorm: true, dropout: 0.2}
train:
  epochs: %d
  batch_size: 32
  optimizer: {type: adam, lr: 0.01}
  schedule: {type: step, step_size: 2, gamma: 0.5}
  early_stopping: {monitor: val_loss, patience: 50}
"""
TIMING = ("seconds", "samples_per_sec")


def _metrics(run_dir):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def _weights(run_dir):
    return load_model(run_dir / "checkpoints" / "last.npz").model.state()


def test_resume_continues_exactly_like_an_unbroken_run(tmp_path):
    full = train(load_config_text(CONFIG % 5, "c.yaml"), runs_dir=tmp_path / "a")
    half = train(load_config_text(CONFIG % 2, "c.yaml"), runs_dir=tmp_path / "b")
    rest = resume(half.run_dir, epochs=5, runs_dir=tmp_path / "c")
    assert _metrics(rest.run_dir) == _metrics(full.run_dir)[2:]
    for name, value in _weights(full.run_dir).items():
        np.testing.assert_array_equal(_weights(rest.run_dir)[name], value)
    assert rest.summary["resumed_from"]["epoch"] == 2
    assert rest.summary["best_epoch"] == full.summary["best_epoch"]


def test_a_resumed_run_whose_best_epoch_came_before_the_resume_reports_that_epochs_metrics(tmp_path):
    """At lr 0.5 epoch 3 is the best and epoch 4 worse: resumed at 3, the new run's best is the previous run's,
    and its summary (which `mlcli train`/`resume` print as the final table) holds that epoch's record, as the
    unbroken run's does, not an empty one."""
    config = CONFIG.replace("lr: 0.01", "lr: 0.5")
    full = train(load_config_text(config % 4, "c.yaml"), runs_dir=tmp_path / "a")
    head = train(load_config_text(config % 3, "c.yaml"), runs_dir=tmp_path / "b")
    rest = resume(head.run_dir, epochs=4, runs_dir=tmp_path / "c")
    assert full.summary["best_epoch"] == rest.summary["best_epoch"] == 3
    untimed = [{k: v for k, v in s["best"].items() if k not in TIMING} for s in (full.summary, rest.summary)]
    assert untimed[1] == untimed[0]
    assert untimed[1]["epoch"] == 3 and isinstance(untimed[1]["epoch"], int) and "val_loss" in untimed[1]


def test_an_interrupted_run_resumes_from_its_last_whole_epoch(tmp_path):
    full = train(load_config_text(CONFIG % 4, "c.yaml"), runs_dir=tmp_path / "a")
    calls = {"n": 0}

    def stop_in_epoch_three() -> bool:  # 7 batches per epoch: stop after batch 3 of epoch 3
        calls["n"] += 1
        return calls["n"] == 2 * 7 + 3

    cut = train(load_config_text(CONFIG % 4, "c.yaml"), runs_dir=tmp_path / "b", should_stop=stop_in_epoch_three)
    assert cut.status == "interrupted" and load_model(cut.run_dir / "checkpoints" / "last.npz").meta["epoch"] == 2
    rest = resume(cut.run_dir, runs_dir=tmp_path / "c")
    assert _metrics(rest.run_dir) == _metrics(full.run_dir)[2:]
    for name, value in _weights(full.run_dir).items():
        np.testing.assert_array_equal(_weights(rest.run_dir)[name], value)


def test_resume_command_uses_the_runs_config_and_copies_its_best_checkpoint(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG % 2)
    assert runner.invoke(app, ["train", str(config), "--runs-dir", str(tmp_path / "a"), "-q"]).exit_code == 0
    first = next((tmp_path / "a").iterdir())
    result = runner.invoke(app, ["resume", str(first), "--epochs", "3", "--runs-dir", str(tmp_path / "b"), "-q"])
    assert result.exit_code == 0, result.stderr
    second = next((tmp_path / "b").iterdir())
    assert [r["epoch"] for r in _metrics(second)] == [3]
    assert (second / "checkpoints" / "best.npz").is_file()
    assert json.loads((second / "summary.json").read_text())["resumed_from"]["run_dir"] == str(first)


def test_resume_of_something_that_is_not_a_run_is_one_clear_error(tmp_path):
    result = runner.invoke(app, ["resume", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr == f"error: {tmp_path}: not a run directory (no config.yaml)\n"
