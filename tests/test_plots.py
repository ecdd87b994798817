"""mlcli plot (mlcli/workflows/plot.py over mlcli/insight): every kind is a valid PNG of the size its figure
promises, runs with NaN metrics or one epoch plot, several runs and a cv directory overlay, and every misuse is one
error line (exit 2) naming what to do, including a missing matplotlib."""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import invoke

import mlcli
from mlcli.errors import ConfigError
from mlcli.insight.confusion import CONFUSION_SIZE
from mlcli.insight.curves import CURVES_SIZE, LR_SIZE
from mlcli.insight.diagnostics_plot import DIAGNOSTICS_SIZE
from mlcli.insight.figures import DPI
from mlcli.insight.weights import as_images, weights_size
from mlcli.runs.snapshot import load_model
from mlcli.workflows.plot import expand, plot

matplotlib_image = pytest.importorskip("matplotlib.image", reason="plots need matplotlib (the 'plot' extra)")

SOFTMAX = {"name": "soft", "data": {"type": "digits"}, "model": {"type": "softmax"},
           "train": {"epochs": 3, "batch_size": 64, "optimizer": {"type": "sgd", "lr": 0.1}, "diagnostics": True}}


def pixels(size: tuple[float, float]) -> tuple[int, int]:
    return round(size[0] * DPI), round(size[1] * DPI)


