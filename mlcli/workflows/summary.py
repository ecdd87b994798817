"""Summarize the network a config describes, for `mlcli summary`, without loading data when it can be avoided.

    rows, totals = summarize_config(cfg)                              # shapes from the dataset
    rows, totals = summarize_config(cfg, input_shape=(3, 227, 227), n_classes=1000)
    summary("configs/cnn_digits.yaml")   # mlcli.summary: a path, dict or Config -> {"layers": [...], "totals": {...}}
    explain("configs/quickstart.yaml")   # mlcli.explain -> {"model": "mlp", "equations": [{"part": "update",
                                         #   "equation": "v <- 0.9 v - lr_e * g;  w <- w + v ..."}, ...]}
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlcli.config.load import located
from mlcli.data.registry import DATASETS
from mlcli.errors import ConfigError
from mlcli.models.context import BuildContext
from mlcli.models.registry import build_model, n_outputs
from mlcli.models.summary import summarize


def data_shape(cfg, base_dir: Path | None) -> tuple[tuple[int, ...], int, int]:
    """(sample shape, classes, regression targets) of the config's data: from the dataset registry's facts when
    they are known without reading it, else from the dataset itself (synthetic data is generated, files read)."""
    d = cfg.data
    facts = DATASETS[d.type].facts
    shape = facts.image_shape if getattr(d, "as_images", False) else facts.shape
    if shape is not None and (facts.classes is not None or facts.task == "regression"):
        return shape, facts.classes or 0, 1
    from mlcli.data.pipeline import load_dataset
    from mlcli.seeding import generators

    if facts.kind == "synthetic":  # a small draw has the same shape and classes (every class gets a sample)
        d = d.model_copy(update={"n_samples": min(d.n_samples, max(1000, getattr(d, "classes", 0)))})
    ds = load_dataset(d, generators(cfg.seed).data, base_dir)
    return ds.input_shape, ds.n_classes or 0, 1 if ds.y.ndim == 1 else int(ds.y.shape[1])


def summarize_config(cfg, *, input_shape=None, n_classes=None, base_dir: Path | None = None):
    if cfg.is_fitted_in_closed_form():
        raise ConfigError(located(cfg, f"model.type {cfg.model.type} is not a network; summary describes networks"))
    shape, classes, targets = data_shape(cfg, base_dir) if input_shape is None else (input_shape, 0, 1)
    if n_classes is not None:
        classes = n_classes
    elif input_shape is not None:
        classes = data_shape(cfg, base_dir)[1] if cfg.task() == "classification" else 0
    n_feat = int(np.prod(shape))
    ctx = BuildContext(input_shape=tuple(shape), n_outputs=n_outputs(cfg, classes, targets, n_feat),
                       dtype=np.float32, init_rng=np.random.default_rng(0), dropout_rng=np.random.default_rng(0))
    if cfg.model.type == "multitask":  # the heads' widths come from the targets: read them
        from mlcli.data.pipeline import load_dataset
        from mlcli.models.multitask import head_widths
        from mlcli.seeding import generators

        ds = load_dataset(cfg.data, generators(cfg.seed).data, base_dir, targets=cfg.target_tasks())
        ctx.targets = ds.targets
        try:
            ctx.head_outputs = head_widths(cfg.model, ds.targets)
        except ConfigError as err:
            raise ConfigError(located(cfg, str(err))) from None
    model = build_model(cfg, ctx)
    rows, totals = summarize(model.net, tuple(shape))
    totals["input_shape"] = tuple(shape)
    if getattr(cfg.model, "freeze", None):  # model.freeze: what training will leave alone
        from mlcli.workflows.transfer import freeze

        frozen = freeze(cfg, model)
        params = model.net.params()
        totals["frozen_params"] = sum(int(params[n].size) for n in frozen)
        totals["trainable_params"] = totals["params"] - totals["frozen_params"]
        totals["frozen"] = frozen
    return rows, totals


def summary(config, *, overrides=None, input_shape=None, classes: int | None = None) -> dict:
    """Per layer: output shape, parameters, connections and receptive field of the network `config` describes
    (a path, dict or Config); `input_shape` / `classes` instead of the data's. JSON-able."""
    from mlcli.workflows.build import resolve_config

    cfg, base_dir = resolve_config(config, overrides)
    rows, totals = summarize_config(cfg, input_shape=tuple(input_shape) if input_shape is not None else None,
                                    n_classes=classes, base_dir=base_dir)
    return {"model": cfg.model.type, "layers": [dict(r.__dict__) for r in rows], "totals": totals}


def explain(config, *, overrides=None) -> dict:
    """The update equations the trainer will apply for `config` (a path, dict or Config), with its numbers
    substituted (`mlcli.insight.explain`); JSON-able. Reads the data only to count the classes when label
    smoothing needs them and the dataset registry does not know them."""
    from mlcli.insight.explain import explain_config
    from mlcli.workflows.build import resolve_config

    cfg, base_dir = resolve_config(config, overrides)
    n_classes = None
    loss = None if cfg.is_fitted_in_closed_form() else cfg.loss_config()
    if getattr(loss, "label_smoothing", 0):
        n_classes = data_shape(cfg, base_dir)[1] or None
    return {"model": cfg.model.type,
            "equations": [{"part": part, "equation": text} for part, text in explain_config(cfg, n_classes)]}
