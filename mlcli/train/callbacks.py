"""Small objects that consume the trainer's per-epoch records: best-epoch tracking and early stopping.

    best = BestTracker("val_loss")            # mode from the metric: min for losses, max for accuracy/r2
    stopper = EarlyStopping(cfg.train.early_stopping)
    for record in fit(...):
        if best.update(record): save best.npz
        if stopper.update(record): break

Both use Keras' knobs and semantics: an epoch improves when it beats the best by more than `min_delta`;
`patience` epochs without improvement (counted from `start_epoch`) stop training.
"""

from __future__ import annotations

import math

from mlcli.models.metrics import mode_of


def _improves(value: float, best: float | None, mode: str, min_delta: float) -> bool:
    if value is None or not math.isfinite(value):
        return False
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


class BestTracker:
    """Remembers the best value of `monitor` and the epoch it came from."""

    def __init__(self, monitor: str, mode: str = "auto", min_delta: float = 0.0) -> None:
        self.monitor = monitor
        self.mode = mode_of(monitor) if mode == "auto" else mode
        self.min_delta = min_delta
        self.best: float | None = None
        self.best_epoch: int | None = None

    def update(self, record: dict) -> bool:
        """True when this epoch is the new best."""
        value = record.get(self.monitor)
        if _improves(value, self.best, self.mode, self.min_delta):
            self.best, self.best_epoch = float(value), int(record["epoch"])
            return True
        return False


class EarlyStopping:
    """Stop when `monitor` has not improved by `min_delta` for `patience` epochs after `start_epoch`."""

    def __init__(self, cfg) -> None:
        self.cfg = cfg
        self.tracker = BestTracker(cfg.monitor, cfg.mode, cfg.min_delta)
        self.wait = 0
        self.stopped_epoch: int | None = None

    def update(self, record: dict) -> bool:
        """Feed one epoch; True when training should stop now."""
        if record["epoch"] <= self.cfg.start_epoch:
            return False
        if self.tracker.update(record):
            self.wait = 0
            return False
        self.wait += 1
        if self.wait >= self.cfg.patience:
            self.stopped_epoch = int(record["epoch"])
            return True
        return False