def png_header(path: Path) -> tuple[int, int]:
    """(width, height) read from the PNG signature and IHDR chunk, independently of mlcli."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    return struct.unpack(">II", data[16:24])


def assert_png(path: Path, size: tuple[int, int]) -> None:
    assert png_header(path) == size, path
    decoded = matplotlib_image.imread(path)  # the whole file decodes, not only its header
    assert decoded.shape[:2] == (size[1], size[0])
    assert decoded[..., :3].std() > 0.01, f"{path} is blank"


@pytest.fixture(scope="module")
def softmax_run(tmp_path_factory) -> Path:
    return mlcli.train(SOFTMAX, runs_dir=tmp_path_factory.mktemp("runs")).run_dir


def write_run(path: Path, records: list[str], summary: dict | None = None) -> Path:
    """A run directory by hand: config.yaml and metrics.jsonl lines as given (raw JSON text)."""
    path.mkdir(parents=True)
    (path / "config.yaml").write_text("name: hand\ndata: {type: iris}\nmodel: {type: mlp}\n")
    (path / "metrics.jsonl").write_text("".join(line + "\n" for line in records))
    if summary is not None:
        (path / "summary.json").write_text(json.dumps(summary))
    return path


def test_default_plots_of_a_run_are_valid_pngs_of_their_sizes(softmax_run):
    paths = plot(softmax_run)
    assert [p.name for p in paths] == ["curves.png", "lr.png", "confusion.png", "weights.png", "diagnostics.png"]
    assert all(p.parent == softmax_run / "plots" for p in paths)
    sizes = dict(zip(["curves", "lr", "confusion", "weights", "diagnostics"],
                     [CURVES_SIZE, LR_SIZE, CONFUSION_SIZE, weights_size(10), DIAGNOSTICS_SIZE], strict=True))
    for path in paths:
        assert_png(path, pixels(sizes[path.stem]))
    assert pixels(weights_size(10)) == (600, 290)  # 10 digit templates: 2 rows of 5


def test_softmax_weights_are_one_8x8_template_per_class(softmax_run):
    W = load_model(softmax_run / "checkpoints" / "best.npz").model.net.params()["1.linear.W"]
    images = as_images(W, (1, 8, 8))
    assert images.shape == (10, 8, 8)
    np.testing.assert_array_equal(images[3], W[3].reshape(8, 8))
    assert as_images(W, None) is None  # not an image: drawn as a heat map instead


def test_a_run_with_nan_metrics_or_a_single_epoch_plots(tmp_path):
    nan_run = write_run(tmp_path / "nan", [
        '{"epoch": 1, "train_loss": 1.0, "val_loss": null, "train_accuracy": 0.5, "lr": 0.1}',
        '{"epoch": 2, "train_loss": NaN, "val_loss": "inf", "train_accuracy": null, "lr": 0.1}',
        '{"epoch": 3, "train_loss": null, "val_loss": null, "lr": null}',
        'cut by a ki'], {"best_epoch": 2, "task": "classification"})
    single = write_run(tmp_path / "single", ['{"epoch": 1, "train_loss": 0.7, "val_loss": 0.8, "val_r2": 0.4}'])
    empty = write_run(tmp_path / "empty", [])
    for run in (nan_run, single, empty):
        paths = plot(run, what="curves,lr")
        assert [p.name for p in paths] == ["curves.png", "lr.png"]
        assert_png(paths[0], pixels(CURVES_SIZE))
        assert_png(paths[1], pixels(LR_SIZE))
    assert plot(single, out=tmp_path / "x") == [tmp_path / "x" / "curves.png", tmp_path / "x" / "lr.png"]


def test_several_runs_and_a_cv_directory_are_overlaid(softmax_run, tmp_path):
    other = write_run(tmp_path / "other", ['{"epoch": 1, "train_loss": 2.0, "val_loss": 2.1, "lr": 0.2}'])
    paths = plot([softmax_run, other], out=tmp_path / "cmp")
    assert [p.name for p in paths] == ["curves.png", "lr.png"]
    assert_png(paths[0], pixels(CURVES_SIZE))
    cv = mlcli.cv({**SOFTMAX, "data": {"type": "iris"}, "train": {"epochs": 2}}, folds=2,
                  runs_dir=tmp_path / "cvruns")
    assert [v.label for v in expand([cv.cv_dir])] == ["fold-1", "fold-2"]
    paths = plot(cv.cv_dir)
    assert paths == [cv.cv_dir / "plots" / "curves.png", cv.cv_dir / "plots" / "lr.png"]
    assert_png(paths[0], pixels(CURVES_SIZE))


def test_a_sweep_directory_overlays_its_trials(tmp_path):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "sweep.yaml").write_text("base: config.yaml\n")
    for i, lr in enumerate((0.1, 0.01)):
        write_run(sweep / "trials" / f"trial-{i}", [f'{{"epoch": {e}, "train_loss": {1 / e}, "lr": {lr}}}'
                                                      for e in (1, 2, 3)])
    assert [v.label for v in expand([sweep])] == ["trial-0", "trial-1"]
    (curves, lr) = plot(sweep, what="curves,lr")
    assert curves == sweep / "plots" / "curves.png"
    assert_png(curves, pixels(CURVES_SIZE))
    assert_png(lr, pixels(LR_SIZE))


def test_a_per_run_kind_of_several_runs_is_one_file_per_run(softmax_run, tmp_path):
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("config.yaml", "metrics.jsonl", "summary.json", "diagnostics.jsonl"):
        (copy / name).write_bytes((softmax_run / name).read_bytes())
    paths = plot([softmax_run, copy], out=tmp_path / "cmp", what="diagnostics")
    assert [p.name for p in paths] == [f"diagnostics-{softmax_run.name}.png", "diagnostics-copy.png"]
    for path in paths:
        assert_png(path, pixels(DIAGNOSTICS_SIZE))


def test_cnn_filters_are_drawn_from_the_first_convolution(tmp_path):
    run = mlcli.train({"data": {"type": "digits", "as_images": True},
                       "model": {"type": "cnn", "layers": [{"type": "conv", "out_channels": 6, "kernel": 3},
                                                           {"type": "relu"}]},
                       "train": {"epochs": 1}}, runs_dir=tmp_path).run_dir
    paths = plot(run)
    assert [p.name for p in paths] == ["curves.png", "lr.png", "confusion.png", "filters.png"]
    assert_png(paths[-1], pixels(weights_size(6)))
    with pytest.raises(ConfigError, match="first layer is not linear; use --what filters"):
        plot(run, what="weights")


@pytest.mark.parametrize(("what", "message"), [
    ("curves,bogus", "unknown plot 'bogus'; choose from curves, lr, confusion"),
    ("filters", "has no convolution; use --what weights"),
])
def test_plot_misuse_is_one_error_line(softmax_run, what, message, one_line_error):
    result = invoke("plot", softmax_run, "--what", what)
    one_line_error(result, 2, message)


def test_plot_of_what_is_no_run_and_regression_confusion_fail_clearly(tmp_path, one_line_error):
    one_line_error(invoke("plot", tmp_path), 2, "not a run, cv or sweep directory")
    regression = mlcli.train({"data": {"type": "diabetes"}, "model": {"type": "linear_regression",
                                                                     "solver": "closed_form"}},
                             runs_dir=tmp_path / "runs").run_dir
    one_line_error(invoke("plot", regression, "--what", "confusion"), 2, "a confusion matrix needs a classifier")
    one_line_error(invoke("plot", regression, "--what", "weights"), 2, "linear_regression model, which has no "
                   "network layers to draw")
    assert [p.name for p in plot(regression)] == ["curves.png", "lr.png"]  # one fitted "epoch", no layers


def test_plot_cli_prints_the_paths(softmax_run, tmp_path):
    result = invoke("plot", softmax_run, "--what", "lr,curves", "--out", tmp_path / "o")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [str(tmp_path / "o" / "lr.png"), str(tmp_path / "o" / "curves.png")]


def test_missing_matplotlib_is_one_line_naming_the_extra(softmax_run, monkeypatch, one_line_error):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    one_line_error(invoke("plot", softmax_run), 2, "plots need matplotlib: pip install matplotlib",
                   "mlcli[plot]")
    one_line_error(invoke("report", softmax_run), 2, "plots need matplotlib: pip install matplotlib")
