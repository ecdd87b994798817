"""From a validated data config to ready arrays: load, check, split, standardize with train statistics.

    data = prepare(cfg.data, gens, dtype=np.float32, base_dir=config_dir)
    data.train.x, data.val.x, data.test.x    # standardized, in the compute dtype
    data.standardizer                        # fitted on train only; saved into checkpoints

Images come as (N, C, H, W) scaled to [0, 1] and are standardized per channel; tabular data per feature.
Datasets with an official test split (MNIST, CIFAR-10: `OFFICIAL_SPLIT_TYPES`, from the registry) keep it (their
config refuses `test_fraction`); val is then carved out of the training files. Which loader reads a data section
is `mlcli.data.registry.DATASETS`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlcli.data.dataset import Dataset
from mlcli.data.preprocess import Standardizer
from mlcli.data.registry import DATASETS, names
from mlcli.data.registry import resolve_path as resolve_path  # re-exported: the CLI resolves data paths with it
from mlcli.data.splits import holdout_split
from mlcli.data.validate import check_dataset

OFFICIAL_SPLIT_TYPES = names(official_test_split=True)


@dataclass
class PreparedData:
    """Three splits in the compute dtype, the standardizer fitted on train (None when off), and the task."""

    train: Dataset
    val: Dataset
    test: Dataset
    standardizer: Standardizer | None

    @property
    def task(self) -> str:
        return self.train.task

    @property
    def class_names(self) -> list[str] | None:
        return self.train.class_names

    @property
    def n_classes(self) -> int:
        return self.train.n_classes or 0

    @property
    def n_targets(self) -> int:
        return 1 if self.train.y.ndim == 1 else int(self.train.y.shape[1])

    @property
    def targets(self):
        """The `TargetSpec`s of multitask data (None otherwise)."""
        return self.train.targets


def load_dataset(data_cfg, rng: np.random.Generator, base_dir: Path | None = None, split: str = "train",
                 targets: dict[str, str] | None = None) -> Dataset:
    """The whole dataset a data section names (for MNIST/CIFAR-10, one official `split`), checked. `targets`
    (target name -> task, `Config.target_tasks()`) asks for the multitask dataset of those targets."""
    if targets:
        from mlcli.data.multitask import load_multitask

        return check_dataset(load_multitask(data_cfg, targets, rng, base_dir, split))
    return check_dataset(DATASETS[data_cfg.type].load(data_cfg, rng, base_dir, split))


def split_indices(ds: Dataset, data_cfg, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded holdout indices (stratified for classes) into train, val, test."""
    labels, stratify = ds.split_labels()
    return holdout_split(labels, test_fraction=data_cfg.test_fraction, val_fraction=data_cfg.val_fraction,
                         rng=rng, stratify=stratify)


def standardize(train: Dataset, others: list[Dataset], data_cfg, dtype,
                scaler: Standardizer | None = None) -> tuple[list[Dataset], Standardizer | None]:
    """Fit on train only (unless a fitted `scaler` is given, e.g. from a checkpoint), apply to all, cast."""
    per_channel = train.x.ndim == 4
    if scaler is None and data_cfg.standardize:
        scaler = Standardizer(per_channel=per_channel).fit(train.x)
    out = []
    for ds in [train, *others]:
        x = scaler.transform(ds.x, dtype=dtype) if scaler is not None else ds.x.astype(dtype)
        out.append(_with_x(ds, x))
    return out, scaler


def _with_x(ds: Dataset, x: np.ndarray) -> Dataset:
    y = ds.y if ds.task == "classification" else ds.y.astype(x.dtype)
    return Dataset(x=x, y=y, task=ds.task, class_names=ds.class_names, source=ds.source,
                   feature_names=ds.feature_names, targets=ds.targets)


def data_generators(data_cfg, gens):
    """The generators for data generation and splitting: from `data.seed` when set (runs with different seeds
    then share the same data and splits, as an ensemble or a seed study needs), else the run's own."""
    if data_cfg.seed is None:
        return gens
    from mlcli.seeding import generators

    return generators(data_cfg.seed)


def load_all(data_cfg, gens, base_dir: Path | None = None,
             targets: dict[str, str] | None = None) -> tuple[Dataset, Dataset | None]:
    """The dataset a config names, as loaded (before splitting), and its official test split (or None);
    `targets` as for `load_dataset`."""
    gens = data_generators(data_cfg, gens)
    ds = load_dataset(data_cfg, gens.data, base_dir, targets=targets)
    official = data_cfg.type in OFFICIAL_SPLIT_TYPES
    test = load_dataset(data_cfg, gens.data, base_dir, split="test", targets=targets) if official else None
    return ds, test


def _target_tasks(ds: Dataset) -> dict[str, str] | None:
    return {spec.name: spec.task for spec in ds.targets} if ds.targets else None


def prepare(data_cfg, gens, *, dtype=np.float32, base_dir: Path | None = None, scaler: Standardizer | None = None,
            loaded: tuple[Dataset, Dataset | None] | None = None,
            targets: dict[str, str] | None = None) -> PreparedData:
    """Load, split and standardize the data a config names (with `scaler` when given instead of fitting).
    `loaded`: what `load_all` returned for this data section, to split without reading it again (a sweep's
    trials share one copy); `targets`: the multitask targets (`Config.target_tasks()`)."""
    if loaded is not None and _target_tasks(loaded[0]) != (targets or None):
        loaded = None  # read for other targets (a sweep trial that changed a head's target): read again
    ds, test = loaded if loaded is not None else load_all(data_cfg, gens, base_dir, targets)
    gens = data_generators(data_cfg, gens)
    if data_cfg.type in OFFICIAL_SPLIT_TYPES:
        labels, stratify = ds.split_labels()
        tr, va, _ = holdout_split(labels, test_fraction=0.0, val_fraction=data_cfg.val_fraction, rng=gens.split,
                                  stratify=stratify)
        train, val = ds.subset(tr), ds.subset(va)
    else:
        tr, va, te = split_indices(ds, data_cfg, gens.split)
        train, val, test = ds.subset(tr), ds.subset(va), ds.subset(te)
    (train, val, test), scaler = standardize(train, [val, test], data_cfg, dtype, scaler)
    return PreparedData(train=train, val=val, test=test, standardizer=scaler)
