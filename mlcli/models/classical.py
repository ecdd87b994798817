"""Models fitted in one shot (k-NN, least squares, Gaussian classifier) behind the same interface as networks.

    model = ClassicalModel(KNNClassifier(k=5), task="classification").fit(x, y)
    model.evaluate(x_val, y_val)   # {"accuracy": ...} (+ "loss" where the estimator has a likelihood)

Inputs of any per-sample shape are flattened to (N, D) rows.
"""

from __future__ import annotations

import numpy as np


class ClassicalModel:
    """Wraps an estimator with `fit`, `predict`, `scores`, `state`, `from_state`."""

    is_network = False

    def __init__(self, estimator, *, task: str) -> None:
        self.estimator = estimator
        self.task = task

    @staticmethod
    def rows(x: np.ndarray) -> np.ndarray:
        return x.reshape(len(x), -1)

    def fit(self, x: np.ndarray, y: np.ndarray) -> "ClassicalModel":
        self.estimator.fit(self.rows(x), y)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.estimator.predict(self.rows(x))

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        """accuracy (+ loss = mean negative log posterior for the Gaussian classifier) or mse, r2, loss."""
        from mlcli.train.metrics import task_metrics

        pred = self.predict(x)
        metrics: dict[str, float] = {}
        if self.task == "regression":
            target = y.reshape(pred.shape)
            metrics["loss"] = float(np.mean((pred - target) ** 2))
        elif getattr(self.estimator, "scores_are_log_posteriors", False):
            log_post = self.estimator.scores(self.rows(x))
            metrics["loss"] = float(-np.mean(log_post[np.arange(len(y)), y]))
        metrics.update(task_metrics(self.task, pred, y))
        return metrics

    def state(self) -> dict[str, np.ndarray]:
        return self.estimator.state()

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        self.estimator = type(self.estimator).from_state(self.estimator.hyper(), state)
