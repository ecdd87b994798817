"""k-nearest-neighbour classifier (`type: knn`): stores the training set, votes among the k closest rows.

Prediction is blocked so that its working memory follows `max_memory_mb`: test rows are taken in blocks, and
when even one test row against the whole training set would not fit, the training set is taken in chunks too,
with a running top-k merged across chunks. Within a block:

- l2:     the ranking score `|b|^2 - 2 a.b` (|a - b|^2 minus the per-row constant |a|^2) from one float32 GEMM;
- cosine: the ranking score `-a.b / |b|` (1 - cosine similarity, up to the per-row factor 1/|a|), one GEMM;
- l1:     `sum |a - b|` over the (rows, cols, d) broadcast, which is why l1 blocks are much smaller.

`argpartition` picks a few more candidates than k (GEMM scores lose precision when rows are close compared to
their norms), and the candidates' distances are then recomputed directly from `a - b`, so that the final order
and the distance weights use exact distances (an exact duplicate is at distance 0, not at rounding noise).

Voting: `weights="uniform"` gives each neighbour 1, `weights="distance"` gives 1/d; when any neighbour is at
distance 0, those exact matches decide alone (weight 1 each, the others 0), as in scikit-learn. A vote tie goes
to the tied class whose neighbours have the smallest summed distance, then to the smallest label. Labels are the
integers 0..C-1.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mlcli.errors import CheckpointError, DataError

METRICS = ("l2", "l1", "cosine")
WEIGHTS = ("uniform", "distance")
_F32 = 4
_I64 = 8


def _validate_X(X: Any, name: str, n_features: int | None = None) -> np.ndarray:
    """Return `X` as a C-contiguous float32 (N, d) array; DataError naming the first bad row otherwise."""
    X = np.asarray(X)
    if X.ndim != 2:
        raise DataError(f"{name} must be a 2-D array (rows, features); got shape {X.shape}")
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == np.bool_):
        raise DataError(f"{name} must hold numbers; got dtype {X.dtype}")
    if n_features is not None and X.shape[1] != n_features:
        raise DataError(f"{name} has {X.shape[1]} features; the model was fitted on {n_features}")
    X = np.ascontiguousarray(X, dtype=np.float32)
    finite = np.isfinite(X)
    if not finite.all():
        row, col = np.argwhere(~finite)[0]
        raise DataError(f"{name} row {row} column {col} is {X[row, col]}; expected finite values")
    return X


def validate_labels(y: Any, n_rows: int, n_classes: int | None = None) -> np.ndarray:
    """Return `y` as int64 (N,) class indices in [0, C); DataError naming the first bad row otherwise."""
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n_rows:
        raise DataError(f"y must be 1-D with one label per row of X ({n_rows}); got shape {y.shape}")
    if y.dtype.kind == "f":
        bad = np.flatnonzero(y != np.round(y))
        if bad.size:
            raise DataError(f"y row {bad[0]} is {y[bad[0]]}; expected an integer class index")
    elif y.dtype.kind not in "iub":
        raise DataError(f"y must hold integer class indices; got dtype {y.dtype}")
    y = y.astype(np.int64)
    high = n_classes if n_classes is not None else np.iinfo(np.int64).max
    bad = np.flatnonzero((y < 0) | (y >= high))
    if bad.size:
        expected = f"[0, {n_classes})" if n_classes is not None else ">= 0"
        raise DataError(f"y row {bad[0]} is {y[bad[0]]}; expected a class index {expected}")
    return y


def block_shape(n_queries: int, n_train: int, n_features: int, n_candidates: int, metric: str,
                max_memory_mb: float) -> tuple[int, int]:
    """Return (rows, cols): test rows per block and training rows per chunk that fit `max_memory_mb`.

    Bytes per (test row, training row) pair: l2/cosine 4 (float32 score) + 8 (argpartition's int64 index);
    l1 adds 4*d for the (rows, cols, d) float32 difference broadcast. Bytes per test row: for l2/cosine the
    gathered candidates for the exact recomputation, 4*m*d. Blocks take every training row when one test row
    fits that way; otherwise one test row at a time against chunks of training rows. The minimum is one row
    against one chunk of max(1, ...) training rows, so a budget below that is exceeded by that minimum only.
    """
    budget = int(max_memory_mb * 2**20)
    pair = _F32 + _I64 + (_F32 * n_features if metric == "l1" else 0)
    per_row = 0 if metric == "l1" else _F32 * n_candidates * n_features
    rows = budget // (n_train * pair + per_row)
    if rows >= 1:
        return int(min(rows, n_queries)), n_train
    return 1, int(max(1, min(n_train, (budget - per_row) // pair)))


class KNNClassifier:
    """k-nearest-neighbour classifier over l2, l1 or cosine distance.

    Parameters: `k` neighbours (int >= 1, at most the number of training rows); `metric` "l2" | "l1" |
    "cosine" (1 - cosine similarity; a zero vector has similarity 0 to everything); `weights` "uniform" |
    "distance"; `max_memory_mb` bounds prediction's working arrays (not the stored training set).

    Learned state: `x_` (n, d) float32 training rows, `y_` (n,) int64 labels, `n_classes_` C.
    """

    scores_are_log_posteriors = False

    def __init__(self, k: int = 5, metric: str = "l2", weights: str = "uniform",
                 max_memory_mb: float = 512) -> None:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be an int >= 1, got {k!r}")
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
        if weights not in WEIGHTS:
            raise ValueError(f"weights must be one of {', '.join(WEIGHTS)}, got {weights!r}")
        if isinstance(max_memory_mb, bool) or not isinstance(max_memory_mb, (int, float)) or not (
                max_memory_mb > 0 and math.isfinite(max_memory_mb)):
            raise ValueError(f"max_memory_mb must be a number > 0, got {max_memory_mb!r}")
        self.k = int(k)
        self.metric = metric
        self.weights = weights
        self.max_memory_mb = max_memory_mb

    def hyper(self) -> dict[str, Any]:
        """The constructor's arguments, as `from_state` takes them."""
        return {"k": self.k, "metric": self.metric, "weights": self.weights, "max_memory_mb": self.max_memory_mb}

    def fit(self, X: Any, y: Any, n_classes: int | None = None) -> KNNClassifier:
        """Store the training set. X: (n, d) numbers, y: (n,) class indices; C = n_classes or max(y) + 1."""
        X = _validate_X(X, "X")
        y = validate_labels(y, X.shape[0], n_classes)
        if self.k > X.shape[0]:
            raise DataError(f"k is {self.k} but the training set has only {X.shape[0]} rows; "
                            f"use k <= {X.shape[0]} or more data")
        self._set_state(X, y, n_classes if n_classes is not None else int(y.max()) + 1)
        return self

    def _set_state(self, x: np.ndarray, y: np.ndarray, n_classes: int) -> None:
        self.x_ = x
        self.y_ = y
        self.n_classes_ = n_classes
        # Derived, not saved: squared norms for the l2 score, norms for cosine.
        sq = np.einsum("ij,ij->i", x, x, dtype=np.float64)
        self._sq_norms = sq.astype(np.float32)
        norms = np.sqrt(sq)
        self._inv_norms = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0).astype(np.float32)

    def state(self) -> dict[str, np.ndarray]:
        """Learned arrays for the checkpoint: "x" (n, d) float32, "y" (n,) int64."""
        return {"x": self.x_, "y": self.y_}

    @classmethod
    def from_state(cls, hyper: dict, state: dict, n_classes: int | None = None) -> KNNClassifier:
        """Rebuild a fitted classifier from its hyperparameters and `state()` (shapes already checked)."""
        model = cls(**hyper)
        x = np.ascontiguousarray(state["x"], dtype=np.float32)
        y = np.asarray(state["y"], dtype=np.int64)
        if x.ndim != 2 or y.shape != (x.shape[0],):
            raise CheckpointError(f"knn state: 'x' {x.shape} and 'y' {y.shape} must be (n, d) and (n,)")
        if model.k > x.shape[0]:
            raise CheckpointError(f"knn state: k is {model.k} but 'x' holds only {x.shape[0]} rows")
        c = n_classes if n_classes is not None else int(y.max()) + 1
        if y.size and (y.min() < 0 or y.max() >= c):
            raise CheckpointError(f"knn state: labels in 'y' must be in [0, {c}); found {y.min()}..{y.max()}")
        model._set_state(x, y, c)
        return model

    @staticmethod
    def expected_state_specs(hyper: dict, n_features: int, n_classes: int) -> dict[str, tuple]:
        """Dtype and shape of each state array (None = any size): the checkpoint reader checks these first."""
        return {"x": (np.dtype(np.float32), (None, n_features)), "y": (np.dtype(np.int64), (None,))}

    def kneighbors(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Return (distances (N, k) float64, indices (N, k) int64) of each row's k nearest training rows.

        Sorted by distance; among candidates at an equal distance, by training index.
        """
        Q = _validate_X(X, "X", self.x_.shape[1])
        n, d = self.x_.shape
        m = self.k if self.metric == "l1" else min(n, self.k + max(self.k, 8))
        rows, cols = block_shape(Q.shape[0], n, d, m, self.metric, self.max_memory_mb)
        dist = np.empty((Q.shape[0], self.k))
        idx = np.empty((Q.shape[0], self.k), dtype=np.int64)
        for r0 in range(0, Q.shape[0], rows):
            qb = Q[r0:r0 + rows]
            cand_s, cand_i = self._candidates(qb, m, cols)
            cand_d = cand_s if self.metric == "l1" else self._exact_distances(qb, cand_i)
            order = np.lexsort((cand_i, cand_d), axis=-1)[:, :self.k]
            dist[r0:r0 + rows] = np.take_along_axis(cand_d, order, axis=1)
            idx[r0:r0 + rows] = np.take_along_axis(cand_i, order, axis=1)
        return dist, idx

    def _candidates(self, qb: np.ndarray, m: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-m (score, index) pairs (B, m) of block `qb` (B, d) over the training set, in chunks of `cols`."""
        best_s = best_i = None
        for c0 in range(0, self.x_.shape[0], cols):
            s = self._scores_block(qb, c0, c0 + cols)  # (B, cols)
            take = min(m, s.shape[1])
            part = np.argpartition(s, take - 1, axis=1)[:, :take] if take < s.shape[1] else \
                np.broadcast_to(np.arange(s.shape[1]), s.shape)
            chunk_s = np.take_along_axis(s, part, axis=1)
            chunk_i = part + c0
            if best_s is not None:
                chunk_s = np.concatenate([best_s, chunk_s], axis=1)
                chunk_i = np.concatenate([best_i, chunk_i], axis=1)
                take = min(m, chunk_s.shape[1])
                if take < chunk_s.shape[1]:
                    keep = np.argpartition(chunk_s, take - 1, axis=1)[:, :take]
                    chunk_s = np.take_along_axis(chunk_s, keep, axis=1)
                    chunk_i = np.take_along_axis(chunk_i, keep, axis=1)
            best_s, best_i = chunk_s, chunk_i
        return best_s, best_i

    def _scores_block(self, qb: np.ndarray, c0: int, c1: int) -> np.ndarray:
        """Ranking scores (B, c1-c0) of `qb` against training rows c0:c1 (smaller = nearer)."""
        xc = self.x_[c0:c1]
        if self.metric == "l1":
            diff = qb[:, None, :] - xc[None, :, :]  # (B, cols, d)
            np.abs(diff, out=diff)
            return diff.sum(axis=2)  # pairwise float32 summation: exact 0 for a duplicate
        s = qb @ xc.T  # (B, cols) float32 GEMM
        if self.metric == "l2":
            s *= -2.0
            s += self._sq_norms[c0:c1]
        else:
            s *= -self._inv_norms[c0:c1]
        return s

    def _exact_distances(self, qb: np.ndarray, cand_i: np.ndarray) -> np.ndarray:
        """Distances (B, m) float64 from `qb` (B, d) to training rows `cand_i` (B, m), from `a - b` directly."""
        g = self.x_[cand_i]  # (B, m, d)
        if self.metric == "l2":
            g -= qb[:, None, :]
            np.square(g, out=g)
            return np.sqrt(g.sum(axis=2, dtype=np.float64))
        dots = np.einsum("bmd,bd->bm", g, qb, dtype=np.float64)
        q_norm = np.sqrt(np.einsum("bd,bd->b", qb, qb, dtype=np.float64))[:, None]
        b_norm = np.sqrt(np.einsum("bmd,bmd->bm", g, g, dtype=np.float64))
        denom = q_norm * b_norm
        cos = np.divide(dots, denom, out=np.zeros_like(dots), where=denom > 0)
        return np.clip(1.0 - cos, 0.0, 2.0)

    def _votes(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Vote weights (N, C) and summed neighbour distance per class (N, C)."""
        dist, idx = self.kneighbors(X)
        if self.weights == "uniform":
            w = np.ones_like(dist)
        else:
            exact = dist == 0
            w = np.where(exact.any(axis=1, keepdims=True), exact.astype(np.float64),
                         1.0 / np.where(exact, 1.0, dist))
        n, c = dist.shape[0], self.n_classes_
        flat = (np.arange(n)[:, None] * c + self.y_[idx]).ravel()  # (N*k,) cell of (row, label)
        votes = np.bincount(flat, weights=w.ravel(), minlength=n * c).reshape(n, c)
        dsum = np.bincount(flat, weights=(dist * (w > 0)).ravel(), minlength=n * c).reshape(n, c)
        return votes, dsum

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels (N,) int64: the heaviest vote; ties by smallest summed distance, then label."""
        votes, dsum = self._votes(X)
        tied = votes == votes.max(axis=1, keepdims=True)
        return np.argmin(np.where(tied, dsum, np.inf), axis=1).astype(np.int64)

    def scores(self, X: Any) -> np.ndarray:
        """Vote weights per class (N, C), each row normalized to sum 1."""
        votes, _ = self._votes(X)
        return votes / votes.sum(axis=1, keepdims=True)
