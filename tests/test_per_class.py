"""Per-class evaluation and class probabilities: `mlcli eval` (per_class, confusion, top5), `mlcli predict --proba`.

The values are compared with scikit-learn's classification_report, confusion_matrix and top_k_accuracy_score on
the same predictions; a KNN on the digits gives many tied vote fractions, which exercises the top-k tie order.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from conftest import TINY_IRIS, invoke, train_run

from mlcli.data.pipeline import prepare
from mlcli.models.context import compute_dtype
from mlcli.models.metrics import classification_report, confusion_matrix, top_k_accuracy
from mlcli.runs.snapshot import load_model, prepare_inputs
from mlcli.seeding import generators

sklearn_metrics = pytest.importorskip("sklearn.metrics")

KNN_DIGITS = "name: knn\nseed: 0\ndata: {type: digits}\nmodel: {type: knn, k: 3}\n"
KNN_IRIS = "name: knn%d\nseed: 0\ndata: {type: iris, seed: 0}\nmodel: {type: knn, k: %d}\n"
REGRESSION = "name: reg\ndata: {type: linear_regression, n_samples: 60}\nmodel: {type: linear_regression}\n" \
             "train: {epochs: 2}\n"


def assert_matches_sklearn(result: dict, y: np.ndarray, pred: np.ndarray, scores: np.ndarray | None = None) -> None:
    """result's per_class, confusion (and top5) equal scikit-learn's on (y, pred, scores)."""
    n_classes = len(result["confusion"]["labels"])
    labels = list(range(n_classes))
    expected = sklearn_metrics.classification_report(y, pred, labels=labels, output_dict=True, zero_division=0)
    for c, row in enumerate(result["per_class"]["classes"]):
        for key, sk_key in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score"),
                            ("support", "support")):
            assert row[key] == pytest.approx(expected[str(c)][sk_key], abs=1e-12), (c, key)
    for kind in ("macro", "weighted"):
        for key, sk_key in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score"),
                            ("support", "support")):
            assert result["per_class"][kind][key] == pytest.approx(expected[f"{kind} avg"][sk_key], abs=1e-12)
    assert result["confusion"]["matrix"] == sklearn_metrics.confusion_matrix(y, pred, labels=labels).tolist()
    if scores is not None and n_classes > 5:
        assert result["top5"] == pytest.approx(
            sklearn_metrics.top_k_accuracy_score(y, scores, k=5, labels=labels), abs=1e-12)
    else:
        assert "top5" not in result


def split_of(checkpoint, split: str = "test"):
    loaded = load_model(checkpoint)
    ds = getattr(prepare(loaded.config.data, generators(loaded.config.seed), dtype=compute_dtype(loaded.config),
                         scaler=loaded.standardizer), split)
    return loaded, ds


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("per_class")
    made = {}
    for name, text in (("mlp", TINY_IRIS), ("knn_digits", KNN_DIGITS), ("knn3", KNN_IRIS % (3, 3)),
                       ("knn7", KNN_IRIS % (7, 7)), ("reg", REGRESSION)):
        config = root / f"{name}.yaml"
        config.write_text(text)
        made[name] = train_run(config, root / "runs") / "checkpoints" / "best.npz"
    made["root"] = root
    return made


def eval_json(*args: object) -> dict:
    result = invoke("eval", *args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


# ----------------------------------------------------------------------------------- the formulas


def test_report_of_random_labels_with_an_absent_class_equals_sklearn():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 6, 300)
    y[y == 4] = 5  # class 4 never occurs: support 0, precision 0 / 0 -> 0 as scikit-learn's zero_division=0
    pred = np.where(rng.random(300) < 0.6, y, rng.integers(0, 7, 300))
    scores = rng.integers(0, 4, (300, 7)).astype(float)  # many ties
    result = classification_report(y, pred, 7, scores=scores)
    assert_matches_sklearn(result, y, pred, scores)
    assert result["per_class"]["classes"][4]["support"] == 0


def test_confusion_rows_are_true_classes_and_top_k_of_all_classes_is_one():
    y, pred = np.array([0, 0, 1, 2]), np.array([1, 0, 1, 1])
    assert confusion_matrix(y, pred, 3).tolist() == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]
    scores = np.random.default_rng(0).random((4, 3))
    assert top_k_accuracy(scores, y, 3) == 1.0
    assert top_k_accuracy(scores, y, 1) == np.mean(scores.argmax(axis=1) == y)


def test_top_k_ranks_tied_scores_with_the_higher_class_first():
    scores = np.array([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]])
    assert top_k_accuracy(scores, np.array([1, 0]), 1) == 0.5  # class 1 beats class 0 on the tie


# ----------------------------------------------------------------------------------- mlcli eval


def test_eval_per_class_of_a_network_equals_sklearn_on_its_predictions(runs):
    report = eval_json(runs["mlp"], "--per-class")
    loaded, ds = split_of(runs["mlp"])
    assert report["metrics"]["accuracy"] == pytest.approx(np.mean(loaded.model.predict(ds.x) == ds.y))
    assert_matches_sklearn(report, ds.y, loaded.model.predict(ds.x), loaded.model.probabilities(ds.x))
    assert report["confusion"]["labels"] == loaded.meta["class_names"]
    assert [r["class"] for r in report["per_class"]["classes"]] == loaded.meta["class_names"]


def test_eval_of_ten_digit_classes_reports_top5_as_sklearn_with_tied_votes(runs):
    report = eval_json(runs["knn_digits"], "--per-class", "--split", "val")
    loaded, ds = split_of(runs["knn_digits"], "val")
    scores = loaded.model.probabilities(ds.x)
    assert (scores == 0).sum() > scores.size // 2  # k = 3 votes: mostly tied zeros
    assert_matches_sklearn(report, ds.y, loaded.model.predict(ds.x), scores)
    assert 0 < report["top5"] <= 1 and report["top5"] >= report["metrics"]["accuracy"]


def test_eval_json_keeps_its_shape_without_per_class_and_regression_has_no_report(runs):
    assert set(eval_json(runs["mlp"])) == {"checkpoint", "split", "n", "metrics"}
    assert set(eval_json(runs["reg"], "--per-class")) == {"checkpoint", "split", "n", "metrics"}


def test_eval_in_the_terminal_shows_the_per_class_and_confusion_tables(runs):
    result = invoke("eval", runs["knn_digits"])
    assert result.exit_code == 0, result.stderr
    for fragment in ("per class", "macro avg", "weighted avg", "confusion matrix", "top-5 accuracy"):
        assert fragment in result.stdout
    quiet = invoke("eval", runs["knn_digits"], "--no-per-class")
    assert "confusion matrix" not in quiet.stdout and "accuracy" in quiet.stdout


def test_ensemble_per_class_comes_from_the_averaged_probabilities(runs):
    report = eval_json(runs["knn3"], runs["knn7"], "--per-class")
    (a, ds), (b, _) = split_of(runs["knn3"]), split_of(runs["knn7"])
    mean = (a.model.probabilities(ds.x) + b.model.probabilities(ds.x)) / 2
    assert_matches_sklearn(report, ds.y, mean.argmax(axis=1), mean)
    assert report["metrics"]["accuracy"] == pytest.approx(np.mean(mean.argmax(axis=1) == ds.y))


# ----------------------------------------------------------------------------------- mlcli predict --proba


def test_predict_proba_gives_each_row_its_label_and_probabilities_by_class(runs, tmp_path):
    loaded = load_model(runs["mlp"])
    x = np.random.default_rng(0).normal(5.0, 1.5, (5, 4))  # iris-like raw measurements
    raw = tmp_path / "new.npy"
    np.save(raw, x)
    result = invoke("predict", runs["mlp"], raw, "--proba")
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    names = loaded.meta["class_names"]
    expected = loaded.model.probabilities(prepare_inputs(loaded, x, "x"))
    for row, p in zip(rows, expected, strict=True):
        assert list(row["probabilities"]) == names
        assert list(row["probabilities"].values()) == pytest.approx(p.tolist(), abs=1e-6)
        assert row["prediction"] == names[int(np.argmax(p))]
        assert sum(row["probabilities"].values()) == pytest.approx(1.0)

    out = tmp_path / "p.csv"
    assert invoke("predict", runs["mlp"], raw, "--proba", "--out", out).exit_code == 0
    with out.open() as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == ["index", "prediction", *names]
    for row, json_row in zip(table, rows, strict=True):
        assert row["prediction"] == json_row["prediction"]
        assert [float(row[n]) for n in names] == list(json_row["probabilities"].values())


def test_predict_proba_of_a_regression_model_is_a_usage_error(runs, tmp_path, one_line_error):
    raw = tmp_path / "x.npy"
    np.save(raw, np.zeros((2, 5)))
    one_line_error(invoke("predict", runs["reg"], raw, "--proba"), 2, "--proba needs a classifier")
