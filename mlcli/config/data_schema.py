"""The `data` section: one kind per dataset (`type`), with the split, standardization and augmentation fields
every kind shares (`DataCommon`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from mlcli.config.fields import Fraction, NonNegFloat, PositiveFloat, Section


class Augmentation(Section):
    """Per-batch training augmentation (off at eval). Flips and crops apply to images only."""

    hflip: bool = False
    crop_padding: Annotated[int, Field(ge=0)] = 0
    noise_std: NonNegFloat = 0.0


class DataCommon(Section):
    """Split and preprocessing options every dataset shares (fractions are of the whole dataset)."""

    test_fraction: Fraction = 0.15
    val_fraction: Fraction = 0.15
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] | None = None  # data generation + split; default: run seed
    standardize: bool = True
    augment: Augmentation = Augmentation()

    @model_validator(mode="after")
    def _fractions_leave_training_data(self) -> DataCommon:
        if self.test_fraction + self.val_fraction >= 0.9:
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
    """A `.csv` file with a header row; `label_column` names the target column."""

    type: Literal["csv"]
    path: str
    label_column: str
    task: Literal["classification", "regression"] = "classification"
    delimiter: str = ","


class MnistData(DataCommon):
    """MNIST or Fashion-MNIST IDX files (plain or .gz) in the folder `path`."""

    type: Literal["mnist", "fashion_mnist"]
    path: str
    download: bool = False


class Cifar10Data(DataCommon):
    """CIFAR-10 (binary or python version) in the folder `path`."""

    type: Literal["cifar10"]
    path: str
    download: bool = False


DataConfig = Annotated[
    SpiralsData | BlobsData | XorData | CheckerboardData | LinearData | DigitsData | IrisData | WineData
    | BreastCancerData | DiabetesData | NpzData | CsvData | MnistData | Cifar10Data,
    Field(discriminator="type"),
]

IMAGE_DATA_TYPES = ("mnist", "fashion_mnist", "cifar10")
