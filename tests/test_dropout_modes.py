"""Dropout in both of the course's forms: inverted (scale 1/(1-p) in training) and scale_at_test (scale 1-p in
evaluation). Both keep the expected activation between training and evaluation, and they are the same network
function up to that scale of the next layer's weights."""

from __future__ import annotations

import numpy as np
import pytest

import mlcli
from mlcli.nn.gradcheck import check_layer
from mlcli.nn.layers import Dropout, Linear
from mlcli.nn.network import Sequential


@pytest.mark.parametrize("mode", ["inverted", "scale_at_test"])
def test_both_modes_keep_the_expected_activation_between_training_and_evaluation(mode):
    x = np.random.default_rng(0).uniform(0.5, 1.5, size=(4000, 50))
    layer = Dropout(0.3, rng=np.random.default_rng(1), mode=mode)
    trained = np.mean([layer.forward(x, train=True).mean() for _ in range(5)])
    evaluated = layer.forward(x, train=False).mean()
    assert trained == pytest.approx(evaluated, rel=0.01)
    expected = x.mean() if mode == "inverted" else 0.7 * x.mean()
    assert evaluated == pytest.approx(expected, rel=1e-12)


def test_the_two_modes_are_one_function_up_to_the_scale_of_the_next_weights():
    p, rng = 0.4, np.random.default_rng(2)
    w, b = rng.normal(size=(3, 6)), rng.normal(size=3)

    def net(mode, scale):
        lin = Linear(6, 3, rng=np.random.default_rng(0), dtype=np.float64)
        lin.params["W"][...] = w * scale
        lin.params["b"][...] = b
        return Sequential([Dropout(p, rng=np.random.default_rng(9), mode=mode), lin])

    inverted, at_test = net("inverted", 1.0), net("scale_at_test", 1.0 / (1.0 - p))
    x = rng.normal(size=(5, 6))
    np.testing.assert_allclose(at_test.forward(x, train=False), inverted.forward(x, train=False), rtol=1e-12)
    np.testing.assert_allclose(at_test.forward(x, train=True), inverted.forward(x, train=True), rtol=1e-12)


@pytest.mark.parametrize("mode", ["inverted", "scale_at_test"])
def test_dropout_gradients_match_numerical_ones_in_both_modes(mode):
    rng = np.random.default_rng(3)
    errors = check_layer(Dropout(0.5, rng=np.random.default_rng(4), mode=mode), rng.normal(size=(4, 7)), rng)
    assert errors["x"] < 1e-9


def test_a_bad_mode_is_refused_and_the_config_field_reaches_the_layers(tmp_path):
    with pytest.raises(ValueError, match="Dropout mode must be one of inverted, scale_at_test; got 'test'"):
        Dropout(0.5, rng=np.random.default_rng(0), mode="test")
    with pytest.raises(mlcli.errors.ConfigError, match="model.dropout_mode: must be one of inverted, scale_at_test"):
        mlcli.train({"data": {"type": "iris"}, "model": {"type": "mlp", "dropout_mode": "test"}}, runs_dir=tmp_path)
    result = mlcli.train({"data": {"type": "iris"}, "model": {"type": "mlp", "hidden": [8], "dropout": 0.2,
                                                            "dropout_mode": "scale_at_test"},
                          "train": {"epochs": 2}}, runs_dir=tmp_path)
    model = mlcli.load(result.run_dir)._loaded.model
    modes = [layer.mode for layer in model.net.layers if layer.kind == "dropout"]
    assert modes == ["scale_at_test"]
