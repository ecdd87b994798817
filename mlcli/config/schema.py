"""The config schema: one pydantic model per YAML section, validated once at the boundary.

Every model forbids unknown keys and is strict about types (a string is not a number). Sections that come in
kinds (`data`, `model`, `train.optimizer`, `train.schedule`, `loss`) are unions discriminated by their `type`
key, so an error names the field of the chosen kind. Cross-section rules (a loss the model cannot use, a training
field that has no effect for a classical model, an early-stopping metric the task does not report) live in
`Config`'s validator. The registries in `mlcli.models.registry` use the same `type` names; a test checks that the
key sets agree.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_SEED = 0


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, types are strict."""

    model_config = ConfigDict(extra="forbid", strict=True)


PositiveFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, lt=1)]
Probability = Annotated[float, Field(ge=0, lt=1)]
PositiveInt = Annotated[int, Field(ge=1)]


# ----------------------------------------------------------------------------------------------------- data


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

# ---------------------------------------------------------------------------------------------------- model


class InitConfig(Section):
    """Weight initialization: zeros, small N(0, scale^2), xavier (mode fan_in|fan_out|avg) or he."""

    scheme: Literal["zeros", "small", "xavier", "he"] = "he"
    mode: Literal["fan_in", "fan_out", "avg"] = "avg"
    scale: PositiveFloat = 0.01


ActivationName = Literal["relu", "leaky_relu", "prelu", "elu", "sigmoid", "tanh", "softplus"]


class ActivationOptions(Section):
    """Options of the parameterized activations: leaky_relu's slope, elu's alpha, prelu's initial slope."""

    negative_slope: PositiveFloat = 0.01
    alpha: PositiveFloat = 1.0
    prelu_init: NonNegFloat = 0.25


class HiddenLayer(Section):
    """One hidden layer of an MLP, for when it needs its own init or dropout."""

    units: PositiveInt
    init: InitConfig | None = None
    dropout: Probability | None = None


class SoftmaxModel(Section):
    """A linear classifier: one Linear layer, softmax cross-entropy (or sigmoid BCE for two classes)."""

    type: Literal["softmax"]
    init: InitConfig = InitConfig(scheme="small")


class MlpModel(Section):
    """A multilayer perceptron: Linear -> [BatchNorm] -> activation -> [Dropout] per hidden layer."""

    type: Literal["mlp"]
    hidden: Annotated[list[PositiveInt | HiddenLayer], Field(min_length=1)] = [128]
    activation: ActivationName = "relu"
    activation_options: ActivationOptions = ActivationOptions()
    batchnorm: bool = False
    dropout: Probability = 0.0
    init: InitConfig = InitConfig()


class AutoencoderModel(Section):
    """Encoder Linear layers of sizes `encoder`; the decoder mirrors them; MSE reconstruction."""

    type: Literal["autoencoder"]
    encoder: Annotated[list[PositiveInt], Field(min_length=1)] = [32, 8]
    activation: ActivationName = "relu"
    activation_options: ActivationOptions = ActivationOptions()
    code_activation: bool = False
    init: InitConfig = InitConfig(scheme="xavier")


class LinearRegressionModel(Section):
    """Least squares: `closed_form` solves it exactly (with optional ridge `l2`), `gd` trains it."""

    type: Literal["linear_regression"]
    solver: Literal["closed_form", "gd"] = "gd"
    l2: NonNegFloat = 0.0
    init: InitConfig = InitConfig(scheme="zeros")


class KnnModel(Section):
    """k-nearest neighbours; prediction distances are computed in blocks under `max_memory_mb`."""

    type: Literal["knn"]
    k: PositiveInt = 5
    metric: Literal["l2", "l1", "cosine"] = "l2"
    weights: Literal["uniform", "distance"] = "uniform"
    max_memory_mb: PositiveFloat = 512.0


class GaussianModel(Section):
    """One Gaussian per class fitted by maximum likelihood; prediction by argmax of the log posterior."""

    type: Literal["gaussian"]
    priors: Literal["equal", "empirical"] = "equal"
    covariance: Literal["full", "diagonal", "shared"] = "full"
    reg: NonNegFloat = 1e-6


class ConvLayer(Section):
    """A 2-D convolution: `out_channels` filters of `kernel` x `kernel`, with stride and zero padding."""

    type: Literal["conv"]
    out_channels: PositiveInt
    kernel: PositiveInt = 3
    stride: PositiveInt = 1
    padding: Annotated[int, Field(ge=0)] = 0
    rounding: Literal["exact", "floor"] = "exact"
    init: InitConfig | None = None


