"""From what a user hands over to what a workflow runs: a validated config, then its data, model and optimizer.

    cfg, base_dir = resolve_config("configs/mlp.yaml", overrides={"train.epochs": 5}, seed=3)
    gens, data, model = setup(cfg, base_dir)
    optimizer, schedule = make_optimizer(cfg, model), make_schedule(cfg)

A config is a path to a YAML file, a dict of sections (as the YAML would hold) or a `Config`. Overrides are a dict
of dotted keys -> values, or `key=value` strings with YAML values (the CLI's `--set`); both have `--set`'s
semantics. File paths in the data section are resolved against the current directory, then the config's folder,
and stored absolute, so that the run's own config.yaml works from anywhere.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mlcli.errors import ConfigError


def override_items(overrides: Mapping[str, Any] | list[str] | tuple[str, ...] | None) -> list[str]:
    """Overrides as `key=value` strings: a dict's values written as JSON (which YAML reads back as the same
    value), strings kept as they are."""
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        return [f"{key}={json.dumps(value)}" for key, value in overrides.items()]
    if isinstance(overrides, str):
        raise ConfigError(f"overrides must be a dict of dotted keys or a list of key=value strings, got the "
                          f"string {overrides!r}")
    return [str(item) for item in overrides]


def resolve_config(config, overrides=None, seed: int | None = None) -> tuple[Any, Path | None]:
    """(validated Config, the folder relative data paths are resolved against) for a path, dict or Config."""
    from mlcli.config.load import build_config, load_config
    from mlcli.config.schema import Config

    items = override_items(overrides)
    if isinstance(config, (str, Path)):
        path = Path(config)
        cfg, base_dir = load_config(path, items, seed=seed), path.resolve().parent
    elif isinstance(config, Config):
        cfg = build_config(config.resolved(), "config", {}, items, seed) if items or seed is not None else config
        base_dir = None
    elif isinstance(config, Mapping):
        cfg, base_dir = build_config(dict(config), "config", {}, items, seed), None
    else:
        raise ConfigError(f"config must be a path to a YAML file, a dict or a Config, got {type(config).__name__}")
    return absolutize_data_path(cfg, base_dir), base_dir


def absolutize_data_path(config, base_dir: Path | None):
    """The config with its data section's file path made absolute (resolved as `prepare` resolves it)."""
    from mlcli.data.pipeline import resolve_path

    path = getattr(config.data, "path", None)
    if path is None:
        return config
    resolved = resolve_path(path, base_dir).resolve()
    return config.model_copy(update={"data": config.data.model_copy(update={"path": str(resolved)})})


def setup(config, base_dir: Path | None = None, data=None, loaded=None):
    """Generators, prepared data (unless given, e.g. a cv fold's; `loaded`: the dataset already read, see
    `mlcli.data.pipeline.load_all`) and a freshly built model for `config`."""
    from mlcli.data.pipeline import prepare
    from mlcli.models.context import BuildContext, compute_dtype
    from mlcli.models.registry import build_model, n_outputs
    from mlcli.seeding import generators

    gens = generators(config.seed)
    if data is None:
        data = prepare(config.data, gens, dtype=compute_dtype(config), base_dir=base_dir, loaded=loaded,
                       targets=config.target_tasks())
    n_feat = int(np.prod(data.train.input_shape))
    if config.model.type == "autoencoder" and data.train.x.ndim > 2 and not config.is_image_data():
        raise ConfigError("autoencoder needs tabular or image data")
    ctx = BuildContext(input_shape=data.train.input_shape,
                       n_outputs=n_outputs(config, data.n_classes, data.n_targets, n_feat),
                       dtype=compute_dtype(config), init_rng=gens.init, dropout_rng=gens.dropout)
    if config.model.type == "multitask":
        from mlcli.models.multitask import head_widths

        try:
            ctx.targets, ctx.head_outputs = data.targets, head_widths(config.model, data.targets)
        except ConfigError as err:
            from mlcli.config.load import located

            raise ConfigError(located(config, str(err))) from None
    if config.loss_config() is not None and config.loss_config().type == "sigmoid_bce" and data.n_classes != 2:
        raise ConfigError(f"loss.type sigmoid_bce needs exactly 2 classes; the data has {data.n_classes}")
    return gens, data, build_model(config, ctx)


def make_optimizer(config, model=None):
    """The configured optimizer; with `model`, checked against its parameters (Newton's Hessian budget)."""
    from mlcli.optim.registry import make_optimizer as make

    opt_cfg = config.train.optimizer
    optimizer = make(opt_cfg.type, **opt_cfg.model_dump(exclude={"type"}))
    if model is not None:
        try:
            optimizer.check_params(model.net.params())
        except ValueError as err:
            raise ConfigError(f"train.optimizer: {err}; raise its limit or use a first-order optimizer") from None
    return optimizer


def make_schedule(config):
    """The learning rate per epoch, `schedule(epoch) -> lr`."""
    from mlcli.optim.schedules import make_schedule as make

    sched = config.train.schedule
    base_lr = getattr(config.train.optimizer, "lr", 1.0)
    try:
        return make(sched.type, base_lr=base_lr, epochs=config.train.epochs, **sched.model_dump(exclude={"type"}))
    except ValueError as err:
        raise ConfigError(f"train.schedule: {err}") from None


def augmenter(config):
    """The per-batch augmentation the data section asks for, or None."""
    aug = config.data.augment
    if not (aug.hflip or aug.crop_padding or aug.noise_std):
        return None
    from mlcli.data.augment import Augmenter

    return Augmenter(hflip=aug.hflip, crop_padding=aug.crop_padding, noise_std=aug.noise_std)
