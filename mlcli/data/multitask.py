"""Multitask data: one feature array, several named targets, each learned by a head of a multitask model.

    ds = load_multitask(data_cfg, {"digit": "classification", "is_even": "classification"}, rng, base_dir)
    ds.y            # (N, 2) float64: column t is target ds.targets[t] (class indices as whole numbers)
    ds.targets      # (TargetSpec("digit", "classification", ("0", ..., "9")), TargetSpec("is_even", ...))

Where the targets come from:
- csv: `label_columns` maps each target name to a column (every other column is a feature);
- npz: one array per target, named as the target (`np.savez(f, x=x, digit=d, parity=p)`);
- the bundled sets with a natural second task (`DATASET_FACTS[...].targets`): digits gives `digit` (0-9) and
  `is_even` (classes odd, even); diabetes gives `progression` (the regression target) and `above_median`
  (classes at_or_below, above: whether the progression exceeds the median of the whole dataset).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlcli.config.data_schema import DATASET_FACTS
from mlcli.data.bundled import load_bundled
from mlcli.data.dataset import Dataset, multitask_dataset
from mlcli.data.formats import load_csv_columns, load_npz_targets
from mlcli.data.registry import resolve_path
from mlcli.errors import DataError


def _digits(ds: Dataset) -> dict[str, tuple[np.ndarray, list[str] | None]]:
    digit = ds.y
    return {"digit": (digit, list(ds.class_names)),
            "is_even": ((digit % 2 == 0).astype(np.int64), ["odd", "even"])}


def _diabetes(ds: Dataset) -> dict[str, tuple[np.ndarray, list[str] | None]]:
    progression = ds.y
    return {"progression": (progression, None),
            "above_median": ((progression > np.median(progression)).astype(np.int64), ["at_or_below", "above"])}


DERIVED = {"digits": _digits, "diabetes": _diabetes}


def load_multitask(data_cfg, targets: dict[str, str], rng: np.random.Generator, base_dir: Path | None,
                   split: str = "train") -> Dataset:
    """The multitask dataset of `targets` (target name -> "classification" | "regression"), unchecked."""
    kind = data_cfg.type
    if kind == "csv":
        columns = {name: (data_cfg.label_columns[name], task) for name, task in targets.items()}
        return load_csv_columns(resolve_path(data_cfg.path, base_dir), columns=columns, delimiter=data_cfg.delimiter,
                                also_labels=tuple(data_cfg.label_columns.values()))  # never features
    if kind == "npz":
        return load_npz_targets(resolve_path(data_cfg.path, base_dir), targets=targets)
    if kind in DERIVED:
        base = load_bundled(kind, as_images=getattr(data_cfg, "as_images", False))
        return multitask_dataset(base.x, DERIVED[kind](base), targets, source=base.source,
                                 feature_names=base.feature_names)
    with_targets = ", ".join(n for n, f in DATASET_FACTS.items() if f.targets)
    raise DataError(f"data.type {kind} has one target; multitask data comes from csv (label_columns), npz (one array "
                    f"per target) or {with_targets}")
