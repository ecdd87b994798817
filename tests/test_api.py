"""The public Python API (`import mlcli`): what each function returns, callbacks, errors, and the run's provenance.

One shared trained run (tiny iris MLP) serves the tests that only read a run.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import TIMING_KEYS, TINY_IRIS, read_json, read_jsonl

import mlcli
from mlcli.config.load import load_config_text
from mlcli.errors import CheckpointError, ConfigError, MlcliError

IRIS = {"name": "api", "data": {"type": "iris"}, "model": {"type": "mlp", "hidden": [8]},
        "train": {"epochs": 3, "batch_size": 16, "optimizer": {"type": "momentum", "lr": 0.05}}}


def without_timings(history):
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in history]


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    return mlcli.train(IRIS, runs_dir=runs, name="shared"), runs


def test_train_returns_a_run_result_with_history_checkpoints_and_test_metrics(shared):
    result, runs = shared
    assert isinstance(result, mlcli.RunResult)
    assert result.status == "completed" and result.run_dir.parent == runs
    assert [r["epoch"] for r in result.history] == [1, 2, 3]
    assert result.history == read_jsonl(result.run_dir / "metrics.jsonl")
    assert result.best_checkpoint == result.run_dir / "checkpoints" / "best.npz" and result.best_checkpoint.is_file()
    assert result.last_checkpoint.is_file()
    assert set(result.metrics) == {"loss", "accuracy"} and result.metrics == result.summary["test"]
    assert read_json(result.run_dir / "summary.json")["test"] == pytest.approx(result.metrics)


def test_a_path_a_dict_and_a_config_train_identically(tmp_path, write_config):
    path = write_config(TINY_IRIS)
    by_path = mlcli.train(path, runs_dir=tmp_path / "a")
    by_dict = mlcli.train(load_config_text(TINY_IRIS, "x.yaml").resolved(), runs_dir=tmp_path / "b")
    by_config = mlcli.train(mlcli.load_config(path), runs_dir=tmp_path / "c")
    assert without_timings(by_path.history) == without_timings(by_dict.history) == without_timings(by_config.history)


def test_overrides_as_a_dict_have_set_semantics(tmp_path):
    result = mlcli.train(IRIS, overrides={"train.epochs": 2, "model.hidden": [4, 3], "train.optimizer.lr": 1e-2},
                         runs_dir=tmp_path, seed=5)
    cfg = result.summary
    assert len(result.history) == 2 and cfg["seed"] == 5
    assert cfg["overrides"] == ['train.epochs=2', 'model.hidden=[4, 3]', 'train.optimizer.lr=0.01']
    saved = (result.run_dir / "config.yaml").read_text()
    assert "- 4\n" in saved and "lr: 0.01" in saved
    strings = mlcli.train(IRIS, overrides=["train.epochs=2", "model.hidden=[4,3]", "train.optimizer.lr=0.01"],
                          runs_dir=tmp_path / "s", seed=5)
    assert without_timings(strings.history) == without_timings(result.history)


class Recorder(mlcli.Callback):
    """Counts what it sees; its count is state that resume must restore."""

    name = "recorder"

    def __init__(self) -> None:
        self.events: list = []
        self.epochs_seen = 0

    def on_train_begin(self, run) -> None:
        self.events.append(("begin", run.start_epoch))

    def on_epoch_end(self, run, record) -> None:
        self.epochs_seen += 1
        self.events.append(("epoch", record["epoch"], round(record["train_loss"], 12)))

    def on_train_end(self, run) -> None:
        self.events.append(("end", run.status))

    def state_dict(self) -> dict:
        return {"epochs_seen": self.epochs_seen}

    def load_state_dict(self, state: dict) -> None:
        self.epochs_seen = state["epochs_seen"]


def test_a_users_callback_sees_every_epoch_and_its_state_survives_resume(tmp_path):
    first = Recorder()
    run = mlcli.train(IRIS, overrides={"train.epochs": 2}, runs_dir=tmp_path, callbacks=[first])
    assert [e[0] for e in first.events] == ["begin", "epoch", "epoch", "end"]
    assert first.events[-1] == ("end", "completed")
    assert [e[2] for e in first.events[1:3]] == [round(r["train_loss"], 12) for r in run.history]
    again = Recorder()
    more = mlcli.resume(run.run_dir, epochs=3, runs_dir=tmp_path / "more", callbacks=[again])
    assert again.events[0] == ("begin", 2) and again.epochs_seen == 3
    assert [r["epoch"] for r in more.history] == [3]


def test_a_callback_that_only_has_some_hooks_and_stops_training(tmp_path):
    class StopAtTwo:  # duck-typed: no base class, only one hook
        def on_epoch_end(self, run, record):
            run.stop_training = record["epoch"] == 2

    result = mlcli.train(IRIS, overrides={"train.epochs": 5}, runs_dir=tmp_path, callbacks=[StopAtTwo()])
    assert result.status == "early_stopped" and len(result.history) == 2


def test_a_callback_listening_to_batches_gets_every_step(tmp_path):
    class Batches(mlcli.Callback):
        def __init__(self):
            self.steps = []

        def on_batch_end(self, run, event):
            self.steps.append((event.epoch, event.step, event.n_steps))

    cb = Batches()
    mlcli.train(IRIS, overrides={"train.epochs": 2}, runs_dir=tmp_path, callbacks=[cb])
    n_steps = cb.steps[0][2]
    assert cb.steps == [(e, s, n_steps) for e in (1, 2) for s in range(1, n_steps + 1)]


def test_errors_are_mlcli_errors_never_system_exit(tmp_path):
    with pytest.raises(ConfigError, match=r"train.optimizer.momentun: unknown key; did you mean 'momentum'\?"):
        mlcli.train(IRIS, overrides={"train.optimizer.momentun": 0.9}, runs_dir=tmp_path)
    with pytest.raises(ConfigError, match="no-such.yaml"):
        mlcli.train(tmp_path / "no-such.yaml", runs_dir=tmp_path)
    with pytest.raises(ConfigError, match="config must be a path to a YAML file, a dict or a Config, got int"):
        mlcli.train(3, runs_dir=tmp_path)
    with pytest.raises(CheckpointError):
        mlcli.load(tmp_path / "missing.npz")
    assert issubclass(mlcli.errors.ConfigError, mlcli.errors.MlcliError) and MlcliError is mlcli.errors.MlcliError
    assert not (tmp_path / "api").exists() and list(tmp_path.iterdir()) == []


def test_cv_returns_folds_their_indices_mean_and_std(tmp_path):
    result = mlcli.cv({"data": {"type": "iris"}, "model": {"type": "knn", "k": 3}}, folds=3, runs_dir=tmp_path)
    assert isinstance(result, mlcli.CVResult) and result.k == 3 and result.status == "completed"
    assert [f["fold"] for f in result.folds] == [1, 2, 3]
    accs = [f["metrics"]["accuracy"] for f in result.folds]
    assert result.mean["accuracy"] == pytest.approx(np.mean(accs))
    assert result.std["accuracy"] == pytest.approx(np.std(accs))
    vals = [set(f["val"]) for f in result.fold_indices]
    pool = set().union(*vals)
    assert sum(map(len, vals)) == len(pool)  # disjoint
    for f in result.fold_indices:
        assert set(f["train"]) == pool - set(f["val"])
    assert pool.isdisjoint(result.test_indices) and len(pool) + len(result.test_indices) == 150
    assert read_json(result.cv_dir / "cv_summary.json")["mean"] == pytest.approx(result.mean)


def test_cv_grid_runs_one_cv_per_value_and_best_setting_picks_the_highest_accuracy(tmp_path):
    from mlcli.workflows.cv import best_setting, cv_grid, expand_overrides

    assert expand_overrides(["model.k=1,3", "seed=2", "model.x=[1,2]"]) == [
        ["model.k=1", "seed=2", "model.x=[1,2]"], ["model.k=3", "seed=2", "model.x=[1,2]"]]
    runs = cv_grid({"data": {"type": "iris"}, "model": {"type": "knn"}}, 3, overrides=["model.k=1,15"],
                   runs_dir=tmp_path)
    assert [combo for combo, _ in runs] == [["model.k=1"], ["model.k=15"]]
    best, metric = best_setting([r for _, r in runs])
    assert metric == "accuracy"
    assert runs[best][1].mean["accuracy"] == max(r.mean["accuracy"] for _, r in runs)


def test_evaluate_takes_a_run_directory_or_a_checkpoint(shared):
    result, _ = shared
    by_dir = mlcli.evaluate(result.run_dir)
    by_file = mlcli.evaluate(result.best_checkpoint)
    assert by_dir == by_file and by_dir["metrics"] == pytest.approx(result.metrics)
    val = mlcli.evaluate(result.run_dir, split="val")
    assert val["split"] == "val" and val["n"] == result.summary["n_val"]
    with pytest.raises(ConfigError, match="split must be one of test, val, train, got 'tset'"):
        mlcli.evaluate(result.run_dir, split="tset")


def test_load_gives_an_estimator_with_predict_and_predict_proba_on_raw_samples(shared, tmp_path):
    from sklearn.datasets import load_iris

    result, _ = shared
    model = mlcli.load(result.run_dir)
    x, y = load_iris(return_X_y=True)
    proba = model.predict_proba(x)
    assert proba.shape == (150, 3) and np.allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(model.predict(x), proba.argmax(axis=1))
    np.testing.assert_array_equal(model.classes_, [0, 1, 2])
    assert model.config.model.type == "mlp"
    assert model.score(x, y)["accuracy"] == pytest.approx(np.mean(model.predict(x) == y))
    rows = mlcli.predict(result.run_dir, x[:4], out=tmp_path / "p.csv")
    assert [r["prediction"] for r in rows] == [model.class_names_[i] if model.class_names_ else i
                                               for i in model.predict(x[:4])]
    assert (tmp_path / "p.csv").read_text().splitlines()[0] == "index,prediction"
    with pytest.raises(ConfigError, match="has no codes; only an autoencoder does"):
        model.transform(x)
    from mlcli.errors import DataError

    with pytest.raises(DataError, match=r"X: samples have shape \(3,\); the model expects \(4,\)"):
        model.predict(x[:, :3])


def test_load_of_an_autoencoder_transforms_to_codes_and_a_regressor_has_no_probabilities(tmp_path):
    from sklearn.datasets import load_iris

    ae = mlcli.train({"data": {"type": "iris"}, "model": {"type": "autoencoder", "encoder": [3, 2]},
                      "train": {"epochs": 1}}, runs_dir=tmp_path)
    x = load_iris().data
    assert mlcli.load(ae.run_dir).transform(x).shape == (150, 2)
    reg = mlcli.train({"data": {"type": "diabetes"}, "model": {"type": "linear_regression",
                                                                "solver": "closed_form"}}, runs_dir=tmp_path)
    with pytest.raises(ConfigError, match="a regression model has no class probabilities"):
        mlcli.load(reg.run_dir).predict_proba(np.zeros((2, 10)))


def test_resume_of_a_finished_run_says_so_and_creates_nothing(shared, tmp_path, cli, one_line_error):
    result, _ = shared
    with pytest.raises(ConfigError, match=r"already trained to epoch 3 of train.epochs 3; nothing to resume "
                                          r"\(pass --epochs N with N > 3 to train further\)"):
        mlcli.resume(result.run_dir, runs_dir=tmp_path / "r")
    one_line_error(cli("resume", result.run_dir, "--runs-dir", tmp_path / "r"), 2, "nothing to resume", "--epochs")
    assert not (tmp_path / "r").exists()


def test_summary_records_name_times_command_overrides_versions_threads(shared):
    result, _ = shared
    s = read_json(result.run_dir / "summary.json")
    assert s["name"] == "shared" and result.run_dir.name.startswith("shared-")
    start = dt.datetime.fromisoformat(s["started_at"].replace("Z", "+00:00"))
    end = dt.datetime.fromisoformat(s["ended_at"].replace("Z", "+00:00"))
    assert start.tzinfo == dt.timezone.utc and start <= end
    assert isinstance(s["command"], str) and s["overrides"] == []
    assert {"mlcli", "numpy", "python", "blas"} <= set(s["versions"]) and s["versions"]["mlcli"] == mlcli.__version__
    assert s["threads"]["cpu_count"] >= 1 and s["threads"]["mlcli_pool"] >= 1
    assert s["git_commit"] is None  # a dict config has no folder


def test_the_cli_records_its_name_and_command_and_resume_keeps_the_name(tmp_path, write_config, cli):
    config = write_config(TINY_IRIS.replace("epochs: 3", "epochs: 1"))
    assert cli("train", config, "--name", "mine", "--runs-dir", tmp_path / "a", "-q").exit_code == 0
    (first,) = (tmp_path / "a").iterdir()
    s = read_json(first / "summary.json")
    assert s["name"] == "mine" and first.name.startswith("mine-")
    result = cli("resume", first, "--epochs", "2", "--runs-dir", tmp_path / "b", "-q")
    assert result.exit_code == 0, result.stderr
    (second,) = (tmp_path / "b").iterdir()
    assert second.name.startswith("mine-") and read_json(second / "summary.json")["name"] == "mine"
    assert read_json(second / "summary.json")["overrides"] == ["train.epochs=2"]


def test_summary_records_the_git_commit_of_the_configs_folder(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "c.yaml").write_text(json.dumps(IRIS | {"train": IRIS["train"] | {"epochs": 1}}))
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "c.yaml"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "c"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    assert mlcli.train(repo / "c.yaml", runs_dir=tmp_path / "runs").summary["git_commit"] == head
    (repo / "c.yaml").write_text(json.dumps(IRIS | {"train": IRIS["train"] | {"epochs": 2}}))
    assert mlcli.train(repo / "c.yaml", runs_dir=tmp_path / "runs").summary["git_commit"] == head + "+dirty"


def test_no_subpackage_shadows_a_function_of_the_api():
    """Importing a subpackage sets it as an attribute of mlcli: none may be named like an API function."""
    import importlib
    import pkgutil

    for info in pkgutil.walk_packages(mlcli.__path__, "mlcli."):
        if not info.name.startswith("mlcli.cli"):
            importlib.import_module(info.name)
    for name in mlcli.__all__:
        value = getattr(mlcli, name)
        assert not isinstance(value, type(mlcli)) or name == "errors", f"mlcli.{name} is a module"


def test_cv_folds_in_parallel_equal_the_serial_ones(tmp_path):
    config = {"data": {"type": "iris"}, "model": {"type": "mlp", "hidden": [6]},
              "train": {"epochs": 2, "batch_size": 16, "optimizer": {"type": "momentum", "lr": 0.05}}}
    serial = mlcli.cv(config, folds=3, runs_dir=tmp_path / "s")
    parallel = mlcli.cv(config, folds=3, runs_dir=tmp_path / "p", scheduler="processes", workers=2)
    assert [f["metrics"] for f in parallel.folds] == [f["metrics"] for f in serial.folds]
    assert parallel.mean == serial.mean and parallel.fold_indices == serial.fold_indices
    for fold in parallel.folds:
        run = Path(fold["run_dir"])
        assert read_json(run / "summary.json")["run_dir"] == str(run.resolve())
        assert (run / "checkpoints" / "best.npz").is_file()


def test_cv_with_a_bad_scheduler_is_one_error_and_leaves_nothing(tmp_path):
    with pytest.raises(ConfigError, match="--scheduler"):
        mlcli.cv({"data": {"type": "iris"}, "model": {"type": "knn"}}, folds=2, runs_dir=tmp_path,
                 scheduler="threads")
    assert list(tmp_path.iterdir()) == []
