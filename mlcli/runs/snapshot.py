"""Model checkpoints: what a trained model is saved as, and how it is rebuilt from the file alone.

    save_model(path, config, model, data, epoch=3, metrics={...}, optimizer=opt)
    loaded = load_model(path)         # LoadedModel(config, model, standardizer, meta)

Arrays are stored as `model.<dotted name>` (network parameters and buffers, or a classical model's learned
state), `prep.mean` / `prep.std` (standardization fitted on train) and `optim.<param>.<slot>` (optimizer state, for
resume). `meta.json` holds the resolved config, which is enough to rebuild the model without the YAML; the reader
derives every expected array's dtype and shape from it before reading any array (see `mlcli.runs.checkpoint`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlcli.errors import CheckpointError, ConfigError
from mlcli.runs.checkpoint import load_checkpoint, save_checkpoint


@dataclass
class LoadedModel:
    config: Any
    model: Any
    standardizer: Any
    meta: dict
    optimizer_state: dict | None = None


def prepare_inputs(loaded: LoadedModel, x: np.ndarray, source: str) -> np.ndarray:
    """New samples x (N, ...) checked against the trained sample shape, standardized as in training and cast
    to the compute dtype; DataError naming `source` when the shape differs."""
    from mlcli.errors import DataError

    expected = tuple(loaded.meta["input_shape"])
    if tuple(x.shape[1:]) != expected:
        raise DataError(f"{source}: samples have shape {tuple(x.shape[1:])}; the model expects {expected}")
    from mlcli.models.context import compute_dtype

    dtype = compute_dtype(loaded.config)
    return loaded.standardizer.transform(x, dtype=dtype) if loaded.standardizer else x.astype(dtype)


def model_meta(config, data, model) -> dict:
    """The part of meta.json that describes the model and its data (enough to rebuild both)."""
    train = data.train
    return {
        "model_type": config.model.type,
        "config": config.resolved(),
        "task": model.task,
        "input_shape": list(train.input_shape),
        "n_outputs": _n_outputs(model),
        "n_classes": data.n_classes if train.task == "classification" else None,
        "class_names": train.class_names,
        "preprocess": {"standardize": data.standardizer is not None,
                       "per_channel": bool(data.standardizer is not None and data.standardizer.per_channel)},
        **multitask_meta(model),
    }


def multitask_meta(model) -> dict:
    """A multitask model's targets (name, task, class names) and heads' widths: what rebuilding it needs."""
    if getattr(model, "task", None) != "multitask":
        return {}
    return {"targets": [{"name": t.name, "task": t.task, "class_names": None if t.class_names is None
                         else list(t.class_names)} for t in model.targets],
            "head_outputs": {name: s.stop - s.start for name, s in model.slices.items()}}


def _multitask_context(meta: dict, config, ctx) -> None:
    """Fill `ctx.targets` / `ctx.head_outputs` from meta.json, checked against the config's heads."""
    from mlcli.data.dataset import TargetSpec

    raw, widths = meta.get("targets"), meta.get("head_outputs")
    if not isinstance(raw, list) or not isinstance(widths, dict):
        raise CheckpointError("a multitask checkpoint needs targets (a list) and head_outputs (an object)")
    specs = []
    for t in raw:
        names = t.get("class_names") if isinstance(t, dict) else None
        if not isinstance(t, dict) or not isinstance(t.get("name"), str) or \
                t.get("task") not in ("classification", "regression") or \
                not (names is None or (isinstance(names, list) and all(isinstance(n, str) for n in names))):
            raise CheckpointError(f"targets: expected {{name, task, class_names}} entries, found {t!r:.80}")
        specs.append(TargetSpec(t["name"], t["task"], None if names is None else tuple(names)))
    wanted = config.target_tasks()
    if [(s.name, s.task) for s in specs] != list(wanted.items()):
        raise CheckpointError(f"targets {[s.name for s in specs]} do not match the heads' targets {list(wanted)}")
    if set(widths) != set(config.model.heads) or \
            not all(isinstance(w, int) and not isinstance(w, bool) and 1 <= w <= 1 << 20 for w in widths.values()):
        raise CheckpointError(f"head_outputs must give a width in [1, 2^20] for each head "
                              f"({', '.join(config.model.heads)})")
    ctx.targets, ctx.head_outputs = tuple(specs), {name: widths[name] for name in config.model.heads}


def _n_outputs(model) -> int:
    if hasattr(model, "members"):  # an EnsembleModel: its members' (one task, one set of classes)
        return _n_outputs(model.members[0])
    if model.is_network:  # the last layer's output width (a Linear's rows, a tied layer's source columns)
        last = model.net.layers[-1]
        return int(last.out_features if hasattr(last, "out_features") else last.output_shape(())[0])
    return int(model.n_classes or 0)