class PoolLayer(Section):
    """Max or average pooling over `kernel` x `kernel` windows (stride defaults to the window); `ceil_mode`
    lets the last window run off the edge (PyTorch's ceil_mode), for architectures published that way."""

    type: Literal["maxpool", "avgpool"]
    kernel: PositiveInt = 2
    stride: PositiveInt | None = None
    ceil_mode: bool = False


class BatchNormLayer(Section):
    """Batch normalization: per channel after a conv, per feature after a linear layer."""

    type: Literal["batchnorm"]


class ActivationLayer(Section):
    type: ActivationName
    negative_slope: PositiveFloat = 0.01
    alpha: PositiveFloat = 1.0
    prelu_init: NonNegFloat = 0.25


class DropoutLayer(Section):
    type: Literal["dropout"]
    p: Probability = 0.5


class FlattenLayer(Section):
    type: Literal["flatten"]


class LinearLayer(Section):
    type: Literal["linear"]
    units: PositiveInt
    init: InitConfig | None = None


CnnLayer = Annotated[
    ConvLayer | PoolLayer | BatchNormLayer | ActivationLayer | DropoutLayer | FlattenLayer | LinearLayer,
    Field(discriminator="type"),
]


class CnnModel(Section):
    """A convolutional network from a list of layers; a final Linear to the classes is appended (after a
    flatten when the stack ends on feature maps)."""

    type: Literal["cnn"]
    layers: Annotated[list[CnnLayer], Field(min_length=1)]
    init: InitConfig = InitConfig()


class LeNet5Model(Section):
    """LeNet-5 (LeCun et al. 1998): C1 conv 6@5x5, S2 pool, C3 conv 16@5x5, S4 pool, C5 120, F6 84, output;
    paddings adapted so that any input of at least 8x8 fits."""

    type: Literal["lenet5"]
    activation: ActivationName = "tanh"
    pool: Literal["avgpool", "maxpool"] = "avgpool"
    init: InitConfig = InitConfig(scheme="xavier")


class VggModel(Section):
    """A small VGG: per stage `convs_per_stage` 3x3 convs (padding 1) + ReLU, then a 2x2 max pool; then the
    `hidden` fully connected layers with dropout."""

    type: Literal["vgg"]
    widths: Annotated[list[PositiveInt], Field(min_length=1)] = [32, 64]
    convs_per_stage: PositiveInt = 2
    batchnorm: bool = True
    hidden: list[PositiveInt] = [128]
    dropout: Probability = 0.5
    init: InitConfig = InitConfig()


class ZfNetModel(Section):
    """ZFNet (Zeiler and Fergus 2013) for 3x224x224 inputs."""

    type: Literal["zfnet"]
    dropout: Probability = 0.5
    init: InitConfig = InitConfig()


class AlexNetModel(Section):
    """AlexNet (Krizhevsky et al. 2012, single-tower) for 3x227x227 inputs."""

    type: Literal["alexnet"]
    dropout: Probability = 0.5
    init: InitConfig = InitConfig()


ModelConfig = Annotated[
    SoftmaxModel | MlpModel | AutoencoderModel | LinearRegressionModel | KnnModel | GaussianModel | CnnModel
    | LeNet5Model | VggModel | AlexNetModel | ZfNetModel,
    Field(discriminator="type"),
]

CNN_MODEL_TYPES = ("cnn", "lenet5", "vgg", "alexnet", "zfnet")

NETWORK_MODEL_TYPES = ("softmax", "mlp", "autoencoder", "linear_regression")
CLASSICAL_MODEL_TYPES = ("knn", "gaussian")

# ----------------------------------------------------------------------------------------------------- loss


class SoftmaxCrossEntropyLoss(Section):
    """Softmax cross-entropy; label smoothing gives the true class 1 - eps and the others eps / (C - 1)."""

    type: Literal["softmax_cross_entropy"]
    label_smoothing: Probability = 0.0


class SigmoidBceLoss(Section):
    """Sigmoid binary cross-entropy on one logit (two classes)."""

    type: Literal["sigmoid_bce"]


class MseLoss(Section):
    """Mean squared error over all elements."""

    type: Literal["mse"]


LossConfig = Annotated[
    SoftmaxCrossEntropyLoss | SigmoidBceLoss | MseLoss, Field(discriminator="type")
]

# ---------------------------------------------------------------------------------------------------- train


class SgdOptimizer(Section):
    type: Literal["sgd"]
    lr: PositiveFloat = 0.01


class MomentumOptimizer(Section):
    type: Literal["momentum", "nesterov"]
    lr: PositiveFloat = 0.01
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9


