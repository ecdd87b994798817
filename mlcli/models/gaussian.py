"""Gaussian maximum-likelihood classifier: one multivariate normal per class, Bayes' rule to predict.

Fit (N_c rows of class c among N, labels 0..C-1):

    mu_c    = (1 / N_c) sum_{i in c} x_i
    Sigma_c = (1 / N_c) sum_{i in c} (x_i - mu_c)(x_i - mu_c)^T + reg I           covariance="full"
    Sigma_c = diag of the above (per-feature variances + reg)                     covariance="diagonal"
    Sigma   = (1 / N) sum_c sum_{i in c} (x_i - mu_c)(x_i - mu_c)^T + reg I       covariance="shared" (pooled)
    log pi_c = log(1 / C) (priors="equal")  or  log(N_c / N) (priors="empirical")

Predict: argmax_c of log N(x | mu_c, Sigma_c) + log pi_c with

    log N(x | mu, Sigma) = -1/2 (|L^-1 (x - mu)|^2 + 2 sum log diag L + d log 2 pi),   Sigma = L L^T (Cholesky),

computed with `np.linalg.cholesky` and `np.linalg.solve` on L, never a determinant or an inverse. `reg` on the
diagonal keeps Sigma positive definite when a feature is constant (digits' border pixels). `scores(X)` are the
log posteriors log p(c | x), normalized over classes by log-sum-exp.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mlcli.errors import CheckpointError, DataError
from mlcli.models.knn import validate_labels
from mlcli.models.least_squares import as_float_matrix

PRIORS = ("equal", "empirical")
COVARIANCES = ("full", "diagonal", "shared")


def _cov_shape(covariance: str, n_classes: int, n_features: int) -> tuple[int, ...]:
    return {"full": (n_classes, n_features, n_features), "diagonal": (n_classes, n_features),
            "shared": (n_features, n_features)}[covariance]


class GaussianClassifier:
    """Per-class Gaussian maximum-likelihood classifier.

    Parameters: `priors` "equal" | "empirical"; `covariance` "full" | "diagonal" | "shared"; `reg` >= 0 added
    to every covariance diagonal. Learned state: `means_` (C, d), `covariances_` ((C, d, d) full, (C, d)
    diagonal variances, (d, d) shared), `log_priors_` (C,), all float64.
    """

    scores_are_log_posteriors = True

    def __init__(self, priors: str = "equal", covariance: str = "full", reg: float = 1e-6) -> None:
        if priors not in PRIORS:
            raise ValueError(f"priors must be one of {', '.join(PRIORS)}, got {priors!r}")
        if covariance not in COVARIANCES:
            raise ValueError(f"covariance must be one of {', '.join(COVARIANCES)}, got {covariance!r}")
        if isinstance(reg, bool) or not isinstance(reg, (int, float)) or not (reg >= 0 and math.isfinite(reg)):
            raise ValueError(f"reg must be a number >= 0, got {reg!r}")
        self.priors = priors
        self.covariance = covariance
        self.reg = float(reg)

    def hyper(self) -> dict[str, Any]:
        """The constructor's arguments, as `from_state` takes them."""
        return {"priors": self.priors, "covariance": self.covariance, "reg": self.reg}

    def fit(self, X: Any, y: Any, n_classes: int | None = None) -> GaussianClassifier:
        """Estimate means, covariances and priors. X: (N, d), y: (N,) labels in [0, C), every class present."""
        X = as_float_matrix(X, "X")
        y = validate_labels(y, X.shape[0], n_classes)
        C = n_classes if n_classes is not None else int(y.max()) + 1
        counts = np.bincount(y, minlength=C)  # (C,)
        if (counts == 0).any():
            raise DataError(f"class {int(np.argmin(counts))} has no training rows; the Gaussian classifier "
                            f"needs at least one row of each of the {C} classes")
        onehot = (y[:, None] == np.arange(C)).astype(np.float64)  # (N, C)
        means = (onehot.T @ X) / counts[:, None]  # (C, d)
        centered = X - means[y]  # (N, d)
        d = X.shape[1]
        if self.covariance == "diagonal":
            cov = (onehot.T @ centered**2) / counts[:, None] + self.reg
        elif self.covariance == "shared":
            cov = centered.T @ centered / X.shape[0] + self.reg * np.eye(d)
        else:
            cov = np.stack([centered[y == c].T @ centered[y == c] for c in range(C)]) / counts[:, None, None]
            cov += self.reg * np.eye(d)
        log_priors = np.log(counts / X.shape[0]) if self.priors == "empirical" else np.full(C, -math.log(C))
        self._set_state(means, cov, log_priors)
        return self

    def _set_state(self, means: np.ndarray, cov: np.ndarray, log_priors: np.ndarray) -> None:
        """Store the parameters and their Cholesky factors (DataError if a covariance is not PD)."""
        self.means_, self.covariances_, self.log_priors_ = means, cov, log_priors
        if self.covariance == "diagonal":
            bad = np.argwhere(cov <= 0)
            if bad.size:
                raise DataError(f"class {bad[0][0]} feature {bad[0][1]} has variance {cov[tuple(bad[0])]:g}; "
                                f"the feature is constant in that class: use reg > 0 (now {self.reg:g})")
            self._log_det = np.log(cov).sum(axis=1)  # (C,)
            return
        stack = cov[None] if self.covariance == "shared" else cov  # (C or 1, d, d)
        try:
            self._chol = np.linalg.cholesky(stack)
        except np.linalg.LinAlgError:
            raise DataError(f"a class covariance is not positive definite (constant or collinear features); "
                            f"use reg > 0 or a larger reg (now {self.reg:g})") from None
        self._log_det = 2.0 * np.log(np.diagonal(self._chol, axis1=1, axis2=2)).sum(axis=1)  # (C or 1,)

    def log_likelihood(self, X: Any) -> np.ndarray:
        """log N(x_i | mu_c, Sigma_c) for every row and class: (N, C)."""
        X = as_float_matrix(X, "X", self.means_.shape[1])
        d = X.shape[1]
        if self.covariance == "diagonal":
            inv_var = 1.0 / self.covariances_  # (C, d)
            maha = (X**2) @ inv_var.T - 2.0 * X @ (self.means_ * inv_var).T \
                + (self.means_**2 * inv_var).sum(axis=1)  # sum_j (x_j - mu_cj)^2 / var_cj, (N, C)
        else:
            diff = X.T[None] - self.means_[:, :, None]  # (C, d, N)
            z = np.linalg.solve(self._chol, diff)  # L^-1 (x - mu), (C, d, N)
            maha = np.einsum("cdn,cdn->nc", z, z)
        return -0.5 * (maha + self._log_det + d * math.log(2 * math.pi))

    def scores(self, X: Any) -> np.ndarray:
        """Log posteriors log p(c | x): (N, C), log-sum-exp normalized (exp of each row sums to 1)."""
        joint = self.log_likelihood(X) + self.log_priors_
        top = joint.max(axis=1, keepdims=True)
        return joint - (top + np.log(np.exp(joint - top).sum(axis=1, keepdims=True)))

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class (N,) int64."""
        return np.argmax(self.log_likelihood(X) + self.log_priors_, axis=1).astype(np.int64)

    def state(self) -> dict[str, np.ndarray]:
        """Learned arrays: "means" (C, d), "covariances" (shape by `covariance`), "log_priors" (C,)."""
        return {"means": self.means_, "covariances": self.covariances_, "log_priors": self.log_priors_}

    @classmethod
    def from_state(cls, hyper: dict, state: dict) -> GaussianClassifier:
        """Rebuild a fitted classifier from its hyperparameters and `state()` (shapes already checked)."""
        model = cls(**hyper)
        means = np.asarray(state["means"], dtype=np.float64)
        cov = np.asarray(state["covariances"], dtype=np.float64)
        log_priors = np.asarray(state["log_priors"], dtype=np.float64)
        if means.ndim != 2 or cov.shape != _cov_shape(model.covariance, *means.shape) or \
                log_priors.shape != means.shape[:1]:
            raise CheckpointError(f"gaussian state: 'means' {means.shape}, 'covariances' {cov.shape} and "
                                  f"'log_priors' {log_priors.shape} do not fit covariance={model.covariance}")
        try:
            model._set_state(means, cov, log_priors)
        except DataError as err:
            raise CheckpointError(f"gaussian state: {err}") from None
        return model

    @staticmethod
    def expected_state_specs(hyper: dict, n_features: int, n_classes: int) -> dict[str, tuple]:
        """Dtype and shape of each state array; the covariance shape follows hyper["covariance"]."""
        f64 = np.dtype(np.float64)
        return {"means": (f64, (n_classes, n_features)),
                "covariances": (f64, _cov_shape(hyper.get("covariance", "full"), n_classes, n_features)),
                "log_priors": (f64, (n_classes,))}
