"""Transfer learning and warm starts: `model.init_from` (+ `init_from_map`), `model.freeze`, `freeze_batchnorm`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import CONFIGS, invoke

import mlcli
from mlcli.errors import ConfigError
from mlcli.runs.snapshot import load_model

CNN = {"type": "cnn", "layers": [{"type": "conv", "out_channels": 8, "kernel": 3, "padding": 1},
                                 {"type": "batchnorm"}, {"type": "relu"}, {"type": "maxpool", "kernel": 2},
                                 {"type": "conv", "out_channels": 16, "kernel": 3, "padding": 1},
                                 {"type": "relu"}, {"type": "maxpool", "kernel": 2}, {"type": "flatten"}]}
FROZEN = ["0.*", "1.*", "4.*"]  # both convolutions and the batchnorm between them; the final linear (8) trains
TRAIN = {"epochs": 6, "batch_size": 32, "optimizer": {"type": "momentum", "lr": 0.05, "momentum": 0.9}}


@pytest.fixture(scope="module")
def digit_halves(tmp_path_factory):
    """digits as 1x8x8 images: classes 0-4 and classes 5-9 (labels 0..4 with class names '5'..'9')."""
    from sklearn.datasets import load_digits

    folder = tmp_path_factory.mktemp("halves")
    x, y = load_digits(return_X_y=True)
    x = x.reshape(-1, 1, 8, 8)
    low, high = y < 5, y >= 5
    np.savez(folder / "low.npz", x=x[low], y=y[low])
    np.savez(folder / "high.npz", x=x[high], y=y[high] - 5, class_names=np.array([str(c) for c in range(5, 10)]))
    return folder


@pytest.fixture(scope="module")
def pretrained(digit_halves, tmp_path_factory):
    return mlcli.train({"name": "low", "data": {"type": "npz", "path": str(digit_halves / "low.npz")},
                        "model": CNN, "train": TRAIN}, runs_dir=tmp_path_factory.mktemp("runs"))


def _small_high(digit_halves, **model):
    """classes 5-9 with a small training split (10%: about 90 images)."""
    return {"name": "high", "seed": 1,
            "data": {"type": "npz", "path": str(digit_halves / "high.npz"), "val_fraction": 0.6, "test_fraction": 0.3},
            "model": {**CNN, **model}, "train": TRAIN}


def test_a_cnn_transferred_with_frozen_convolutions_beats_the_same_head_from_scratch(digit_halves, pretrained,
                                                                                    tmp_path):
    source = load_model(pretrained.best_checkpoint).model.state()
    moved = mlcli.train(_small_high(digit_halves, init_from=str(pretrained.run_dir), freeze=FROZEN),
                        runs_dir=tmp_path)
    scratch = mlcli.train(_small_high(digit_halves, freeze=FROZEN), runs_dir=tmp_path)
    after = load_model(moved.last_checkpoint).model.state()
    frozen = [n for n in after if n.split(".")[0] in ("0", "1", "4")]
    assert sorted(frozen) == ["0.conv.W", "1.batchnorm2d.beta", "1.batchnorm2d.gamma", "1.batchnorm2d.running_mean",
                              "1.batchnorm2d.running_var", "4.conv.W", "4.conv.b"]
    for name in frozen:  # weights and batchnorm statistics byte-identical after training
        assert after[name].tobytes() == source[name].tobytes(), name
    assert not np.array_equal(after["8.linear.W"], source["8.linear.W"])  # the head trained
    report = moved.summary["init_from"]
    assert report["source"] == str(pretrained.best_checkpoint) and len(report["copied"]) == len(source)
    assert report["skipped"] == []
    assert sorted(moved.summary["frozen"]) == [n for n in sorted(frozen) if "running" not in n]
    acc = moved.metrics["accuracy"]
    assert acc > scratch.metrics["accuracy"] + 0.1
    print(f"\ntransfer {acc:.4f} vs the same head on random frozen convolutions {scratch.metrics['accuracy']:.4f} "
          f"(n_train {moved.summary['n_train']})")


def test_a_frozen_parameter_gets_no_optimizer_slot_and_no_weight_decay(digit_halves, pretrained, tmp_path):
    cfg = _small_high(digit_halves, init_from=str(pretrained.best_checkpoint), freeze=["0.*"], freeze_batchnorm=False)
    cfg["train"] = {**TRAIN, "epochs": 2, "regularization": {"l2": 0.1}}
    run = mlcli.train(cfg, runs_dir=tmp_path)
    last = load_model(run.last_checkpoint)
    slots = last.meta["optimizer"]["slots"]
    assert "0.conv.W" not in slots and "0.conv.b" not in slots and "4.conv.W" in slots and "8.linear.W" in slots
    source = load_model(pretrained.best_checkpoint).model.state()
    state = last.model.state()
    assert state["0.conv.W"].tobytes() == source["0.conv.W"].tobytes()  # l2 would have shrunk it
    # without freeze_batchnorm the batchnorm layer (not frozen here) trains and keeps moving its statistics
    assert not np.array_equal(state["1.batchnorm2d.running_mean"], source["1.batchnorm2d.running_mean"])


def test_shape_mismatches_and_absent_arrays_are_reported_by_name(tmp_path, capsys):
    base = {"data": {"type": "iris"}, "train": {"epochs": 2, "batch_size": 16}}
    src = mlcli.train({**base, "model": {"type": "mlp", "hidden": [8]}}, runs_dir=tmp_path)
    run = mlcli.train({**base, "model": {"type": "mlp", "hidden": [8, 6], "init_from": str(src.run_dir)}},
                      runs_dir=tmp_path, quiet=False)
    report = run.summary["init_from"]
    assert report["copied"] == ["1.linear.W", "1.linear.b"]
    assert {"name": "3.linear.W", "reason": "shape differs: (3, 8) in the checkpoint (3.linear.W), (6, 8) here"} \
        in report["skipped"]
    assert {"name": "5.linear.W", "reason": "absent from the checkpoint"} in report["skipped"]
    assert "skipped 3.linear.W: shape differs" in capsys.readouterr().err  # reported at the start of the run
    saved = json.loads((run.run_dir / "summary.json").read_text())
    assert saved["init_from"] == report
    # init_from_map renames: the source's 3.linear (its head) goes to this model's head, 5.linear
    mapped = mlcli.train({**base, "model": {"type": "mlp", "hidden": [8, 8], "init_from": str(src.run_dir),
                                            "init_from_map": {"3.linear": "5.linear"}}}, runs_dir=tmp_path)
    report = mapped.summary["init_from"]
    assert report["copied"] == ["1.linear.W", "1.linear.b", "5.linear.W <- 3.linear.W", "5.linear.b <- 3.linear.b"]
    assert [s["name"] for s in report["skipped"]] == ["3.linear.W", "3.linear.b"] and report["unused"] == []
    head = load_model(mapped.best_checkpoint).model.state()["5.linear.W"]
    assert head.shape == (3, 8)


def test_a_freeze_pattern_that_matches_nothing_names_it_and_the_parameters(tmp_path):
    cfg_path = tmp_path / "f.yaml"
    cfg_path.write_text("data: {type: iris}\nmodel:\n  type: mlp\n  hidden: [4]\n  freeze: ['1.*', '9.*']\n"
                        "train: {epochs: 1}\n")
    with pytest.raises(ConfigError, match=r"f.yaml:5:\d+: model.freeze.1: pattern '9.\*' matches no parameter; "
                                          r"the parameters are: 1.linear.W, 1.linear.b, 3.linear.W, 3.linear.b"):
        mlcli.train(cfg_path, runs_dir=tmp_path)
    with pytest.raises(ConfigError, match="no such checkpoint"):
        mlcli.train({"data": {"type": "iris"}, "model": {"type": "mlp", "init_from": str(tmp_path / "nope")}},
                    runs_dir=tmp_path)


def test_the_shipped_transfer_config_fine_tunes_a_cnn_digits_run(tmp_path):
    pre = invoke("train", CONFIGS / "cnn_digits.yaml", "--runs-dir", tmp_path, "--quiet", "--name", "pretrained",
                 "--set", "train.epochs=2")
    assert pre.exit_code == 0, pre.stderr
    source = next(tmp_path.glob("pretrained-*"))
    out = invoke("train", CONFIGS / "transfer" / "transfer_digits.yaml", "--runs-dir", tmp_path / "ft", "--quiet",
                 "--set", f"model.init_from={source}", "--set", "train.epochs=2")
    assert out.exit_code == 0, out.stderr
    summary = json.loads(next((tmp_path / "ft").iterdir()).joinpath("summary.json").read_text())
    assert summary["init_from"]["skipped"] == [] and "12.linear.W" not in summary["frozen"]
    assert summary["test"]["accuracy"] > 0.8


def test_summary_counts_the_parameters_model_freeze_leaves_alone(tmp_path):
    cfg = {"data": {"type": "digits"}, "model": {"type": "mlp", "hidden": [16], "freeze": ["0.*", "1.linear.W"]}}
    with pytest.raises(ConfigError, match="model.freeze.0: pattern '0.*' matches no parameter"):
        mlcli.summary(cfg)
    cfg["model"]["freeze"] = ["1.*"]
    totals = mlcli.summary(cfg)["totals"]
    assert totals["frozen"] == ["1.linear.W", "1.linear.b"]
    assert totals["frozen_params"] == 64 * 16 + 16 and totals["trainable_params"] == 16 * 10 + 10
    path = tmp_path / "c.yaml"
    path.write_text(json.dumps(cfg))
    out = invoke("summary", path)
    assert out.exit_code == 0 and "trainable: 170 of 1,210 parameters; frozen by model.freeze: 1.linear.W" in \
        out.stdout.replace("\n", " ")
