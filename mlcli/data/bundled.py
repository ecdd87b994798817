"""The small datasets that ship inside scikit-learn, loaded offline as `Dataset`s.

scikit-learn is optional (`pip install scikit-learn`, or the `datasets` extra of a checkout), so it is imported
only when a bundled dataset is loaded; without it the user gets a `DataError` that says what to install.
`BUNDLED` holds each dataset's facts (task, per-sample shape, description: its row of
`mlcli.config.data_schema.DATASET_FACTS`) without importing scikit-learn; `SKLEARN_LOADERS` picks its loader.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from mlcli.config.data_schema import DATASET_FACTS, DatasetFacts
from mlcli.data.dataset import Dataset
from mlcli.errors import DataError

BUNDLED: dict[str, DatasetFacts] = {name: f for name, f in DATASET_FACTS.items() if f.kind == "bundled"}

# name -> its loader in `sklearn.datasets` (passed in, so that scikit-learn is imported only when one is loaded)
SKLEARN_LOADERS: dict[str, Callable[[ModuleType], Callable[[], Any]]] = {
    "digits": lambda skd: skd.load_digits,
    "iris": lambda skd: skd.load_iris,
    "wine": lambda skd: skd.load_wine,
    "breast_cancer": lambda skd: skd.load_breast_cancer,
    "diabetes": lambda skd: skd.load_diabetes,
}


def _import_sklearn_datasets(name: str) -> ModuleType:
    """`sklearn.datasets`, imported on first use; DataError naming the dataset when scikit-learn is missing."""
    try:
        import sklearn.datasets
    except ImportError:
        raise DataError(f"dataset {name!r} needs scikit-learn: pip install scikit-learn "
                        f"(in a checkout: pip install -e '.[datasets]')") from None
    return sklearn.datasets


def _digits_without_importing_sklearn():
    """The digits as `sklearn.datasets.load_digits` gives them, read from scikit-learn's own `digits.csv.gz`
    without importing scikit-learn (about a second of imports: the quickstart's `mlcli eval` spends more on that
    than on everything else). None when scikit-learn or its file is not where it should be."""
    import gzip
    import importlib.util
    from pathlib import Path
    from types import SimpleNamespace

    try:
        spec = importlib.util.find_spec("sklearn")
    except (ImportError, ValueError):  # hidden or half-installed
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
    if not path.is_file():
        return None
    with gzip.open(path, "rt", encoding="utf-8") as f:
        data = np.loadtxt(f, delimiter=",")
    return SimpleNamespace(data=data[:, :-1], target=data[:, -1].astype(int, copy=False),
                           feature_names=[f"pixel_{r}_{c}" for r in range(8) for c in range(8)],
                           target_names=np.arange(10))


def load_bundled(name: str, *, as_images: bool = False) -> Dataset:
    """Load scikit-learn's bundled dataset `name` (one of `BUNDLED`).

    Returns x: (N, D) float64 as scikit-learn gives it (digits: (1797, 64) pixel values 0..16; with
    `as_images=True`: (1797, 1, 8, 8) NCHW), y: (N,) int64 class labels with `class_names` from scikit-learn's
    `target_names` as str, or (N,) float64 targets for diabetes (regression). Source is "bundled:<name>".
    """
    if name not in BUNDLED:
        close = difflib.get_close_matches(name, list(BUNDLED), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise DataError(f"unknown bundled dataset {name!r}; expected one of {', '.join(BUNDLED)}{hint}")
    facts = BUNDLED[name]
    if as_images and facts.image_shape is None:
        with_images = ", ".join(repr(n) for n, f in BUNDLED.items() if f.image_shape is not None)
        raise DataError(f"dataset {name!r} is tabular; as_images applies only to {with_images}")
    task = facts.task
    bunch = _digits_without_importing_sklearn() if name == "digits" else None
    if bunch is None:
        bunch = SKLEARN_LOADERS[name](_import_sklearn_datasets(name))()
    x = np.asarray(bunch.data, dtype=np.float64)
    feature_names = [str(f) for f in bunch.feature_names]
    if as_images:
        x = x.reshape(-1, *facts.image_shape)  # (N, C, H, W), digits: (N, 1, 8, 8)
        feature_names = None
    if task == "classification":
        y = np.asarray(bunch.target, dtype=np.int64)
        class_names = [str(c) for c in bunch.target_names]
    else:
        y = np.asarray(bunch.target, dtype=np.float64)
        class_names = None
    return Dataset(
        x=x, y=y, task=task, class_names=class_names, source=f"bundled:{name}", feature_names=feature_names
    )