class AdagradOptimizer(Section):
    type: Literal["adagrad"]
    lr: PositiveFloat = 0.01
    eps: PositiveFloat = 1e-7


class RmspropOptimizer(Section):
    type: Literal["rmsprop"]
    lr: PositiveFloat = 0.001
    beta: Annotated[float, Field(ge=0, lt=1)] = 0.9
    eps: PositiveFloat = 1e-7
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.0


class AdamOptimizer(Section):
    type: Literal["adam"]
    lr: PositiveFloat = 0.001
    beta1: Annotated[float, Field(ge=0, lt=1)] = 0.9
    beta2: Annotated[float, Field(ge=0, lt=1)] = 0.999
    eps: PositiveFloat = 1e-7
    bias_correction: bool = True


class NewtonOptimizer(Section):
    """Damped Newton steps on the full training set, one per epoch (softmax and linear regression only)."""

    type: Literal["newton"]
    damping: NonNegFloat = 1e-4
    max_memory_mb: PositiveFloat = 256.0


OptimizerConfig = Annotated[
    SgdOptimizer | MomentumOptimizer | AdagradOptimizer | RmspropOptimizer | AdamOptimizer | NewtonOptimizer,
    Field(discriminator="type"),
]


class ScheduleCommon(Section):
    warmup_epochs: Annotated[int, Field(ge=0)] = 0


class ConstantSchedule(ScheduleCommon):
    type: Literal["constant"]


class StepSchedule(ScheduleCommon):
    type: Literal["step"]
    step_size: PositiveInt = 10
    gamma: Annotated[float, Field(gt=0, le=1)] = 0.1


class ExponentialSchedule(ScheduleCommon):
    type: Literal["exponential"]
    gamma: Annotated[float, Field(gt=0, le=1)] = 0.95


class CosineSchedule(ScheduleCommon):
    type: Literal["cosine"]
    min_lr: NonNegFloat = 0.0


class CosineRestartsSchedule(ScheduleCommon):
    type: Literal["cosine_restarts"]
    t0: PositiveInt = 10
    t_mult: PositiveInt = 1
    min_lr: NonNegFloat = 0.0


ScheduleConfig = Annotated[
    ConstantSchedule | StepSchedule | ExponentialSchedule | CosineSchedule | CosineRestartsSchedule,
    Field(discriminator="type"),
]


class Regularization(Section):
    """Penalties added to the loss: l2/2 * sum(w^2) + l1 * sum(|w|); biases exempt unless include_bias."""

    l1: NonNegFloat = 0.0
    l2: NonNegFloat = 0.0
    include_bias: bool = False


class GradClip(Section):
    """Rescale all gradients together when their global L2 norm exceeds max_norm."""

    max_norm: PositiveFloat


class EarlyStopping(Section):
    """Stop when `monitor` has not improved by `min_delta` for `patience` epochs (counted from start_epoch)."""

    monitor: str = "val_loss"
    mode: Literal["min", "max", "auto"] = "auto"
    patience: Annotated[int, Field(ge=1)] = 5
    min_delta: NonNegFloat = 0.0
    start_epoch: Annotated[int, Field(ge=0)] = 0
    restore_best: bool = True


class TrainConfig(Section):
    epochs: PositiveInt = 20
    batch_size: PositiveInt | Literal["full"] = 64
    optimizer: OptimizerConfig = SgdOptimizer(type="sgd")
    schedule: ScheduleConfig = ConstantSchedule(type="constant")
    regularization: Regularization = Regularization()
    grad_clip: GradClip | None = None
    early_stopping: EarlyStopping | None = None
    dtype: Literal["float32", "float64"] = "float32"


class CvConfig(Section):
    folds: Annotated[int, Field(ge=2)] = 5


# ---------------------------------------------------------------------------------------------------- root

CLASSIFICATION_METRICS = ("loss", "accuracy")
REGRESSION_METRICS = ("loss", "mse", "r2")
AUTOENCODER_METRICS = ("loss", "reconstruction_mse")
REGRESSION_DATA_TYPES = ("linear_regression", "diabetes")


