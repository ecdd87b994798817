"""Callbacks: small objects that consume the training loop's events (Keras' interface), and the two that decide.

    class Callback:
        on_train_begin(run)         once, before the first epoch; `run` is the `TrainingRun` (mlcli.training.loop)
        on_batch_end(run, event)    after every optimizer step (a `BatchEvent`: progress bars)
        on_epoch_end(run, record)   after every epoch, with its metrics record; set `run.stop_training` to stop
        on_train_end(run)           once, whatever the outcome (`run.status`)
        state_dict() -> dict        what a resume must restore (JSON-able); {} when the callback keeps no state
        load_state_dict(state)

A callback is registered under its `name` (the class name by default) and its `state_dict()` is saved in
`last.npz` under that name, so that resume restores it without reaching into its fields from outside.
Here: `BestTracker` (the best value of a metric), `EarlyStopping`; `mlcli.training.checkpointing` has the ones that
write files (metrics, best and last checkpoints), `mlcli.training.progress` the progress printer.

Both trackers use Keras' knobs and semantics: an epoch improves when it beats the best by more than `min_delta`;
`patience` epochs without improvement (counted from `start_epoch`) stop training.
"""

from __future__ import annotations

import math

from mlcli.models.metrics import mode_of


class Callback:
    """Base class: every hook does nothing; override the ones you need."""

    name: str | None = None

    def on_train_begin(self, run) -> None:
        """Before the first epoch."""

    def on_batch_end(self, run, event) -> None:
        """After every optimizer step; `event` is a `mlcli.training.trainer.BatchEvent`."""

    def on_epoch_end(self, run, record: dict) -> None:
        """After every epoch; `record` holds its metrics (`epoch`, `train_loss`, `val_loss`, `lr`, ...)."""

    def on_train_end(self, run) -> None:
        """Once at the end, whatever `run.status` is (completed, early_stopped, interrupted, diverged)."""

    def state_dict(self) -> dict:
        """The state a resume must restore, as JSON-able data."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what `state_dict()` returned."""


def callback_name(callback) -> str:
    return getattr(callback, "name", None) or type(callback).__name__


HOOKS = ("on_train_begin", "on_batch_end", "on_epoch_end", "on_train_end")


def _listens(callback, hook: str) -> bool:
    """Whether `callback` has its own `hook` (a subclass override, an instance attribute, or a duck-typed method)."""
    method = getattr(callback, hook, None)
    return method is not None and getattr(method, "__func__", method) is not getattr(Callback, hook)


class CallbackList:
    """Calls each hook on every callback that has it, in order. Callbacks need not subclass `Callback`: any object
    with some of the hooks works. Only callbacks with their own `on_batch_end` are called per batch, so that the
    per-batch cost stays zero when none listens."""

    def __init__(self, callbacks) -> None:
        self.callbacks = list(callbacks)
        names = [callback_name(c) for c in self.callbacks]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"callbacks need distinct names (their state is saved by name); repeated: "
                             f"{', '.join(duplicates)}")
        self._listeners = {hook: [getattr(c, hook) for c in self.callbacks if _listens(c, hook)] for hook in HOOKS}

    def on_train_begin(self, run) -> None:
        for hook in self._listeners["on_train_begin"]:
            hook(run)

    def batch_hook(self, run):
        """The trainer's `on_batch` function, or None when no callback listens to batches."""
        listeners = self._listeners["on_batch_end"]
        if not listeners:
            return None

        def on_batch(event) -> None:
            for hook in listeners:
                hook(run, event)

        return on_batch

    def on_epoch_end(self, run, record: dict) -> None:
        for hook in self._listeners["on_epoch_end"]:
            hook(run, record)

    def on_train_end(self, run) -> None:
        for hook in self._listeners["on_train_end"]:
            hook(run)

    def state_dict(self) -> dict:
        """name -> state of every callback that keeps state."""
        states = {callback_name(c): c.state_dict() for c in self.callbacks if hasattr(c, "state_dict")}
        return {k: v for k, v in states.items() if v}

    def load_state_dict(self, states: dict) -> None:
        for c in self.callbacks:
            state = states.get(callback_name(c))
            if state and hasattr(c, "load_state_dict"):
                c.load_state_dict(state)


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

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict) -> None:
        best, epoch = state.get("best"), state.get("best_epoch")
        self.best = None if best is None else float(best)
        self.best_epoch = None if epoch is None else int(epoch)


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved by `min_delta` for `patience` epochs after `start_epoch`.

    `cfg` is the `train.early_stopping` config section; `restore_best` is carried out by the best checkpoint
    (mlcli.training.checkpointing.BestCheckpoint), which holds the best weights.
    """

    name = "early_stopping"

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

    def on_epoch_end(self, run, record: dict) -> None:
        if self.update(record):
            run.stop_training = True
            run.summary["stopped_epoch"] = self.stopped_epoch

    def state_dict(self) -> dict:
        return {"wait": self.wait, **self.tracker.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.wait = int(state.get("wait", 0))
        self.tracker.load_state_dict(state)
