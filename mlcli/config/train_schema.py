"""The `loss`, `train` (optimizer, schedule, regularization, clipping, early stopping) and `cv` sections."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from mlcli.config.fields import NonNegFloat, PositiveFloat, PositiveInt, Probability, Section


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
    checkpoint_every: PositiveInt = 1
    checkpoint_seconds: NonNegFloat | None = 2.0  # None (as in older runs): no time limit
    diagnostics: bool = False  # per-layer activations, gradients and updates to diagnostics.jsonl


class CvConfig(Section):
    folds: Annotated[int, Field(ge=2)] = 5
