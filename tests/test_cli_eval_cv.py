"""End-to-end tests of `mlcli eval`, `mlcli cv`, `mlcli data list`, `mlcli gradcheck` and every command's --help.

Also the checkpoint attacks `eval` must refuse with exit 4: a truncated file, a file that is not a zip, an object
(pickled) array, and forged huge shapes.
"""

from __future__ import annotations

import json
import re
import resource
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import CONFIGS, TINY_IRIS, assert_one_line_error, invoke, read_json, train_run

from mlcli.workflows.gradcheck import check_config

KNN = "name: knn\ndata: {type: iris}\nmodel: {type: knn, k: 3}\n"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("eval")
    config = root / "tiny.yaml"
    config.write_text(TINY_IRIS)
    run = train_run(config, root / "runs")
    return {"root": root, "run": run, "best": run / "checkpoints" / "best.npz", "summary": read_json(
        run / "summary.json")}


def eval_json(*args: object) -> dict:
    result = invoke("eval", *args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


# ------------------------------------------------------------------------------------------ eval


def test_eval_json_has_checkpoint_split_n_and_the_run_test_metrics(trained):
    report = eval_json(trained["best"])
    assert set(report) == {"checkpoint", "split", "n", "metrics"}
    assert report["checkpoint"] == str(trained["best"])
    assert report["split"] == "test"
    assert report["n"] == trained["summary"]["n_test"]
    assert set(report["metrics"]) == {"loss", "accuracy"}
    assert report["metrics"]["accuracy"] == pytest.approx(trained["summary"]["test"]["accuracy"])
    assert report["metrics"]["loss"] == pytest.approx(trained["summary"]["test"]["loss"], rel=1e-5)


def test_eval_on_the_val_split_reproduces_the_best_epoch_val_metrics(trained):
    report = eval_json(trained["best"], "--split", "val")
    best = trained["summary"]["best"]
    assert report["split"] == "val" and report["n"] == trained["summary"]["n_val"]
    assert report["metrics"]["accuracy"] == pytest.approx(best["val_accuracy"])
    assert report["metrics"]["loss"] == pytest.approx(best["val_loss"], rel=1e-5)


def test_eval_on_a_data_file_counts_its_samples(trained, tmp_path):
    from sklearn.datasets import load_iris

    iris = load_iris()
    names = np.asarray(iris.target_names)[iris.target]  # labels as the class names the model was trained on
    np.savez(tmp_path / "holdout.npz", x=iris.data[::10], y=names[::10])
    report = eval_json(trained["best"], "--data", tmp_path / "holdout.npz")
    assert report["n"] == 15
    assert report["metrics"]["accuracy"] > 0.5


def _members(path: Path) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(path) as zf:
        return [(info.filename, zf.read(info)) for info in zf.infolist()]


def _write_members(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return path


def _forge(best: Path, out: Path, edit_meta, edit_array=None) -> Path:
    """A copy of `best` whose meta.json is changed by `edit_meta(meta)`, and the first weight by `edit_array`."""
    members = _members(best)
    meta = json.loads(dict(members)["meta.json"])
    edit_meta(meta)
    first_w = next(n for n, _ in members if n.endswith(".W.npy"))
    forged = [(n, json.dumps(meta).encode() if n == "meta.json" else (
        edit_array() if edit_array is not None and n == first_w else data)) for n, data in members]
    return _write_members(out, forged)


def _first_weight(meta: dict) -> str:
    return next(n for n in meta["arrays"] if n.endswith(".W"))


class _Payload:
    """Unpickling this creates the marker file: proof that a loader ran code from the checkpoint."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_truncated_checkpoint_exits_4(trained, tmp_path):
    bad = tmp_path / "truncated.npz"
    data = trained["best"].read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    assert_one_line_error(invoke("eval", bad), 4, str(bad))


def test_a_file_that_is_not_a_zip_exits_4(tmp_path):
    bad = tmp_path / "notes.npz"
    bad.write_text("these are not weights\n")
    assert_one_line_error(invoke("eval", bad), 4, str(bad), "not a zip")


def test_a_missing_checkpoint_exits_4(tmp_path):
    assert_one_line_error(invoke("eval", tmp_path / "absent.npz"), 4, "absent.npz", "no such")


def test_an_object_array_is_refused_without_unpickling(trained, tmp_path):
    import io

    marker = tmp_path / "pwned"
    buf = io.BytesIO()
    np.save(buf, np.array([_Payload(marker)], dtype=object), allow_pickle=True)

    def declare_object(meta: dict) -> None:
        meta["arrays"][_first_weight(meta)]["dtype"] = "object"

    bad = _forge(trained["best"], tmp_path / "object.npz", declare_object, buf.getvalue)
    assert_one_line_error(invoke("eval", bad), 4, str(bad), "object")
    assert not marker.exists()
    undeclared = _forge(trained["best"], tmp_path / "object2.npz", lambda meta: None, buf.getvalue)
    assert_one_line_error(invoke("eval", undeclared), 4, str(undeclared))
    assert not marker.exists()


def test_a_declared_huge_array_shape_exits_4_without_allocating(trained, tmp_path):
    def huge(meta: dict) -> None:
        meta["arrays"][_first_weight(meta)]["shape"] = [2**40, 2**20]

    bad = _forge(trained["best"], tmp_path / "huge.npz", huge)
    assert_one_line_error(invoke("eval", bad), 4, str(bad), "shape")


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


def test_a_checkpoint_declaring_a_huge_model_exits_4(trained, tmp_path):
    def huge_model(meta: dict) -> None:
        meta["config"]["model"]["hidden"] = [10**12]

    bad = _forge(trained["best"], tmp_path / "huge_model.npz", huge_model)
    proc = subprocess.run([sys.executable, "-m", "mlcli", "eval", str(bad)], capture_output=True, text=True,
                          timeout=60, preexec_fn=_limit_memory, check=False)
    assert_one_line_error(proc, 4, str(bad))


# ------------------------------------------------------------------------------------------ cv


def _check_cv_dir(cv_dir: Path, k: int, n_total: int) -> None:
    for name in ("config.yaml", "folds.json", "cv_summary.json"):
        assert (cv_dir / name).is_file(), name
    for i in range(1, k + 1):
        assert (cv_dir / f"fold-{i}" / "summary.json").is_file()
        assert (cv_dir / f"fold-{i}" / "checkpoints" / "best.npz").is_file()
    folds = read_json(cv_dir / "folds.json")
    test = set(folds["test"])
    assert len(folds["folds"]) == k
    vals = [f["val"] for f in folds["folds"]]
    pool = sorted(i for v in vals for i in v)
    assert len(pool) == len(set(pool))  # every sample in at most one val fold
    assert set(pool) == set(range(n_total)) - test  # ... and each of the non-test pool in one
    for fold in folds["folds"]:
        assert not set(fold["train"]) & set(fold["val"])
        assert sorted(fold["train"] + fold["val"]) == pool


def _cv_json(config: Path, runs: Path, k: int = 3, *args: object) -> dict:
    result = invoke("cv", config, "--folds", k, "--runs-dir", runs, "--json", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("model", ["network", "classical"])
def test_cv_with_3_folds_reports_folds_mean_std_and_writes_its_directory(tmp_path, model):
    config = tmp_path / "c.yaml"
    config.write_text(TINY_IRIS if model == "network" else KNN)
    report = _cv_json(config, tmp_path / "runs")
    assert {"folds", "mean", "std"} <= set(report)
    assert [f["fold"] for f in report["folds"]] == [1, 2, 3]
    names = set(report["folds"][0]["metrics"])
    assert "accuracy" in names and (model == "classical" or "loss" in names)
    for name in names:
        values = [f["metrics"][name] for f in report["folds"]]
        assert report["mean"][name] == pytest.approx(np.mean(values))
        assert report["std"][name] == pytest.approx(np.std(values))
    (cv_dir,) = (tmp_path / "runs").iterdir()
    _check_cv_dir(cv_dir, 3, n_total=150)
    summary = read_json(cv_dir / "cv_summary.json")
    assert summary["mean"] == pytest.approx(report["mean"])
    for fold in report["folds"]:  # a fold's score is its best epoch's val metrics
        best = read_json(cv_dir / f"fold-{fold['fold']}" / "summary.json")["best"]
        assert fold["metrics"]["accuracy"] == pytest.approx(best["val_accuracy"])


@pytest.mark.parametrize(("name", "args"), [("softmax", ("--set", "train.epochs=2")), ("gaussian", ())])
def test_cv_of_a_shipped_network_and_classical_config(tmp_path, name, args):
    report = _cv_json(CONFIGS / f"{name}.yaml", tmp_path / "runs", 3, *args)
    assert [f["fold"] for f in report["folds"]] == [1, 2, 3]
    assert 0.5 < report["mean"]["accuracy"] <= 1.0
    (cv_dir,) = (tmp_path / "runs").iterdir()
    assert cv_dir.name.startswith(f"{name}-cv-")
    assert sorted(p.name for p in cv_dir.glob("fold-*")) == ["fold-1", "fold-2", "fold-3"]


def test_cv_rejects_fewer_than_2_folds(tmp_path):
    config = tmp_path / "knn.yaml"
    config.write_text(KNN)
    assert_one_line_error(invoke("cv", config, "--folds", 1, "--runs-dir", tmp_path / "runs"), 2, "--folds")


# ------------------------------------------------------------------------------------------ other commands


def test_data_list_names_the_bundled_and_synthetic_datasets():
    result = invoke("data", "list")
    assert result.exit_code == 0, result.stderr
    names = {line.split("│")[1].strip() for line in result.stdout.splitlines() if line.count("│") > 2}
    assert {"digits", "iris", "spirals"} <= names


def test_gradcheck_of_a_small_mlp_config_passes_below_1e_6():
    result = invoke("gradcheck", CONFIGS / "mlp.yaml", "--set", "model.hidden=[16,8]")
    assert result.exit_code == 0, result.stdout + result.stderr
    errors = {m.group(1): float(m.group(2)) for m in re.finditer(r"│ (\S+)\s+│.*?│\s+(\S+e[-+]\d+) │",
                                                                 result.stdout)}
    assert "input" in errors and any(name.endswith("batchnorm.gamma") for name in errors)
    assert len(errors) == 9  # input + 3 linear W, 1 linear b (the last), 2x batchnorm gamma/beta
    assert max(errors.values()) < 1e-6, errors


def test_gradcheck_of_the_shipped_mlp_config_with_batchnorm_passes_below_1e_6():
    """mlp.yaml's Linear -> BatchNorm pairs: the Linear has no bias (its gradient would be exactly 0)."""
    from mlcli.config.load import load_config

    cfg = load_config(CONFIGS / "mlp.yaml", ["train.dtype=float64", "model.hidden=[24,12]"])
    report = check_config(cfg, batch=8, base_dir=CONFIGS)
    worst = max(report.items(), key=lambda kv: kv[1][1])
    assert worst[1][1] < 1e-6, worst


COMMANDS = [["train"], ["eval"], ["cv"], ["gradcheck"], ["summary"], ["config"], ["config", "show"],
            ["config", "validate"], ["config", "schema"], ["data"], ["data", "list"], ["data", "download"], []]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "mlcli")
def test_help_of_every_command_exits_0_with_an_example(command):
    result = invoke(*command, "--help")
    assert result.exit_code == 0, result.stderr
    assert "Example" in result.stdout
    assert "Usage:" in result.stdout


@pytest.mark.parametrize("command", ["train", "eval", "cv", "gradcheck", "summary"])
def test_help_keeps_each_example_on_its_own_line(command):
    result = invoke(command, "--help")
    examples = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("mlcli ")]
    assert len(examples) >= 2, result.stdout
