"""Per-layer diagnostics (mlcli/training/diagnostics.py): the statistics are right, the course's claims about
initialization show in them, they reach diagnostics.jsonl through --diagnostics and train.diagnostics, and they
change nothing in training."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import TIMING_KEYS, read_jsonl, train_run

import mlcli
from mlcli.training.diagnostics import Diagnostics, activation_stats, probe_activations, read_diagnostics
from mlcli.workflows.build import resolve_config, setup

DIGITS_MLP = """\
name: diag
data:
  type: digits
model:
  type: mlp
  hidden: [32, 16]
  activation: tanh
  batchnorm: true
  dropout: 0.2
train:
  epochs: 3
  batch_size: 64
  optimizer:
    type: momentum
    lr: 0.05
"""


def test_activation_stats_count_saturated_and_dead_outputs():
    sig = np.array([[0.005, 0.5], [0.995, 0.2]], dtype=np.float32)
    assert activation_stats("sigmoid", sig)["saturated"] == 0.5
    tanh = np.array([[-0.995, 0.0, 0.98, 0.999]], dtype=np.float32)
    stats = activation_stats("tanh", tanh)
    assert stats["saturated"] == 0.5
    assert stats["mean"] == pytest.approx(float(tanh.mean()), abs=1e-7)
    assert stats["std"] == pytest.approx(float(tanh.std()), abs=1e-7)
    relu = np.array([[0.0, 1.0, 0.0], [0.0, 2.0, 3.0]])
    stats = activation_stats("relu", relu)
    assert stats["dead"] == pytest.approx(3 / 6)
    assert stats["dead_units"] == pytest.approx(1 / 3)  # unit 0 is 0 for every sample
    maps = np.zeros((2, 4, 3, 3))
    maps[:, 1:] = 1.0
    assert activation_stats("relu", maps)["dead_units"] == 0.25  # channel 0 of a feature map is dead
    assert set(activation_stats("linear", relu)) == {"mean", "std"}


def _hidden_stds(activation: str, scheme: str, depth: int = 8) -> list[float]:
    cfg, base = resolve_config({"data": {"type": "blobs", "n_samples": 400, "features": 64, "classes": 4},
                                "model": {"type": "mlp", "hidden": [128] * depth, "activation": activation,
                                          "init": {"scheme": scheme}}}, None, None)
    _, data, model = setup(cfg, base, None)
    stats = probe_activations(model.net, data.train.x[:256])
    stds = [s["std"] for name, s in stats.items() if name.endswith("." + activation)]
    assert len(stds) == depth
    return stds


def test_small_init_shrinks_activations_layer_by_layer():
    for activation in ("tanh", "relu"):
        stds = _hidden_stds(activation, "small")
        ratios = [b / a for a, b in itertools.pairwise(stds) if a > 0]
        assert ratios and all(r < 0.2 for r in ratios), (activation, stds)
        assert stds[-1] < 1e-4 * stds[0] or stds[-1] == 0.0, (activation, stds)


def test_xavier_keeps_tanh_std_roughly_constant_and_he_keeps_relus():
    tanh = _hidden_stds("tanh", "xavier")
    assert all(b / a > 0.6 for a, b in itertools.pairwise(tanh)), tanh
    assert tanh[-1] > 0.15 and tanh[-1] > 0.3 * tanh[0], tanh
    relu = _hidden_stds("relu", "he")
    assert all(0.5 < s / relu[0] < 2.0 for s in relu), relu
    # and the course's counterpoint: Xavier with ReLU halves the variance at every layer
    relu_xavier = _hidden_stds("relu", "xavier")
    assert relu_xavier[-1] < 0.15 * relu_xavier[0], relu_xavier


def _without_timings(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in history]


def test_diagnostics_flag_writes_every_epoch_and_changes_no_result(write_config, runs_dir):
    config = write_config(DIGITS_MLP)
    on = train_run(config, runs_dir, "--diagnostics")
    off = mlcli.train(config, runs_dir=runs_dir, name="off")
    assert not (off.run_dir / "diagnostics.jsonl").exists()
    # dropout and batchnorm in the net: the eval-mode probe draws no mask and moves no running statistic
    assert _without_timings(read_jsonl(on / "metrics.jsonl")) == _without_timings(off.history)
    records = read_diagnostics(on)
    assert [r["epoch"] for r in records] == [0, 1, 2, 3]
    first, last = records[0], records[-1]
    assert first["probe"] == 256
    assert list(first["activations"]) == ["1.linear", "2.batchnorm", "3.tanh", "5.linear", "6.batchnorm", "7.tanh",
                                          "9.linear"]
    assert 0.0 <= last["activations"]["3.tanh"]["saturated"] <= 1.0
    assert set(first["params"]["1.linear.W"]) == {"norm"}  # no step has been taken at epoch 0
    step = last["params"]["1.linear.W"]
    assert step["grad_norm"] > 0 and 0 < step["update_ratio"] < 1
    assert read_jsonl(on / "diagnostics.jsonl") == records  # strict JSON: no NaN tokens


def test_update_ratio_is_the_real_step_lr_times_gradient_for_sgd(runs_dir):
    result = mlcli.train({"data": {"type": "digits"}, "model": {"type": "softmax"},
                          "train": {"epochs": 2, "batch_size": 32, "optimizer": {"type": "sgd", "lr": 0.1},
                                    "diagnostics": True}}, runs_dir=runs_dir)
    records = read_diagnostics(result.run_dir)
    assert [r["epoch"] for r in records] == [0, 1, 2]
    for before, after in itertools.pairwise(records):
        w = after["params"]["1.linear.W"]
        # plain SGD: the first step of the epoch moved W by exactly lr * g
        assert w["update_ratio"] == pytest.approx(0.1 * w["grad_norm"] / before["params"]["1.linear.W"]["norm"],
                                                  rel=1e-4)
    assert records[1]["params"]["1.linear.b"]["update_ratio"] is None  # b started at 0: no ratio


def test_nan_activations_are_written_as_null_in_strict_json(tmp_path):
    cfg, base = resolve_config({"data": {"type": "digits"}, "model": {"type": "mlp", "hidden": [16]}}, None, None)
    _, data, model = setup(cfg, base, None)
    model.net.layers[1].params["W"][0, 0] = np.nan  # a weight gone bad: every output after it is NaN
    Diagnostics(tmp_path).on_train_begin(SimpleNamespace(model=model, data=data, start_epoch=0))
    (record,) = read_jsonl(tmp_path / "diagnostics.jsonl")  # json.loads of strict JSON: NaN would be a token
    assert "NaN" not in (tmp_path / "diagnostics.jsonl").read_text()
    assert record["activations"]["1.linear"]["std"] is None
    assert record["params"]["1.linear.W"]["norm"] is None
    assert record["params"]["3.linear.W"]["norm"] > 0
