"""`DATASETS`: the one dataset registry, config `data.type` -> `DatasetSpec` (its facts and its loader).

    spec = DATASETS["iris"]
    spec.facts.task, spec.facts.shape        # "classification", (4,): known without reading
    ds = spec.load(data_cfg, rng, base_dir, "train")

The facts live in `mlcli.config.data_schema.DATASET_FACTS` (the schema's rules need them, and config sits below
data); the loaders are here. Everything else that lists datasets (the catalog of `mlcli data list`, the
official-split datasets of the pipeline and of cross-validation, the shapes `mlcli summary` knows) is derived from
this table. Adding a dataset: its section class in the `DataConfig` union and its row in `DATASET_FACTS`
(config/data_schema.py), then its loader: a generator and its row in `synthetic.SYNTHETIC`, a scikit-learn set's
row in `bundled.SKLEARN_LOADERS`, or a row in `LOADERS` below. A test checks that the key sets are equal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from mlcli.config.data_schema import DATASET_FACTS, DataCommon, DatasetFacts
from mlcli.data.bundled import BUNDLED, load_bundled
from mlcli.data.dataset import Dataset
from mlcli.data.formats import load_csv, load_npz
from mlcli.data.synthetic import SYNTHETIC

if TYPE_CHECKING:
    from mlcli.data.images import ImageData

# (data section, generator for synthetic data, folder relative paths are resolved against, split) -> Dataset
Loader = Callable[[object, np.random.Generator, "Path | None", str], Dataset]


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: its `name` as written in configs, its `facts` and `load`, which returns the whole dataset
    (for datasets with an official test split, the `split` asked for) unchecked, as float64 / int64 arrays."""

    name: str
    facts: DatasetFacts
    load: Loader


def resolve_path(path: str, base_dir: Path | None) -> Path:
    """A data path as written in a config: absolute, or relative to the current directory, else to the config."""
    p = Path(path).expanduser()
    if p.is_absolute() or base_dir is None or p.exists():
        return p
    candidate = base_dir / p
    return candidate if candidate.exists() else p


def _synthetic(make: Callable[..., Dataset]) -> Loader:
    def load(data_cfg, rng, base_dir, split):
        # the generator's own options: everything but the fields every data section shares
        options = data_cfg.model_dump(exclude={"type", "n_samples", *DataCommon.model_fields})
        return make(data_cfg.n_samples, rng=rng, **options)

    return load


def _bundled(data_cfg, rng, base_dir, split) -> Dataset:
    return load_bundled(data_cfg.type, as_images=getattr(data_cfg, "as_images", False))


def _npz(data_cfg, rng, base_dir, split) -> Dataset:
    return load_npz(resolve_path(data_cfg.path, base_dir), task=data_cfg.task)


def _csv(data_cfg, rng, base_dir, split) -> Dataset:
    return load_csv(resolve_path(data_cfg.path, base_dir), label_column=data_cfg.label_column,
                    task=data_cfg.task, delimiter=data_cfg.delimiter)


def _images(reader: Callable[[ModuleType], Callable[..., ImageData]]) -> Loader:
    """One official split of MNIST / Fashion-MNIST / CIFAR-10 as float64 images in [0, 1] (downloaded first when
    `data.download`); `reader` picks the reading function from `mlcli.data.images`, imported on first use."""

    def load(data_cfg, rng, base_dir, split):
        from mlcli.data import images

        folder = resolve_path(data_cfg.path, base_dir)
        if data_cfg.download:
            from mlcli.data.download import download_dataset

            download_dataset(data_cfg.type, folder)
        part = reader(images)(folder, "test" if split == "test" else "train")
        x = part.x.astype(np.float64)
        x /= 255.0  # in place: one float64 copy of the images, not two
        return Dataset(x=x, y=part.y.astype(np.int64), task="classification",
                       class_names=list(part.class_names), source=str(folder))

    return load


LOADERS: dict[str, Loader] = {
    **{name: _synthetic(make) for name, make in SYNTHETIC.items()},
    **{name: _bundled for name in BUNDLED},
    "npz": _npz,
    "csv": _csv,
    "mnist": _images(lambda images: images.load_mnist),
    "fashion_mnist": _images(lambda images: images.load_fashion_mnist),
    "cifar10": _images(lambda images: images.load_cifar10),
}

DATASETS: dict[str, DatasetSpec] = {
    name: DatasetSpec(name, facts, LOADERS[name]) for name, facts in DATASET_FACTS.items()
}


def names(**facts) -> tuple[str, ...]:
    """The datasets whose facts have the given values: `names(kind="bundled")`, `names(official_test_split=True)`."""
    return tuple(name for name, spec in DATASETS.items()
                 if all(getattr(spec.facts, key) == value for key, value in facts.items()))
