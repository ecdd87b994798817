"""Tests of the data layer: generators, bundled datasets, file formats, validation, splits and standardization."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlcli.data.bundled import BUNDLED, load_bundled
from mlcli.data.catalog import CATALOG
from mlcli.data.dataset import Dataset
from mlcli.data.formats import load_csv, load_npz
from mlcli.data.preprocess import Standardizer
from mlcli.data.splits import holdout_split, kfold_indices
from mlcli.data.synthetic import (
    SYNTHETIC,
    make_blobs,
    make_checkerboard,
    make_linear_regression,
    make_spirals,
    make_xor,
)
from mlcli.data.validate import check_dataset
from mlcli.errors import DataError


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def linear_classifier_accuracy(ds: Dataset) -> float:
    """Training accuracy of a least-squares linear classifier (one-hot targets, bias column)."""
    xb = np.hstack([ds.x, np.ones((ds.n, 1))])
    w, *_ = np.linalg.lstsq(xb, np.eye(ds.n_classes)[ds.y], rcond=None)
    return float(np.mean(np.argmax(xb @ w, axis=1) == ds.y))


# ------------------------------------------------------------------------------------------------- dataset


def test_dataset_properties_and_subset_keep_rows():
    ds = Dataset(
        x=np.arange(12.0).reshape(6, 1, 2),
        y=np.array([0, 1, 2, 0, 1, 2]),
        task="classification",
        class_names=["a", "b", "c"],
        source="t",
        rows=np.arange(2, 8),
    )
    assert (ds.n, ds.input_shape, ds.n_classes) == (6, (1, 2), 3)
    sub = ds.subset(np.array([4, 1]))
    assert sub.n == 2 and sub.y.tolist() == [1, 1] and sub.rows.tolist() == [6, 3]
    assert sub.x[0].tolist() == [[8.0, 9.0]] and sub.class_names == ["a", "b", "c"]
    reg = Dataset(x=np.zeros((3, 2)), y=np.zeros(3), task="regression")
    assert reg.n_classes is None
    with pytest.raises(ValueError, match="task must be one of"):
        Dataset(x=np.zeros((3, 2)), y=np.zeros(3), task="clustering")


# ----------------------------------------------------------------------------------------------- synthetic


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_generators_are_deterministic_for_a_seed(name):
    make = SYNTHETIC[name]
    a, b, c = make(60, rng=rng(7)), make(60, rng=rng(7)), make(60, rng=rng(8))
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.x, c.x)
    assert a.source == f"synthetic:{name}" and a.x.dtype == np.float64
    check_dataset(a)


def test_classification_generators_shapes_and_balanced_classes():
    sp = make_spirals(101, rng=rng(), classes=4, turns=1.5)
    assert sp.x.shape == (101, 2) and sp.y.dtype == np.int64
    assert np.bincount(sp.y).tolist() == [26, 25, 25, 25] and sp.class_names == ["0", "1", "2", "3"]
    assert np.abs(sp.x).max() <= 1.0 + 1e-12  # radius t in [0, 1]
    bl = make_blobs(90, rng=rng(), classes=3, features=5, std=0.5)
    assert bl.x.shape == (90, 5) and np.bincount(bl.y).tolist() == [30, 30, 30]
    for ds in (make_xor(50, rng=rng()), make_checkerboard(50, rng=rng(), tiles=3)):
        assert ds.x.shape == (50, 2) and set(ds.y.tolist()) == {0, 1} and ds.n_classes == 2


def test_xor_and_checkerboard_defeat_a_linear_classifier_but_blobs_do_not():
    assert linear_classifier_accuracy(make_xor(400, rng=rng(1))) < 0.7
    assert linear_classifier_accuracy(make_checkerboard(400, rng=rng(1))) < 0.7
    assert linear_classifier_accuracy(make_blobs(300, rng=rng(1), std=0.3)) > 0.95


def test_checkerboard_labels_alternate_between_neighbouring_tiles():
    ds = make_checkerboard(2000, rng=rng(2), tiles=4)
    tile = np.floor((ds.x + 1) * 2).astype(int)  # tile width 0.5 on [-1, 1]
    assert np.array_equal(ds.y, tile.sum(axis=1) % 2)


def test_linear_regression_shapes_and_noise_level():
    one = make_linear_regression(500, rng=rng(3), features=4, noise=0.1)
    assert one.x.shape == (500, 4) and one.y.shape == (500,) and one.task == "regression"
    xb = np.hstack([one.x, np.ones((500, 1))])
    w, *_ = np.linalg.lstsq(xb, one.y, rcond=None)
    assert np.mean((xb @ w - one.y) ** 2) == pytest.approx(0.01, rel=0.25)
    many = make_linear_regression(20, rng=rng(3), outputs=3)
    assert many.y.shape == (20, 3) and many.x.shape == (20, 5)


# ------------------------------------------------------------------------------------------------- catalog


def test_catalog_covers_every_synthetic_and_bundled_dataset():
    by_name = {e.name: e for e in CATALOG}
    assert set(SYNTHETIC) | set(BUNDLED) <= set(by_name)
    assert {e.kind for e in CATALOG} == {"synthetic", "bundled", "file"}
    assert by_name["linear_regression"].task == "regression" and by_name["linear_regression"].shape == "(5,)"
    assert by_name["spirals"].shape == "(2,)" and by_name["diabetes"].task == "regression"
    assert by_name["iris"].shape == "(4,)" and by_name["digits"].kind == "bundled"
    assert by_name["digits"].targets == "multitask targets: digit, is_even" and by_name["iris"].targets == ""


# ------------------------------------------------------------------------------------------------- bundled


def test_bundled_digits_as_table_and_images():
    flat = load_bundled("digits")
    assert flat.x.shape == (1797, 64) and flat.x.dtype == np.float64 and flat.x.max() == 16
    assert flat.class_names == [str(d) for d in range(10)] and flat.source == "bundled:digits"
    img = load_bundled("digits", as_images=True)
    assert img.x.shape == (1797, 1, 8, 8) and img.input_shape == (1, 8, 8)
    np.testing.assert_array_equal(img.x.reshape(1797, 64), flat.x)
    check_dataset(img)


def test_bundled_iris_wine_cancer_and_diabetes():
    iris = load_bundled("iris")
    assert iris.x.shape == (150, 4) and iris.class_names == ["setosa", "versicolor", "virginica"]
    assert np.bincount(iris.y).tolist() == [50, 50, 50] and iris.feature_names[0] == "sepal length (cm)"
    assert load_bundled("wine").x.shape == (178, 13)
    assert load_bundled("breast_cancer").class_names == ["malignant", "benign"]
    dia = load_bundled("diabetes")
    assert dia.task == "regression" and dia.x.shape == (442, 10) and dia.y.shape == (442,)
    assert dia.y.dtype == np.float64 and dia.class_names is None and dia.n_classes is None
    check_dataset(dia)


def test_bundled_errors_name_the_dataset_and_the_fix(monkeypatch):
    with pytest.raises(DataError, match=r"unknown bundled dataset 'iriss'; .*did you mean 'iris'\?"):
        load_bundled("iriss")
    with pytest.raises(DataError, match="dataset 'wine' is tabular; as_images applies only to 'digits'"):
        load_bundled("wine", as_images=True)
    monkeypatch.setitem(sys.modules, "sklearn", None)  # scikit-learn not installed: its import and spec fail
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(DataError) as err:
        load_bundled("digits")
    assert str(err.value) == ("dataset 'digits' needs scikit-learn: pip install scikit-learn "
                              "(in a checkout: pip install -e '.[datasets]')")


# --------------------------------------------------------------------------------------------------- csv


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_round_trip_with_string_labels(tmp_path):
    x = np.round(rng().normal(size=(5, 2)), 6)
    species = ["b", "a", "c", "a", "b"]
    lines = ["sepal,species,petal"] + [f"{x[i, 0]},{species[i]},{x[i, 1]}" for i in range(5)]
    path = write(tmp_path / "d.csv", "\n".join(lines) + "\n")
    ds = load_csv(path, label_column="species", task="classification")
    np.testing.assert_array_equal(ds.x, x)
    assert ds.class_names == ["a", "b", "c"] and ds.y.tolist() == [1, 0, 2, 0, 1] and ds.y.dtype == np.int64
    assert ds.feature_names == ["sepal", "petal"] and ds.rows.tolist() == [2, 3, 4, 5, 6]
    assert ds.source == str(path) and ds.x.dtype == np.float64


def test_csv_integer_labels_sort_numerically_and_regression_targets(tmp_path):
    path = write(tmp_path / "d.csv", "f;y\n1;10\n2;2\n\n3;1\n4;2\n")
    ds = load_csv(path, label_column="y", task="classification", delimiter=";")
    assert ds.class_names == ["1", "2", "10"] and ds.y.tolist() == [2, 1, 0, 1]
    assert ds.rows.tolist() == [2, 3, 5, 6]  # the blank line 4 is skipped but counted
    reg = load_csv(path, label_column="y", task="regression", delimiter=";")
    assert reg.y.tolist() == [10.0, 2.0, 1.0, 2.0] and reg.y.dtype == np.float64


def test_csv_numeric_column_names_are_a_header_when_they_name_the_label(tmp_path):
    path = write(tmp_path / "d.csv", "0,1,2\n1.5,2.5,0\n3.5,4.5,1\n")
    ds = load_csv(path, label_column="2", task="classification")
    assert ds.feature_names == ["0", "1"] and ds.x.tolist() == [[1.5, 2.5], [3.5, 4.5]] and ds.y.tolist() == [0, 1]


def test_csv_nan_cell_is_reported_by_check_dataset_with_file_row_and_column(tmp_path):
    path = write(tmp_path / "data.csv", "sepal,petal_len,label\n1,2,a\n3, ,b\n4,nan,a\n5,6,b\n")
    ds = load_csv(path, label_column="label", task="classification")
    assert np.isnan(ds.x[1, 1]) and np.isnan(ds.x[2, 1])
    with pytest.raises(DataError) as err:
        check_dataset(ds)
    assert str(err.value) == f"{path}: row 3, column 'petal_len' is NaN; clean or drop it"


def test_csv_missing_label_column_lists_columns_with_did_you_mean(tmp_path):
    path = write(tmp_path / "d.csv", "sepal,petal,species\n1,2,a\n")
    with pytest.raises(DataError) as err:
        load_csv(path, label_column="specis", task="classification")
    assert str(err.value) == (
        f"{path}: no label column 'specis'; columns found: sepal, petal, species; did you mean 'species'?"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,b,y\n1,2,x\n3,oops,x\n", "row 3, column 'b': expected a number, found 'oops'"),
        ("a,b,y\n1,2,x\n3,4\n", "row 3 has 2 cells; expected 3 as in the header"),
        ("1,2,3\n4,5,6\n", "row 1 looks like data (1, 2, 3); a header row naming the columns is required"),
        ("", "file is empty; expected a header row naming the columns"),
        ("a,y,a\n1,x,2\n", "column 'a' appears more than once in the header"),
        ("y\nx\n", "only the label column 'y'; expected at least one feature column"),
        ("a,y\n1,x\n2,\n", "row 3, column 'y': class label is empty"),
    ],
)
def test_csv_format_errors_name_row_and_column(tmp_path, text, message):
    path = write(tmp_path / "d.csv", text)
    with pytest.raises(DataError) as err:
        load_csv(path, label_column="y", task="classification")
    assert str(err.value) == f"{path}: {message}"


def test_missing_files_are_data_errors(tmp_path):
    for load in (
        lambda p: load_csv(p, label_column="y", task="classification"),
        lambda p: load_npz(p, task="classification"),
    ):
        with pytest.raises(DataError) as err:
            load(tmp_path / "nope.csv")
        assert str(err.value) == f"{tmp_path / 'nope.csv'}: no such file"


# --------------------------------------------------------------------------------------------------- npz


def test_npz_round_trip_with_string_and_integer_labels(tmp_path):
    x = rng().normal(size=(6, 1, 2, 2)).astype(np.float32)
    np.savez(tmp_path / "s.npz", x=x, y=np.array(["dog", "cat", "dog", "cat", "eel", "eel"]))
    ds = load_npz(tmp_path / "s.npz", task="classification")
    np.testing.assert_array_equal(ds.x, x.astype(np.float64))
    assert ds.x.dtype == np.float64 and ds.input_shape == (1, 2, 2)
    assert ds.class_names == ["cat", "dog", "eel"] and ds.y.tolist() == [1, 0, 1, 0, 2, 2]
    np.savez(tmp_path / "i.npz", x=x.reshape(6, 4), y=np.array([0, 2, 0, 2, 1, 1]), class_names=["a", "b", "c"])
    named = load_npz(tmp_path / "i.npz", task="classification")
    assert named.class_names == ["a", "b", "c"] and named.y.tolist() == [0, 2, 0, 2, 1, 1]
    reg = load_npz(tmp_path / "i.npz", task="regression")
    assert reg.y.dtype == np.float64 and reg.class_names is None


def test_npz_errors_name_the_file_and_the_keys_found(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, x=np.array([[1.0], [2.0]]), y=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(DataError) as err:
        load_npz(path, task="classification")
    assert str(err.value) == (
        f"{path}: array 'y' is an object array, which cannot be loaded safely; save plain numeric or string "
        f"arrays (keys found: x, y)"
    )
    np.savez(tmp_path / "k.npz", X=np.zeros((2, 2)), labels=np.zeros(2))
    with pytest.raises(DataError, match=r"missing array\(s\) x, y; expected x and y; keys found: X, labels"):
        load_npz(tmp_path / "k.npz", task="classification")
    write(tmp_path / "t.npz", "not an archive")
    with pytest.raises(DataError, match="not a NumPy .npz archive"):
        load_npz(tmp_path / "t.npz", task="classification")
    np.savez(tmp_path / "f.npz", x=np.zeros((2, 2)), y=np.array([0.0, 0.5]))
    with pytest.raises(DataError, match="sample 1 has label 0.5; classification labels must be integers"):
        load_npz(tmp_path / "f.npz", task="classification")


# ---------------------------------------------------------------------------------------------- validate


def small(x=None, y=None, task="classification", **kw) -> Dataset:
    x = np.arange(8.0).reshape(4, 2) if x is None else x
    y = np.array([0, 1, 0, 1]) if y is None else y
    return Dataset(x=x, y=y, task=task, source="data.npz", **kw)


def test_check_dataset_returns_a_valid_dataset_unchanged():
    ds = small(class_names=["a", "b"])
    assert check_dataset(ds) is ds


@pytest.mark.parametrize(
    ("ds", "message"),
    [
        (small(x=np.zeros((0, 2)), y=np.zeros(0, np.int64)), "dataset is empty; expected at least one sample"),
        (small(y=np.array([0, 1, 0])), "4 feature rows but 3 labels; expected one label per row"),
        (
            small(x=np.array([[0, 1], [2, np.inf], [np.nan, 5], [6, 7]])),
            "sample 1, feature 1 is +inf; clean or drop it",
        ),
        (
            small(x=np.where(np.arange(16).reshape(4, 1, 2, 2) == 7, np.nan, 0.0)),
            "sample 1, feature (0, 1, 1) is NaN; clean or drop it",
        ),
        (
            small(y=np.array([0, 2, 0, 2]), class_names=["a", "b", "c"]),
            "class 'b' (label 1) has no samples; every class in class_names must appear (1 of 3 are empty)",
        ),
        (
            small(y=np.array([1, 1, 1, 1]), class_names=["a", "b"]),
            "classification needs at least 2 classes; found 1 ('b'); use more data or task: regression",
        ),
        (small(y=np.array([0, 1, 5, 1]), class_names=["a", "b"]), "sample 2 has label 5; expected a class index"),
        (
            small(y=np.array([0.5, 1.0, np.nan, 2.0]), task="regression"),
            "sample 2, target is NaN; clean or drop it",
        ),
        (
            small(y=np.array([[0.5, 1.0], [1, 2], [3, 4], [5, -np.inf]]), task="regression"),
            "sample 3, target 1 is -inf; clean or drop it",
        ),
    ],
)
def test_check_dataset_reports_the_first_problem_naming_the_source(ds, message):
    with pytest.raises(DataError) as err:
        check_dataset(ds)
    assert str(err.value).startswith(f"data.npz: {message}")


# ------------------------------------------------------------------------------------------------- splits


def test_holdout_split_is_stratified_and_a_sorted_partition():
    y = np.repeat([0, 1, 2, 3], [100, 40, 7, 3])
    train, val, test = holdout_split(y, rng=rng())
    for idx in (train, val, test):
        assert np.all(np.diff(idx) > 0)
    assert np.array_equal(np.sort(np.concatenate([train, val, test])), np.arange(150))
    assert np.bincount(y[test], minlength=4).tolist() == [15, 6, 1, 1]
    assert np.bincount(y[val], minlength=4).tolist() == [15, 6, 1, 1]
    assert np.bincount(y[train], minlength=4).tolist() == [70, 28, 5, 1]
    again = holdout_split(y, rng=rng())
    other = holdout_split(y, rng=rng(1))
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), again, strict=False))
    assert not np.array_equal(test, other[2])


def test_holdout_split_zero_fraction_gives_empty_split_and_unstratified_targets():
    y = np.repeat([0, 1], [10, 10])
    train, val, test = holdout_split(y, test_fraction=0.2, val_fraction=0.0, rng=rng())
    assert val.size == 0 and np.bincount(y[test]).tolist() == [2, 2] and train.size == 16
    targets = rng().normal(size=(40, 2))
    train, val, test = holdout_split(targets, test_fraction=0.25, val_fraction=0.1, rng=rng(), stratify=False)
    assert (train.size, val.size, test.size) == (26, 4, 10)
    with pytest.raises(ValueError, match="test_fraction \\+ val_fraction must be < 1"):
        holdout_split(y, test_fraction=0.5, val_fraction=0.5, rng=rng())
    with pytest.raises(ValueError, match="stratify needs 1-D class labels"):
        holdout_split(targets, rng=rng())


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=5, max_value=20), min_size=1, max_size=4),
    k=st.integers(min_value=2, max_value=5),
    seed=st.integers(min_value=0, max_value=2**16),
    stratify=st.booleans(),
)
def test_kfold_folds_partition_the_samples(sizes, k, seed, stratify):
    y = rng(seed).permutation(np.repeat(np.arange(len(sizes)), sizes))
    folds = kfold_indices(y, k=k, rng=rng(seed), stratify=stratify)
    assert len(folds) == k
    vals = np.concatenate([v for _, v in folds])
    assert np.array_equal(np.sort(vals), np.arange(y.size))  # every sample in exactly one val fold
    for train, val in folds:
        assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(y.size))
        assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)
        assert abs(val.size - y.size / k) < 1
        if stratify:
            per_class = np.bincount(y[val], minlength=len(sizes))
            assert np.all(np.abs(per_class - np.array(sizes) / k) < 1)


def test_kfold_errors():
    y = np.repeat([0, 1], [10, 3])
    with pytest.raises(DataError) as err:
        kfold_indices(y, k=4, rng=rng())
    assert str(err.value) == "class 1 has 3 samples, fewer than k=4 folds; lower k or drop the class"
    assert len(kfold_indices(y, k=4, rng=rng(), stratify=False)) == 4
    with pytest.raises(ValueError, match="k must be >= 2"):
        kfold_indices(y, k=1, rng=rng())
    with pytest.raises(DataError, match="13 samples cannot fill k=20 folds"):
        kfold_indices(y, k=20, rng=rng(), stratify=False)


# --------------------------------------------------------------------------------------------- preprocess


def test_standardizer_uses_training_statistics_only():
    x = rng().normal(loc=[3.0, -2.0, 0.0], scale=[2.0, 0.5, 1.0], size=(200, 3))
    x[:, 2] = 7.0  # constant feature
    train, test = x[:150], x[150:] * 2
    sc = Standardizer().fit(train)
    z = sc.transform(train, dtype=np.float64)
    np.testing.assert_allclose(z[:, :2].mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(z[:, :2].std(axis=0), 1, atol=1e-12)
    assert np.all(z[:, 2] == 0)
    zt = sc.transform(test)
    assert zt.dtype == np.float32
    expected = (test - train.mean(axis=0)) / np.where(train.std(axis=0) > 1e-9, train.std(axis=0), 1.0)
    np.testing.assert_allclose(zt, expected, rtol=1e-5)
    assert abs(zt[:, 0].mean()) > 1  # the test split is not re-centred on its own statistics


def test_standardizer_per_channel_and_state_round_trip():
    x = rng().normal(size=(6, 3, 4, 4)) * np.array([1.0, 5.0, 0.0]).reshape(1, 3, 1, 1) + 2.0
    sc = Standardizer(per_channel=True).fit(x)
    assert sc.mean_.shape == (3,) and sc.std_[2] == 1.0
    z = sc.transform(x, dtype=np.float64)
    np.testing.assert_allclose(z.mean(axis=(0, 2, 3)), [0, 0, 0], atol=1e-12)
    np.testing.assert_allclose(z.std(axis=(0, 2, 3)), [1, 1, 0], atol=1e-12)
    restored = Standardizer(per_channel=True).from_state(sc.state())
    np.testing.assert_array_equal(restored.transform(x), sc.transform(x))
    with pytest.raises(DataError, match=r"expected samples with channels of shape \(3,\) as in training"):
        sc.transform(np.zeros((2, 1, 4, 4)))
    with pytest.raises(ValueError, match="finite and std > 0"):
        Standardizer().from_state({"mean": np.zeros(2), "std": np.zeros(2)})


def test_digits_read_without_importing_sklearn_equal_load_digits():
    import subprocess
    import sys

    from sklearn.datasets import load_digits

    from mlcli.data.bundled import _digits_without_importing_sklearn, load_bundled

    bunch, ref = _digits_without_importing_sklearn(), load_digits()
    np.testing.assert_array_equal(bunch.data, ref.data)
    np.testing.assert_array_equal(bunch.target, ref.target)
    assert bunch.feature_names == ref.feature_names and list(bunch.target_names) == list(ref.target_names)
    ds = load_bundled("digits")
    np.testing.assert_array_equal(ds.x, ref.data) and np.testing.assert_array_equal(ds.y, ref.target)
    code = ("import sys; from mlcli.data.bundled import load_bundled; load_bundled('digits'); "
            "print('sklearn' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