def save_model(path: Path, config, model, data, *, epoch: int, metrics: dict, optimizer=None,
               extra: dict | None = None) -> None:
    """Write a checkpoint atomically."""
    meta = model_meta(config, data, model)
    meta.update({"epoch": int(epoch), "metrics": _finite(metrics)})
    arrays = {f"model.{name}": arr for name, arr in model.state().items()}
    if data.standardizer is not None:
        arrays.update({f"prep.{k}": v for k, v in data.standardizer.state().items()})
    if optimizer is not None:
        state = optimizer.state_dict()
        meta["optimizer"] = {"type": state["type"], "t": int(state["t"]), "lr": float(state["lr"]),
                             "slots": {p: sorted(s) for p, s in state["slots"].items()}}
        for param, slots in state["slots"].items():
            for slot, arr in slots.items():
                arrays[f"optim.{param}.{slot}"] = arr
    if hasattr(model, "members"):
        meta.update(_ensemble_meta(model))
    if extra:
        meta.update(extra)
    save_checkpoint(path, meta, arrays)


def save_ensemble(path: Path, config, model, like: LoadedModel) -> None:
    """Write an ensemble of already trained members, described (data, classes, standardization) as the member
    checkpoint `like` is; its standardization statistics are the ensemble's."""
    meta = {k: like.meta[k] for k in ("task", "input_shape", "n_classes", "class_names", "preprocess")}
    meta.update({"model_type": config.model.type, "config": config.resolved(), "n_outputs": _n_outputs(model),
                 "epoch": 0, "metrics": {}, **_ensemble_meta(model)})
    arrays = {f"model.{name}": arr for name, arr in model.state().items()}
    if like.standardizer is not None:
        arrays.update({f"prep.{k}": v for k, v in like.standardizer.state().items()})
    save_checkpoint(path, meta, arrays)


def _ensemble_meta(model) -> dict:
    """What an ensemble checkpoint adds to meta.json: the members' own configs when they differ (an ensemble
    built from sweep trials) and which members see their inputs through an adapter."""
    meta = {}
    if getattr(model, "member_configs", None):
        meta["member_configs"] = [dict(c) for c in model.member_configs]
    if model.adapters:
        meta["member_inputs"] = {"members": sorted(model.adapters), "per_channel": model.adapter_per_channel}
    return meta


def _finite(metrics: dict) -> dict:
    return {k: (float(v) if isinstance(v, (int, float, np.floating)) and np.isfinite(v) else None)
            for k, v in metrics.items() if isinstance(v, (int, float, np.floating))}


def _rebuild(meta: dict):
    """The config and a freshly built (untrained) model from a checkpoint's meta."""
    from mlcli.config.load import build_config
    from mlcli.models.context import BuildContext, compute_dtype
    from mlcli.models.registry import build_ensemble_model, build_model

    try:
        config = build_config(meta["config"], "meta.json", {})
    except ConfigError as err:
        raise CheckpointError(f"its config is invalid: {err}") from None
    shape = tuple(int(d) for d in meta["input_shape"])
    if not shape or any(d < 1 for d in shape) or int(np.prod(shape)) > 1 << 26:
        raise CheckpointError(f"input_shape {shape} is not a valid sample shape")
    n_outputs = int(meta["n_outputs"])
    if not config.is_fitted_in_closed_form() and not 1 <= n_outputs <= 1 << 20:
        raise CheckpointError(f"n_outputs {n_outputs} is out of range")
    ctx = BuildContext(input_shape=shape, n_outputs=max(n_outputs, 1), dtype=compute_dtype(config), zero_init=True,
                       init_rng=np.random.default_rng(0), dropout_rng=np.random.default_rng(0))
    if config.model.type == "multitask":
        _multitask_context(meta, config, ctx)
    members = _member_configs(meta, config)
    try:
        model = build_model(config, ctx) if config.model.ensemble is None else build_ensemble_model(config, ctx,
                                                                                                   members)
    except ConfigError as err:
        raise CheckpointError(f"its model cannot be built: {err}") from None
    except MemoryError:
        raise CheckpointError("its config describes a model too large to build on this machine") from None
    if config.model.ensemble is not None:
        _expect_adapters(meta, model)
    return config, model


def _member_configs(meta: dict, config):
    """The validated configs of an ensemble's members when meta.json lists them (None: the config's model)."""
    raw = meta.get("member_configs")
    if raw is None:
        return None
    from mlcli.config.load import build_config
    from mlcli.models.ensemble import ensemble_size

    if config.model.ensemble is None or not isinstance(raw, list) or not all(isinstance(c, dict) for c in raw):
        raise CheckpointError("member_configs: expected a list of member configs beside an ensemble config")
    if len(raw) != ensemble_size(config):
        raise CheckpointError(f"member_configs lists {len(raw)} members; its config (model.ensemble.members) says "
                              f"{ensemble_size(config)}")
    try:
        return [build_config(c, f"meta.json member {i}", {}) for i, c in enumerate(raw)]
    except ConfigError as err:
        raise CheckpointError(f"a member's config is invalid: {err}") from None


