"""The sweep file: its schema and its strict loader (same YAML reader and error lines as a run's config).

    spec, base, folder = load_sweep(Path("configs/sweeps/lr.yaml"))   # SweepConfig, the base Config, its folder

```yaml
name: lr-width            # the sweep directory's prefix
base: ../quickstart.yaml  # a config file (relative to this file's folder) or an inline config mapping
metric: val_loss          # what a trial is scored by: the best value over its epochs (train_*/val_* metrics)
mode: auto                # min | max | auto (min for losses and errors, max for accuracy and r2)
seed: 0                   # trial seeds come from SeedSequence([seed, trial index])
method: grid              # grid | random | tpe (Optuna; the optional extra `optuna`)
parameters:               # dotted config fields; a list is a choice, a mapping a range (random, tpe)
  train.optimizer.lr: [0.1, 0.03]
  model.hidden: {type: choice, values: [[64], [128]]}
  train.optimizer.momentum: {type: uniform, low: 0.8, high: 0.95}   # also loguniform, int, qint (step)
zip:                      # grid: fields that vary together, lists of one length
  - {train.optimizer.type: [momentum, adam], train.optimizer.lr: [0.1, 0.001]}
trials: 20                # random and tpe: how many
pruner: {type: asha, min_epochs: 1, reduction_factor: 3}           # stop bad trials early
cv: 3                     # score each trial by the mean over 3 folds (the same folds for every trial)
seeds: 1                  # repeat each trial over this many seeds
save: best                # checkpoints kept: best (the best trial's), all, none
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from mlcli.config.fields import PositiveFloat, PositiveInt, Section
from mlcli.config.load import build_config, explain
from mlcli.config.yaml_reader import load_yaml, load_yaml_text
from mlcli.errors import ConfigError


class ChoiceRange(Section):
    type: Literal["choice"]
    values: Annotated[list[Any], Field(min_length=1)]


class UniformRange(Section):
    type: Literal["uniform"]
    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self):
        if not self.low < self.high:
            raise ValueError(f"high must be > low ({self.low}), got {self.high}")
        return self


class LogUniformRange(UniformRange):
    type: Literal["loguniform"]
    low: PositiveFloat
    high: PositiveFloat


class IntRangeSpec(Section):
    type: Literal["int"]
    low: int
    high: int

    @model_validator(mode="after")
    def _ordered(self):
        if not self.low <= self.high:
            raise ValueError(f"high must be >= low ({self.low}), got {self.high}")
        return self


class QIntRangeSpec(IntRangeSpec):
    type: Literal["qint"]
    step: PositiveInt = 1


Range = Annotated[ChoiceRange | UniformRange | LogUniformRange | IntRangeSpec | QIntRangeSpec,
                  Field(discriminator="type")]


class AshaPruner(Section):
    """Asynchronous successive halving on the epoch budget (Li et al., 2020): rungs at min_epochs * factor**k
    epochs up to the base config's train.epochs; at each rung the best 1/factor of the trials go on."""

    type: Literal["asha"]
    min_epochs: PositiveInt = 1
    reduction_factor: Annotated[int, Field(ge=2)] = 3


class SweepConfig(Section):
    name: Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.\-]+$")] = "sweep"
    base: str | dict
    metric: Annotated[str, Field(pattern=r"^(train|val)_[a-z_0-9]+$")] = "val_loss"
    mode: Literal["min", "max", "auto"] = "auto"
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 0
    method: Literal["grid", "random", "tpe"] = "grid"
    parameters: dict[str, Annotated[list[Any], Field(min_length=1)] | Range] = {}
    zip: list[dict[str, Annotated[list[Any], Field(min_length=1)]]] = []
    trials: PositiveInt | None = None
    pruner: AshaPruner | None = None
    cv: Annotated[int, Field(ge=2)] | None = None
    seeds: PositiveInt = 1
    save: Literal["best", "all", "none"] = "best"

    @model_validator(mode="after")
    def _consistent(self):
        if not self.parameters and not self.zip:
            raise ValueError("parameters: a sweep needs at least one field to vary (parameters or zip)")
        keys = list(self.parameters)
        for i, group in enumerate(self.zip):
            lengths = {len(v) for v in group.values()}
            if not group or len(lengths) != 1:
                raise ValueError(f"zip.{i}: the lists of a zip group vary together and need one length; got "
                                 f"lengths {sorted(len(v) for v in group.values())}")
            keys += list(group)
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            raise ValueError(f"parameters: {repeated[0]} is varied twice (in parameters and a zip group, or in two "
                             f"groups)")
        if self.method == "grid":
            if self.trials is not None:
                raise ValueError("trials: has no effect for method grid (every combination runs); remove it or "
                                 "use method random")
            ranged = [k for k, v in self.parameters.items() if not isinstance(v, (list, ChoiceRange))]
            if ranged:
                raise ValueError(f"parameters.{ranged[0]}: grid search takes a list of values; a range needs "
                                 f"method random or tpe")
        elif self.trials is None:
            raise ValueError(f"trials: method {self.method} needs the number of trials")
        if self.pruner is not None and (self.cv is not None or self.seeds > 1):
            raise ValueError("pruner: asha stops single runs early; it cannot be combined with cv or seeds > 1")
        return self


def load_sweep(path: Path) -> tuple[SweepConfig, Any, Path]:
    """(the validated sweep, its base Config, the sweep file's folder) for the file at `path`."""
    data, locations = load_yaml(Path(path))
    return build_sweep(data, str(path), locations, Path(path).resolve().parent)


def load_sweep_text(text: str, source: str, folder: Path) -> tuple[SweepConfig, Any, Path]:
    data, locations = load_yaml_text(text, source)
    return build_sweep(data, source, locations, folder)


def build_sweep(data: Any, source: str, locations: dict, folder: Path) -> tuple[SweepConfig, Any, Path]:
    """Validate a sweep read from `source`; the base config is read (a path: relative to `folder`) and validated."""
    from mlcli.config.load import load_config

    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping (base, metric, method, parameters, ...)")
    try:
        spec = SweepConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(explain(err, source, locations, data, root=SweepConfig)) from None
    if isinstance(spec.base, str):
        base_path = Path(spec.base).expanduser()
        if not base_path.is_absolute():
            base_path = folder / base_path
        if not base_path.is_file():
            where = locations.get(("base",))
            at = f"{source}:{where[0]}:{where[1]}" if where else source
            raise ConfigError(f"{at}: base: no config file {base_path}")
        base = load_config(base_path)
    else:
        inner = {k[1:]: v for k, v in locations.items() if k[:1] == ("base",)}  # the base's own paths
        try:
            base = build_config(spec.base, source, inner)
        except ConfigError as err:  # name the field from the sweep file's top: base.model.type
            where, _, rest = str(err).partition(": ")
            raise ConfigError(f"{where}: base.{rest}" if where.startswith(source) else str(err)) from None
    return spec, base, folder


def base_folder(spec: SweepConfig, folder: Path) -> Path:
    """The folder the base config's relative data paths are resolved against."""
    if isinstance(spec.base, str):
        base_path = Path(spec.base).expanduser()
        return (base_path if base_path.is_absolute() else folder / base_path).resolve().parent
    return folder
