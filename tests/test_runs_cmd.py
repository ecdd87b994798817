"""`mlcli runs list / show / compare` and `list_runs`, `show_run`, `compare_runs`: on run directories trained with
the Python API (two runs that differ in train.optimizer.lr and seed, one 2-fold cv), read-only tests sharing one
module-scoped tree, the others changing a copy of it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import tree_snapshot

import mlcli
from mlcli.errors import ConfigError
from mlcli.workflows.runs import compare_runs, list_runs, show_run

TINY = {"data": {"type": "iris"}, "model": {"type": "mlp", "hidden": [4]}, "train": {"epochs": 2}}
COLUMNS = {"run", "kind", "group", "name", "model", "status", "monitor", "best", "best_epoch", "epochs", "seconds",
           "started", "started_from", "metrics", "reason"}


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("runs")
    fast = mlcli.train(TINY, overrides={"train.optimizer": {"type": "sgd", "lr": 0.1}}, seed=1, runs_dir=root, name="fast")
    slow = mlcli.train(TINY, overrides={"train.optimizer": {"type": "sgd", "lr": 0.001}}, seed=2, runs_dir=root, name="slow")
    folds = mlcli.cv(TINY, folds=2, runs_dir=root, name="tiny")
    return {"root": root, "fast": fast.run_dir, "slow": slow.run_dir, "cv": folds.cv_dir}


@pytest.fixture
def copy(tree, tmp_path) -> dict:
    """The module's tree copied into tmp_path, for the tests that damage it."""
    root = tmp_path / "runs"
    shutil.copytree(tree["root"], root)
    return {k: root / Path(v).relative_to(tree["root"]) if k != "root" else root for k, v in tree.items()}


def rows(cli, *args) -> list[dict]:
    result = cli("runs", "list", *args, "--json")
    assert result.exit_code == 0, result.stderr + repr(result.exception)
    return json.loads(result.stdout)


def test_list_shows_every_run_fold_and_status(cli, tree):
    found = rows(cli, tree["root"])
    assert {(Path(r["run"]).name, r["kind"]) for r in found} == {
        (tree["fast"].name, "run"), (tree["slow"].name, "run"), ("fold-1", "cv fold"), ("fold-2", "cv fold")}
    assert all(r["status"] == "completed" and r["reason"] is None for r in found)
    assert all(set(r) == COLUMNS for r in found)
    fast = next(r for r in found if r["name"] == "fast")
    assert fast["model"] == "mlp" and fast["monitor"] == "val_loss" and fast["epochs"] == 2
    assert fast["best"] == fast["metrics"]["val_loss"] and fast["best_epoch"] in (1, 2)
    assert fast["started_from"] == "summary" and fast["seconds"] > 0 and "test_accuracy" in fast["metrics"]
    assert {r["group"] for r in found if r["kind"] == "cv fold"} == {str(tree["cv"])}


def test_list_table_names_the_runs_and_nothing_is_written(cli, tree):
    before = tree_snapshot(tree["root"])
    result = cli("runs", "list", tree["root"])
    assert result.exit_code == 0, result.stderr
    assert tree["fast"].name in result.stdout and "fold-2" in result.stdout and "cv fold" in result.stdout
    assert "4 runs in" in result.stdout
    for args in (("show", tree["fast"]), ("compare", tree["cv"]), ("compare", tree["fast"], tree["slow"])):
        assert cli("runs", *args).exit_code == 0
    assert tree_snapshot(tree["root"]) == before


def test_sort_val_loss_ascending_and_val_accuracy_descending(cli, tree):
    losses = [r["metrics"]["val_loss"] for r in rows(cli, tree["root"], "--sort", "val_loss")]
    assert losses == sorted(losses)
    accuracies = [r["metrics"]["val_accuracy"] for r in rows(cli, tree["root"], "--sort", "val_accuracy")]
    assert accuracies == sorted(accuracies, reverse=True)
    names = [r["name"] for r in rows(cli, tree["root"], "--sort", "name")]
    assert names == sorted(names)


def test_unknown_sort_key_is_one_error_with_a_suggestion(cli, one_line_error, tree):
    one_line_error(cli("runs", "list", tree["root"], "--sort", "val_los"), 2, "--sort", "did you mean 'val_loss'")


def test_run_without_summary_is_killed_with_its_progress(cli, copy):
    (copy["fast"] / "summary.json").unlink()
    row = next(r for r in rows(cli, copy["root"]) if r["run"].endswith(copy["fast"].name))
    assert row["status"] == "killed" and row["name"] == "run" and row["model"] == "mlp"
    assert row["epochs"] == 2 and row["monitor"] == "val_loss" and row["best"] == row["metrics"]["val_loss"]
    assert row["started_from"] == "mtime" and row["started"].endswith("Z")