class Config(Section):
    """A whole run: what to learn from (`data`), what to learn (`model`, `loss`) and how (`train`, `cv`)."""

    name: Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.\-]+$")] = "run"
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = DEFAULT_SEED
    data: DataConfig
    model: ModelConfig
    loss: LossConfig | None = None
    train: TrainConfig = TrainConfig()
    cv: CvConfig = CvConfig()

    @model_validator(mode="after")
    def _sections_agree(self) -> Config:
        model_type = self.model.type
        task = data_task(self.data)
        if self.is_fitted_in_closed_form():
            what = f"model.type {model_type}" if model_type != "linear_regression" else "solver closed_form"
            if "train" in self.model_fields_set and self.train.model_fields_set:
                extra = sorted(self.train.model_fields_set)
                raise ValueError(
                    f"train.{extra[0]}: has no effect for {what} (it is not trained by gradient descent); "
                    f"remove the train section"
                )
            if self.loss is not None:
                raise ValueError(f"loss: has no effect for {what}; remove it")
        if model_type in ("softmax", "mlp", "knn", "gaussian", *CNN_MODEL_TYPES) and task != "classification":
            raise ValueError(f"model.type: {model_type} is a classifier but data.type {self.data.type} is a "
                             f"regression dataset; use linear_regression or an mlp on a classification dataset")
        if model_type == "linear_regression" and task != "regression":
            raise ValueError(f"model.type: linear_regression needs regression data; data.type {self.data.type} "
                             f"is a classification dataset (for npz/csv set data.task: regression)")
        loss = self.loss_config()
        allowed = allowed_losses(model_type)
        if loss is not None and loss.type not in allowed:
            raise ValueError(f"loss.type: {loss.type} does not fit model.type {model_type}; use one of "
                             f"{', '.join(allowed)}")
        opt = self.train.optimizer
        if opt.type == "newton" and model_type not in ("softmax", "linear_regression"):
            raise ValueError(f"train.optimizer.type: newton is for small models (softmax, linear_regression), "
                             f"not model.type {model_type}")
        if opt.type == "newton" and (self.train.regularization.l1 > 0 or getattr(loss, "label_smoothing", 0)):
            raise ValueError("train.optimizer.type: newton supports the l2 penalty only (no l1, no label "
                             "smoothing): its Hessian is exact for that objective")
        if self.train.early_stopping is not None:
            available = [f"{split}_{m}" for split in ("val", "train") for m in self.metric_names()]
            if self.train.early_stopping.monitor not in available:
                raise ValueError(
                    f"train.early_stopping.monitor: '{self.train.early_stopping.monitor}' is not a metric of "
                    f"this model; available: {', '.join(available)}"
                )
        aug = self.data.augment
        if (aug.hflip or aug.crop_padding) and not self.is_image_data():
            raise ValueError(f"data.augment: hflip and crop_padding need image data; data.type {self.data.type} "
                             f"is tabular (noise_std works for any data)")
        warmup = self.train.schedule.warmup_epochs
        if warmup and warmup >= self.train.epochs:
            raise ValueError(f"train.schedule.warmup_epochs: must be < train.epochs ({self.train.epochs}), "
                             f"got {warmup}")
        return self

    def is_fitted_in_closed_form(self) -> bool:
        """knn, gaussian and closed-form least squares: no train section, no loss."""
        return self.model.type in CLASSICAL_MODEL_TYPES or (
            self.model.type == "linear_regression" and self.model.solver == "closed_form")

    def resolved(self) -> dict:
        """The config with every default filled in, as plain JSON-able data; validates back to itself."""
        data = self.model_dump(mode="json")
        if self.is_fitted_in_closed_form():
            data.pop("train")
            data.pop("loss")
        return data

    def loss_config(self):
        """The configured loss, or the model's default (None for classical models)."""
        if self.loss is not None:
            return self.loss
        if self.model.type in ("softmax", "mlp", *CNN_MODEL_TYPES):
            return SoftmaxCrossEntropyLoss(type="softmax_cross_entropy")
        if self.model.type in ("autoencoder", "linear_regression"):
            return MseLoss(type="mse")
        return None

    def task(self) -> str:
        """`classification`, `regression` or `reconstruction` (autoencoders)."""
        if self.model.type == "autoencoder":
            return "reconstruction"
        return data_task(self.data)

    def metric_names(self) -> tuple[str, ...]:
        return {"classification": CLASSIFICATION_METRICS, "regression": REGRESSION_METRICS,
                "reconstruction": AUTOENCODER_METRICS}[self.task()]

    def is_image_data(self) -> bool:
        return self.data.type in IMAGE_DATA_TYPES or (self.data.type == "digits" and self.data.as_images)


def data_task(data) -> str:
    """Whether a data section yields class labels or regression targets."""
    if data.type in REGRESSION_DATA_TYPES:
        return "regression"
    return getattr(data, "task", "classification")


def allowed_losses(model_type: str) -> tuple[str, ...]:
    if model_type in ("softmax", "mlp", *CNN_MODEL_TYPES):
        return ("softmax_cross_entropy", "sigmoid_bce")
    if model_type in ("autoencoder", "linear_regression"):
        return ("mse",)
    return ()
