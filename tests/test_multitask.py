"""Multitask networks (model.type multitask): one trunk, named heads, a weighted sum of head losses.

What a user relies on: the gradient of a two-head network is exact (float64 check); a head weighted 1 beside
heads weighted 0 trains exactly as the single-task network of its target (same config, same seed: the trunk and
that head end bit-identical, epoch metrics equal); on digits the digit head is as accurate as a single-task MLP;
per-head metrics, early stopping on them, eval, predict, cv, checkpoints and `mlcli.load` work per task; wrong
configs fail with one line naming the field.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from conftest import assert_one_line_error, checkpoint_arrays, invoke, read_json, read_jsonl

import mlcli
from mlcli.data.bundled import load_bundled
from mlcli.errors import CheckpointError, ConfigError, DataError

DIGITS = load_bundled("digits")


def write_digits_csv(path, columns: tuple[str, ...], n: int = 400):
    """The first n digits as a CSV: 64 pixel columns plus the label columns asked for (digit, is_even)."""
    x, y = DIGITS.x[:n], DIGITS.y[:n]
    values = {"digit": y, "is_even": (y % 2 == 0).astype(int), "size": x.sum(axis=1)}
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow([f"p{j}" for j in range(64)] + list(columns))
        for i in range(n):
            w.writerow([int(v) for v in x[i]] + [values[c][i] for c in columns])
    return path


TRAIN = {"epochs": 3, "batch_size": 32, "optimizer": {"type": "momentum", "lr": 0.05, "momentum": 0.9}}
TRUNK = {"type": "mlp", "hidden": [32, 16], "dropout": 0.1}


def multitask(data: dict, heads: dict, trunk: dict = TRUNK, **extra) -> dict:
    return {"name": "mt", "data": data, "model": {"type": "multitask", "trunk": trunk, "heads": heads},
            "train": {**TRAIN, **extra}}


# ------------------------------------------------------------------------------------------ exactness


@pytest.mark.parametrize("trunk", [
    {"type": "mlp", "hidden": [6], "activation": "tanh"},
    {"type": "cnn", "layers": [{"type": "conv", "out_channels": 2, "kernel": 3}, {"type": "tanh"},
                               {"type": "avgpool", "kernel": 2}]},
], ids=["mlp", "cnn"])
def test_gradient_of_a_two_head_network_is_exact_in_float64(trunk):
    data = {"type": "digits", "as_images": trunk["type"] == "cnn"}
    cfg = multitask(data, {"digit": {"type": "classification", "hidden": [5], "label_smoothing": 0.1},
                           "parity": {"type": "classification", "target": "is_even", "loss": "sigmoid_bce",
                                      "weight": 0.7}}, trunk=trunk)
    report = mlcli.gradcheck(cfg, batch=6, max_coords=None)
    assert any(".heads.digit." in name for name in report) and any(".heads.parity." in name for name in report)
    for name, check in report.items():
        assert check.passed(1e-6), (name, check)


def test_regression_and_classification_heads_gradient_is_exact(tmp_path):
    path = write_digits_csv(tmp_path / "d.csv", ("digit", "size"), n=60)
    cfg = multitask({"type": "csv", "path": str(path), "label_columns": {"digit": "digit", "size": "size"}},
                    {"digit": {"type": "classification"}, "size": {"type": "regression", "weight": 0.01}},
                    trunk={"type": "mlp", "hidden": [4], "activation": "softplus"})
    for name, check in mlcli.gradcheck(cfg, batch=5, max_coords=None).items():
        assert check.passed(1e-6), (name, check)


def _history(result, keys):
    return [[r[k] for k in keys] for r in result.history]


@pytest.mark.parametrize("first", ["digit", "is_even"])
def test_weights_one_and_zero_reproduce_the_single_task_run_of_that_head_exactly(tmp_path, first):
    """Heads in order `first`, other: `first` weighted 1, the other 0. Its single-task run is an mlp on a CSV
    with only that label column (the same features, the same stratified split, the same draws)."""
    other = "is_even" if first == "digit" else "digit"
    both = write_digits_csv(tmp_path / "both.csv", ("digit", "is_even"))
    single = write_digits_csv(tmp_path / "single.csv", (first,))
    heads = {first: {"type": "classification", "weight": 1.0}, other: {"type": "classification", "weight": 0.0}}
    mt = mlcli.train(multitask({"type": "csv", "path": str(both), "label_columns": {"digit": "digit",
                                                                                 "is_even": "is_even"}}, heads),
                     runs_dir=tmp_path / "runs")
    st = mlcli.train({"name": "st", "data": {"type": "csv", "path": str(single), "label_column": first},
                      "model": {"type": "mlp", **{k: v for k, v in TRUNK.items() if k != "type"}}, "train": TRAIN},
                     runs_dir=tmp_path / "runs")
    assert _history(mt, [f"train_{first}_loss", f"val_{first}_loss", f"val_{first}_accuracy"]) == \
        _history(st, ["train_loss", "val_loss", "val_accuracy"])
    assert [r["train_loss"] for r in mt.history] == [r["train_loss"] for r in st.history]  # total = w * L
    a, b = checkpoint_arrays(mt.last_checkpoint), checkpoint_arrays(st.last_checkpoint)
    assert np.array_equal(a["model.1.linear.W"], b["model.1.linear.W"])  # trunk
    assert np.array_equal(a["model.4.linear.W"], b["model.4.linear.W"])
    head = f"model.7.heads.{first}.0.linear"
    assert np.array_equal(a[f"{head}.W"], b["model.7.linear.W"]) and np.array_equal(a[f"{head}.b"],
                                                                                      b["model.7.linear.b"])
    assert mt.metrics[f"{first}_accuracy"] == st.metrics["accuracy"]


def test_a_heads_initial_weights_do_not_depend_on_the_other_heads_or_their_order(tmp_path):
    """Every head starts from the generator state the trunk left: its initial weights are the single-task
    network's output layer for that target, whichever heads come before it."""
    from mlcli.config.load import build_config
    from mlcli.workflows.build import setup

    both = write_digits_csv(tmp_path / "both.csv", ("digit", "is_even"))
    data = {"type": "csv", "path": str(both), "label_columns": {"digit": "digit", "is_even": "is_even"}}
    digit, even = {"type": "classification"}, {"type": "classification"}

    def initial(cfg):
        return setup(build_config(cfg, "c", {}))[2].state()

    ab = initial(multitask(data, {"digit": digit, "is_even": even}))
    ba = initial(multitask(data, {"is_even": even, "digit": digit}))
    for name in ("digit", "is_even"):
        for p in ("W", "b"):
            assert np.array_equal(ab[f"7.heads.{name}.0.linear.{p}"], ba[f"7.heads.{name}.0.linear.{p}"])
        single = write_digits_csv(tmp_path / f"{name}.csv", (name,))
        st = initial({"data": {"type": "csv", "path": str(single), "label_column": name},
                      "model": {"type": "mlp", **{k: v for k, v in TRUNK.items() if k != "type"}}, "train": TRAIN})
        assert np.array_equal(ab[f"7.heads.{name}.0.linear.W"], st["7.linear.W"])
        assert np.array_equal(ab["1.linear.W"], st["1.linear.W"])


