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


# ---------------------------------------------------------------------------------------- per class
# Definitions as scikit-learn's classification_report / confusion_matrix / top_k_accuracy_score give them, over
# the labels 0..C-1 (a class absent from y and from the predictions still gets its row, with support 0):
#   confusion[i, j] = #(y == i and pred == j)              rows: true class, columns: predicted class
#   precision_c = tp / (tp + fp),  recall_c = tp / (tp + fn),  f1_c = 2 tp / (2 tp + fp + fn),  0 where 0 / 0
#   macro = unweighted mean over the classes; weighted = mean weighted by support (0 when there is no sample)
#   top-k accuracy: the true class is among the k highest scores; among equal scores the higher class index
#   ranks first (scikit-learn's order: a stable ascending argsort, reversed)


def confusion_matrix(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(C, C) int64 counts; y, pred: (N,) labels in [0, C)."""
    y = np.asarray(y, dtype=np.int64)
    pred = np.asarray(pred, dtype=np.int64)
    return np.bincount(y * n_classes + pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den elementwise, 0 where den == 0."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def per_class_scores(confusion: np.ndarray) -> dict[str, np.ndarray]:
    """precision, recall, f1 (C,) float64 and support (C,) int64 from a confusion matrix (C, C)."""
    tp = np.diag(confusion).astype(np.float64)
    predicted = confusion.sum(axis=0)
    support = confusion.sum(axis=1)
    return {"precision": _ratio(tp, predicted), "recall": _ratio(tp, support),
            "f1": _ratio(2 * tp, predicted + support), "support": support.astype(np.int64)}


def averaged_scores(scores: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """{"macro": {...}, "weighted": {...}} of precision, recall, f1 (and the total support) from `per_class_scores`."""
    support = scores["support"].astype(np.float64)
    total = float(support.sum())
    out = {}
    for kind, weights in (("macro", np.ones_like(support)), ("weighted", support)):
        w = weights / weights.sum() if weights.sum() > 0 else np.zeros_like(weights)
        out[kind] = {name: float(scores[name] @ w) for name in ("precision", "recall", "f1")}
        out[kind]["support"] = int(total)
    return out


def top_k_accuracy(scores: np.ndarray, y: np.ndarray, k: int) -> float:
    """Fraction of rows whose true class is among the k highest of `scores` (N, C); ties as scikit-learn."""
    y = np.asarray(y, dtype=np.int64)
    true = scores[np.arange(len(y)), y][:, None]
    later = np.arange(scores.shape[1]) > y[:, None]
    rank = np.count_nonzero((scores > true) | ((scores == true) & later), axis=1)  # classes ranked above y
    return float(np.mean(rank < k)) if len(y) else float("nan")


def classification_report(y: np.ndarray, pred: np.ndarray, n_classes: int, class_names=None,
                          scores: np.ndarray | None = None, k: int = 5) -> dict:
    """JSON-able per-class report of labels `pred` against `y` (N,):

        {"per_class": {"classes": [{"class": name, "precision", "recall", "f1", "support"}, ...],
                       "macro": {...}, "weighted": {...}},
         "confusion": {"labels": [names], "matrix": [[counts]]},
         "top5": accuracy}         # only with `scores` (N, C) and more than k classes; the key names k
    """
    names = [str(c) for c in class_names] if class_names else [str(c) for c in range(n_classes)]
    confusion = confusion_matrix(y, pred, n_classes)
    scores_c = per_class_scores(confusion)
    rows = [{"class": names[c], "precision": float(scores_c["precision"][c]), "recall": float(scores_c["recall"][c]),
             "f1": float(scores_c["f1"][c]), "support": int(scores_c["support"][c])} for c in range(n_classes)]
    report = {"per_class": {"classes": rows, **averaged_scores(scores_c)},
              "confusion": {"labels": names, "matrix": confusion.tolist()}}
    if scores is not None and n_classes > k:
        report[f"top{k}"] = top_k_accuracy(scores, y, k)
    return report
