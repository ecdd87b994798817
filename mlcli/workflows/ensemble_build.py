"""One ensemble checkpoint from existing runs, without retraining: `mlcli ensemble SWEEP_DIR|CV_DIR --top K`.

    build_ensemble("runs/sweep-20261201-101500", top=3)          # the 3 best trials -> SWEEP_DIR/ensemble.npz
    build_ensemble("runs/mlp-cv-20261201-101500", out="e.npz")   # every fold's model
    -> {"out": ..., "source": ..., "kind": "sweep", "members": [{"member": 0, "checkpoint": ..., "trial": ...}],
        "metrics": {...}}                                         # the ensemble's test metrics

A sweep's trials are ranked by its metric as `mlcli sweep` ranks them (completed trials with a score, best first);
each of the top K gives its checkpoint (`trials/<id>/checkpoints/best.npz`), or one per seed or fold when the trial
ran several (`seed-<i>/`, `fold-<i>/`). A sweep that kept only the best trial's checkpoints (`save: best`) has
nothing else to offer: that is an error saying so. A cv directory gives its folds' best checkpoints, the K best by
their validation score with `--top`.

Members must share the data section and data seed (as `mlcli eval A B C` checks); the checkpoint holds them as
`model.ensemble` members, with their own configs in meta.json when their models differ (a sweep over
`model.hidden`). Each cv fold standardized with its own training folds' statistics: the ensemble uses the first
member's, and every member whose statistics differ sees its inputs through an affine adapter that gives it its own
standardization back (`mlcli.models.ensemble`). Note that a cv ensemble's `val` split was training data of its
folds; evaluate it on `test`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlcli.errors import ConfigError
from mlcli.runs.rundir import read_summary
from mlcli.runs.snapshot import LoadedModel, load_model, save_ensemble


def build_ensemble(source: str | Path, *, top: int | None = None, out: str | Path | None = None,
                   vote: str = "soft") -> dict:
    """Write the ensemble of the best `top` runs (all for None) of a sweep or cv directory to `out` (default
    `SOURCE/ensemble.npz`); returns what was written and the ensemble's test metrics."""
    from mlcli.workflows.evaluate import evaluate

    source = Path(source)
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
        raise ConfigError(f"--top must be an int >= 1; got {top!r}")
    if vote not in ("soft", "hard"):
        raise ConfigError(f"--vote must be soft or hard; got {vote!r}")
    if (source / "sweep.jsonl").is_file():
        kind, picked = "sweep", _sweep_members(source, top)
    elif (source / "folds.json").is_file():
        kind, picked = "cv", _cv_members(source, top)
    else:
        raise ConfigError(f"{source}: neither a sweep directory (sweep.jsonl) nor a cv directory (folds.json)")
    if len(picked) < 2:
        raise ConfigError(f"{source}: an ensemble needs at least 2 member checkpoints; found {len(picked)}")
    loaded = [load_model(path) for path, _label in picked]
    _check_compatible(picked, loaded)
    cfg, model = _assemble(loaded, vote)
    out = Path(out) if out is not None else source / "ensemble.npz"
    save_ensemble(out, cfg, model, loaded[0])
    members = [{"member": i, "checkpoint": str(path), **label} for i, (path, label) in enumerate(picked)]
    return {"out": str(out), "source": str(source), "kind": kind, "members": members,
            "metrics": evaluate(out)["metrics"]}


def _sweep_members(sweep_dir: Path, top: int | None) -> list[tuple[Path, dict]]:
    from mlcli.sweeps.ledger import Ledger

    mode = _sweep_mode(sweep_dir)
    records = [r for r in Ledger(sweep_dir / "sweep.jsonl").latest().values()
               if r.get("status") == "completed" and r.get("score") is not None]
    sign = 1.0 if mode == "min" else -1.0
    records.sort(key=lambda r: (sign * float(r["score"]), r.get("index", 0)))
    picked, missing = [], []
    for r in records[:top] if top is not None else records:
        trial_dir = sweep_dir / "trials" / r["trial"]
        paths = _run_checkpoints(trial_dir)
        if not paths:
            missing.append(r["trial"])
        picked += [(p, {"trial": r["trial"], "score": r["score"]}) for p in paths]
    if missing:
        raise ConfigError(f"{sweep_dir}: trial(s) {', '.join(missing)} kept no checkpoints (the sweep's save: best "
                          f"keeps only the best trial's); run the sweep with save: all to build an ensemble")
    return picked