def test_on_digits_the_digit_head_is_within_one_point_of_the_single_task_mlp(tmp_path):
    train = {"epochs": 20, "batch_size": 32, "optimizer": {"type": "momentum", "lr": 0.05, "momentum": 0.9}}
    mt = mlcli.train({"name": "mt", "data": {"type": "digits"}, "train": train,
                      "model": {"type": "multitask", "trunk": {"type": "mlp", "hidden": [128, 64]},
                                "heads": {"digit": {"type": "classification"},
                                          "parity": {"type": "classification", "target": "is_even",
                                                     "weight": 0.5}}}},
                     runs_dir=tmp_path / "runs")
    st = mlcli.train({"name": "st", "data": {"type": "digits"}, "train": train,
                      "model": {"type": "mlp", "hidden": [128, 64]}}, runs_dir=tmp_path / "runs")
    assert st.metrics["accuracy"] > 0.95
    assert abs(mt.metrics["digit_accuracy"] - st.metrics["accuracy"]) <= 0.01, (mt.metrics, st.metrics)
    assert mt.metrics["parity_accuracy"] > 0.95


# ------------------------------------------------------------------------------------ one shared run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The shipped digits example, briefly: the run the per-task tests read."""
    from conftest import CONFIGS

    runs = tmp_path_factory.mktemp("mt") / "runs"
    return mlcli.train(CONFIGS / "multitask_digits.yaml", overrides={"train.epochs": 3}, runs_dir=runs)


def test_metrics_are_per_task_and_total(run):
    names = {"loss", "digit_loss", "digit_accuracy", "parity_loss", "parity_accuracy"}
    record = read_jsonl(run.run_dir / "metrics.jsonl")[-1]
    assert {f"train_{n}" for n in names} | {f"val_{n}" for n in names} <= set(record)
    assert set(run.metrics) == names
    assert run.metrics["loss"] == pytest.approx(run.metrics["digit_loss"] + 0.5 * run.metrics["parity_loss"],
                                                rel=1e-5)


