"""Load a trained model for use in Python, as a scikit-learn user expects: `mlcli.load`.

    model = load("runs/r")                     # a run directory (its best.npz) or a checkpoint file
    model.predict(X)                           # labels (class indices), regression values, or reconstructions
    model.predict_proba(X)                     # classifiers: (N, C) class probabilities, columns in classes_ order
    model.transform(X)                         # autoencoders: the bottleneck codes (N, code_size)
    model.classes_, model.class_names_, model.config, model.score(X, y)

A multitask model answers per head: `predict(X) -> {head: (N,)}`, `predict_proba(X) -> {head: (N, C)}` for its
classification heads, `classes_` / `class_names_` as {head: ...}, and `score(X, y)` takes y as {target: (N,)} or
an (N, T) array in the order of `targets_`.

X holds raw samples (N, ...) of the trained sample shape, as in the data files: the training's standardization is
applied here. The checkpoint goes through the same safe reader as `mlcli eval` (mlcli.runs.checkpoint).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlcli.errors import ConfigError
from mlcli.runs.rundir import checkpoint_path
from mlcli.runs.snapshot import LoadedModel, load_model, prepare_inputs


class TrainedModel:
    """A checkpoint's model with the estimator interface; build it with `load(...)`."""

    def __init__(self, loaded: LoadedModel, path: Path) -> None:
        self._loaded = loaded
        self.path = path
        self.config = loaded.config
        self.task = loaded.model.task
        names = loaded.meta.get("class_names")
        n_classes = loaded.meta.get("n_classes") or 0
        self.classes_ = np.arange(n_classes) if self.task == "classification" else None
        self.class_names_ = list(names) if names else None
        if self.task == "multitask":
            model = loaded.model
            self.targets_ = [spec.name for spec in model.targets]
            classifiers = {h: model.head_target(h) for h, head in model.heads.items()
                           if head["task"] == "classification"}
            self.classes_ = {h: np.arange(spec.n_classes) for h, spec in classifiers.items()}
            self.class_names_ = {h: list(spec.class_names) for h, spec in classifiers.items()}

    def _inputs(self, X) -> np.ndarray:
        from mlcli.workflows.predict import check_samples

        return prepare_inputs(self._loaded, check_samples(np.asarray(X), "X"), "X")

    def predict(self, X) -> np.ndarray:
        """Class indices (N,) for classifiers (names: `class_names_[i]`), values (N,) or (N, k) for regression,
        reconstructions (N, D) for autoencoders (in standardized units, as trained)."""
        return self._loaded.model.predict(self._inputs(X))

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (N, C) of a classifier ({head: (N, C)} of a multitask model's classifiers)."""
        if self.task not in ("classification", "multitask"):
            raise ConfigError(f"{self.path}: a {self.task} model has no class probabilities; use predict")
        return self._loaded.model.probabilities(self._inputs(X))

    def transform(self, X) -> np.ndarray:
        """An autoencoder's bottleneck codes (N, code_size)."""
        if getattr(self._loaded.model, "code_layer", None) is None:
            raise ConfigError(f"{self.path}: a {self.config.model.type} has no codes; only an autoencoder does")
        return self._loaded.model.codes(self._inputs(X))

    def score(self, X, y) -> dict[str, float]:
        """The model's metrics on raw samples X and targets y (class indices, or values)."""
        x = self._inputs(X)
        if self.task == "multitask":
            if isinstance(y, dict):
                missing = [t for t in self.targets_ if t not in y]
                if missing:
                    raise ConfigError(f"score: y has no target {missing[0]!r}; expected {', '.join(self.targets_)}")
                y = np.stack([np.asarray(y[t], dtype=np.float64) for t in self.targets_], axis=1)
            y = np.asarray(y, dtype=np.float64)
            if y.shape != (len(x), len(self.targets_)):
                raise ConfigError(f"score: y must be {{target: (N,)}} or ({len(x)}, {len(self.targets_)}) for "
                                  f"targets {', '.join(self.targets_)}; got shape {y.shape}")
            return self._loaded.model.evaluate(x, y.astype(x.dtype))
        y = np.asarray(y)
        return self._loaded.model.evaluate(x, y if self.task == "classification" else y.astype(x.dtype))

    def __repr__(self) -> str:
        return f"TrainedModel({self.config.model.type}, task={self.task}, path={str(self.path)!r})"


def load(checkpoint_or_run) -> TrainedModel:
    """The model of a checkpoint file or of a run directory's best.npz."""
    path = checkpoint_path(checkpoint_or_run)
    return TrainedModel(load_model(path), path)
