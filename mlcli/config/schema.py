"""The config schema: one pydantic model per YAML section, validated once at the boundary.

Every model forbids unknown keys and is strict about types (a string is not a number). Sections that come in
kinds (`data`, `model`, `train.optimizer`, `train.schedule`, `loss`) are unions discriminated by their `type`
key, so an error names the field of the chosen kind. Cross-section rules (a loss the model cannot use, a training
field that has no effect for a classical model, an early-stopping metric the task does not report) live in
`Config`'s validator; the sections themselves live in `data_schema`, `model_schema` and `train_schema`. The
registries in `mlcli.models.registry` use the same `type` names; a test checks that the key sets agree.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from mlcli.config.data_schema import IMAGE_DATA_TYPES, DataConfig
from mlcli.config.fields import Section
from mlcli.config.model_schema import CLASSICAL_MODEL_TYPES, CNN_MODEL_TYPES, ModelConfig
from mlcli.config.train_schema import CvConfig, LossConfig, MseLoss, SoftmaxCrossEntropyLoss, TrainConfig

DEFAULT_SEED = 0

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