def test_eval_of_the_checkpoint_repeats_the_test_metrics_and_reports_per_task(run):
    result = invoke("eval", run.best_checkpoint, "--json", "--per-class")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    for name, value in run.metrics.items():
        assert report["metrics"][name] == pytest.approx(value, rel=1e-5), name
    parity = report["per_task"]["parity"]
    assert [c["class"] for c in parity["per_class"]["classes"]] == ["odd", "even"]
    assert sum(c["support"] for c in parity["per_class"]["classes"]) == report["n"]
    terminal = invoke("eval", run.best_checkpoint)
    assert terminal.exit_code == 0 and "digit: per class" in terminal.stdout and "parity: confusion matrix" in \
        terminal.stdout


def test_predict_writes_one_column_per_task(run, tmp_path):
    x = DIGITS.x[:9]
    np.save(tmp_path / "x.npy", x)
    result = invoke("predict", run.run_dir, tmp_path / "x.npy", "--proba", "--out", tmp_path / "p.csv")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert len(rows) == 9 and list(rows[0])[:3] == ["index", "digit", "parity"]
    assert {r["parity"] for r in rows} <= {"odd", "even"} and "parity_p_even" in rows[0]
    model = mlcli.load(run.run_dir)
    pred = model.predict(x)
    assert [r["digit"] for r in rows] == [model.class_names_["digit"][i] for i in pred["digit"]]
    proba = model.predict_proba(x)
    assert proba["digit"].shape == (9, 10) and np.allclose(proba["parity"].sum(axis=1), 1)
    assert np.array_equal(pred["parity"], proba["parity"].argmax(axis=1))


def test_load_scores_per_task_like_eval(run):
    model = mlcli.load(run.run_dir)
    y = {"digit": DIGITS.y, "is_even": (DIGITS.y % 2 == 0).astype(int)}
    scores = model.score(DIGITS.x, y)
    assert set(scores) == set(run.metrics) and scores["digit_accuracy"] > 0.8
    with pytest.raises(ConfigError, match="is_even"):
        model.score(DIGITS.x, {"digit": DIGITS.y})


def test_checkpoint_with_tampered_targets_is_refused(run, tmp_path):
    import zipfile

    from mlcli.runs.snapshot import load_model

    bad = tmp_path / "bad.npz"
    with zipfile.ZipFile(run.best_checkpoint) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "meta.json":
                meta = json.loads(data)
                meta["head_outputs"]["digit"] = 7
                data = json.dumps(meta).encode()
            dst.writestr(info, data)
    with pytest.raises(CheckpointError, match="bad.npz"):
        load_model(bad)


def test_cv_reports_mean_and_spread_of_every_task_metric(tmp_path):
    cfg = multitask({"type": "digits"}, {"digit": {"type": "classification"},
                                         "parity": {"type": "classification", "target": "is_even"}}, epochs=2)
    result = mlcli.cv(cfg, folds=3, runs_dir=tmp_path / "runs")
    names = {"loss", "digit_loss", "digit_accuracy", "parity_loss", "parity_accuracy"}
    assert set(result.mean) == set(result.std) == names
    assert result.mean["digit_accuracy"] == pytest.approx(np.mean([f["metrics"]["digit_accuracy"]
                                                                   for f in result.folds]))
    assert read_json(result.cv_dir / "cv_summary.json")["mean"] == result.mean


def test_early_stopping_monitors_a_task_metric(tmp_path):
    cfg = multitask({"type": "digits"}, {"digit": {"type": "classification"},
                                         "parity": {"type": "classification", "target": "is_even"}},
                    epochs=30, early_stopping={"monitor": "val_parity_accuracy", "patience": 1})
    result = mlcli.train(cfg, runs_dir=tmp_path / "runs")
    assert result.status == "early_stopped" and len(result.history) < 30


def test_npz_with_one_array_per_target(tmp_path):
    path = tmp_path / "d.npz"
    y = DIGITS.y[:300]
    np.savez(path, x=DIGITS.x[:300], digit=y, even=np.where(y % 2 == 0, "even", "odd"))
    result = mlcli.train(multitask({"type": "npz", "path": str(path)},
                                   {"digit": {"type": "classification"},
                                    "even": {"type": "classification", "loss": "sigmoid_bce"}}, epochs=2),
                         runs_dir=tmp_path / "runs")
    assert {"digit_accuracy", "even_accuracy"} <= set(result.metrics)
    assert mlcli.load(result.run_dir).class_names_["even"] == ["even", "odd"]


