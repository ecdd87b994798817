"""Evaluate a checkpoint: rebuild its model and data from the file alone, then the metrics; `mlcli.evaluate`.

    evaluate("runs/r")                                      # a run directory: its best.npz
    evaluate("runs/r/checkpoints/last.npz", split="val")
    evaluate("runs/r", data="new.npz")                      # another data file, standardized as in training
    evaluate(["runs/a", "runs/b"])                          # several: their ensemble (mlcli.workflows.ensemble)
    -> {"checkpoint": ..., "split": "test", "n": 270, "metrics": {"loss": ..., "accuracy": ...}}
    evaluate("runs/r", per_class=True)                      # a classifier's report beside the metrics:
    -> {..., "per_class": {"classes": [{"class": "0", "precision": ..., "recall": ..., "f1": ..., "support": 27},
                                       ...], "macro": {...}, "weighted": {...}},
             "confusion": {"labels": [...], "matrix": [[...], ...]},   # rows: true class, columns: predicted
             "top5": ...}                                              # only with more than 5 classes

The per-class formulas are `mlcli.models.metrics.classification_report`'s (scikit-learn's definitions).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlcli.data.dataset import Dataset
from mlcli.data.pipeline import prepare
from mlcli.errors import DataError
from mlcli.models.context import compute_dtype
from mlcli.models.metrics import classification_report
from mlcli.runs.atomic import atomic_write_bytes
from mlcli.runs.rundir import checkpoint_path
from mlcli.runs.snapshot import load_model, prepare_inputs
from mlcli.seeding import generators

SPLITS = ("test", "val", "train")


def evaluate(checkpoints, split: str = "test", data: str | Path | None = None,
             codes: str | Path | None = None, per_class: bool = False) -> dict:
    """Metrics of a checkpoint (file or run directory) on a split of its own data or on a `data` file; a list of
    several checkpoints evaluates their ensemble (and each member). `codes`: write an autoencoder's codes (.npy).
    `per_class`: for a classifier, add `per_class`, `confusion` (and `top5` with more than 5 classes)."""
    from mlcli.errors import ConfigError

    if split not in SPLITS:
        raise ConfigError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    paths = [checkpoints] if isinstance(checkpoints, (str, Path)) else list(checkpoints)
    if not paths:
        raise ConfigError("evaluate needs at least one checkpoint")
    if len(paths) > 1:
        if data is not None or codes is not None:
            raise ConfigError("--data and --codes take one checkpoint, not an ensemble")
        from mlcli.workflows.ensemble import evaluate_ensemble

        return evaluate_ensemble(paths, split=split, per_class=per_class)
    return evaluate_checkpoint(paths[0], split=split, data_path=data, codes_path=codes, per_class=per_class)


def evaluate_checkpoint(path: Path, *, split: str = "test", data_path: Path | None = None,
                        codes_path: Path | None = None, per_class: bool = False) -> dict:
    path = checkpoint_path(path)
    loaded = load_model(path)
    cfg, model = loaded.config, loaded.model
    dtype = compute_dtype(cfg)
    if data_path is not None:
        ds = _file_split(Path(data_path), loaded)
        split = str(data_path)
    else:
        prepared = prepare(cfg.data, generators(cfg.seed), dtype=dtype, scaler=loaded.standardizer,
                           targets=cfg.target_tasks())
        ds = getattr(prepared, split)
    if ds.n == 0:
        raise DataError(f"split '{split}' of this run is empty (its fraction is 0); choose another --split")
    metrics = model.evaluate(ds.x, ds.y)
    if codes_path is not None:
        if getattr(model, "code_layer", None) is None:
            raise DataError(f"--codes: the checkpoint holds a {cfg.model.type}, only an autoencoder has codes")
        import io

        buf = io.BytesIO()
        np.save(buf, model.codes(ds.x), allow_pickle=False)
        atomic_write_bytes(Path(codes_path), buf.getvalue())
    result = {"checkpoint": str(path), "split": split, "n": ds.n, "metrics": metrics}
    if hasattr(model, "member_metrics"):  # one checkpoint holding an ensemble (mlcli.models.ensemble)
        result["members"] = [{"member": i, "metrics": m} for i, m in enumerate(model.member_metrics(ds.x, ds.y))]
    if per_class and model.task == "multitask":
        probs, preds = model.probabilities(ds.x), model.predict(ds.x)
        result["per_task"] = {
            head: classification_report(ds.target_column(model.heads[head]["target"]), preds[head], p.shape[1],
                                        model.head_target(head).class_names, scores=p)
            for head, p in probs.items()}
    elif per_class and model.task == "classification":
        proba = model.probabilities(ds.x)
        result.update(classification_report(ds.y, model.predict(ds.x), proba.shape[1], loaded.meta.get("class_names"),
                                            scores=proba))
    return result


def _file_split(path: Path, loaded) -> Dataset:
    """A data file given with --data, labels mapped onto the checkpoint's classes, standardized as in training."""
    from mlcli.data.formats import load_csv, load_npz
    from mlcli.data.validate import check_dataset

    cfg, meta = loaded.config, loaded.meta
    if meta["task"] == "multitask":
        return _multitask_file_split(path, loaded)
    task = "regression" if meta["task"] == "regression" else "classification"
    if path.suffix == ".csv":
        label = getattr(cfg.data, "label_column", None)
        if label is None:
            raise DataError(f"{path}: a .csv for --data needs a label column, but this model was not trained on "
                            f"a csv; convert it to .npz with arrays x and y")
        ds = load_csv(path, label_column=label, task=task, delimiter=getattr(cfg.data, "delimiter", ","))
    elif path.suffix == ".npz":
        ds = load_npz(path, task=task)
    else:
        raise DataError(f"{path}: --data takes a .npz (arrays x, y) or .csv file; got '{path.suffix}'")
    ds = check_dataset(ds)
    x = prepare_inputs(loaded, ds.x, str(path))
    y = ds.y
    if task == "classification" and meta.get("class_names") and ds.class_names:
        y = _onto_classes(ds.y, ds.class_names, meta["class_names"], path)
    return Dataset(x=x, y=y if task == "classification" else y.astype(x.dtype), task=ds.task,
                   class_names=meta.get("class_names"), source=str(path))


