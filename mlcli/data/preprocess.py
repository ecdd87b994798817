"""Standardization with statistics of the training split only.

`Standardizer(per_channel)` learns mean and standard deviation on the training features (`fit`) and applies
`(x - mean) / std` to any split (`transform`), so validation and test data never leak into preprocessing. Its
learned state (`state()`) is saved in checkpoints and restored with `from_state`, so that `mlcli eval` applies
exactly the training-time transform.
"""

from __future__ import annotations

import numpy as np

from mlcli.errors import DataError


class Standardizer:
    """z = (x - mean_) / std_, per feature or per channel.

    per_channel=False: for x (N, D) (or any (N, ...)), mean_ and std_ have the per-sample shape (D,), one
    statistic per feature. per_channel=True: for images x (N, C, H, W), mean_ and std_ have shape (C,), pooled
    over N, H and W. std_ is the population standard deviation (ddof=0); a (numerically) constant feature or
    channel, std <= 1e-12 * max(1, |mean|), gets std 1 so that constant pixels map to 0 rather than inf/NaN.
    """

    def __init__(self, per_channel: bool = False) -> None:
        self.per_channel = per_channel

    def _axes(self, ndim: int) -> tuple[int, ...]:
        if self.per_channel:
            if ndim < 3:
                raise ValueError(f"per-channel standardization needs (N, C, H, W) images; got {ndim}-D features")
            return (0, *range(2, ndim))
        return (0,)

    def fit(self, x_train: np.ndarray) -> Standardizer:
        """Learn mean_ and std_ from the training features x_train: (N, ...) with N >= 1; returns self."""
        x_train = np.asarray(x_train, dtype=np.float64)
        if x_train.ndim < 2 or x_train.shape[0] == 0:
            raise ValueError(f"fit needs a (N, ...) array with N >= 1 samples; got shape {x_train.shape}")
        axes = self._axes(x_train.ndim)
        mean = x_train.mean(axis=axes)
        std = x_train.std(axis=axes)
        std[std <= 1e-12 * np.maximum(1.0, np.abs(mean))] = 1.0
        self.mean_, self.std_ = mean, std
        return self

    def _broadcast(self, a: np.ndarray, ndim: int) -> np.ndarray:
        """mean_/std_ shaped to broadcast against (N, ...): (1, C, 1, 1) per channel, (1, D) per feature."""
        if self.per_channel:
            return a.reshape(1, -1, *([1] * (ndim - 2)))
        return a[None]

    def transform(self, x: np.ndarray, dtype: np.dtype | type = np.float32) -> np.ndarray:
        """(x - mean_) / std_ for x: (N, ...) of the fitted per-sample shape, computed in float64, cast to dtype."""
        if not hasattr(self, "mean_"):
            raise RuntimeError("Standardizer.transform called before fit or from_state")
        x = np.asarray(x)
        fitted = self.mean_.shape if not self.per_channel else self.mean_.shape[:1]
        found = x.shape[1:] if not self.per_channel else x.shape[1:2]
        if x.ndim < 2 or found != fitted or (self.per_channel and x.ndim < 3):
            what = "channels" if self.per_channel else "features"
            raise DataError(
                f"expected samples with {what} of shape {fitted} as in training; found data of shape {x.shape}"
            )
        mean = self._broadcast(self.mean_, x.ndim)
        std = self._broadcast(self.std_, x.ndim)
        return ((x - mean) / std).astype(dtype, copy=False)

    def state(self) -> dict[str, np.ndarray]:
        """The learned statistics {"mean": mean_, "std": std_} (float64 copies) for a checkpoint."""
        return {"mean": self.mean_.copy(), "std": self.std_.copy()}

    def from_state(self, state: dict[str, np.ndarray]) -> Standardizer:
        """Restore mean_ and std_ from `state()` output; they must be finite, std > 0, of equal shape. Returns self."""
        mean = np.asarray(state["mean"], dtype=np.float64)
        std = np.asarray(state["std"], dtype=np.float64)
        if mean.shape != std.shape or (self.per_channel and mean.ndim != 1):
            raise ValueError(
                f"standardizer state: mean {mean.shape} and std {std.shape} do not fit per_channel={self.per_channel}"
            )
        if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
            raise ValueError("standardizer state: mean and std must be finite and std > 0")
        self.mean_, self.std_ = mean.copy(), std.copy()
        return self