def test_diabetes_regression_and_classification_heads(tmp_path):
    from conftest import CONFIGS

    result = mlcli.train(CONFIGS / "multitask_diabetes.yaml", overrides={"train.epochs": 100},
                         runs_dir=tmp_path / "runs")
    assert result.metrics["progression_r2"] > 0.35 and result.metrics["above_median_accuracy"] > 0.7


# ------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("change, fragments", [
    (lambda c: c["model"]["heads"]["parity"].update(target="is_odd"),
     ["model.heads.parity.target", "'is_odd' is not a target", "digit, is_even"]),
    (lambda c: c["model"]["heads"]["parity"].update(type="regression"),
     ["model.heads.parity.type", "classification target"]),
    (lambda c: c["model"]["heads"]["digit"].update(loss="mse"),
     ["model.heads.digit.loss", "mse does not fit a classification head"]),
    (lambda c: c.update(loss={"type": "mse"}), ["loss:", "one loss per head"]),
    (lambda c: c.update(data={"type": "iris"}), ["data.type", "iris has one target"]),
    (lambda c: c["model"]["heads"].update(wrong={"type": "classification", "weigth": 1}),
     ["model.heads.wrong.weigth"]),
    (lambda c: c["train"].update(early_stopping={"monitor": "val_parity_r2"}),
     ["train.early_stopping.monitor", "val_parity_accuracy"]),
], ids=["target", "task", "loss", "loss-section", "one-target-data", "typo", "monitor"])
def test_bad_multitask_config_is_one_line_naming_the_field(tmp_path, change, fragments):
    import yaml

    cfg = multitask({"type": "digits"}, {"digit": {"type": "classification"},
                                         "parity": {"type": "classification", "target": "is_even"}})
    change(cfg)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    result = invoke("train", path, "--runs-dir", tmp_path / "runs")
    assert_one_line_error(result, 2, *fragments)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_label_column_no_head_reads_is_not_a_feature(tmp_path):
    """label_columns lists targets; a model may learn only some of them, but the others must not leak in as
    inputs (is_even would give the digit head its answer's parity)."""
    from mlcli.config.load import build_config
    from mlcli.workflows.build import setup

    path = write_digits_csv(tmp_path / "d.csv", ("digit", "is_even"), n=100)
    cfg = multitask({"type": "csv", "path": str(path), "label_columns": {"digit": "digit", "is_even": "is_even"}},
                    {"digit": {"type": "classification"}})
    _, data, _ = setup(build_config(cfg, "c", {}))
    assert data.train.input_shape == (64,) and "is_even" not in data.train.feature_names
    assert [t.name for t in data.targets] == ["digit"]


def test_csv_label_columns_belong_to_multitask_models(tmp_path):
    path = write_digits_csv(tmp_path / "d.csv", ("digit", "is_even"), n=50)
    with pytest.raises(ConfigError, match="data.label_columns"):
        mlcli.train({"data": {"type": "csv", "path": str(path), "label_columns": {"digit": "digit"}},
                     "model": {"type": "mlp"}}, runs_dir=tmp_path / "runs")
    with pytest.raises(DataError, match="no label column .parity."):
        mlcli.train(multitask({"type": "csv", "path": str(path), "label_columns": {"digit": "digit",
                                                                                 "p": "parity"}},
                              {"digit": {"type": "classification"}, "p": {"type": "classification"}}),
                    runs_dir=tmp_path / "runs")


def test_a_sweep_scores_trials_by_a_task_metric_and_reloads_data_for_another_target(tmp_path):
    """The sweep reads the data once for the base config's targets; a trial that points a head at another
    target gets its own read (else its head would learn the wrong column)."""
    import yaml
    from conftest import CONFIGS

    spec = {"name": "mt-sweep", "base": str(CONFIGS / "multitask_digits.yaml"), "metric": "val_parity_accuracy",
            "mode": "max", "method": "grid", "save": "all",
            "parameters": {"model.heads.parity.target": ["is_even", "digit"], "train.epochs": [1]}}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = mlcli.sweep(path, runs_dir=tmp_path / "runs", scheduler="serial")
    trials = {t["overrides"]["model.heads.parity.target"]: t for t in result.trials}
    assert all(t["status"] == "completed" for t in trials.values()) and set(trials) == {"is_even", "digit"}
    for target, classes in (("is_even", ["odd", "even"]), ("digit", [str(d) for d in range(10)])):
        model = mlcli.load(result.sweep_dir / "trials" / trials[target]["trial"])
        assert model.class_names_["parity"] == classes


