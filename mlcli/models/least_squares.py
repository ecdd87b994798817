"""Linear least squares with an optional ridge penalty: `LeastSquares(l2=0.0, fit_intercept=True)`.

Fits W (k, d) and b (k,) minimizing `||Y - X W^T - b||^2 + l2 ||W||^2` (the intercept is not penalized, as in
scikit-learn's Ridge; with l2 = 0 this is theta = (X^T X)^-1 X^T y, the ordinary least-squares solution).
Computed stably, never by forming or inverting X^T X: the intercept is removed by centering X and Y on their
means, then `numpy.linalg.lstsq` solves the augmented system

    [ Xc            ]        [ Yc ]
    [ sqrt(l2) I_d  ] W^T =  [ 0  ]

whose least-squares solution is exactly the ridge minimizer; b = mean(Y) - mean(X) W^T. For rank-deficient X with
l2 = 0 lstsq returns the minimum-norm W.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mlcli.errors import CheckpointError, DataError


def as_float_matrix(X: Any, name: str, n_features: int | None = None) -> np.ndarray:
    """Return `X` as float64 (N, d); DataError naming the first non-finite entry or a shape mismatch."""
    X = np.asarray(X)
    if X.ndim != 2 or not (np.issubdtype(X.dtype, np.number) or X.dtype == np.bool_):
        raise DataError(f"{name} must be a 2-D numeric array (rows, features); got shape {X.shape}, "
                        f"dtype {X.dtype}")
    if n_features is not None and X.shape[1] != n_features:
        raise DataError(f"{name} has {X.shape[1]} features; the model was fitted on {n_features}")
    X = X.astype(np.float64)
    finite = np.isfinite(X)
    if not finite.all():
        row, col = np.argwhere(~finite)[0]
        raise DataError(f"{name} row {row} column {col} is {X[row, col]}; expected finite values")
    return X


class LeastSquares:
    """Ordinary / ridge least-squares regression, single or multi-output.

    Parameters: `l2` >= 0 ridge strength alpha on W (not b); `fit_intercept` adds the unpenalized bias b.
    Learned state: `W_` (k, d), `b_` (k,) float64; k = 1 for 1-D targets, and then `predict` returns (N,).
    """

    scores_are_log_posteriors = False

    def __init__(self, l2: float = 0.0, fit_intercept: bool = True) -> None:
        if isinstance(l2, bool) or not isinstance(l2, (int, float)) or not (l2 >= 0 and math.isfinite(l2)):
            raise ValueError(f"l2 must be a number >= 0, got {l2!r}")
        if fit_intercept is not True and fit_intercept is not False:
            raise ValueError(f"fit_intercept must be true or false, got {fit_intercept!r}")
        self.l2 = float(l2)
        self.fit_intercept = fit_intercept

    def hyper(self) -> dict[str, Any]:
        """The constructor's arguments, as `from_state` takes them."""
        return {"l2": self.l2, "fit_intercept": self.fit_intercept}

    def fit(self, X: Any, y: Any) -> LeastSquares:
        """Solve for W, b. X: (N, d), y: (N,) or (N, k) real targets."""
        X = as_float_matrix(X, "X")
        Y = np.asarray(y)
        if Y.ndim not in (1, 2) or Y.shape[0] != X.shape[0]:
            raise DataError(f"y must be (N,) or (N, k) with N = {X.shape[0]} rows of X; got shape {Y.shape}")
        Y = as_float_matrix(Y.reshape(Y.shape[0], -1), "y")
        if X.shape[0] == 0:
            raise DataError("X has no rows; expected at least one training row")
        x_mean = X.mean(axis=0) if self.fit_intercept else np.zeros(X.shape[1])
        y_mean = Y.mean(axis=0) if self.fit_intercept else np.zeros(Y.shape[1])
        A, B = X - x_mean, Y - y_mean
        if self.l2 > 0:
            A = np.vstack([A, math.sqrt(self.l2) * np.eye(X.shape[1])])  # (N + d, d)
            B = np.vstack([B, np.zeros((X.shape[1], Y.shape[1]))])  # (N + d, k)
        coef, *_ = np.linalg.lstsq(A, B, rcond=None)  # (d, k)
        self.W_ = np.ascontiguousarray(coef.T)
        self.b_ = y_mean - x_mean @ coef
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predictions X W^T + b: (N, k), or (N,) when k = 1."""
        out = as_float_matrix(X, "X", self.W_.shape[1]) @ self.W_.T + self.b_
        return out[:, 0] if self.W_.shape[0] == 1 else out

    def scores(self, X: Any) -> np.ndarray:
        """The regression outputs, as `predict` (the score of a regressor is its prediction)."""
        return self.predict(X)

    def state(self) -> dict[str, np.ndarray]:
        """Learned arrays for the checkpoint: "W" (k, d), "b" (k,) float64."""
        return {"W": self.W_, "b": self.b_}

    @classmethod
    def from_state(cls, hyper: dict, state: dict) -> LeastSquares:
        """Rebuild a fitted model from its hyperparameters and `state()` (shapes already checked)."""
        model = cls(**hyper)
        W, b = np.asarray(state["W"], dtype=np.float64), np.asarray(state["b"], dtype=np.float64)
        if W.ndim != 2 or b.shape != (W.shape[0],):
            raise CheckpointError(f"least-squares state: 'W' {W.shape} and 'b' {b.shape} must be (k, d) and (k,)")
        model.W_, model.b_ = W, b
        return model

    @staticmethod
    def expected_state_specs(hyper: dict, n_features: int, n_classes: int) -> dict[str, tuple]:
        """Dtype and shape of each state array; the output count k is free (None)."""
        return {"W": (np.dtype(np.float64), (None, n_features)), "b": (np.dtype(np.float64), (None,))}
