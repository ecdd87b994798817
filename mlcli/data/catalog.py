"""`CATALOG`: every dataset mlcli can load, one entry each, for `mlcli data list`.

Derived from the dataset registry (`mlcli.data.registry.DATASETS`), so a new dataset appears here without
editing this file. A shape the facts leave open is read off a 6-sample draw at the generator's default arguments
(synthetic data) or written as the layout allows (files). Importing it does not import scikit-learn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlcli.data.registry import DATASETS, DatasetSpec
from mlcli.data.synthetic import SYNTHETIC


@dataclass(frozen=True)
class CatalogEntry:
    """One loadable dataset: `name` as written in configs, `kind` synthetic|bundled|file, its `task`
    (classification, regression, or "either" for files), per-sample `shape`, a one-line `source` description and
    `targets`: where a multitask model finds several targets ("" for datasets of one).
    """

    name: str
    kind: str
    task: str
    shape: str
    source: str
    targets: str = ""


def _targets(spec: DatasetSpec) -> str:
    """Where a multitask model finds several targets in this dataset ("" where it has one)."""
    if spec.facts.targets:
        return f"multitask targets: {', '.join(name for name, _ in spec.facts.targets)}"
    return {"csv": "multitask: label_columns", "npz": "multitask: one array per target"}.get(spec.name, "")


def _shape(spec: DatasetSpec) -> str:
    facts = spec.facts
    if facts.shape is not None:
        return str(facts.shape) + (f" or {facts.image_shape}" if facts.image_shape is not None else "")
    if facts.kind == "synthetic":
        return str(SYNTHETIC[spec.name](6, rng=np.random.default_rng(0)).input_shape)
    return {"tabular": "(D,)", "image": "(C, H, W)", "either": "(D,) or (C, H, W)"}[facts.layout]


CATALOG: list[CatalogEntry] = [
    CatalogEntry(name, spec.facts.kind, spec.facts.task, _shape(spec), spec.facts.source, _targets(spec))
    for name, spec in DATASETS.items()
]
