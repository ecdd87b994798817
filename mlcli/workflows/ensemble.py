"""Ensembles: evaluate several checkpoints together by averaging what they predict.

    evaluate_ensemble([Path("a/best.npz"), Path("b/best.npz")], split="test")
    -> {"checkpoints": [...], "split": "test", "n": 270, "metrics": {...}, "members": [{...}, ...]}

Classifiers average their class probabilities (softmax of the logits, sigmoid for one logit, the Gaussian
classifier's posteriors, k-NN's vote fractions) and predict the argmax; the ensemble's `loss` is the mean negative
log of the averaged probability of the true class. Regression models and autoencoders average their outputs.
With `per_class=True` a classifier ensemble's result also holds `per_class`, `confusion` (and `top5`), computed
from the averaged probabilities as `mlcli.workflows.evaluate` computes them for one checkpoint.
Members must have been trained on the same data and split (same data section and data seed: set `data.seed` to
train members with different run seeds on the same split), else their test sets would overlap others' training sets.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlcli.data.pipeline import prepare
from mlcli.errors import ConfigError
from mlcli.models.context import compute_dtype
from mlcli.models.metrics import classification_report, mean_nll_of_probabilities, mse, task_metrics
from mlcli.runs.rundir import checkpoint_path
from mlcli.runs.snapshot import LoadedModel, load_model
from mlcli.seeding import generators


def probabilities(model, x: np.ndarray) -> np.ndarray:
    """Class probabilities (N, C) of a classifier (network or classical)."""
    return model.probabilities(x)


def _data_identity(loaded: LoadedModel) -> dict:
    data = loaded.config.data.model_dump(mode="json")
    data["seed"] = loaded.config.data.seed if loaded.config.data.seed is not None else loaded.config.seed
    data.pop("augment", None)
    return data


def evaluate_ensemble(paths: list[Path], *, split: str = "test", per_class: bool = False) -> dict:
    """Metrics of the ensemble of the checkpoints `paths` on `split`, and of each member (`per_class`: the
    ensemble's per-class report too)."""
    paths = [checkpoint_path(p) for p in paths]
    members = [load_model(p) for p in paths]
    first = members[0]
    for path, m in zip(paths[1:], members[1:], strict=True):
        if _data_identity(m) != _data_identity(first):
            raise ConfigError(f"{path}: trained on other data or another split than {paths[0]}; ensemble members "
                              f"need the same data section and data seed (set data.seed)")
        if m.model.task != first.model.task or m.meta.get("class_names") != first.meta.get("class_names"):
            raise ConfigError(f"{path}: its task or classes differ from {paths[0]}'s")
    task = first.model.task
    outputs, member_rows, y = [], [], None
    for path, m in zip(paths, members, strict=True):
        ds = getattr(prepare(m.config.data, generators(m.config.seed), dtype=compute_dtype(m.config),
                             scaler=m.standardizer), split)
        y = ds.y
        member_rows.append({"checkpoint": str(path), "metrics": m.model.evaluate(ds.x, ds.y)})
        if task == "classification":
            outputs.append(m.model.probabilities(ds.x))
        else:
            outputs.append(np.asarray(m.model.predict(ds.x), dtype=np.float64))
    mean = np.mean(outputs, axis=0)
    if task == "classification":
        metrics = {"loss": mean_nll_of_probabilities(mean, y)}
        metrics.update(task_metrics(task, mean.argmax(axis=1), y))
    else:
        target = y if task == "regression" else ds.x.reshape(len(ds.x), -1)
        metrics = {"loss": mse(mean.reshape(len(target), -1), target.reshape(len(target), -1))}
        metrics.update(task_metrics(task, mean, target))
    result = {"checkpoints": [str(p) for p in paths], "split": split, "n": len(y), "metrics": metrics,
              "members": member_rows}
    if per_class and task == "classification":
        result.update(classification_report(y, mean.argmax(axis=1), mean.shape[1], first.meta.get("class_names"),
                                            scores=mean))
    return result
