"""Metrics per task, as the course and scikit-learn define them.

- classification: `accuracy` = mean(pred == y).
- regression: `mse` = mean over all elements of (y_hat - y)^2; `r2` = 1 - SS_res / SS_tot with SS_tot around the
  per-output mean, averaged over outputs (scikit-learn's `r2_score` default, "uniform_average").
- reconstruction: `reconstruction_mse` = mean over all elements of (x_hat - x)^2.
- the loss of a model that gives class probabilities without logits (Gaussian posteriors, an ensemble's averaged
  probabilities): `mean_nll` = mean over samples of -log p(true class).

The one place these formulas live: models, the trainer's running averages and ensembles all call them.
"""

from __future__ import annotations

import numpy as np


def accuracy(pred: np.ndarray, y: np.ndarray) -> float:
    """pred, y: (N,) labels."""
    return float(np.mean(pred == y)) if len(y) else float("nan")


def mse(pred: np.ndarray, y: np.ndarray) -> float:
    """pred, y: (N,) or (N, k)."""
    diff = np.asarray(pred, dtype=np.float64) - np.asarray(y, dtype=np.float64).reshape(np.shape(pred))
    return float(np.mean(diff**2))


def r2(pred: np.ndarray, y: np.ndarray) -> float:
    """Coefficient of determination, averaged over outputs; pred, y: (N,) or (N, k)."""
    y2 = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    p2 = np.asarray(pred, dtype=np.float64).reshape(y2.shape)
    ss_res = ((y2 - p2) ** 2).sum(axis=0)
    ss_tot = ((y2 - y2.mean(axis=0)) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = np.where(ss_tot > 0, 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0), 0.0)
    return float(scores.mean())


def mean_nll(log_p: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood of the true classes; log_p: (N, C) log probabilities, y: (N,) labels."""
    return float(-np.mean(log_p[np.arange(len(y)), y]))


def mean_nll_of_probabilities(p: np.ndarray, y: np.ndarray, floor: float = 1e-12) -> float:
    """`mean_nll` of probabilities p (N, C), each floored at `floor` so that a zero gives a finite loss."""
    true_p = p[np.arange(len(y)), y]
    return float(-np.mean(np.log(np.maximum(true_p, floor))))


def task_metrics(task: str, pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """The task's metrics besides the loss."""
    if task == "classification":
        return {"accuracy": accuracy(pred, target)}
    if task == "regression":
        return {"mse": mse(pred, target), "r2": r2(pred, target)}
    return {"reconstruction_mse": mse(pred, target)}


def mode_of(metric: str) -> str:
    """Whether a metric improves downwards (`min`: losses, errors) or upwards (`max`: accuracy, r2)."""
    return "max" if metric.endswith(("accuracy", "r2")) else "min"


class RunningMetrics:
    """Accumulates an epoch's train metrics from its batches, without another pass over the data.

    `all_targets` (the whole split's targets) gives the per-output total sum of squares that r2 needs.
    """

    def __init__(self, task: str, all_targets: np.ndarray) -> None:
        self.task = task
        self.n = 0
        self.loss_sum = 0.0
        self.correct = 0
        self.sse: np.ndarray | float = 0.0
        self.ss_tot = None
        if task == "regression":
            t = np.asarray(all_targets, dtype=np.float64).reshape(len(all_targets), -1)
            self.ss_tot = ((t - t.mean(axis=0)) ** 2).sum(axis=0)

    def add(self, loss: float, out: np.ndarray, target: np.ndarray, decide) -> None:
        """One batch: its mean loss, raw outputs (B, K) and targets."""
        b = len(out)
        self.n += b
        self.loss_sum += loss * b
        if self.task == "classification":
            self.correct += int(np.count_nonzero(decide(out) == target))
        else:
            diff = out.reshape(b, -1) - target.reshape(b, -1)
            self.sse = self.sse + np.einsum("ij,ij->j", diff, diff).astype(np.float64)

    def result(self) -> dict[str, float]:
        n = max(self.n, 1)
        out = {"loss": self.loss_sum / n}
        if self.task == "classification":
            out["accuracy"] = self.correct / n
        elif self.task == "regression":
            sse = np.asarray(self.sse, dtype=np.float64)
            out["mse"] = float(sse.sum() / (n * sse.size))
            ok = self.ss_tot > 0
            r2s = np.where(ok, 1.0 - sse / np.where(ok, self.ss_tot, 1.0), 0.0)
            out["r2"] = float(r2s.mean())
        else:
            sse = np.asarray(self.sse, dtype=np.float64)
            out["reconstruction_mse"] = float(sse.sum() / (n * sse.size))
        return out
