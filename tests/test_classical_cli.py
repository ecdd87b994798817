"""Classical models driven by the same train / eval / cv commands as networks (issue 4)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from mlcli.cli.app import app
from mlcli.config.load import load_config, load_config_text
from mlcli.workflows.train import run_config as run_training

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


def test_cv_over_a_comma_list_of_k_runs_one_cv_per_value_and_marks_the_best(tmp_path):
    result = runner.invoke(app, ["cv", str(REPO / "configs" / "knn.yaml"), "--folds", "3", "--set",
                                 "model.k=1,3,5", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("│ model.k=")]
    assert len(rows) == 3
    assert [("*" in row) for row in rows].count(True) == 1
    assert len(list(tmp_path.glob("knn-cv-*"))) == 3


def test_cv_json_over_k_lists_every_setting(tmp_path):
    result = runner.invoke(app, ["cv", str(REPO / "configs" / "knn.yaml"), "--folds", "3", "--set",
                                 "model.k=1,7", "--json", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    runs = json.loads(result.stdout)["runs"]
    assert [r["set"] for r in runs] == [["model.k=1"], ["model.k=7"]]
    assert all(0.9 < r["mean"]["accuracy"] <= 1.0 for r in runs)


def test_k_larger_than_the_training_set_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["train", str(REPO / "configs" / "knn.yaml"), "--set", "model.k=5000",
                                 "--runs-dir", str(tmp_path)])
    assert result.exit_code == 3
    assert result.stderr == "error: k is 5000 but the training set has only 1259 rows; use k <= 1259 or more data\n"
    assert not list(tmp_path.iterdir())


def test_knn_checkpoint_evaluates_alone_with_identical_predictions(tmp_path):
    cfg = load_config(REPO / "configs" / "knn.yaml")
    run = run_training(cfg, runs_dir=tmp_path)
    result = runner.invoke(app, ["eval", str(run.run_dir / "checkpoints" / "best.npz"), "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["metrics"]["accuracy"] == run.summary["test"]["accuracy"]


def test_closed_form_least_squares_equals_gradient_descent_after_convergence(tmp_path):
    text = ("data: {type: linear_regression, n_samples: 300, features: 4, noise: 0.5, val_fraction: 0.0}\n"
            "model: {type: linear_regression, solver: %s}\n%s")
    closed = run_training(load_config_text(text % ("closed_form", ""), "c.yaml"), runs_dir=tmp_path)
    gd = run_training(load_config_text(text % ("gd", "train: {epochs: 400, batch_size: full, optimizer: "
                                                     "{type: momentum, lr: 0.1, momentum: 0.9}, dtype: float64}\n"),
                                       "g.yaml"), runs_dir=tmp_path)
    assert closed.summary["test"]["r2"] > 0.9
    np.testing.assert_allclose(gd.summary["test"]["mse"], closed.summary["test"]["mse"], rtol=1e-6)
    np.testing.assert_allclose(gd.summary["test"]["r2"], closed.summary["test"]["r2"], rtol=1e-6)


def test_newton_reaches_the_loss_of_converged_gradient_descent_in_a_few_steps(tmp_path):
    base = ("data: {type: iris}\nmodel: {type: softmax}\n"
            "train: {epochs: %d, batch_size: full, optimizer: %s, regularization: {l2: 0.01}, dtype: float64}\n")
    newton = run_training(load_config_text(base % (8, "{type: newton}"), "n.yaml"), runs_dir=tmp_path)
    gd = run_training(load_config_text(base % (3000, "{type: momentum, lr: 0.5}"), "g.yaml"), runs_dir=tmp_path)
    newton_loss = newton.history[-1]["train_loss"] + newton.history[-1]["penalty"]
    gd_loss = gd.history[-1]["train_loss"] + gd.history[-1]["penalty"]
    assert abs(newton_loss - gd_loss) < 1e-6


def test_newton_refuses_a_hessian_over_its_memory_limit(tmp_path):
    result = runner.invoke(app, ["train", str(REPO / "configs" / "newton.yaml"), "--set",
                                 "train.optimizer.max_memory_mb=0.001", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "needs a 42x42 Hessian" in result.stderr and "max_memory_mb" in result.stderr
    assert not list(tmp_path.iterdir())


def test_gaussian_classifier_reaches_095_on_iris(tmp_path):
    run = run_training(load_config(REPO / "configs" / "gaussian.yaml"), runs_dir=tmp_path)
    assert run.summary["test"]["accuracy"] >= 0.95


def test_classical_least_squares_on_diabetes_reaches_plain_least_squares_r2(tmp_path):
    run = run_training(load_config(REPO / "configs" / "linear_regression_closed_form.yaml"), runs_dir=tmp_path)
    assert 0.35 < run.summary["test"]["r2"] < 0.65


def test_eval_of_a_run_directory_uses_its_best_checkpoint(tmp_path):
    run = run_training(load_config(REPO / "configs" / "gaussian.yaml"), runs_dir=tmp_path)
    result = runner.invoke(app, ["eval", str(run.run_dir), "--json"])
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["checkpoint"] == str(run.run_dir / "checkpoints" / "best.npz")
    assert out["metrics"]["accuracy"] == run.summary["test"]["accuracy"]


def test_predict_names_classes_and_applies_the_training_standardization(tmp_path):
    from sklearn.datasets import load_iris

    run = run_training(load_config(REPO / "configs" / "gaussian.yaml"), runs_dir=tmp_path / "runs")
    iris = load_iris()
    picks = [0, 60, 120]
    np.savez(tmp_path / "new.npz", x=iris.data[picks])
    result = runner.invoke(app, ["predict", str(run.run_dir), str(tmp_path / "new.npz"), "--out",
                                 str(tmp_path / "p.csv")])
    assert result.exit_code == 0, result.stderr
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert lines == ["index,prediction"] + [f"{i},{iris.target_names[iris.target[p]]}" for i, p in enumerate(picks)]


def test_predict_rejects_samples_of_the_wrong_shape(tmp_path):
    run = run_training(load_config(REPO / "configs" / "gaussian.yaml"), runs_dir=tmp_path / "runs")
    np.save(tmp_path / "bad.npy", np.zeros((2, 5)))
    result = runner.invoke(app, ["predict", str(run.run_dir), str(tmp_path / "bad.npy")])
    assert result.exit_code == 3
    assert result.stderr == f"error: {tmp_path / 'bad.npy'}: samples have shape (5,); the model expects (4,)\n"
