"""The `Dataset` record every loader returns and every later stage (splits, preprocessing, models) consumes.

A dataset is one array of features, one array of targets and what is needed to talk about them: the task, the
class names, where it came from (`source`, used in error messages), and, for files, the feature names and the
file row of each sample so that `check_dataset` can point at `data.csv: row 17, column 'petal_len'`.
Loaders return features as float64 exactly as read; the cast to the compute dtype happens in preprocessing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

TASKS = ("classification", "regression", "multitask")


@dataclass(frozen=True)
class TargetSpec:
    """One target of a multitask dataset: its `name` (what a head's `target` names), its `task` and, for
    classification, its class names (labels are indices 0..C-1 into them)."""

    name: str
    task: str
    class_names: tuple[str, ...] | None = None

    @property
    def n_classes(self) -> int | None:
        return None if self.class_names is None else len(self.class_names)


@dataclass
class Dataset:
    """Features, targets and their description.

    Attributes:
        x: (N, ...) float64 features; (N, D) for tabular data, (N, C, H, W) for images.
        y: (N,) int64 class labels in [0, n_classes) for classification; (N,) or (N, k) float64 targets for
            regression; (N, T) floats for multitask, column t the target `targets[t]` (class indices held as
            whole numbers for a classification target).
        task: "classification", "regression" or "multitask".
        class_names: names of classes 0..C-1 (classification), None for regression.
        source: where the data came from: a file path, "bundled:digits" or "synthetic:spirals".
        feature_names: (D,) names of the feature columns where known (CSV header, scikit-learn), else None.
        rows: (N,) int64 1-based row number in the source file of each sample where known, else None.
        targets: the T targets of a multitask dataset (None otherwise).
    """

    x: np.ndarray
    y: np.ndarray
    task: str
    class_names: list[str] | None = None
    source: str = ""
    feature_names: list[str] | None = None
    rows: np.ndarray | None = None
    targets: tuple[TargetSpec, ...] | None = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {', '.join(TASKS)}; got {self.task!r}")

    @property
    def n(self) -> int:
        """Number of samples N."""
        return int(self.x.shape[0])

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample's features, without the batch axis: (D,) or (C, H, W)."""
        return tuple(int(d) for d in self.x.shape[1:])

    @property
    def n_classes(self) -> int | None:
        """Number of classes C for classification (from `class_names`, else max label + 1); None for regression."""
        if self.task != "classification":
            return None
        if self.class_names is not None:
            return len(self.class_names)
        return int(self.y.max()) + 1 if self.y.size else 0

    def split_labels(self) -> tuple[np.ndarray, bool]:
        """(what splits and folds are drawn from, whether to stratify by it): the class labels, or for multitask
        data the first classification target's (N,) labels; the targets unstratified when there are no classes."""
        if self.task == "classification":
            return self.y, True
        for t, spec in enumerate(self.targets or ()):
            if spec.task == "classification":
                return self.y[:, t].astype(np.int64), True
        return self.y, False

    def target_spec(self, name: str) -> TargetSpec:
        """Target `name` of a multitask dataset (KeyError when it has no target of that name)."""
        return {spec.name: spec for spec in self.targets or ()}[name]

    def target_column(self, name: str) -> np.ndarray:
        """Target `name` of a multitask dataset: (N,) int64 labels or (N,) floats."""
        t = [spec.name for spec in self.targets or ()].index(name)
        col = self.y[:, t]
        return col.astype(np.int64) if self.targets[t].task == "classification" else col

    def subset(self, idx: np.ndarray) -> Dataset:
        """The samples `idx` (an integer index array or boolean mask of length N), in that order."""
        idx = np.asarray(idx)
        return replace(
            self,
            x=self.x[idx],
            y=self.y[idx],
            rows=None if self.rows is None else self.rows[idx],
        )


def multitask_dataset(x: np.ndarray, encoded: dict[str, tuple[np.ndarray, list[str] | None]],
                      tasks: dict[str, str], *, source: str, feature_names: list[str] | None = None,
                      rows: np.ndarray | None = None) -> Dataset:
    """The multitask dataset of features x (N, ...) and the targets `tasks` (name -> task, in column order), each
    given in `encoded` as (y (N,), class names or None): y (N, T) float64, one column per target."""
    specs = tuple(TargetSpec(name, task, None if encoded[name][1] is None else tuple(encoded[name][1]))
                  for name, task in tasks.items())
    y = np.stack([np.asarray(encoded[name][0], dtype=np.float64) for name in tasks], axis=1)
    return Dataset(x=x, y=y, task="multitask", source=source, feature_names=feature_names, rows=rows, targets=specs)
