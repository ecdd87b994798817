"""The small datasets that ship inside scikit-learn, loaded offline as `Dataset`s.

scikit-learn is an optional extra (`pip install 'mlcli[datasets]'`), so it is imported only when a bundled
dataset is loaded; without it the user gets a `DataError` that says what to install. `BUNDLED` describes each
dataset (task, per-sample shape, description) without importing scikit-learn, for the catalog.
"""

from __future__ import annotations

import difflib
from types import ModuleType

import numpy as np

from mlcli.data.dataset import Dataset
from mlcli.errors import DataError

# name -> (task, per-sample shape, description)
BUNDLED: dict[str, tuple[str, str, str]] = {
    "digits": (
        "classification",
        "(64,) or (1, 8, 8)",
        "1797 8x8 grey images of handwritten digits 0-9, pixel values 0-16",
    ),
    "iris": ("classification", "(4,)", "150 iris flowers, 3 species, 4 measurements in cm"),
    "wine": ("classification", "(13,)", "178 wines from 3 cultivars, 13 chemical measurements"),
    "breast_cancer": (
        "classification",
        "(30,)",
        "569 breast tumour biopsies, malignant or benign, 30 cell-nucleus features",
    ),
    "diabetes": (
        "regression",
        "(10,)",
        "442 diabetes patients, 10 scaled baseline variables, disease progression after one year",
    ),
}


def _import_sklearn_datasets(name: str) -> ModuleType:
    """`sklearn.datasets`, imported on first use; DataError naming the dataset when scikit-learn is missing."""
    try:
        import sklearn.datasets
    except ImportError:
        raise DataError(f"dataset {name!r} needs scikit-learn: pip install 'mlcli[datasets]'") from None
    return sklearn.datasets


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
    if as_images and name != "digits":
        raise DataError(f"dataset {name!r} is tabular; as_images applies only to 'digits'")
    task = BUNDLED[name][0]
    skd = _import_sklearn_datasets(name)
    loaders = {
        "digits": skd.load_digits,
        "iris": skd.load_iris,
        "wine": skd.load_wine,
        "breast_cancer": skd.load_breast_cancer,
        "diabetes": skd.load_diabetes,
    }
    bunch = loaders[name]()
    x = np.asarray(bunch.data, dtype=np.float64)
    feature_names = [str(f) for f in bunch.feature_names]
    if as_images:
        x = x.reshape(-1, 1, 8, 8)  # (N, C=1, H=8, W=8)
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