def _onto_classes(y: np.ndarray, names: list[str] | tuple[str, ...], trained: list[str] | tuple[str, ...],
                  path: Path, what: str = "") -> np.ndarray:
    """Labels y (N,), indices into a file's own class `names`, as indices into the `trained` class names;
    DataError naming the first class the training did not see (`what` says which target)."""
    known = {name: i for i, name in enumerate(trained)}
    unknown = [c for c in names if c not in known]
    if unknown:
        raise DataError(f"{path}: {what}class {unknown[0]!r} was not seen in training; known: {', '.join(trained)}")
    return np.array([known[c] for c in names], dtype=np.int64)[y]


def _multitask_file_split(path: Path, loaded) -> Dataset:
    """A --data file for a multitask checkpoint: a .csv with the training's label_columns or a .npz with x and
    one array per target; class labels mapped onto the checkpoint's classes."""
    from mlcli.data.formats import load_csv_columns, load_npz_targets
    from mlcli.data.validate import check_dataset

    cfg, model = loaded.config, loaded.model
    tasks = cfg.target_tasks()
    if path.suffix == ".csv":
        columns = getattr(cfg.data, "label_columns", None)
        if columns is None:
            raise DataError(f"{path}: a .csv for --data needs the label columns, but this model was not trained on "
                            f"a csv; convert it to .npz with x and one array per target ({', '.join(tasks)})")
        ds = load_csv_columns(path, columns={n: (columns[n], t) for n, t in tasks.items()},
                              delimiter=cfg.data.delimiter, also_labels=tuple(columns.values()))
    elif path.suffix == ".npz":
        ds = load_npz_targets(path, targets=tasks)
    else:
        raise DataError(f"{path}: --data takes a .npz (x and one array per target) or .csv file; got '{path.suffix}'")
    ds = check_dataset(ds)  # against the file's own classes, before they are mapped onto the checkpoint's
    columns_out = []
    for spec in model.targets:
        y, names = ds.target_column(spec.name), ds.target_spec(spec.name).class_names
        if spec.task == "classification" and spec.class_names and names:
            y = _onto_classes(y, names, spec.class_names, path, f"target {spec.name!r}: ")
        columns_out.append(np.asarray(y, dtype=np.float64))
    x = prepare_inputs(loaded, ds.x, str(path))
    return Dataset(x=x, y=np.stack(columns_out, axis=1).astype(x.dtype), task="multitask", source=str(path),
                   targets=model.targets)
