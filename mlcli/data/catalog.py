"""`CATALOG`: every dataset mlcli can load, one entry each, for `mlcli data list`.

Built from the two registries (`SYNTHETIC`, `BUNDLED`) plus the two file formats, so a new generator or bundled
dataset appears here without editing this file: a generator's task and shape are read off a 6-sample draw at its
default arguments. Importing it does not import scikit-learn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mlcli.data.bundled import BUNDLED
from mlcli.data.dataset import Dataset
from mlcli.data.synthetic import SYNTHETIC


@dataclass(frozen=True)
class CatalogEntry:
    """One loadable dataset: `name` as written in configs, `kind` synthetic|bundled|file, its `task`
    (classification, regression, or "either" for files), per-sample `shape` and a one-line `source` description.
    """

    name: str
    kind: str
    task: str
    shape: str
    source: str



def _synthetic_entry(name: str, make: Callable[..., Dataset], description: str) -> CatalogEntry:
    sample = make(6, rng=np.random.default_rng(0))
    return CatalogEntry(name, "synthetic", sample.task, str(sample.input_shape), description)


CATALOG: list[CatalogEntry] = (
    [
        _synthetic_entry(name, make, description) for name, (make, description) in SYNTHETIC.items()
    ]
    + [
        CatalogEntry(name, "bundled", task, shape, f"scikit-learn: {description}")
        for name, (task, shape, description) in BUNDLED.items()
    ]
    + [
        CatalogEntry("npz", "file", "either", "(D,) or (C, H, W)", "NumPy .npz archive with arrays x and y"),
        CatalogEntry("csv", "file", "either", "(D,)", "CSV table with a header row; label column chosen by name"),
    ]
)