def test_run_whose_lock_names_a_live_pid_is_running(cli, copy):
    (copy["fast"] / "summary.json").unlink()
    lock = copy["fast"] / "run.lock"
    lock.write_text(json.dumps({"pid": os.getpid()}))
    assert {r["name"]: r["status"] for r in rows(cli, copy["fast"])} == {"run": "running"}
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock.write_text(f"{dead.pid}\n")
    assert rows(cli, copy["fast"])[0]["status"] == "killed"


@pytest.mark.parametrize("damage", ["truncated", "nested", "list", "fifo", "tagged_config", "huge"])
def test_unreadable_files_give_an_unreadable_row_not_a_crash(cli, copy, damage):
    summary, config = copy["fast"] / "summary.json", copy["fast"] / "config.yaml"
    if damage == "truncated":
        summary.write_text(summary.read_text()[:100])
    elif damage == "nested":
        summary.write_text("[" * 100_000)
    elif damage == "list":
        summary.write_text("[1, 2]")
    elif damage == "fifo":
        summary.unlink()
        os.mkfifo(summary)
    elif damage == "tagged_config":
        config.write_text("name: !!python/object/apply:os.system ['echo owned']\n")
    else:
        summary.write_bytes(b" " * (5 * 2**20))
    found = rows(cli, copy["root"])
    row = next(r for r in found if r["run"].endswith(copy["fast"].name))
    assert row["status"] == "unreadable" and row["reason"]
    assert str(copy["fast"]) in row["reason"]
    assert sum(r["status"] == "completed" for r in found) == 3
    assert cli("runs", "list", copy["root"]).exit_code == 0
    shown = cli("runs", "show", copy["fast"])
    assert shown.exit_code == 0 and "unreadable" in shown.stdout
    compared = json.loads(cli("runs", "compare", copy["fast"], copy["slow"], "--json").stdout)
    assert [r["status"] for r in compared["runs"]] == ["unreadable", "completed"]


def test_hostile_values_are_printed_as_plain_text_and_strict_json(cli, copy):
    path = copy["fast"] / "summary.json"
    summary = json.loads(path.read_text())
    summary.update(name="[bold]evil[/] \x1b[31mred [/", seconds="soon", final=[1, 2])
    summary["best"]["val_loss"] = float("nan")
    summary["test"]["loss"] = float("inf")
    path.write_text(json.dumps(summary))  # NaN and Infinity: not strict JSON, but json.loads takes them
    table = cli("runs", "list", copy["fast"])
    assert table.exit_code == 0 and "[bold]evil[/] ?[31mred [/" in table.stdout and "\x1b" not in table.stdout
    for args in (("list", copy["fast"]), ("show", copy["fast"]), ("compare", copy["fast"], copy["slow"])):
        result = cli("runs", *args, "--json")
        assert result.exit_code == 0, result.stderr
        json.loads(result.stdout, parse_constant=lambda c: pytest.fail(f"{c} in strict JSON output"))
    row = rows(cli, copy["fast"])[0]
    assert "val_loss" not in row["metrics"] and row["metrics"]["test_loss"] == "inf" and row["seconds"] is None
    assert cli("runs", "show", copy["fast"]).exit_code == 0


def test_status_filter_takes_repeats_and_comma_lists(cli, one_line_error, copy):
    (copy["fast"] / "summary.json").unlink()
    assert [r["status"] for r in rows(cli, copy["root"], "--status", "killed")] == ["killed"]
    assert len(rows(cli, copy["root"], "--status", "completed")) == 3
    assert len(rows(cli, copy["root"], "--status", "completed,killed")) == 4
    assert len(rows(cli, copy["root"], "--status", "killed", "--status", "diverged")) == 1
    one_line_error(cli("runs", "list", copy["root"], "--status", "complete"), 2, "--status", "'completed'")


def test_show_prints_the_config_and_the_metrics(cli, tree):
    result = cli("runs", "show", tree["fast"])
    assert result.exit_code == 0, result.stderr
    for text in ("# config.yaml", "optimizer:", "lr: 0.1", "seed: 1", "completed", "best epoch", "test",
                 "accuracy", "versions:", "mlcli"):
        assert text in result.stdout, text
    shown = json.loads(cli("runs", "show", tree["fast"], "--json").stdout)
    assert shown["config"]["train"]["optimizer"]["lr"] == 0.1 and shown["status"] == "completed"
    assert shown["best_epoch"] == shown["best"]["epoch"] and "accuracy" in shown["test"]
    assert shown["epochs_completed"] == 2 and shown["versions"]["mlcli"] == mlcli.__version__
    assert shown["started_at"] and shown["ended_at"] and shown["seconds"] > 0


