"""Ensembles trained in one run (`model.ensemble`): independent members, snapshots, bagging, votes, the checkpoint
that holds them all, and `mlcli ensemble` over sweep and cv directories."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from conftest import CONFIGS, invoke

import mlcli
from mlcli.config.load import load_config_text
from mlcli.errors import CheckpointError, ConfigError
from mlcli.models.ensemble import EnsembleModel, hard_vote
from mlcli.models.registry import MODEL_BUILDERS
from mlcli.runs.checkpoint import load_checkpoint, save_checkpoint
from mlcli.runs.snapshot import expected_arrays, load_model
from mlcli.workflows.ensemble_train import bootstrap_indices, member_seeds

DIGITS_MLP = {"name": "ens", "seed": 3, "data": {"type": "digits"}, "model": {"type": "mlp", "hidden": [32]},
              "train": {"epochs": 4, "batch_size": 64, "optimizer": {"type": "momentum", "lr": 0.05}}}
IRIS = {"data": {"type": "iris"}, "model": {"type": "softmax"},
        "train": {"epochs": 3, "batch_size": 16, "optimizer": {"type": "sgd", "lr": 0.1}}}


def _with(base: dict, **model) -> dict:
    return {**base, "model": {**base["model"], **model}}


def _nll(p: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(np.maximum(p[np.arange(len(y)), y], 1e-12))))


def test_an_ensemble_of_five_mlps_beats_its_mean_member_on_digits(tmp_path):
    result = mlcli.train(_with(DIGITS_MLP, ensemble={"members": 5}), runs_dir=tmp_path)
    members = result.summary["members"]
    assert result.status == "completed" and len(members) == 5
    assert len({m["seed"] for m in members}) == 5
    mean_acc = np.mean([m["test"]["accuracy"] for m in members])
    mean_loss = np.mean([m["test"]["loss"] for m in members])
    ens = result.metrics
    assert ens["accuracy"] >= mean_acc
    assert ens["loss"] < mean_loss
    # one checkpoint holds every member; eval reports the ensemble and each member
    report = mlcli.evaluate(result.run_dir)
    assert report["metrics"] == pytest.approx(ens)
    assert [m["member"] for m in report["members"]] == list(range(5))
    for row, member in zip(report["members"], members, strict=True):
        assert row["metrics"] == pytest.approx(member["test"], rel=1e-5)
    names = zipfile.ZipFile(result.best_checkpoint).namelist()
    assert "model.member.4.1.linear.W.npy" in names and "model.member.5.1.linear.W.npy" not in names
    # the members are ordinary runs on the same split; their mean probability is the ensemble's
    loaded = [load_model(m["run_dir"] + "/checkpoints/best.npz") for m in members]
    from mlcli.data.pipeline import prepare
    from mlcli.seeding import generators

    test = prepare(loaded[0].config.data, generators(loaded[0].config.seed), scaler=loaded[0].standardizer).test
    mean = np.mean([m.model.probabilities(test.x) for m in loaded], axis=0)
    assert ens["loss"] == pytest.approx(_nll(mean, test.y), rel=1e-6)
    assert ens["accuracy"] == np.mean(mean.argmax(axis=1) == test.y)
    # predict and mlcli.load work unchanged on it
    model = mlcli.load(result.run_dir)
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    proba = model.predict_proba(x[:7])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(model.predict(x[:7]), proba.argmax(axis=1))
    assert model.score(x, y)["accuracy"] > 0.9
    np.save(tmp_path / "x.npy", x[:7])
    out = invoke("predict", result.run_dir, tmp_path / "x.npy")
    assert out.exit_code == 0, out.stderr
    assert [json.loads(line)["prediction"] for line in out.stdout.splitlines()] == \
        [str(c) for c in proba.argmax(axis=1)]
    print(f"\nensemble of 5: test accuracy {ens['accuracy']:.4f} loss {ens['loss']:.4f}; mean member accuracy "
          f"{mean_acc:.4f} loss {mean_loss:.4f}")


def test_the_same_seed_gives_the_same_members_and_workers_train_them_at_once(tmp_path):
    cfg = _with(IRIS, ensemble={"members": 3})
    serial = mlcli.train(cfg, runs_dir=tmp_path / "a")
    parallel = mlcli.train(_with(IRIS, ensemble={"members": 3, "workers": 2}), runs_dir=tmp_path / "b")
    assert [m["seed"] for m in serial.summary["members"]] == [m["seed"] for m in parallel.summary["members"]] \
        == member_seeds(0, 3)
    for a, b in zip(serial.summary["members"], parallel.summary["members"], strict=True):
        assert b["test"] == pytest.approx(a["test"], rel=1e-6)
        assert (tmp_path / "b" / parallel.run_dir.name / "members" / f"member-{a['member'] + 1}"
                / "checkpoints" / "best.npz").is_file()
    assert parallel.metrics == pytest.approx(serial.metrics, rel=1e-6)
    epochs = [json.loads(line)["epoch"] for line in (serial.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]


def test_a_snapshot_ensemble_of_one_three_cycle_run(tmp_path):
    cfg = {**DIGITS_MLP, "model": {"type": "mlp", "hidden": [64], "ensemble": {"snapshot": True}},
           "train": {"epochs": 9, "batch_size": 64, "optimizer": {"type": "momentum", "lr": 0.2},
                     "schedule": {"type": "cosine_restarts", "t0": 3}}}
    result = mlcli.train(cfg, runs_dir=tmp_path)
    members = result.summary["members"]
    assert [m["epoch"] for m in members] == [3, 6, 9]
    assert len({m["run_dir"] for m in members}) == 1  # one training run
    model = load_model(result.best_checkpoint).model
    weights = [m.state()["1.linear.W"] for m in model.members]
    assert not np.array_equal(weights[0], weights[1]) and not np.array_equal(weights[1], weights[2])
    mean_acc = np.mean([m["test"]["accuracy"] for m in members])
    mean_loss = np.mean([m["test"]["loss"] for m in members])
    assert result.metrics["accuracy"] >= mean_acc and result.metrics["loss"] < mean_loss
    print(f"\nsnapshot ensemble: accuracy {result.metrics['accuracy']:.4f} loss {result.metrics['loss']:.4f}; "
          f"mean member {mean_acc:.4f} / {mean_loss:.4f}")


def test_bagging_draws_seeded_bootstrap_samples_for_every_model_type(tmp_path):
    a, b = bootstrap_indices(200, 5, 0), bootstrap_indices(200, 5, 1)
    assert a.shape == (200,) and a.min() >= 0 and a.max() < 200
    assert len(np.unique(a)) < 200  # drawn with replacement: repeats (about 63% unique)
    assert 0.5 < len(np.unique(a)) / 200 < 0.75
    np.testing.assert_array_equal(a, bootstrap_indices(200, 5, 0))
    assert not np.array_equal(a, b)
    for model in ({"type": "knn", "k": 3}, {"type": "gaussian", "covariance": "diagonal"}):
        result = mlcli.train({"data": {"type": "iris"}, "model": {**model, "ensemble": {"members": 3,
                                                                                        "bagging": True}}},
                             runs_dir=tmp_path)
        members = result.summary["members"]
        n = result.summary["n_train"]
        assert all(m["bootstrap_unique"] < n for m in members)
        assert members[0]["test"] != members[1]["test"] or members[1]["test"] != members[2]["test"] or \
            members[0]["bootstrap_unique"] != members[1]["bootstrap_unique"]
        report = mlcli.evaluate(result.run_dir)
        assert report["metrics"]["accuracy"] == result.metrics["accuracy"] and len(report["members"]) == 3
    with pytest.raises(ConfigError, match="bagging: true"):
        mlcli.train({"data": {"type": "iris"}, "model": {"type": "knn", "ensemble": {"members": 3}}},
                     runs_dir=tmp_path)


class _Fixed:
    """A member that answers fixed probabilities."""

    is_network = False
    task = "classification"

    def __init__(self, proba):
        self.proba = np.asarray(proba, dtype=np.float64)

    def probabilities(self, x):
        return self.proba

    def evaluate(self, x, y):
        return {"accuracy": float(np.mean(self.proba.argmax(axis=1) == y))}


def test_hard_and_soft_votes_agree_with_a_hand_computation():
    # 3 members, 3 samples, 3 classes
    p1 = [[0.6, 0.3, 0.1], [0.1, 0.5, 0.4], [0.4, 0.35, 0.25]]
    p2 = [[0.5, 0.4, 0.1], [0.2, 0.2, 0.6], [0.1, 0.8, 0.1]]
    p3 = [[0.1, 0.8, 0.1], [0.3, 0.3, 0.4], [0.2, 0.1, 0.7]]
    members = [_Fixed(p) for p in (p1, p2, p3)]
    x, y = np.zeros((3, 1)), np.array([1, 2, 1])
    soft = EnsembleModel(members, vote="soft")
    # soft: mean rows [0.4, 0.5, 0.1], [0.2, 0.333, 0.467], [0.233, 0.417, 0.35] -> 1, 2, 1
    np.testing.assert_allclose(soft.probabilities(x)[0], [0.4, 0.5, 0.1])
    np.testing.assert_array_equal(soft.predict(x), [1, 2, 1])
    hard = EnsembleModel(members, vote="hard")
    # votes: sample 0: 0, 0, 1 -> 0 (soft said 1); sample 1: 1, 2, 2 -> 2; sample 2: 0, 1, 2 -> a three-way tie,
    # broken by the highest mean probability: class 1
    np.testing.assert_array_equal(hard.predict(x), [0, 2, 1])
    np.testing.assert_allclose(hard.probabilities(x), [[2 / 3, 1 / 3, 0], [0, 1 / 3, 2 / 3], [1 / 3, 1 / 3, 1 / 3]])
    np.testing.assert_array_equal(hard_vote(np.array([[2, 0], [2, 1], [0, 1]]), np.array([[0.3, 0.3, 0.4]] * 2)),
                                  [2, 1])  # votes 2, 2, 0 and 0, 1, 1: the majority wins over the highest mean
    metrics = hard.evaluate(x, y)
    assert metrics["accuracy"] == pytest.approx(2 / 3)
    assert metrics["loss"] == pytest.approx(_nll(soft.probabilities(x), y))  # the loss of the mean probability
    assert [m["accuracy"] for m in hard.member_metrics(x, y)] == pytest.approx([0, 2 / 3, 2 / 3])


def test_a_checkpoint_whose_member_count_disagrees_with_its_config_is_refused(tmp_path):
    result = mlcli.train(_with(IRIS, ensemble={"members": 2}), runs_dir=tmp_path)
    meta, arrays = load_checkpoint(result.best_checkpoint, expect=expected_arrays,
                                   allowed_model_types=set(MODEL_BUILDERS))
    meta = {k: v for k, v in meta.items() if k not in ("format", "format_version", "mlcli_version", "arrays")}
    meta["config"]["model"]["ensemble"]["members"] = 3
    forged = tmp_path / "forged.npz"
    save_checkpoint(forged, meta, arrays)
    with pytest.raises(CheckpointError, match="holds 2 ensemble members; its config .* describes 3"):
        load_model(forged)
    out = invoke("eval", forged)
    assert out.exit_code == 4 and "holds 2 ensemble members" in out.stderr
    dropped = tmp_path / "dropped.npz"
    save_checkpoint(dropped, {**meta, "config": {**meta["config"], "model": {
        **meta["config"]["model"], "ensemble": {**meta["config"]["model"]["ensemble"], "members": 2}}}},
        {k: v for k, v in arrays.items() if not k.startswith("model.member.1.")})
    assert invoke("eval", dropped).exit_code == 4


def test_ensemble_config_rules_name_the_field():
    base = "data: {type: iris}\nmodel:\n  type: mlp\n  ensemble: %s\ntrain: {epochs: 6%s}\n"
    cases = [("{members: 1}", "", "model.ensemble.members: an ensemble needs at least 2 members"),
             ("{snapshot: true}", "", "needs train.schedule.type cosine_restarts"),
             ("{snapshot: true, members: 4}", ", schedule: {type: cosine_restarts, t0: 2}",
              "completes 3 cycle(s) of cosine_restarts"),
             ("{snapshot: true, bagging: true}", ", schedule: {type: cosine_restarts, t0: 2}",
              "cannot be combined with bagging")]
    for ens, train, message in cases:
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
            load_config_text(base % (ens, train), "e.yaml")
    with pytest.raises(ConfigError, match="vote: hard votes on class labels"):
        load_config_text("data: {type: diabetes}\nmodel: {type: linear_regression, ensemble: {members: 2, "
                         "vote: hard}}\n", "r.yaml")


def test_mlcli_ensemble_of_a_cv_directory_gives_each_fold_its_own_standardization(tmp_path):
    cv = mlcli.cv(IRIS, folds=3, runs_dir=tmp_path)
    out = invoke("ensemble", cv.cv_dir, "--top", "2", "--json")
    assert out.exit_code == 0, out.stderr
    built = json.loads(out.stdout)
    assert built["kind"] == "cv" and len(built["members"]) == 2
    best_two = sorted(cv.folds, key=lambda f: (-f["metrics"]["accuracy"], f["fold"]))[:2]
    assert sorted(m["fold"] for m in built["members"]) == sorted(f["fold"] for f in best_two)
    report = mlcli.evaluate(built["out"])
    assert report["metrics"] == pytest.approx(built["metrics"])
    for row, member in zip(report["members"], built["members"], strict=True):
        own = mlcli.evaluate(cv.cv_dir / f"fold-{member['fold']}")["metrics"]
        assert row["metrics"] == pytest.approx(own, rel=1e-6)  # the adapter restores the fold's standardization
    assert invoke("ensemble", tmp_path).exit_code == 2


def test_mlcli_ensemble_of_a_sweep_takes_its_best_trials(tmp_path):
    # trials get seeds of their own: data.seed keeps one split for all, as ensemble members need
    base = {**IRIS, "data": {"type": "iris", "seed": 0}, "model": {"type": "mlp", "hidden": [4]}}
    spec = {"name": "s", "base": base, "metric": "val_loss", "method": "grid", "save": "all",
            "parameters": {"model.hidden": [[3], [5], [8]]}}
    sweep = mlcli.sweep(spec, runs_dir=tmp_path, scheduler="serial")
    ranked = [t["trial"] for t in sweep.trials if t["status"] == "completed"]
    out = invoke("ensemble", sweep.sweep_dir, "--top", "2", "--out", tmp_path / "e.npz")
    assert out.exit_code == 0, out.stderr
    loaded = load_model(tmp_path / "e.npz")
    assert [m.net.layers[1].params["W"].shape[0] for m in loaded.model.members] == \
        [{"t0000": 3, "t0001": 5, "t0002": 8}[t] for t in ranked[:2]]  # members of other widths: their configs
    assert len(loaded.meta["member_configs"]) == 2
    assert invoke("eval", tmp_path / "e.npz", "--json").exit_code == 0


def test_shipped_ensemble_configs_train(tmp_path):
    for name, epochs in (("ensemble_mlp", 3), ("ensemble_snapshot", 6), ("ensemble_bagging", None)):
        sets = [] if epochs is None else ["--set", f"train.epochs={epochs}"]
        if name == "ensemble_mlp":
            sets += ["--set", "model.ensemble.members=3"]
        out = invoke("train", CONFIGS / f"{name}.yaml", "--runs-dir", tmp_path / name, "--quiet", *sets)
        assert out.exit_code == 0, out.stderr
        run = next((tmp_path / name).iterdir())
        summary = json.loads((run / "summary.json").read_text())
        assert summary["status"] == "completed" and summary["test"]["accuracy"] > 0.8, summary["test"]
        assert len(summary["members"]) == {"ensemble_mlp": 3, "ensemble_snapshot": 2, "ensemble_bagging": 7}[name]


def test_regression_ensembles_average_outputs_and_cv_runs_an_ensemble_config(tmp_path):
    cfg = {"data": {"type": "diabetes"}, "model": {"type": "linear_regression", "solver": "closed_form",
                                                   "ensemble": {"members": 2, "bagging": True}}}
    result = mlcli.train(cfg, runs_dir=tmp_path)
    loaded = load_model(result.best_checkpoint)
    from mlcli.data.pipeline import prepare
    from mlcli.seeding import generators

    test = prepare(loaded.config.data, generators(loaded.config.seed), scaler=loaded.standardizer).test
    mean = np.mean([m.predict(test.x) for m in loaded.model.members], axis=0)
    assert result.metrics["mse"] == pytest.approx(float(np.mean((mean - test.y) ** 2)), rel=1e-9)
    folds = mlcli.cv(_with(IRIS, ensemble={"members": 2}), folds=2, runs_dir=tmp_path)
    assert [f["status"] for f in folds.folds] == ["completed", "completed"]
    assert set(folds.mean) == {"loss", "accuracy"}
    assert (folds.cv_dir / "fold-1" / "members" / "member-2" / "checkpoints" / "best.npz").is_file()
