"""Ensembles of checkpoints: averaged probabilities, members checked to share their data split."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from mlcli.cli.app import app
from mlcli.config.load import load_config_text
from mlcli.data.pipeline import prepare
from mlcli.runs.snapshot import load_model
from mlcli.seeding import generators
from mlcli.workflows.ensemble import evaluate_ensemble, probabilities
from mlcli.workflows.train import run_config as run_training

runner = CliRunner()
IRIS = "data: {type: iris, seed: 0}\nmodel: {type: %s}\n%s"
TRAIN = "train: {epochs: 15, batch_size: 16, optimizer: {type: sgd, lr: 0.1}}\n"


def _members(tmp_path):
    """Two softmax classifiers with different run seeds and a Gaussian classifier, all on data seed 0."""
    runs = [run_training(load_config_text(f"seed: {s}\n" + IRIS % ("softmax", TRAIN), "s.yaml"),
                         runs_dir=tmp_path, name=f"m{s}") for s in (1, 7)]
    runs.append(run_training(load_config_text(IRIS % ("gaussian", ""), "g.yaml"), runs_dir=tmp_path, name="g"))
    return [r.run_dir / "checkpoints" / "best.npz" for r in runs]


def test_ensemble_averages_member_probabilities(tmp_path):
    paths = _members(tmp_path)
    result = evaluate_ensemble(paths, split="test")
    loaded = [load_model(p) for p in paths]
    probs, y = [], None
    for m in loaded:
        ds = prepare(m.config.data, generators(m.config.seed), scaler=m.standardizer).test
        probs.append(probabilities(m.model, ds.x))
        y = ds.y
    mean = np.mean(probs, axis=0)
    np.testing.assert_allclose(mean.sum(axis=1), 1.0, rtol=1e-5)
    assert result["metrics"]["accuracy"] == np.mean(mean.argmax(axis=1) == y)
    assert abs(result["metrics"]["loss"] + np.mean(np.log(mean[np.arange(len(y)), y]))) < 1e-9
    assert len(result["members"]) == 3 and result["n"] == len(y)


def test_eval_of_several_checkpoints_prints_the_ensemble(tmp_path):
    paths = _members(tmp_path)
    result = runner.invoke(app, ["eval", *map(str, paths), "--json"])
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["checkpoints"] == [str(p) for p in paths] and out["metrics"]["accuracy"] >= 0.9


def test_members_trained_on_different_splits_are_refused(tmp_path):
    a = run_training(load_config_text("data: {type: iris}\nmodel: {type: gaussian}\n", "a.yaml"), runs_dir=tmp_path)
    b = run_training(load_config_text("seed: 3\ndata: {type: iris}\nmodel: {type: gaussian}\n", "b.yaml"),
                     runs_dir=tmp_path)
    result = runner.invoke(app, ["eval", str(a.run_dir), str(b.run_dir)])
    assert result.exit_code == 2
    assert "need the same data section and data seed (set data.seed)" in result.stderr


def test_data_seed_fixes_the_split_whatever_the_run_seed():
    cfgs = [load_config_text(f"seed: {s}\ndata: {{type: spirals, seed: 4}}\nmodel: {{type: mlp}}\n", "c.yaml")
            for s in (1, 2)]
    splits = [prepare(c.data, generators(c.seed)) for c in cfgs]
    np.testing.assert_array_equal(splits[0].test.x, splits[1].test.x)
    np.testing.assert_array_equal(splits[0].train.y, splits[1].train.y)


def test_an_ensemble_checkpoint_evaluates_alone_and_as_one_member_of_several(tmp_path):
    """One checkpoint holding a trained ensemble: `eval --json` reports it and each of its members; beside
    separate checkpoints it is one member whose probabilities are its members' mean."""
    cfg = load_config_text("seed: 2\n" + IRIS % ("softmax, ensemble: {members: 2}", TRAIN), "e.yaml")
    ens = run_training(cfg, runs_dir=tmp_path, name="e")
    result = runner.invoke(app, ["eval", str(ens.run_dir), "--json"])
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert [m["member"] for m in out["members"]] == [0, 1]
    assert out["metrics"] == ens.summary["test"]
    for row, member in zip(out["members"], ens.summary["members"], strict=True):
        assert row["metrics"] == member["test"]
    other = run_training(load_config_text("seed: 1\n" + IRIS % ("softmax", TRAIN), "s.yaml"), runs_dir=tmp_path)
    paths = [other.best_checkpoint, ens.best_checkpoint]
    mixed = evaluate_ensemble(paths, split="test")
    single = load_model(paths[0])
    ds = prepare(single.config.data, generators(single.config.seed), scaler=single.standardizer).test
    loaded = load_model(ens.best_checkpoint)
    inner = np.mean([m.probabilities(ds.x) for m in loaded.model.members], axis=0)
    mean = (probabilities(single.model, ds.x) + inner) / 2
    assert mixed["metrics"]["accuracy"] == np.mean(mean.argmax(axis=1) == ds.y)
