"""Convolutional networks from configs: shapes and counts by hand, rejected stacks, real image formats, quality."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mlcli.cli.app import app
from mlcli.config.load import load_config_text
from mlcli.models.context import BuildContext
from mlcli.models.registry import build_model
from mlcli.nn.conv import Conv2d
from mlcli.nn.layers import Flatten, Linear
from mlcli.nn.network import Sequential
from mlcli.workflows.summary import summarize_config

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


def cfg_text(model: str, data: str = "{type: digits, as_images: true}", extra: str = "") -> str:
    return f"data: {data}\nmodel: {model}\n{extra}"


def test_summary_matches_the_course_hand_count():
    """A 32x32x3 input through 100 4x4x3 filters gives 29x29x100 and 4,900 parameters (with biases)."""
    cfg = load_config_text(cfg_text("{type: cnn, layers: [{type: conv, out_channels: 100, kernel: 4}]}"), "c.yaml")
    rows, _totals = summarize_config(cfg, input_shape=(3, 32, 32), n_classes=10)
    assert rows[0].output_shape == (100, 29, 29)
    assert rows[0].params == 4900
    assert rows[0].connections == 29 * 29 * 100 * 4 * 4 * 3
    assert rows[0].receptive_field == "4x4"


def test_lenet5_has_the_published_parameter_count_on_32x32():
    cfg = load_config_text(cfg_text("{type: lenet5}"), "c.yaml")
    rows, totals = summarize_config(cfg, input_shape=(1, 32, 32), n_classes=10)
    shapes = [r.output_shape for r in rows if r.name in ("conv", "avgpool", "linear")]
    assert shapes[:5] == [(6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5), (120, 1, 1)]
    assert totals["params"] == 61_706


def test_lenet5_adapts_to_8x8_and_28x28_inputs():
    cfg = load_config_text(cfg_text("{type: lenet5}"), "c.yaml")
    for shape in ((1, 8, 8), (1, 28, 28)):
        _rows, totals = summarize_config(cfg, input_shape=shape, n_classes=10)
        assert totals["output_shape"] == (10,)


def test_alexnet_reproduces_published_shapes_and_parameters():
    cfg = load_config_text(cfg_text("{type: alexnet}", data="{type: npz, path: x.npz}"), "c.yaml")
    rows, totals = summarize_config(cfg, input_shape=(3, 227, 227), n_classes=1000)
    convs = [r.output_shape for r in rows if r.name == "conv"]
    pools = [r.output_shape for r in rows if r.name == "maxpool"]
    assert convs == [(96, 55, 55), (256, 27, 27), (384, 13, 13), (384, 13, 13), (256, 13, 13)]
    assert pools == [(96, 27, 27), (256, 13, 13), (256, 6, 6)]
    assert totals["params"] == 62_378_344


def test_receptive_field_grows_by_kernel_and_stride():
    layers = "[{type: conv, out_channels: 4, kernel: 3, padding: 1}, {type: maxpool, kernel: 2}, " \
             "{type: conv, out_channels: 4, kernel: 3, padding: 1}]"
    cfg = load_config_text(cfg_text(f"{{type: cnn, layers: {layers}}}"), "c.yaml")
    rows, _ = summarize_config(cfg, input_shape=(1, 8, 8), n_classes=10)
    assert [r.receptive_field for r in rows[:3]] == ["3x3", "4x4", "8x8"]


def test_an_impossible_stack_is_a_config_error_naming_the_layer(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text(cfg_text("{type: cnn, layers: [{type: conv, out_channels: 4, kernel: 3, stride: 3}]}",
                               data="{type: npz, path: x.npz}"))
    np.savez(tmp_path / "x.npz", x=np.zeros((12, 1, 7, 7)), y=np.arange(12) % 2)
    result = runner.invoke(app, ["summary", str(config)])
    assert result.exit_code == 2
    assert "model.layers.0 (conv): input (1, 7, 7)" in result.stderr
    assert "(7 + 2*0 - 3) / 3 + 1 = 2.33 is not a whole number" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_linear_layer_on_feature_maps_is_rejected():
    cfg = load_config_text(cfg_text("{type: cnn, layers: [{type: linear, units: 4}]}"), "c.yaml")
    ctx = BuildContext(input_shape=(1, 8, 8), n_outputs=10, init_rng=np.random.default_rng(0),
                       dropout_rng=np.random.default_rng(0))
    with pytest.raises(Exception, match="add {type: flatten} before it"):
        build_model(cfg, ctx)


def test_first_conv_layer_skips_its_input_gradient_with_the_same_parameter_grads():
    rng = np.random.default_rng(0)
    net = Sequential([Conv2d(2, 3, 3, padding=1, rng=rng, dtype=np.float64), Flatten(),
                      Linear(3 * 5 * 5, 4, rng=rng, dtype=np.float64)])
    x = rng.normal(size=(2, 2, 5, 5))
    dy = rng.normal(size=(2, 4))
    net.forward(x, train=True)
    assert net.backward(dy, input_grad=True) is not None
    full = {k: v.copy() for k, v in net.grads().items()}
    net.forward(x, train=True)
    assert net.backward(dy, input_grad=False) is None
    for name, grad in net.grads().items():
        np.testing.assert_array_equal(grad, full[name])


def test_augmentation_does_not_change_the_initial_weights():
    base = cfg_text("{type: cnn, layers: [{type: conv, out_channels: 4, kernel: 3}]}")
    cfgs = [load_config_text(base.replace("as_images: true", f"as_images: true, augment: {aug}"), "c.yaml")
            for aug in ("{}", "{hflip: true, crop_padding: 1, noise_std: 0.1}")]
    from mlcli.workflows.build import setup

    weights = [setup(c)[2].net.params()["0.conv.W"] for c in cfgs]
    np.testing.assert_array_equal(weights[0], weights[1])


def test_small_cnn_reaches_097_on_digits_as_images(tmp_path):
    result = runner.invoke(app, ["train", str(REPO / "configs" / "cnn_digits.yaml"), "--runs-dir",
                                 str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.stderr
    summary = json.loads(next(tmp_path.glob("*/summary.json")).read_text())
    assert summary["test"]["accuracy"] >= 0.97


def _write_idx(folder: Path, prefix: str, x: np.ndarray, y: np.ndarray) -> None:
    images = struct.pack(">IIII", 2051, len(x), 28, 28) + x.astype(np.uint8).tobytes()
    labels = struct.pack(">II", 2049, len(y)) + y.astype(np.uint8).tobytes()
    (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(images))
    (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(labels)


def test_cnn_trains_and_evaluates_on_mnist_idx_files(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "mnist"
    folder.mkdir()
    for prefix, n in (("train", 60), ("t10k", 20)):
        y = np.arange(n) % 10
        x = rng.integers(0, 40, size=(n, 28, 28))
        x[np.arange(n), y * 2, :] = 255  # a bright row whose position encodes the class
        _write_idx(folder, prefix, x, y)
    config = tmp_path / "mnist.yaml"
    config.write_text(
        "data: {type: mnist, path: mnist, val_fraction: 0.2, augment: {crop_padding: 2, noise_std: 0.05}}\n"
        "model: {type: cnn, layers: [{type: conv, out_channels: 4, kernel: 5, stride: 1}, {type: relu}, "
        "{type: maxpool, kernel: 4}]}\n"
        "train: {epochs: 2, batch_size: 16}\n")
    result = runner.invoke(app, ["train", str(config), "--runs-dir", str(tmp_path / "runs"), "--quiet"])
    assert result.exit_code == 0, result.stderr
    run = next((tmp_path / "runs").glob("*"))
    summary = json.loads((run / "summary.json").read_text())
    assert summary["n_test"] == 20 and summary["n_train"] + summary["n_val"] == 60
    ev = runner.invoke(app, ["eval", str(run / "checkpoints" / "best.npz"), "--json"])
    assert ev.exit_code == 0, ev.stderr
    assert json.loads(ev.stdout)["n"] == 20


def test_cnn_trains_on_cifar10_binary_batches_with_flips(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for name in names:
        y = rng.permutation(10).astype(np.uint8)  # every class in every batch file
        pixels = rng.integers(0, 256, size=(10, 3072)).astype(np.uint8)
        (folder / name).write_bytes(np.concatenate([y[:, None], pixels], axis=1).tobytes())
    (folder / "batches.meta.txt").write_text("\n".join(f"class{i}" for i in range(10)) + "\n")
    config = tmp_path / "cifar.yaml"
    config.write_text(
        f"data: {{type: cifar10, path: {folder}, val_fraction: 0.0, augment: {{hflip: true}}}}\n"
        "model: {type: vgg, widths: [4], convs_per_stage: 1, hidden: [8]}\n"
        "train: {epochs: 1, batch_size: 8}\n")
    result = runner.invoke(app, ["train", str(config), "--runs-dir", str(tmp_path / "runs"), "--quiet"])
    assert result.exit_code == 0, result.stderr
    summary = json.loads(next((tmp_path / "runs").glob("*/summary.json")).read_text())
    assert summary["n_train"] == 50 and summary["n_test"] == 10


def test_zfnet_reproduces_published_shapes_and_parameters():
    cfg = load_config_text(cfg_text("{type: zfnet}", data="{type: npz, path: x.npz}"), "c.yaml")
    rows, totals = summarize_config(cfg, input_shape=(3, 224, 224), n_classes=1000)
    convs = [r.output_shape for r in rows if r.name == "conv"]
    pools = [r.output_shape for r in rows if r.name == "maxpool"]
    assert convs == [(96, 110, 110), (256, 26, 26), (384, 13, 13), (384, 13, 13), (256, 13, 13)]
    assert pools == [(96, 55, 55), (256, 13, 13), (256, 6, 6)]
    assert totals["params"] == 62_357_608