def test_compare_lists_exactly_the_differing_fields_and_the_metrics(cli, tree):
    result = json.loads(cli("runs", "compare", tree["fast"], tree["slow"], "--json").stdout)
    assert result["differing"] == ["seed", "train.optimizer.lr"]
    assert [r["config"] for r in result["runs"]] == [{"seed": 1, "train.optimizer.lr": 0.1},
                                                    {"seed": 2, "train.optimizer.lr": 0.001}]
    assert result["same"]["model.hidden"] == [4] and "train.optimizer.lr" not in result["same"]
    assert result["metrics"] == ["val_loss", "val_accuracy", "test_loss", "test_accuracy"]
    assert all(set(result["metrics"]) <= set(r["metrics"]) for r in result["runs"])
    table = cli("runs", "compare", tree["fast"], tree["slow"]).stdout
    assert f"same in all: {len(result['same'])} fields" in table
    for text in ("seed", "train.optimizer.lr", "0.001", "val_loss", "test_accuracy", tree["slow"].name):
        assert text in table, text
    assert "model.hidden" not in table


def test_compare_of_a_cv_directory_lists_its_folds(cli, tree):
    result = json.loads(cli("runs", "compare", tree["cv"], "--sort", "val_loss", "--json").stdout)
    assert [Path(r["run"]).name for r in sorted(result["runs"], key=lambda r: r["run"])] == ["fold-1", "fold-2"]
    assert result["differing"] == [] and all(r["kind"] == "cv fold" for r in result["runs"])
    losses = [r["metrics"]["val_loss"] for r in result["runs"]]
    assert losses == sorted(losses)
    table = cli("runs", "compare", tree["cv"]).stdout
    assert "fold-1" in table and "fold-2" in table and "same in all" in table


def test_a_sweep_directory_lists_and_compares_its_trials(cli, copy):
    sweep = copy["root"] / "lr-20261201-120000"
    (sweep / "trials").mkdir(parents=True)
    (sweep / "sweep.yaml").write_text("name: lr\n")
    shutil.move(copy["fast"], sweep / "trials" / "t0000")
    shutil.move(copy["slow"], sweep / "trials" / "t0001")
    shutil.copytree(sweep / "trials" / "t0000", sweep / "trials" / ".t0002.tmp")  # being put in place: skipped
    shutil.move(copy["cv"], sweep / "trials" / "t0003")  # a trial run with `cv: 2`
    found = rows(cli, copy["root"])
    assert sorted(Path(r["run"]).relative_to(sweep / "trials").as_posix() for r in found) == [
        "t0000", "t0001", "t0003/fold-1", "t0003/fold-2"]
    assert {r["kind"] for r in found} == {"sweep trial"} and {r["group"] for r in found} == {str(sweep)}
    result = json.loads(cli("runs", "compare", sweep, "--json").stdout)
    assert len(result["runs"]) == 4 and result["differing"] == ["seed", "train.optimizer.lr"]
    shown = json.loads(cli("runs", "show", sweep / "trials" / "t0003" / "fold-2", "--json").stdout)
    assert shown["kind"] == "sweep trial" and shown["status"] == "completed"


@pytest.mark.parametrize("args, fragment", [
    (("list", "{tmp}/missing"), "missing: no such directory"),
    (("list", "{fast}/config.yaml"), "config.yaml: not a directory"),
    (("show", "{tmp}/missing"), "missing: no such run directory"),
    (("show", "{cv}"), "a cv directory, not a run"),
    (("show", "{tmp}"), "not a run directory"),
    (("compare", "{fast}", "{tmp}/missing"), "missing: no such run directory"),
    (("compare", "{tmp}"), "holds no runs"),
])
def test_bad_paths_are_one_error_line_with_exit_2(cli, one_line_error, tree, tmp_path, args, fragment):
    paths = {"tmp": tmp_path, "fast": tree["fast"], "cv": tree["cv"]}
    one_line_error(cli("runs", *(a.format(**paths) for a in args)), 2, fragment)


def test_python_api_returns_dataclasses_with_a_json_form(tree):
    runs = list_runs(tree["root"], sort="val_accuracy", status="completed")
    assert len(runs) == 4 and runs[0].metrics["val_accuracy"] >= runs[-1].metrics["val_accuracy"]
    json.dumps([r.to_dict() for r in runs], allow_nan=False)
    comparison = compare_runs([tree["fast"], tree["slow"]])
    assert comparison.differing == ["seed", "train.optimizer.lr"]
    json.dumps(comparison.to_dict(), allow_nan=False)
    assert show_run(tree["slow"])["config"]["seed"] == 2
    with pytest.raises(ConfigError, match="no such directory"):
        list_runs(tree["root"] / "nope")
