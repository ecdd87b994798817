"""Models fitted in one shot (k-NN, least squares, Gaussian classifier) behind the same interface as networks.

    model = ClassicalModel(KNNClassifier(k=5), task="classification").fit(x, y)
    model.evaluate(x_val, y_val)   # {"accuracy": ...} (+ "loss" where the estimator has a likelihood)

Inputs of any per-sample shape are flattened to (N, D) rows.
"""

from __future__ import annotations

import inspect

import numpy as np


class ClassicalModel:
    """Wraps an estimator with `fit`, `predict`, `scores`, `state`, `from_state`."""

    is_network = False

    def __init__(self, estimator, *, task: str, n_classes: int | None = None) -> None:
        self.estimator = estimator
        self.task = task
        self.n_classes = n_classes

    @staticmethod
    def rows(x: np.ndarray) -> np.ndarray:
        return x.reshape(len(x), -1)

    def fit(self, x: np.ndarray, y: np.ndarray) -> ClassicalModel:
        if self.task == "classification":
            self.estimator.fit(self.rows(x), y, n_classes=self.n_classes)
        else:
            self.estimator.fit(self.rows(x), y)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.estimator.predict(self.rows(x))

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (N, C), float64: the Gaussian classifier's posteriors, k-NN's vote fractions."""
        scores = self.estimator.scores(self.rows(x)).astype(np.float64)
        return np.exp(scores) if getattr(self.estimator, "scores_are_log_posteriors", False) else scores

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        """accuracy (+ loss = mean negative log posterior for the Gaussian classifier) or mse, r2, loss."""
        from mlcli.models.metrics import mean_nll, mse, task_metrics

        pred = self.predict(x)
        metrics: dict[str, float] = {}
        if self.task == "regression":
            metrics["loss"] = mse(pred, y)
        elif getattr(self.estimator, "scores_are_log_posteriors", False):
            metrics["loss"] = mean_nll(self.estimator.scores(self.rows(x)), y)
        metrics.update(task_metrics(self.task, pred, y))
        return metrics

    def state(self) -> dict[str, np.ndarray]:
        return self.estimator.state()

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        cls = type(self.estimator)
        if "n_classes" in inspect.signature(cls.from_state).parameters:
            self.estimator = cls.from_state(self.estimator.hyper(), state, n_classes=self.n_classes)
        else:
            self.estimator = cls.from_state(self.estimator.hyper(), state)

    def state_specs(self, n_features: int, n_classes: int) -> dict[str, tuple]:
        """Dtype (None = any allowed) and shape (None = free) of each saved array, for the checkpoint reader."""
        specs = type(self.estimator).expected_state_specs(self.estimator.hyper(), n_features, n_classes)
        return {k: (None if d is None else str(np.dtype(d)), tuple(shape)) for k, (d, shape) in specs.items()}