def _expect_adapters(meta: dict, model) -> None:
    """Placeholders for the input adapters meta.json declares, shaped as the standardization statistics."""
    inputs = meta.get("member_inputs")
    if inputs is None:
        return
    prep = meta.get("preprocess") or {}
    members = inputs.get("members") if isinstance(inputs, dict) else None
    if not prep.get("standardize") or not isinstance(members, list) or \
            not all(isinstance(i, int) and 0 <= i < len(model.members) for i in members):
        raise CheckpointError("member_inputs: expected {members: [member indices], per_channel} with standardized "
                              "inputs")
    per_channel = bool(inputs.get("per_channel"))
    shape = (int(meta["input_shape"][0]),) if per_channel else tuple(int(d) for d in meta["input_shape"])
    for i in members:
        model.set_adapter(i, np.ones(shape), np.zeros(shape), per_channel)


def expected_arrays(meta: dict) -> dict[str, tuple]:
    """Every array the checkpoint must hold, name -> (dtype, shape), derived from meta's config."""
    _config, model = _rebuild(meta)
    n_features = int(np.prod(meta["input_shape"]))
    if hasattr(model, "members"):
        _check_member_count(meta, model)
        specs = {f"model.{k}": v for k, v in model.state_specs(n_features, int(meta.get("n_classes") or 0)).items()}
    elif model.is_network:
        specs = {f"model.{k}": v for k, v in model.state_specs().items()}
    else:
        n_classes = meta.get("n_classes") or 0
        specs = {f"model.{k}": v for k, v in model.state_specs(n_features, int(n_classes)).items()}
    prep = meta.get("preprocess") or {}
    if prep.get("standardize"):
        shape = (int(meta["input_shape"][0]),) if prep.get("per_channel") else tuple(meta["input_shape"])
        specs["prep.mean"] = ("float64", shape)
        specs["prep.std"] = ("float64", shape)
    opt = meta.get("optimizer")
    if opt is not None and model.is_network:
        from mlcli.optim.registry import OPTIMIZERS

        cls = OPTIMIZERS.get(opt.get("type"))
        if cls is None:
            raise CheckpointError(f"unknown optimizer type {opt.get('type')!r}")
        allowed = cls.slot_names
        params = model.net.params()
        for param, slots in dict(opt.get("slots", {})).items():
            if param not in params:
                raise CheckpointError(f"optimizer state for unknown parameter {param!r}")
            for slot in slots:
                if slot not in allowed:
                    raise CheckpointError(f"optimizer {opt['type']} has no state {slot!r}")
                specs[f"optim.{param}.{slot}"] = (str(params[param].dtype), tuple(params[param].shape))
    return specs


def _check_member_count(meta: dict, model) -> None:
    """An ensemble checkpoint holds exactly the members its config describes."""
    from mlcli.models.ensemble import member_count

    declared = meta.get("arrays")
    names = [n.removeprefix("model.") for n in declared if n.startswith("model.")] if isinstance(declared, dict) else []
    found = member_count(names)
    if found != len(model.members):
        raise CheckpointError(f"holds {found} ensemble members; its config (model.ensemble) describes "
                              f"{len(model.members)}")


def load_model(path: Path) -> LoadedModel:
    """Read a checkpoint safely and rebuild its model, standardizer and optimizer state."""
    from mlcli.data.preprocess import Standardizer
    from mlcli.models.registry import MODEL_BUILDERS

    path = Path(path)
    meta, arrays = load_checkpoint(path, expect=expected_arrays, allowed_model_types=set(MODEL_BUILDERS))
    config, model = _rebuild(meta)
    state = {k.removeprefix("model."): v for k, v in arrays.items() if k.startswith("model.")}
    try:
        model.load_state(state)
    except (ValueError, KeyError) as err:
        raise CheckpointError(f"{path}: model arrays do not fit the model: {err}") from None
    standardizer = None
    if "prep.mean" in arrays:
        try:
            standardizer = Standardizer(per_channel=bool(meta["preprocess"].get("per_channel"))).from_state(
                {"mean": arrays["prep.mean"], "std": arrays["prep.std"]})
        except ValueError as err:
            raise CheckpointError(f"{path}: preprocessing statistics are invalid: {err}") from None
    opt_state = None
    if meta.get("optimizer") is not None:
        opt = meta["optimizer"]
        opt_state = {"type": opt["type"], "t": opt["t"], "lr": opt["lr"],
                     "slots": {p: {s: arrays[f"optim.{p}.{s}"] for s in slots}
                               for p, slots in opt["slots"].items()}}
    return LoadedModel(config=config, model=model, standardizer=standardizer, meta=meta,
                       optimizer_state=opt_state)
