"""Sweeps: the sweep file, search spaces, the ledger, ASHA, cv/seeds statistics, save policies, interrupt and
resume, identical results across executors, and the command."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import CONFIGS, TIMING_KEYS, read_json, read_jsonl

import mlcli
from mlcli.config.sweep_schema import load_sweep, load_sweep_text
from mlcli.errors import ConfigError
from mlcli.workflows.sweep import sweep, trial_seed

BASE = {"data": {"type": "iris"}, "model": {"type": "mlp", "hidden": [6]},
        "train": {"epochs": 3, "batch_size": 16, "optimizer": {"type": "momentum", "lr": 0.05}}}
GRID = {"name": "g", "base": BASE, "metric": "val_loss",
        "parameters": {"train.optimizer.lr": [0.01, 0.1], "model.hidden": [[4], [8]]}}


def rows(result):
    """Per-trial results without timings, keyed by trial id."""
    return {r["trial"]: (r["status"], r["score"], r["scores"], r["epochs"], r["error"]) for r in result.trials}


def strip(history):
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in history]


@pytest.fixture(scope="module")
def grid_sweep(tmp_path_factory):
    return sweep(GRID, runs_dir=tmp_path_factory.mktemp("runs"), scheduler="serial")


# ------------------------------------------------------------------------------------------------ the sweep file
@pytest.mark.parametrize("text, fragments", [
    ("base: {data: {type: iris}, model: {type: knn}}\nparamters: {model.k: [1, 3]}\n",
     ["s.yaml:2:1: paramters: unknown key; did you mean 'parameters'?"]),
    ("base: {data: {type: iris}, model: {type: knn}}\nparameters: {model.k: {type: int, low: 1, high: 3}}\n",
     ["s.yaml:2:1: parameters.model.k: grid search takes a list of values"]),
    ("base: {data: {type: iris}, model: {type: knn}}\nmethod: random\nparameters: {model.k: [1, 3]}\n",
     ["trials: method random needs the number of trials"]),
    ("base: {data: {type: iris}, model: {type: knn}}\nmethod: random\ntrials: 2\n"
     "parameters: {model.k: {type: intt, low: 1, high: 3}}\n",
     ["s.yaml:4:24: parameters.model.k.type: must be one of choice, uniform, loguniform, int, qint; got 'intt'; "
      "did you mean 'int'?"]),
    ("base: {data: {type: iris}, model: {typ: knn}}\nparameters: {model.k: [1, 3]}\n",
     ["s.yaml:1:28: base.model: needs a 'type' key"]),
    ("base: missing.yaml\nparameters: {model.k: [1, 3]}\n", ["s.yaml:1:1: base: no config file"]),
    ("base: {data: {type: iris}, model: {type: knn}}\nzip: [{model.k: [1, 3], model.metric: [l1]}]\n",
     ["zip.0: the lists of a zip group vary together and need one length; got lengths [1, 2]"]),
    ("base: {data: {type: iris}, model: {type: mlp}}\nparameters: {model.hidden: [[4]]}\ncv: 3\n"
     "pruner: {type: asha}\n", ["pruner: asha stops single runs early; it cannot be combined with cv"]),
])
def test_sweep_file_errors_name_the_line_the_field_and_what_was_expected(tmp_path, text, fragments):
    with pytest.raises(ConfigError) as info:
        load_sweep_text(text, "s.yaml", tmp_path)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_a_metric_the_model_does_not_report_is_a_config_error(tmp_path):
    spec = {"base": {"data": {"type": "iris"}, "model": {"type": "knn"}}, "metric": "val_loss",
            "parameters": {"model.k": [1]}}
    with pytest.raises(ConfigError, match="metric: 'val_loss' is not a metric of the base config's knn; available: "
                                          "train_accuracy, val_accuracy"):
        sweep(spec, runs_dir=tmp_path, scheduler="serial")
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


def test_the_command_gives_one_error_line_for_a_bad_sweep_file(tmp_path, cli, one_line_error):
    path = tmp_path / "s.yaml"
    path.write_text("base: {data: {type: iris}, model: {type: knn}}\nparameters: {model.k: [1]}\nmetrc: x\n")
    one_line_error(cli("sweep", path, "--scheduler", "serial", "--runs-dir", tmp_path / "r"), 2,
                   f"{path}:3:1: metrc: unknown key; did you mean 'metric'?")
    one_line_error(cli("sweep", CONFIGS / "sweeps" / "knn_cv.yaml", "--scheduler", "threads", "--runs-dir",
                       tmp_path / "r2"), 2, "--scheduler")
    assert not (tmp_path / "r2").exists() or list((tmp_path / "r2").iterdir()) == []  # no empty sweep left
    one_line_error(cli("sweep", "--resume", tmp_path), 2, "not a sweep directory")


def test_the_shipped_sweep_files_validate():
    files = sorted((CONFIGS / "sweeps").glob("*.yaml"))
    assert len(files) >= 3
    for path in files:
        spec, base, _ = load_sweep(path)
        assert spec.parameters and base.model.type


# ------------------------------------------------------------------------------------------------ search spaces
def test_grid_is_the_product_with_zip_groups_as_one_dimension():
    from mlcli.sweeps.space import Choice, SearchSpace

    space = SearchSpace({"a": Choice((1, 2)), "b": Choice(("x", "y", "z"))},
                        zipped=[{"opt": ["sgd", "adam"], "lr": [0.1, 0.001]}])
    grid = space.grid()
    assert len(grid) == 2 * 3 * 2
    assert grid[0] == {"a": 1, "b": "x", "opt": "sgd", "lr": 0.1}
    assert grid[1] == {"a": 1, "b": "x", "opt": "adam", "lr": 0.001}
    assert all((g["opt"], g["lr"]) in {("sgd", 0.1), ("adam", 0.001)} for g in grid)


def test_random_draws_depend_only_on_seed_and_index_and_respect_their_ranges():
    from mlcli.sweeps.space import Choice, IntRange, LogUniform, SearchSpace, Uniform

    space = SearchSpace({"lr": LogUniform(1e-4, 1e-1), "m": Uniform(0.5, 0.9), "k": IntRange(2, 10, 4),
                         "h": Choice(([8], [16]))})
    draws = [space.sample(7, i) for i in range(200)]
    assert space.sample(7, 150) == draws[150] and space.sample(8, 150) != draws[150]
    assert all(1e-4 <= d["lr"] <= 1e-1 and 0.5 <= d["m"] <= 0.9 for d in draws)
    assert {d["k"] for d in draws} == {2, 6, 10} and {tuple(d["h"]) for d in draws} == {(8,), (16,)}
    logs = np.log10([d["lr"] for d in draws])
    assert -3.1 < logs.mean() < -1.9  # log-uniform: the log is uniform on [-4, -1]


def test_trial_seeds_come_from_seed_sequences_of_sweep_seed_and_index():
    seeds = {trial_seed(0, i) for i in range(100)} | {trial_seed(0, 3, s) for s in range(1, 5)}
    assert len(seeds) == 104 and all(0 <= s < 2**63 for s in seeds)
    assert trial_seed(0, 3) == trial_seed(0, 3) != trial_seed(1, 3)
    assert trial_seed(0, 3, 0) == trial_seed(0, 3)  # the first repeat is the trial's own seed
    assert trial_seed(0, 3) == int(np.random.SeedSequence([0, 3]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def test_paired_t_test_equals_scipy():
    from scipy.stats import ttest_rel

    from mlcli.sweeps.stats import paired_t_test

    rng = np.random.default_rng(0)
    for n in (2, 3, 5, 12):
        a = rng.normal(size=n)
        b = a + rng.normal(0.2, 0.5, size=n)
        t, p = paired_t_test(a, b)
        ref = ttest_rel(a, b)
        assert t == pytest.approx(ref.statistic, rel=1e-12) and p == pytest.approx(ref.pvalue, rel=1e-9)
    assert paired_t_test([1, 2], [1, 2]) == (0.0, 1.0)


# ------------------------------------------------------------------------------------------------ a grid sweep
def test_a_grid_sweep_writes_its_directory_ledger_best_config_and_summary(grid_sweep):
    r = grid_sweep
    assert r.status == "completed" and len(r.trials) == 4
    assert sorted(os.listdir(r.sweep_dir)) == ["best.yaml", "summary.json", "sweep.jsonl", "sweep.yaml", "trials"]
    ledger = read_jsonl(r.sweep_dir / "sweep.jsonl")
    assert [rec["trial"] for rec in ledger] == ["t0000", "t0001", "t0002", "t0003"]
    assert {rec["status"] for rec in ledger} == {"completed"}
    assert ledger[1]["overrides"] == {"train.optimizer.lr": 0.01, "model.hidden": [8]}
    scores = [rec["score"] for rec in ledger]
    assert r.best["score"] == min(scores) and r.trials[0] is r.best
    assert [t["score"] for t in r.trials] == sorted(scores)
    summary = read_json(r.sweep_dir / "summary.json")
    assert summary["best"]["trial"] == r.best["trial"] and summary["counts"]["completed"] == 4


def test_each_trial_is_a_normal_run_scored_by_its_best_epoch(grid_sweep):
    r = grid_sweep
    for t in r.trials:
        run = r.sweep_dir / "trials" / t["trial"]
        history = read_jsonl(run / "metrics.jsonl")
        assert t["score"] == min(h["val_loss"] for h in history)
        assert read_json(run / "summary.json")["run_dir"] == str(run.resolve())
    best_run = r.sweep_dir / "trials" / r.best["trial"]
    assert mlcli.evaluate(best_run)["metrics"]["loss"] == pytest.approx(read_json(best_run / "summary.json")["test"]
                                                                        ["loss"])


def test_best_yaml_retrains_the_best_trial_exactly(grid_sweep, tmp_path):
    r = grid_sweep
    again = mlcli.train(r.sweep_dir / "best.yaml", runs_dir=tmp_path)
    best_run = r.sweep_dir / "trials" / r.best["trial"]
    assert strip(again.history) == strip(read_jsonl(best_run / "metrics.jsonl"))
    assert r.best_config["model"]["hidden"] == r.best["overrides"]["model.hidden"]


def test_save_best_keeps_checkpoints_of_the_best_trial_only(grid_sweep):
    r = grid_sweep
    with_checkpoints = sorted(p.parent.parent.name for p in (r.sweep_dir / "trials").glob("*/checkpoints/best.npz"))
    assert with_checkpoints == [r.best["trial"]]


@pytest.mark.parametrize("save, expected", [("all", 2), ("none", 0)])
def test_save_all_and_none(tmp_path, save, expected):
    spec = GRID | {"parameters": {"train.optimizer.lr": [0.01, 0.1]}, "save": save}
    r = sweep(spec, runs_dir=tmp_path, scheduler="serial")
    assert len(list((r.sweep_dir / "trials").glob("*/checkpoints/*.npz"))) == 2 * expected


def test_a_failing_trial_is_recorded_and_the_sweep_goes_on(tmp_path):
    spec = GRID | {"parameters": {"train.optimizer.lr": [0.05, "fast", 1e6]}}
    r = sweep(spec, runs_dir=tmp_path, scheduler="serial")
    by_lr = {str(t["overrides"]["train.optimizer.lr"]): t for t in r.trials}
    assert by_lr["0.05"]["status"] == "completed"
    assert by_lr["fast"]["status"] == "failed" and "expected a finite number" in by_lr["fast"]["error"]
    assert by_lr["1000000.0"]["status"] == "failed" and "became" in by_lr["1000000.0"]["error"]
    assert r.best["trial"] == by_lr["0.05"]["trial"] and r.status == "completed"


def test_paths_in_a_sweep_file_are_resolved_against_its_folder(tmp_path, monkeypatch):
    folder = tmp_path / "project" / "sweeps"
    folder.mkdir(parents=True)
    (tmp_path / "project" / "base.yaml").write_text(yaml.safe_dump(BASE))
    (folder / "s.yaml").write_text("base: ../base.yaml\nparameters: {train.optimizer.lr: [0.05]}\n")
    monkeypatch.chdir(tmp_path)
    r = sweep(folder / "s.yaml", runs_dir=tmp_path / "runs", scheduler="serial")
    assert r.trials[0]["status"] == "completed"


# ------------------------------------------------------------------------------------------------ backends
def test_serial_processes_and_dask_give_identical_per_trial_results(tmp_path):
    # digits: products large enough that BLAS would split them over threads differently per scheduler
    spec = {"name": "d", "base": {"data": {"type": "digits"}, "model": {"type": "mlp", "hidden": [64]},
                                  "train": {"epochs": 2, "batch_size": 32, "optimizer": {"type": "momentum",
                                                                                         "lr": 0.05}}},
            "metric": "val_loss", "parameters": {"train.optimizer.lr": [0.01, 0.3], "model.hidden": [[128]]},
            "save": "none"}
    serial = rows(sweep(spec, runs_dir=tmp_path / "s", scheduler="serial"))
    processes = rows(sweep(spec, runs_dir=tmp_path / "p", scheduler="processes", workers=2))
    dask = rows(sweep(spec, runs_dir=tmp_path / "d", scheduler="dask", workers=2))
    assert serial == processes == dask


# ------------------------------------------------------------------------------------------------ asha
def test_asha_prunes_bad_trials_and_a_promoted_trial_equals_an_unbroken_run(tmp_path):
    spec = {"name": "a", "base": BASE | {"train": BASE["train"] | {"epochs": 9}}, "metric": "val_loss",
            "method": "random", "trials": 9, "seed": 3,
            "parameters": {"train.optimizer.lr": {"type": "loguniform", "low": 1e-3, "high": 0.3}},
            "pruner": {"type": "asha", "min_epochs": 1, "reduction_factor": 3}}
    r = sweep(spec, runs_dir=tmp_path, scheduler="serial")
    statuses = [t["status"] for t in r.trials]
    assert set(statuses) == {"completed", "pruned"} and statuses.count("pruned") >= 5
    assert {t["epochs"] for t in r.trials} == {1, 3, 9}
    assert all(t["epochs"] < 9 for t in r.trials if t["status"] == "pruned")
    assert sum(t["epochs"] for t in r.trials) < 9 * 9 / 2  # far less than 9 full runs
    best = r.best
    assert best["status"] == "completed" and best["epochs"] == 9
    trial_dir = r.sweep_dir / "trials" / best["trial"]
    history = read_jsonl(trial_dir / "metrics.jsonl")
    assert [h["epoch"] for h in history] == list(range(1, 10))
    cfg = yaml.safe_load((trial_dir / "config.yaml").read_text())
    unbroken = mlcli.train(cfg, runs_dir=tmp_path / "unbroken")
    assert strip(unbroken.history) == strip(history)  # continued twice from last.npz, bit for bit
    assert not list((r.sweep_dir / "trials").glob("*/checkpoints/last.npz"))[1:]


# ------------------------------------------------------------------------------------------------ cv and seeds
def test_cv_trials_share_folds_and_the_table_has_mean_std_and_paired_p_values(tmp_path):
    spec = {"name": "k", "base": {"data": {"type": "iris"}, "model": {"type": "knn"}}, "metric": "val_accuracy",
            "parameters": {"model.k": [1, 7, 25]}, "cv": 3}
    r = sweep(spec, runs_dir=tmp_path, scheduler="serial")
    assert all(len(t["scores"]) == 3 for t in r.trials)
    assert r.best["score"] == max(t["score"] for t in r.trials) and r.best["p_value"] is None
    others = r.trials[1:]
    assert all(t["std"] is not None and 0 <= t["p_value"] <= 1 for t in others)
    folds = [read_json(r.sweep_dir / "trials" / t["trial"] / "folds.json")["folds"] for t in r.trials]
    assert folds[0] == folds[1] == folds[2]
    assert r.best["score"] == pytest.approx(np.mean(r.best["scores"]))


def test_seeds_repeat_each_trial(tmp_path):
    spec = GRID | {"parameters": {"train.optimizer.lr": [0.05, 0.1]}, "seeds": 2}
    r = sweep(spec, runs_dir=tmp_path, scheduler="serial")
    for t in r.trials:
        assert len(t["scores"]) == 2 and t["scores"][0] != t["scores"][1]
        assert sorted(os.listdir(r.sweep_dir / "trials" / t["trial"])) == ["seed-1", "seed-2"]
    assert r.trials[1]["p_value"] is not None


# ------------------------------------------------------------------------------------------------ stop and resume
def test_an_interrupted_sweep_resumes_to_the_same_table(tmp_path, grid_sweep):
    ended = []

    def stop_after_two():
        return len(ended) >= 2

    cut = sweep(GRID, runs_dir=tmp_path, scheduler="serial", should_stop=stop_after_two,
                on_event=lambda e: ended.append(e) if e["kind"] == "ended" else None)
    assert cut.status == "interrupted" and len(read_jsonl(cut.sweep_dir / "sweep.jsonl")) == 2
    assert not (cut.sweep_dir / "best.yaml").exists()
    done = sweep(None, resume=cut.sweep_dir, scheduler="serial")
    assert done.status == "completed" and rows(done) == rows(grid_sweep)
    assert len(read_jsonl(done.sweep_dir / "sweep.jsonl")) == 4


def test_a_torn_last_ledger_line_is_ignored(tmp_path):
    from mlcli.sweeps.ledger import Ledger

    ledger = Ledger(tmp_path / "sweep.jsonl")
    ledger.append({"trial": "t0000", "status": "completed"})
    with open(tmp_path / "sweep.jsonl", "a") as f:
        f.write('{"trial": "t0001", "sta')
    assert list(ledger.latest()) == ["t0000"]


# ------------------------------------------------------------------------------------------------ tpe, api, cli
def test_tpe_through_optuna_runs_its_trials_and_rebuilds_from_the_ledger_on_resume(tmp_path):
    spec = {"name": "t", "base": BASE, "metric": "val_loss", "method": "tpe", "trials": 4, "seed": 1,
            "parameters": {"train.optimizer.lr": {"type": "loguniform", "low": 1e-3, "high": 0.3},
                           "model.hidden": [[4], [8]]}}
    ended = []
    cut = sweep(spec, runs_dir=tmp_path, scheduler="serial", should_stop=lambda: len(ended) >= 2,
                on_event=lambda e: ended.append(e) if e["kind"] == "ended" else None)
    done = sweep(None, resume=cut.sweep_dir, scheduler="serial")
    assert done.status == "completed" and len(done.trials) == 4
    assert all(1e-3 <= t["overrides"]["train.optimizer.lr"] <= 0.3 for t in done.trials)
    assert all(math.isfinite(t["score"]) for t in done.trials)


def test_mlcli_sweep_is_the_public_function(tmp_path):
    r = mlcli.sweep(GRID | {"parameters": {"train.optimizer.lr": [0.05]}}, runs_dir=tmp_path, scheduler="serial")
    assert isinstance(r, mlcli.SweepResult) and r.best_config["train"]["optimizer"]["lr"] == 0.05


def test_the_command_runs_a_shipped_sweep_shortened_and_prints_json(tmp_path, cli):
    spec = yaml.safe_load((CONFIGS / "sweeps" / "knn_cv.yaml").read_text())
    spec["parameters"] = {"model.k": [1, 5]}
    spec["cv"] = 2
    spec["base"] = str((CONFIGS / "knn.yaml").resolve())
    path = tmp_path / "short.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = cli("sweep", path, "--scheduler", "serial", "--runs-dir", tmp_path / "runs", "--json")
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["status"] == "completed" and len(out["trials"]) == 2 and out["best"]["scores"]
    table = cli("sweep", path, "--scheduler", "serial", "--runs-dir", tmp_path / "runs2")
    assert table.exit_code == 0 and "best config" in table.stdout and "p vs best" in table.stdout
    resumed = cli("sweep", "--resume", Path(out["sweep_dir"]), "--scheduler", "serial", "--json")
    assert resumed.exit_code == 0 and json.loads(resumed.stdout)["trials"] == out["trials"]


def test_the_data_goes_to_the_workers_once_not_read_by_each_trial(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 4))
    np.savez(tmp_path / "d.npz", x=x, y=(x[:, 0] > 0).astype(np.int64))
    spec = {"name": "f", "base": {"data": {"type": "npz", "path": str(tmp_path / "d.npz")},
                                  "model": {"type": "softmax"},
                                  "train": {"epochs": 2, "optimizer": {"type": "sgd", "lr": 0.1}}},
            "metric": "val_loss", "parameters": {"train.optimizer.lr": [0.1, 0.3]}}

    def delete_the_file(event):  # once the first trial is sent, nobody can read the file any more
        if event["kind"] == "started":
            (tmp_path / "d.npz").unlink(missing_ok=True)

    r = sweep(spec, runs_dir=tmp_path / "runs", scheduler="processes", workers=2, on_event=delete_the_file)
    assert [t["status"] for t in r.trials] == ["completed", "completed"], [t["error"] for t in r.trials]


def test_ctrl_c_stops_a_sweep_with_exit_130_and_resume_finishes_it_to_the_same_table(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    spec = {"name": "c", "base": {"data": {"type": "digits"}, "model": {"type": "mlp", "hidden": [32]},
                                  "train": {"epochs": 2, "batch_size": 32, "checkpoint_seconds": 0,
                                            "optimizer": {"type": "momentum", "lr": 0.05}}},
            "metric": "val_loss", "parameters": {"train.optimizer.lr": [0.01, 0.03, 0.1, 0.3, 0.5, 0.7]}}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec))
    runs = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "mlcli", "sweep", str(path), "--workers", "2", "--runs-dir",
                             str(runs), "-q"], start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline:  # wait for the first finished trial, then press Ctrl-C (the whole group)
        ledgers = list(runs.glob("*/sweep.jsonl"))
        if ledgers and ledgers[0].read_text().strip():
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    (sweep_dir,) = runs.iterdir()
    done_before = read_jsonl(sweep_dir / "sweep.jsonl")
    assert 1 <= len(done_before) < 6 and "mlcli sweep --resume" in err
    assert not (sweep_dir / "best.yaml").exists()
    resumed = sweep(None, resume=sweep_dir, scheduler="serial")
    whole = sweep(spec, runs_dir=tmp_path / "whole", scheduler="serial")
    assert resumed.status == "completed" and rows(resumed) == rows(whole)


def test_every_sweep_file_field_and_range_type_is_in_the_readme():
    from conftest import REPO

    from mlcli.config import sweep_schema

    readme = (REPO / "README.md").read_text()
    section = readme.split("## Sweeps", 1)[1].split("\n## ", 1)[0]
    fields = [*sweep_schema.SweepConfig.model_fields, *sweep_schema.AshaPruner.model_fields]
    assert [f for f in fields if f"`{f}`" not in section and f"{f}:" not in section] == []
    for kind in ("choice", "uniform", "loguniform", "int", "qint"):
        assert f"type: {kind}" in section
