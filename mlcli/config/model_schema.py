"""The `model` section: one kind per model type (`type`), the initialization and activation options, the
layer specs of convolutional networks, and `MODEL_FACTS`, what the schema's rules know about each model type.

`MODEL_FACTS` is keyed by the `type` names of the `ModelConfig` union, as `mlcli.models.registry.MODEL_BUILDERS`
is; the layer builders of `mlcli.models.cnn.LAYER_BUILDERS` are keyed by the `type` names of `CnnLayer`. Tests
check that each pair of key sets is equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field, field_validator

from mlcli.config.fields import Identifier, NonNegFloat, PositiveFloat, PositiveInt, Probability, Section


class InitConfig(Section):
    """Weight initialization: zeros, small N(0, scale^2), xavier (mode fan_in|fan_out|avg) or he."""

    scheme: Literal["zeros", "small", "xavier", "he"] = "he"
    mode: Literal["fan_in", "fan_out", "avg"] = "avg"
    scale: PositiveFloat = 0.01


ActivationName = Literal["relu", "leaky_relu", "prelu", "elu", "sigmoid", "tanh", "softplus"]


class EnsembleConfig(Section):
    """K members trained in one run and averaged (`vote: soft`: mean probabilities or outputs; `hard`: majority of
    the members' labels); `bagging`: each member on a seeded bootstrap sample of the training split; `snapshot`:
    one run with `cosine_restarts`, a member at the end of each cycle (the last `members` cycles, or all);
    `workers`: members trained at once, in processes (mlcli.sweeps.executors)."""

    members: PositiveInt | None = None
    vote: Literal["soft", "hard"] = "soft"
    bagging: bool = False
    snapshot: bool = False
    workers: PositiveInt = 1


GlobPattern = Annotated[str, Field(min_length=1, max_length=200)]


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
    # transfer learning and ensembles (mlcli.workflows.transfer, mlcli.workflows.ensemble_train)
    ensemble: EnsembleConfig | None = None
    init_from: str | None = None
    init_from_map: dict[str, str] = {}
    freeze: list[GlobPattern] = []
    freeze_batchnorm: bool = True


class MlpTrunk(Section):
    """The hidden layers of an MLP: a multitask model's shared trunk, and the body of an `mlp` (`MlpModel`)."""

    type: Literal["mlp"]
    hidden: Annotated[list[PositiveInt | HiddenLayer], Field(min_length=1)] = [128]
    activation: ActivationName = "relu"
    activation_options: ActivationOptions = ActivationOptions()
    batchnorm: bool = False
    dropout: Probability = 0.0
    dropout_mode: Literal["inverted", "scale_at_test"] = "inverted"
    init: InitConfig = InitConfig()


class MlpModel(MlpTrunk):
    """A multilayer perceptron: Linear -> [BatchNorm] -> activation -> [Dropout] per hidden layer."""

    # transfer learning and ensembles (mlcli.workflows.transfer, mlcli.workflows.ensemble_train)
    ensemble: EnsembleConfig | None = None
    init_from: str | None = None
    init_from_map: dict[str, str] = {}
    freeze: list[GlobPattern] = []
    freeze_batchnorm: bool = True


class AutoencoderModel(Section):
    """Encoder Linear layers of sizes `encoder`; the decoder mirrors them; MSE reconstruction."""

    type: Literal["autoencoder"]
    encoder: Annotated[list[PositiveInt], Field(min_length=1)] = [32, 8]
    activation: ActivationName = "relu"
    activation_options: ActivationOptions = ActivationOptions()
    code_activation: bool = False
    tied_weights: bool = False
    init: InitConfig = InitConfig(scheme="xavier")
    # transfer learning and ensembles (mlcli.workflows.transfer, mlcli.workflows.ensemble_train)
    ensemble: EnsembleConfig | None = None
    init_from: str | None = None
    init_from_map: dict[str, str] = {}
    freeze: list[GlobPattern] = []
    freeze_batchnorm: bool = True


class LinearRegressionModel(Section):
    """Least squares: `closed_form` solves it exactly (with optional ridge `l2`), `gd` trains it."""

    type: Literal["linear_regression"]
    solver: Literal["closed_form", "gd"] = "gd"
    l2: NonNegFloat = 0.0
    init: InitConfig = InitConfig(scheme="zeros")
    # transfer learning and ensembles (mlcli.workflows.transfer, mlcli.workflows.ensemble_train)
    ensemble: EnsembleConfig | None = None
    init_from: str | None = None
    init_from_map: dict[str, str] = {}
    freeze: list[GlobPattern] = []
    freeze_batchnorm: bool = True


class KnnModel(Section):
    """k-nearest neighbours; prediction distances are computed in blocks under `max_memory_mb`."""

    type: Literal["knn"]
    k: PositiveInt = 5
    metric: Literal["l2", "l1", "cosine"] = "l2"
    weights: Literal["uniform", "distance"] = "uniform"
    max_memory_mb: PositiveFloat = 512.0
    ensemble: EnsembleConfig | None = None


class GaussianModel(Section):
    """One Gaussian per class fitted by maximum likelihood; prediction by argmax of the log posterior."""

    type: Literal["gaussian"]
    priors: Literal["equal", "empirical"] = "equal"
    covariance: Literal["full", "diagonal", "shared"] = "full"
    reg: NonNegFloat = 1e-6
    ensemble: EnsembleConfig | None = None


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


class CnnTrunk(Section):
    """The layers of a CNN (flattened at the end when they end on feature maps): a multitask model's shared
    trunk, and the body of a `cnn` (`CnnModel`)."""

    type: Literal["cnn"]
    layers: Annotated[list[CnnLayer], Field(min_length=1)]
    dropout_mode: Literal["inverted", "scale_at_test"] = "inverted"
    init: InitConfig = InitConfig()


class CnnModel(CnnTrunk):
    """A convolutional network from a list of layers; a final Linear to the classes is appended (after a
    flatten when the stack ends on feature maps)."""

    # transfer learning and ensembles (mlcli.workflows.transfer, mlcli.workflows.ensemble_train)
    ensemble: EnsembleConfig | None = None
    init_from: str | None = None
    init_from_map: dict[str, str] = {}
    freeze: list[GlobPattern] = []
    freeze_batchnorm: bool = True


class LeNet5Model(Section):
    """LeNet-5 (LeCun et al. 1998): C1 conv 6@5x5, S2 pool, C3 conv 16@5x5, S4 pool, C5 120, F6 84, output;
    paddings adapted so that any input of at least 8x8 fits."""

    type: Literal["lenet5"]
    activation: ActivationName = "tanh"
    pool: Literal["avgpool", "maxpool"] = "avgpool"
    init: InitConfig = InitConfig(scheme="xavier")
    # transfer learning and ensembles (mlcli.workflows.transfer, mlcli.workflows.ensemble_train)
    ensemble: EnsembleConfig | None = None
    init_from: str | None = None
    init_from_map: dict[str, str] = {}
    freeze: list[GlobPattern] = []
    freeze_batchnorm: bool = True


class VggModel(Section):
    """A small VGG: per stage `convs_per_stage` 3x3 convs (padding 1) + ReLU, then a 2x2 max pool; then the
    `hidden` fully connected layers with dropout."""

    type: Literal["vgg"]
    widths: Annotated[list[PositiveInt], Field(min_length=1)] = [32, 64]
    convs_per_stage: PositiveInt = 2
    batchnorm: bool = True
    hidden: list[PositiveInt] = [128]
    dropout: Probability = 0.5
    dropout_mode: Literal["inverted", "scale_at_test"] = "inverted"
    init: InitConfig = InitConfig()
    # transfer learning and ensembles (mlcli.workflows.transfer, mlcli.workflows.ensemble_train)
    ensemble: EnsembleConfig | None = None
    init_from: str | None = None
    init_from_map: dict[str, str] = {}
    freeze: list[GlobPattern] = []
    freeze_batchnorm: bool = True


class ZfNetModel(Section):
    """ZFNet (Zeiler and Fergus 2013) for 3x224x224 inputs."""

    type: Literal["zfnet"]
    dropout: Probability = 0.5
    dropout_mode: Literal["inverted", "scale_at_test"] = "inverted"
    init: InitConfig = InitConfig()
    # transfer learning and ensembles (mlcli.workflows.transfer, mlcli.workflows.ensemble_train)
    ensemble: EnsembleConfig | None = None
    init_from: str | None = None
    init_from_map: dict[str, str] = {}
    freeze: list[GlobPattern] = []
    freeze_batchnorm: bool = True


class AlexNetModel(Section):
    """AlexNet (Krizhevsky et al. 2012, single-tower) for 3x227x227 inputs."""

    type: Literal["alexnet"]
    dropout: Probability = 0.5
    dropout_mode: Literal["inverted", "scale_at_test"] = "inverted"
    init: InitConfig = InitConfig()
    # transfer learning and ensembles (mlcli.workflows.transfer, mlcli.workflows.ensemble_train)
    ensemble: EnsembleConfig | None = None
    init_from: str | None = None
    init_from_map: dict[str, str] = {}
    freeze: list[GlobPattern] = []
    freeze_batchnorm: bool = True


HeadLoss = Literal["softmax_cross_entropy", "sigmoid_bce", "mse"]


class HeadConfig(Section):
    """One task of a multitask model: a head (`hidden` layers with the trunk's activation, then the output
    layer) on the trunk's features, trained on data target `target` (default: the head's name) with `loss`
    (default: softmax_cross_entropy for classification, mse for regression), weighted by `weight` in the total
    loss."""

    type: Literal["classification", "regression"]
    target: Identifier | None = None
    hidden: list[PositiveInt] = []
    activation: ActivationName | None = None
    loss: HeadLoss | None = None
    label_smoothing: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    weight: NonNegFloat = 1.0
    init: InitConfig | None = None

    def loss_name(self) -> str:
        if self.loss is not None:
            return self.loss
        return "softmax_cross_entropy" if self.type == "classification" else "mse"


class MultitaskModel(Section):
    """Multitask learning: one shared `trunk`, one head per task (`heads`: task name -> head); the loss is the
    weighted sum of the heads' losses, and the trunk's gradient the sum of what every head sends back."""

    type: Literal["multitask"]
    trunk: Annotated[MlpTrunk | CnnTrunk, Field(discriminator="type")]
    heads: Annotated[dict[Identifier, HeadConfig], Field(min_length=1)]
    init: InitConfig = InitConfig()
    # transfer learning (mlcli.workflows.transfer); ensembles of multitask models are not offered
    ensemble: None = None
    init_from: str | None = None
    init_from_map: dict[str, str] = {}
    freeze: list[GlobPattern] = []
    freeze_batchnorm: bool = True

    @field_validator("ensemble", mode="before")
    @classmethod
    def _no_ensemble(cls, value: object) -> None:
        if value is not None:
            raise ValueError("ensembles of multitask models are not offered (a vote per head is not defined); "
                             "remove model.ensemble, or ensemble single-task models")
        return None

    def target_of(self, head: str) -> str:
        """The data target head `head` learns."""
        return self.heads[head].target or head


ModelConfig = Annotated[
    SoftmaxModel | MlpModel | AutoencoderModel | LinearRegressionModel | KnnModel | GaussianModel | CnnModel
    | LeNet5Model | VggModel | AlexNetModel | ZfNetModel | MultitaskModel,
    Field(discriminator="type"),
]


@dataclass(frozen=True)
class ModelFacts:
    """What a model type is, for the rules across config sections.

    task: what it predicts: `classification` (needs class labels), `regression` (needs regression targets) or
    `reconstruction` (its own input; any data). losses: the losses it can be trained with, its default first;
    empty when it is only fitted. fitted: fitted in closed form (never trained by gradient descent, no train
    section, no loss); a model with `solver: closed_form` is fitted too. newton: the newton optimizer can train
    it (its Hessian is implemented). has_loss: its metrics include a loss.
    """

    task: Literal["classification", "regression", "reconstruction", "multitask"]
    losses: tuple[str, ...] = ()
    fitted: bool = False
    newton: bool = False
    has_loss: bool = True  # reports a loss (k-NN's vote has no likelihood to take one from)


_CLASSIFIER_LOSSES = ("softmax_cross_entropy", "sigmoid_bce")
_CONV_NET = ModelFacts("classification", _CLASSIFIER_LOSSES)

MODEL_FACTS: dict[str, ModelFacts] = {
    "softmax": ModelFacts("classification", _CLASSIFIER_LOSSES, newton=True),
    "mlp": ModelFacts("classification", _CLASSIFIER_LOSSES),
    "autoencoder": ModelFacts("reconstruction", ("mse",)),
    "linear_regression": ModelFacts("regression", ("mse",), newton=True),
    "knn": ModelFacts("classification", fitted=True, has_loss=False),
    "gaussian": ModelFacts("classification", fitted=True),
    "cnn": _CONV_NET,
    "lenet5": _CONV_NET,
    "vgg": _CONV_NET,
    "alexnet": _CONV_NET,
    "zfnet": _CONV_NET,
    "multitask": ModelFacts("multitask"),  # one loss per head (`model.heads.<task>.loss`)
}
