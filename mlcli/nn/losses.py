"""Losses: each returns `(loss, dout)`, the mean loss over the batch as a float and its gradient w.r.t. the
model output, in the output's dtype (float32 in, float32 out).

- `softmax_cross_entropy(logits, y, label_smoothing)`: multi-class classification, via log-sum-exp.
- `sigmoid_binary_cross_entropy(logits, y)`: binary classification on one logit per sample.
- `mean_squared_error(pred, target)`: regression and reconstruction, the mean over ALL elements.

`softmax` and `log_softmax` are the stable building blocks; `LOSSES` maps config names to the functions.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mlcli.nn.functional import sigmoid


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """`log_softmax(z)_c = z_c - max(z) - log(sum_k exp(z_k - max(z)))` over the last axis (log-sum-exp trick).

    logits: (..., C) -> same shape.
    """
    shifted = logits - logits.max(axis=-1, keepdims=True)
    shifted -= np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return shifted


def softmax(logits: np.ndarray) -> np.ndarray:
    """`softmax(z)_c = exp(z_c - max(z)) / sum_k exp(z_k - max(z))` over the last axis. logits: (..., C)."""
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    e /= e.sum(axis=-1, keepdims=True)
    return e


def softmax_cross_entropy(
    logits: np.ndarray, y: np.ndarray, label_smoothing: float = 0.0
) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of softmax probabilities against integer labels, optionally label-smoothed.

    logits: (N, C); y: (N,) ints in [0, C). With smoothing `eps` the target is `t_c = 1 - eps` for the true
    class and `eps / (C - 1)` for every other (the course's definition; PyTorch's `label_smoothing` equals
    `eps * C / (C - 1)`). `loss = -mean_i sum_c t_ic * log_softmax(logits)_ic`,
    `dout = (softmax(logits) - t) / N`: (N, C).
    """
    if logits.ndim != 2 or y.shape != (logits.shape[0],):
        raise ValueError(f"softmax_cross_entropy expects logits (N, C) and labels (N,); got {logits.shape} "
                         f"and {y.shape}")
    n, c = logits.shape
    if not 0.0 <= label_smoothing < 1.0 or (label_smoothing > 0 and c < 2):
        raise ValueError(f"label_smoothing must be in [0, 1) with at least 2 classes; got {label_smoothing!r} "
                         f"with C={c}")
    rows = np.arange(n)
    logp = log_softmax(logits)
    true_logp = logp[rows, y]
    dout = np.exp(logp)
    if label_smoothing == 0.0:
        loss = -float(true_logp.mean())
        dout[rows, y] -= 1
    else:
        off = label_smoothing / (c - 1)
        on = 1.0 - label_smoothing
        loss = -float(((on - off) * true_logp + off * logp.sum(axis=1)).mean())
        dout -= off
        dout[rows, y] -= on - off
    dout /= n
    return loss, dout


def sigmoid_binary_cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean binary cross-entropy of `sigmoid(logits)` against 0/1 targets, computed from the logits.

    logits: (N,) or (N, 1); y: the same shape or (N,), values in {0, 1}. Per element, stably,
    `l = max(z, 0) - z * y + log1p(exp(-|z|))`; `loss = mean(l)`, `dout = (sigmoid(z) - y) / N` in logits' shape.
    """
    if y.shape != logits.shape:
        if logits.shape[1:] != (1,) or y.shape != logits.shape[:1]:
            raise ValueError(f"sigmoid_binary_cross_entropy expects targets shaped like the logits {logits.shape} "
                             f"or ({logits.shape[0]},); got {y.shape}")
        y = y.reshape(logits.shape)
    y = y.astype(logits.dtype, copy=False)
    per_element = np.log1p(np.exp(-np.abs(logits)))
    per_element += np.maximum(logits, 0)
    per_element -= logits * y
    dout = sigmoid(logits)
    dout -= y
    dout /= logits.size
    return float(per_element.mean()), dout


def mean_squared_error(pred: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean squared error over ALL elements, `mean((pred - target)**2)` (scikit-learn's value).

    pred: any shape; target: the same shape, or (N,) for pred (N, 1). `dout = 2 * (pred - target) / pred.size`.
    """
    if target.shape != pred.shape:
        if pred.shape[1:] != (1,) or target.shape != pred.shape[:1]:
            raise ValueError(f"mean_squared_error expects target shaped like the prediction {pred.shape}; "
                             f"got {target.shape}")
        target = target.reshape(pred.shape)
    diff = pred - target.astype(pred.dtype, copy=False)
    loss = float(np.mean(diff * diff))
    diff *= 2.0 / pred.size
    return loss, diff


LOSSES: dict[str, Callable[..., tuple[float, np.ndarray]]] = {
    "softmax_cross_entropy": softmax_cross_entropy,
    "sigmoid_bce": sigmoid_binary_cross_entropy,
    "mse": mean_squared_error,
}