def test_curves_plot_a_multitask_runs_first_head_metric():
    from mlcli.insight.curves import Series, task_metric

    records = [{"epoch": 1, "train_loss": 1.0, "train_digit_loss": 0.8, "train_digit_accuracy": 0.7,
                "val_loss": 0.9, "val_digit_accuracy": 0.75, "val_parity_accuracy": 0.8}]
    assert task_metric([Series("mt", records)]) == "digit_accuracy"
    assert task_metric([Series("st", [{"epoch": 1, "val_accuracy": 0.5, "val_loss": 1.0}])]) == "accuracy"


def test_an_ensemble_of_multitask_models_is_refused_in_one_line(tmp_path):
    import yaml

    cfg = multitask({"type": "digits"}, {"digit": {"type": "classification"}})
    cfg["model"]["ensemble"] = {"members": 3}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert_one_line_error(invoke("train", path, "--runs-dir", tmp_path / "runs"), 2, "model.ensemble",
                          "ensembles of multitask models are not offered")


def test_a_trunk_and_head_start_from_a_single_task_run(tmp_path):
    """init_from copies what matches by name and shape (the trunk); init_from_map renames the single-task
    output layer to the digit head."""
    st = mlcli.train({"name": "st", "data": {"type": "digits"}, "train": TRAIN,
                      "model": {"type": "mlp", **{k: v for k, v in TRUNK.items() if k != "type"}}},
                     runs_dir=tmp_path / "runs")
    cfg = multitask({"type": "digits"}, {"digit": {"type": "classification"},
                                         "parity": {"type": "classification", "target": "is_even"}})
    cfg["model"].update(init_from=str(st.run_dir), init_from_map={"7.linear": "7.heads.digit.0.linear"},
                        freeze=["1.*", "4.*"])
    cfg["train"]["epochs"] = 1
    mt = mlcli.train(cfg, runs_dir=tmp_path / "runs")
    copied = mt.summary["init_from"]["copied"]
    assert {"1.linear.W", "4.linear.W", "7.heads.digit.0.linear.W <- 7.linear.W"} <= set(copied), copied
    a, b = checkpoint_arrays(mt.last_checkpoint), checkpoint_arrays(st.best_checkpoint)
    assert np.array_equal(a["model.1.linear.W"], b["model.1.linear.W"])  # frozen trunk


def test_eval_on_another_csv_maps_each_targets_classes_onto_the_checkpoints(tmp_path):
    both = write_digits_csv(tmp_path / "both.csv", ("digit", "is_even"))
    data = {"type": "csv", "path": str(both), "label_columns": {"digit": "digit", "is_even": "is_even"}}
    run = mlcli.train(multitask(data, {"digit": {"type": "classification"}, "is_even": {"type": "classification"}},
                                epochs=2), runs_dir=tmp_path / "runs")
    own = mlcli.evaluate(run.run_dir, data=both)
    assert own["n"] == 400 and set(own["metrics"]) == set(run.metrics)
    # a file holding only some digits (classes 1, 2, 3) is still scored against the checkpoint's 10 classes
    odd = tmp_path / "odd.csv"
    lines = both.read_text().splitlines()
    odd.write_text("\n".join([lines[0], *(ln for ln in lines[1:] if ln.split(",")[-2] in {"1", "2", "3"})]) + "\n")
    report = mlcli.evaluate(run.run_dir, data=odd)
    model = mlcli.load(run.run_dir)
    rows = [ln.split(",") for ln in odd.read_text().splitlines()[1:]]
    x = np.array([[float(v) for v in r[:64]] for r in rows])
    pred = model.predict(x)["digit"]
    truth = np.array([int(r[-2]) for r in rows])
    assert report["metrics"]["digit_accuracy"] == pytest.approx(np.mean(pred == truth))
    missing = tmp_path / "missing.csv"
    missing.write_text(",".join(lines[0].split(",")[:-1]) + "\n" + "\n".join(",".join(ln.split(",")[:-1])
                                                                             for ln in lines[1:5]) + "\n")
    result = invoke("eval", run.run_dir, "--data", missing)
    assert_one_line_error(result, 3, "missing.csv", "no label column 'is_even'")


def test_summary_lists_every_heads_layers_and_counts_all_parameters():
    from conftest import CONFIGS

    report = mlcli.summary(CONFIGS / "multitask_digits.yaml")
    names = [row["name"] for row in report["layers"]]
    assert names[-4:] == ["digit: linear", "parity: linear", "parity: relu", "parity: linear"]
    # 64*128+128 + 128*64+64 (trunk) + 64*10+10 (digit) + 64*16+16 + 16*2+2 (parity)
    assert report["totals"]["params"] == 8320 + 8256 + 650 + 1040 + 34
    assert report["totals"]["connections"] == 8192 + 8192 + 640 + 1024 + 32
