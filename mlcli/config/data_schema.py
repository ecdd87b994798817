"""The `data` section: one kind per dataset (`type`), with the split, standardization and augmentation fields
every kind shares (`DataCommon`), and `DATASET_FACTS`, what is known about each dataset without reading it.

`DATASET_FACTS` is the dataset registry's table of plain facts (task, image or tabular, shape, classes, official
test split, description). It lives here, beside the `DataConfig` union whose `type` names it uses as keys, because
the schema's own rules need some of those facts and `config` sits below `data`; `mlcli.data.registry.DATASETS`
pairs each row with its loader. A test checks that the three key sets are equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from mlcli.config.fields import Fraction, Identifier, NonNegFloat, PositiveFloat, Section


class Augmentation(Section):
    """Per-batch training augmentation (off at eval). Flips and crops apply to images only."""

    hflip: bool = False
    crop_padding: Annotated[int, Field(ge=0)] = 0
    noise_std: NonNegFloat = 0.0


class DataCommon(Section):
    """Split and preprocessing options every dataset shares (fractions are of the whole dataset, except for the
    datasets with official test files: see `OfficialSplitData`)."""

    test_fraction: Fraction = 0.15
    val_fraction: Fraction = 0.15
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] | None = None  # data generation + split; default: run seed
    standardize: bool = True
    augment: Augmentation = Augmentation()

    @model_validator(mode="after")
    def _fractions_leave_training_data(self) -> DataCommon:
        if (self.test_fraction or 0.0) + self.val_fraction >= 0.9:
            raise ValueError(
                f"test_fraction + val_fraction must be < 0.9 to leave training data, "
                f"got {self.test_fraction} + {self.val_fraction}"
            )
        return self


class SpiralsData(DataCommon):
    type: Literal["spirals"]
    n_samples: Annotated[int, Field(ge=10)] = 600
    classes: Annotated[int, Field(ge=2)] = 3
    noise: NonNegFloat = 0.2


class BlobsData(DataCommon):
    type: Literal["blobs"]
    n_samples: Annotated[int, Field(ge=10)] = 600
    classes: Annotated[int, Field(ge=2)] = 3
    features: Annotated[int, Field(ge=1)] = 2
    std: PositiveFloat = 1.0


class XorData(DataCommon):
    type: Literal["xor"]
    n_samples: Annotated[int, Field(ge=10)] = 600
    noise: NonNegFloat = 0.1


class CheckerboardData(DataCommon):
    type: Literal["checkerboard"]
    n_samples: Annotated[int, Field(ge=10)] = 1000
    tiles: Annotated[int, Field(ge=2)] = 4


class LinearData(DataCommon):
    """Synthetic regression: y = X w + b + noise."""

    type: Literal["linear_regression"]
    n_samples: Annotated[int, Field(ge=10)] = 500
    features: Annotated[int, Field(ge=1)] = 5
    outputs: Annotated[int, Field(ge=1)] = 1
    noise: NonNegFloat = 0.1


class DigitsData(DataCommon):
    type: Literal["digits"]
    as_images: bool = False


class IrisData(DataCommon):
    type: Literal["iris"]


class WineData(DataCommon):
    type: Literal["wine"]


class BreastCancerData(DataCommon):
    type: Literal["breast_cancer"]


class DiabetesData(DataCommon):
    type: Literal["diabetes"]


class NpzData(DataCommon):
    """A `.npz` file with arrays `x` (N, ...) and `y` (N,) or (N, k)."""

    type: Literal["npz"]
    path: str
    task: Literal["classification", "regression"] = "classification"


class CsvData(DataCommon):
    """A `.csv` file with a header row; `label_column` names the target column, or, for a multitask model,
    `label_columns` maps each target name to its column (`{digit: label, parity: is_even}`)."""

    type: Literal["csv"]
    path: str
    label_column: str | None = None
    label_columns: Annotated[dict[Identifier, str], Field(min_length=1)] | None = None
    task: Literal["classification", "regression"] = "classification"
    delimiter: str = ","

    @model_validator(mode="after")
    def _one_kind_of_labels(self) -> CsvData:
        if (self.label_column is None) == (self.label_columns is None):
            raise ValueError("give label_column (the target column) or, for model.type multitask, label_columns "
                             "(target name -> column), not both or neither")
        if self.label_columns is not None:
            columns = list(self.label_columns.values())
            twice = sorted({c for c in columns if columns.count(c) > 1})
            if twice:
                raise ValueError(f"label_columns: column {twice[0]!r} is named for two targets")
        return self


class OfficialSplitData(DataCommon):
    """A dataset that ships its own test files (MNIST, Fashion-MNIST, CIFAR-10): they are the test split, so
    `test_fraction` would have no effect and is refused; `val_fraction` is a fraction of the training files.

    Refused rather than offered as a re-split (`split: resplit`): results on the official test files are what
    papers and other tools report, and a re-split test set would silently stop being comparable with them.
    """

    test_fraction: None = Field(default=None, exclude=True)

    @field_validator("test_fraction", mode="before")
    @classmethod
    def _no_test_fraction(cls, value: object) -> None:
        official = ", ".join(name for name, facts in DATASET_FACTS.items() if facts.official_test_split)
        raise ValueError(
            f"has no effect: the official test files are the test split of {official} (got {value!r}); "
            "remove it (val_fraction is a fraction of the official training files)"
        )


class MnistData(OfficialSplitData):
    """MNIST or Fashion-MNIST IDX files (plain or .gz) in the folder `path`; the test split is t10k-*."""

    type: Literal["mnist", "fashion_mnist"]
    path: str
    download: bool = False


class Cifar10Data(OfficialSplitData):
    """CIFAR-10 (binary or python version) in the folder `path`; the test split is test_batch."""

    type: Literal["cifar10"]
    path: str
    download: bool = False


DataConfig = Annotated[
    SpiralsData | BlobsData | XorData | CheckerboardData | LinearData | DigitsData | IrisData | WineData
    | BreastCancerData | DiabetesData | NpzData | CsvData | MnistData | Cifar10Data,
    Field(discriminator="type"),
]


@dataclass(frozen=True)
class DatasetFacts:
    """What is known about a dataset without reading it.

    kind: how it is obtained: `synthetic` (generated from the seed), `bundled` (ships in scikit-learn) or `file`
    (read from `data.path`). task: `classification`, `regression`, or `either` when `data.task` says. layout:
    `image` (N, C, H, W), `tabular` (N, D), or `either` (a file may hold both). shape, classes: the per-sample
    shape and class count when they do not depend on the section's options or on reading (None otherwise);
    image_shape: the shape with `data.as_images: true`. official_test_split: the test set is the dataset's own
    (val is carved out of train). source: one line for `mlcli data list`.
    """

    kind: Literal["synthetic", "bundled", "file"]
    task: Literal["classification", "regression", "either"]
    layout: Literal["image", "tabular", "either"]
    source: str
    shape: tuple[int, ...] | None = None
    classes: int | None = None
    image_shape: tuple[int, ...] | None = None
    official_test_split: bool = False
    targets: tuple[tuple[str, str], ...] = ()  # the named targets a multitask model can learn: (name, task)


def _synthetic(task: Literal["classification", "regression"], source: str) -> DatasetFacts:
    return DatasetFacts("synthetic", task, "tabular", source)


def _bundled(task: Literal["classification", "regression"], shape: tuple[int, ...], classes: int | None,
             source: str, image_shape: tuple[int, ...] | None = None,
             targets: tuple[tuple[str, str], ...] = ()) -> DatasetFacts:
    return DatasetFacts("bundled", task, "tabular", f"scikit-learn: {source}", shape, classes, image_shape,
                        targets=targets)


def _images(shape: tuple[int, ...], source: str) -> DatasetFacts:
    return DatasetFacts("file", "classification", "image", source, shape, 10, official_test_split=True)


DATASET_FACTS: dict[str, DatasetFacts] = {
    "spirals": _synthetic("classification", "interleaved 2-D spiral arms, one per class (classes, noise, turns)"),
    "blobs": _synthetic("classification", "isotropic Gaussian blobs around random centers (classes, features, std)"),
    "xor": _synthetic("classification", "2-D XOR of the coordinate signs; not linearly separable (noise)"),
    "checkerboard": _synthetic("classification",
                               "2-D checkerboard of alternating classes; not linearly separable (tiles)"),
    "linear_regression": _synthetic("regression", "linear targets y = xW + b + noise with random true weights "
                                                  "(features, outputs, noise)"),
    "digits": _bundled("classification", (64,), 10, "1797 8x8 grey images of handwritten digits 0-9, pixel "
                       "values 0-16", image_shape=(1, 8, 8),
                       targets=(("digit", "classification"), ("is_even", "classification"))),
    "iris": _bundled("classification", (4,), 3, "150 iris flowers, 3 species, 4 measurements in cm"),
    "wine": _bundled("classification", (13,), 3, "178 wines from 3 cultivars, 13 chemical measurements"),
    "breast_cancer": _bundled("classification", (30,), 2, "569 breast tumour biopsies, malignant or benign, 30 "
                              "cell-nucleus features"),
    "diabetes": _bundled("regression", (10,), None, "442 diabetes patients, 10 scaled baseline variables, disease "
                         "progression after one year",
                         targets=(("progression", "regression"), ("above_median", "classification"))),
    "npz": DatasetFacts("file", "either", "either", "NumPy .npz archive with arrays x and y"),
    "csv": DatasetFacts("file", "either", "tabular", "CSV table with a header row; label column chosen by name"),
    "mnist": _images((1, 28, 28), "MNIST IDX files in data.path (plain or .gz)"),
    "fashion_mnist": _images((1, 28, 28), "Fashion-MNIST IDX files in data.path"),
    "cifar10": _images((3, 32, 32), "CIFAR-10 binary or python batches in data.path"),
}