def _sweep_mode(sweep_dir: Path) -> str:
    """min or max: from the sweep's summary.json, else (a sweep still running or killed) its spec's metric."""
    from mlcli.models.metrics import mode_of

    summary = read_summary(sweep_dir) or {}
    if summary.get("mode") in ("min", "max"):
        return summary["mode"]
    from mlcli.config.sweep_schema import load_sweep_text

    spec_path = sweep_dir / "sweep.yaml"
    spec = load_sweep_text(spec_path.read_text(encoding="utf-8"), str(spec_path), sweep_dir)[0]
    return spec.mode if spec.mode != "auto" else mode_of(spec.metric.removeprefix("val_").removeprefix("train_"))


def _run_checkpoints(run_dir: Path) -> list[Path]:
    """A run directory's best.npz, or those of its seed-/fold- sub-runs, in order."""
    own = run_dir / "checkpoints" / "best.npz"
    if own.is_file():
        return [own]
    subs = [p for p in run_dir.glob("*/checkpoints/best.npz") if p.parent.parent.name.split("-")[0] in
            ("seed", "fold")]
    return sorted(subs, key=lambda p: int(p.parent.parent.name.split("-")[-1]))


def _cv_members(cv_dir: Path, top: int | None) -> list[tuple[Path, dict]]:
    from mlcli.models.metrics import mode_of
    from mlcli.workflows.cv import fold_metrics

    rows = []
    for path in _run_checkpoints(cv_dir):
        fold = int(path.parent.parent.name.split("-")[-1])
        metrics = fold_metrics(read_summary(path.parent.parent) or {})
        rows.append((path, {"fold": fold, "metrics": metrics}))
    if top is not None and rows:
        metric = "accuracy" if "accuracy" in rows[0][1]["metrics"] else "loss"
        sign = -1.0 if mode_of(metric) == "max" else 1.0
        rows.sort(key=lambda r: (sign * r[1]["metrics"].get(metric, np.inf * sign), r[1]["fold"]))
        rows = sorted(rows[:top], key=lambda r: r[1]["fold"])
    return rows


def _check_compatible(picked, loaded: list[LoadedModel]) -> None:
    from mlcli.workflows.ensemble import _data_identity

    (first_path, _), first = picked[0], loaded[0]
    for (path, _), m in zip(picked[1:], loaded[1:], strict=True):
        if _data_identity(m) != _data_identity(first):
            raise ConfigError(f"{path}: trained on other data or another split than {first_path}; ensemble members "
                              f"need the same data section and data seed (set data.seed)")
        if m.model.task != first.model.task or m.meta.get("class_names") != first.meta.get("class_names") or \
                m.meta.get("input_shape") != first.meta.get("input_shape"):
            raise ConfigError(f"{path}: its task, classes or sample shape differ from {first_path}'s")
    for (path, _), m in zip(picked, loaded, strict=True):
        if hasattr(m.model, "members"):
            raise ConfigError(f"{path}: is itself an ensemble; build ensembles of single models")


def _member_key(cfg) -> dict:
    """What makes two members' models the same architecture: the resolved config without seeds or training."""
    data = cfg.resolved()
    return {k: data.get(k) for k in ("model", "loss")} | {"dtype": (data.get("train") or {}).get("dtype")}


def _assemble(loaded: list[LoadedModel], vote: str):
    """The ensemble config (the first member's, with model.ensemble) and its EnsembleModel."""
    from mlcli.config.load import build_config
    from mlcli.models.ensemble import EnsembleModel

    first = loaded[0].config
    raw = first.resolved()
    raw["model"]["ensemble"] = {"members": len(loaded), "vote": vote}
    cfg = build_config(raw, "ensemble", {})
    has_loss = "loss" in first.metric_names() and all("loss" in m.config.metric_names() for m in loaded)
    model = EnsembleModel([m.model for m in loaded], vote=vote, has_loss=has_loss)
    if any(_member_key(m.config) != _member_key(first) for m in loaded[1:]):
        model.member_configs = [m.config.resolved() for m in loaded]
    std0 = loaded[0].standardizer
    for i, m in enumerate(loaded[1:], start=1):
        std = m.standardizer
        if std0 is None or std is None:
            continue
        if np.array_equal(std.mean_, std0.mean_) and np.array_equal(std.std_, std0.std_):
            continue
        # member i wants (x - m_i) / s_i; it gets x0 = (x - m_0) / s_0: (x - m_i) / s_i = x0 * s_0/s_i + (m_0 - m_i)/s_i
        model.set_adapter(i, std0.std_ / std.std_, (std0.mean_ - std.mean_) / std.std_, std.per_channel)
    return cfg, model
