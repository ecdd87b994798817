"""The config schema: one pydantic model per YAML section, validated once at the boundary.

Every model forbids unknown keys and is strict about types (a string is not a number). Sections that come in
kinds (`data`, `model`, `train.optimizer`, `train.schedule`, `loss`) are unions discriminated by their `type`
key, so an error names the field of the chosen kind. Cross-section rules (a loss the model cannot use, a training
field that has no effect for a classical model, an early-stopping metric the task does not report) live in
`Config`'s validator, which reads what it knows about datasets and model types from the fact tables beside the
unions (`DATASET_FACTS`, `MODEL_FACTS`); the sections themselves live in `data_schema`, `model_schema` and
`train_schema`. The registries in `mlcli.data.registry` and `mlcli.models.registry` use the same `type` names; a
test checks that the key sets agree.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, PrivateAttr, TypeAdapter, model_validator

from mlcli.config.data_schema import DATASET_FACTS, DataConfig
from mlcli.config.fields import Section
from mlcli.config.model_schema import MODEL_FACTS, ModelConfig
from mlcli.config.train_schema import CvConfig, LossConfig, TrainConfig

DEFAULT_SEED = 0

CLASSIFICATION_METRICS = ("loss", "accuracy")
REGRESSION_METRICS = ("loss", "mse", "r2")
AUTOENCODER_METRICS = ("loss", "reconstruction_mse")

_LOSS = TypeAdapter(LossConfig)


class Config(Section):
    """A whole run: what to learn from (`data`), what to learn (`model`, `loss`) and how (`train`, `cv`)."""

    name: Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.\-]+$")] = "run"
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = DEFAULT_SEED
    data: DataConfig
    model: ModelConfig
    loss: LossConfig | None = None
    train: TrainConfig = TrainConfig()
    cv: CvConfig = CvConfig()
    # where it was read from, set by `mlcli.config.load` for errors found after validation (`load.located`)
    _source: str | None = PrivateAttr(default=None)
    _locations: dict[tuple, tuple[int, int]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _sections_agree(self) -> Config:
        model_type = self.model.type
        facts = MODEL_FACTS[model_type]
        task = data_task(self.data)
        if self.is_fitted_in_closed_form():
            what = f"model.type {model_type}" if facts.fitted else "solver closed_form"
            if "train" in self.model_fields_set and self.train.model_fields_set:
                extra = sorted(self.train.model_fields_set)
                raise ValueError(
                    f"train.{extra[0]}: has no effect for {what} (it is not trained by gradient descent); "
                    f"remove the train section"
                )
            if self.loss is not None:
                raise ValueError(f"loss: has no effect for {what}; remove it")
        if facts.task == "classification" and task != "classification":
            raise ValueError(f"model.type: {model_type} is a classifier but data.type {self.data.type} is a "
                             f"regression dataset; use {_names(task='regression')} or an mlp on a "
                             f"classification dataset")
        if facts.task == "regression" and task != "regression":
            raise ValueError(f"model.type: {model_type} needs regression data; data.type {self.data.type} "
                             f"is a classification dataset (for npz/csv set data.task: regression)")
        if model_type == "multitask" or getattr(self.data, "label_columns", None) is not None:
            self._multitask_agrees()
        loss = self.loss_config()
        allowed = allowed_losses(model_type)
        if loss is not None and loss.type not in allowed:
            raise ValueError(f"loss.type: {loss.type} does not fit model.type {model_type}; use one of "
                             f"{', '.join(allowed)}")
        opt = self.train.optimizer
        if opt.type == "newton" and not facts.newton:
            raise ValueError(f"train.optimizer.type: newton is for small models ({_names(newton=True)}), "
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
        self._ensemble_and_transfer_agree()
        return self

    def _multitask_agrees(self) -> None:
        """Heads against the data's targets: each head's target exists and has the head's task, each loss
        fits its head; csv's `label_columns` go with a multitask model and `label_column` with the others."""
        data, model = self.data, self.model
        if model.type != "multitask":
            raise ValueError(f"data.label_columns: names the targets of a multitask model; model.type "
                             f"{model.type} learns one target: use data.label_column")
        if self.loss is not None:
            raise ValueError("loss: a multitask model has one loss per head; set model.heads.<task>.loss")
        if data.type == "csv":
            if data.label_columns is None:
                raise ValueError("data.label_column: a multitask model reads its targets from data.label_columns "
                                 "(target name -> column)")
            known = {name: None for name in data.label_columns}
        elif data.type == "npz":
            known = None  # one array per target, checked when the file is read
        elif DATASET_FACTS[data.type].targets:
            known = dict(DATASET_FACTS[data.type].targets)
        else:
            with_targets = ", ".join(n for n, f in DATASET_FACTS.items() if f.targets)
            raise ValueError(f"data.type: {data.type} has one target; a multitask model needs data with several: "
                             f"csv (label_columns), npz (one array per target) or {with_targets}")
        seen: dict[str, str] = {}
        for name, head in model.heads.items():
            where = f"model.heads.{name}"
            target = model.target_of(name)
            if known is not None and target not in known:
                what = "data.label_columns names" if data.type == "csv" else f"data.type {data.type} has targets"
                raise ValueError(f"{where}.target: {target!r} is not a target of the data; {what} "
                                 f"{', '.join(known)}")
            if known is not None and known[target] is not None and known[target] != head.type:
                raise ValueError(f"{where}.type: target {target!r} of {data.type} is a {known[target]} target, "
                                 f"not {head.type}")
            if seen.get(target, head.type) != head.type:
                raise ValueError(f"{where}.type: target {target!r} is learned as {seen[target]} by another head")
            seen[target] = head.type
            loss = head.loss_name()
            fits = ("mse",) if head.type == "regression" else ("softmax_cross_entropy", "sigmoid_bce")
            if loss not in fits:
                raise ValueError(f"{where}.loss: {loss} does not fit a {head.type} head; use {' or '.join(fits)}")
            if head.label_smoothing and loss != "softmax_cross_entropy":
                raise ValueError(f"{where}.label_smoothing: applies to softmax_cross_entropy only, not {loss}")

    def target_tasks(self) -> dict[str, str] | None:
        """Target name -> task ("classification" | "regression") of a multitask model's heads, in head order
        (each target once); None for a single-task model."""
        if self.model.type != "multitask":
            return None
        out: dict[str, str] = {}
        for name, head in self.model.heads.items():
            out.setdefault(self.model.target_of(name), head.type)
        return out

    def _ensemble_and_transfer_agree(self) -> None:
        """`model.ensemble` (members, bagging, snapshot, vote) and `model.freeze` against the other sections."""
        ens = getattr(self.model, "ensemble", None)
        if getattr(self.model, "freeze", None) and self.train.optimizer.type == "newton":
            raise ValueError("model.freeze: newton steps every parameter of its single layer at once; use a "
                             "first-order optimizer to freeze parameters")
        if ens is None:
            return
        fitted = self.is_fitted_in_closed_form()
        if ens.vote == "hard" and self.task() != "classification":
            raise ValueError(f"model.ensemble.vote: hard votes on class labels; a {self.task()} model averages its "
                             f"outputs (vote: soft)")
        if ens.snapshot:
            sched = self.train.schedule
            if fitted:
                raise ValueError(f"model.ensemble.snapshot: takes the weights along one gradient-descent run; "
                                 f"model.type {self.model.type} is fitted in closed form (use bagging: true)")
            if ens.bagging:
                raise ValueError("model.ensemble.snapshot: its members come from one run on one training set; "
                                 "it cannot be combined with bagging")
            if sched.type != "cosine_restarts":
                raise ValueError(f"model.ensemble.snapshot: needs train.schedule.type cosine_restarts (each dip of "
                                 f"the learning rate is a member); got {sched.type}")
            ends = restart_cycle_ends(self.train.epochs, sched.warmup_epochs, sched.t0, sched.t_mult)
            if not ends or (ens.members is not None and ens.members > len(ends)):
                raise ValueError(f"model.ensemble.members: train.epochs {self.train.epochs} completes "
                                 f"{len(ends)} cycle(s) of cosine_restarts (t0 {sched.t0}, t_mult {sched.t_mult}); "
                                 f"asked for {ens.members or 'at least 1'} snapshot(s)")
            return
        if ens.members is None or ens.members < 2:
            raise ValueError(f"model.ensemble.members: an ensemble needs at least 2 members; got {ens.members}")

    def is_fitted_in_closed_form(self) -> bool:
        """knn, gaussian and closed-form least squares: no train section, no loss."""
        return MODEL_FACTS[self.model.type].fitted or getattr(self.model, "solver", None) == "closed_form"

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
        losses = allowed_losses(self.model.type)
        return _LOSS.validate_python({"type": losses[0]}) if losses else None

    def task(self) -> str:
        """`classification`, `regression`, `reconstruction` (autoencoders) or `multitask`."""
        if MODEL_FACTS[self.model.type].task in ("reconstruction", "multitask"):
            return MODEL_FACTS[self.model.type].task
        return data_task(self.data)

    def metric_names(self) -> tuple[str, ...]:
        """The metrics this model reports (without the train_/val_ prefix); a multitask model's are the total
        `loss` and each head's own, prefixed by its name (`digit_loss`, `digit_accuracy`, ...)."""
        if self.model.type == "multitask":
            per_task = {"classification": CLASSIFICATION_METRICS, "regression": REGRESSION_METRICS}
            return ("loss", *(f"{name}_{m}" for name, head in self.model.heads.items() for m in per_task[head.type]))
        names = {"classification": CLASSIFICATION_METRICS, "regression": REGRESSION_METRICS,
                 "reconstruction": AUTOENCODER_METRICS}[self.task()]
        return names if MODEL_FACTS[self.model.type].has_loss else tuple(n for n in names if n != "loss")

    def is_image_data(self) -> bool:
        """Images (N, C, H, W) by the dataset's nature, or digits read with `as_images: true`."""
        return DATASET_FACTS[self.data.type].layout == "image" or getattr(self.data, "as_images", False)


def restart_cycle_ends(epochs: int, warmup: int, t0: int, t_mult: int) -> list[int]:
    """The epochs (1-based, counted from the run's start) at whose end a cosine_restarts cycle ends: after the
    warmup, cycles of t0, t0*t_mult, t0*t_mult**2 ... epochs; those that end within `epochs`."""
    ends, end, period = [], warmup + t0, t0
    while end <= epochs:
        ends.append(end)
        period *= t_mult
        end += period
    return ends


def data_task(data) -> str:
    """Whether a data section yields class labels or regression targets (files: as `data.task` says)."""
    task = DATASET_FACTS[data.type].task
    return data.task if task == "either" else task


def allowed_losses(model_type: str) -> tuple[str, ...]:
    """The losses `model_type` can be trained with, its default first (none for fitted models)."""
    return MODEL_FACTS[model_type].losses


def _names(**facts) -> str:
    """The model types whose facts have the given values, for error messages: `softmax, linear_regression`."""
    return ", ".join(name for name, f in MODEL_FACTS.items()
                     if all(getattr(f, key) == value for key, value in facts.items()))
