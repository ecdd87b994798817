"""The tied-weight autoencoder: each decoder layer is the transpose of its mirrored encoder layer, the shared
matrix's gradient is the sum of both uses (checked numerically in float64 and against the homework's closed form)."""

from __future__ import annotations

import numpy as np
import pytest

import mlcli
from mlcli.config.load import build_config
from mlcli.models.context import BuildContext
from mlcli.models.registry import build_model
from mlcli.nn.gradcheck import check_network


def tied(encoder, activation="tanh", features=6):
    cfg = build_config({"data": {"type": "digits"}, "model": {"type": "autoencoder", "encoder": encoder,
                                                            "activation": activation, "tied_weights": True},
                        "train": {"dtype": "float64"}}, "t.yaml", {})
    ctx = BuildContext(input_shape=(features,), n_outputs=features, dtype=np.float64,
                       init_rng=np.random.default_rng(0), dropout_rng=np.random.default_rng(1))
    return build_model(cfg, ctx)


def test_the_decoder_owns_only_biases_and_uses_the_encoders_matrices():
    model = tied([4, 2])
    names = list(model.net.params())
    assert names == ["1.linear.W", "1.linear.b", "3.linear.W", "3.linear.b", "4.tied_linear.b", "6.tied_linear.b"]
    decoder = [layer for layer in model.net.layers if layer.kind == "tied_linear"]
    assert decoder[0].source is model.net.layers[3] and decoder[1].source is model.net.layers[1]


def test_gradients_of_a_deep_tied_autoencoder_match_numerical_ones_in_float64():
    model = tied([5, 3], activation="tanh")
    rng = np.random.default_rng(2)
    for w in model.net.params().values():
        w[...] = rng.normal(scale=0.5, size=w.shape)
    x = rng.normal(size=(7, 6))
    errors = check_network(model.net, model.loss_and_grad, x, model.target(x, None))
    assert max(errors.values()) < 1e-7, errors


def test_a_one_layer_linear_tied_autoencoder_has_the_homeworks_gradient():
    """L = 1/2 ||W^T W x - x||^2 per sample has dL/dW = W r x^T + W x r^T with r = W^T W x - x; mlcli's MSE is
    the mean over all N*D elements of r^2, i.e. (2 / (N D)) times the sum of the per-sample L."""
    model = tied([3], activation="relu", features=5)
    rng = np.random.default_rng(3)
    enc, dec = model.net.layers[1], model.net.layers[2]
    enc.params["W"][...] = W = rng.normal(size=(3, 5))
    enc.params["b"][...] = 0.0
    dec.params["b"][...] = 0.0
    x = rng.normal(size=(8, 5))
    model.train_batch(x, None)
    expected = np.zeros_like(W)
    for xn in x:
        r = W.T @ W @ xn - xn
        expected += W @ np.outer(r, xn) + W @ np.outer(xn, r)
    expected *= 2.0 / x.size
    np.testing.assert_allclose(enc.grads["W"], expected, rtol=1e-10, atol=1e-12)


def test_a_tied_autoencoder_trains_from_yaml_saves_half_the_matrices_and_transforms(tmp_path):
    from conftest import CONFIGS

    from mlcli.runs.snapshot import load_model

    run = mlcli.train(CONFIGS / "autoencoder_tied.yaml", overrides={"train.epochs": 3}, runs_dir=tmp_path)
    untied = mlcli.train(CONFIGS / "autoencoder.yaml", overrides={"train.epochs": 3}, runs_dir=tmp_path)
    tied_names = set(load_model(run.best_checkpoint).model.state())
    assert {n for n in tied_names if n.endswith(".W")} == {"1.linear.W", "3.linear.W"}
    assert len(tied_names) < len(load_model(untied.best_checkpoint).model.state())
    assert run.metrics["reconstruction_mse"] == pytest.approx(mlcli.evaluate(run.run_dir)["metrics"]
                                                              ["reconstruction_mse"])
    from sklearn.datasets import load_digits

    assert mlcli.load(run.run_dir).transform(load_digits().data[:4]).shape == (4, 8)
