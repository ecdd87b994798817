"""The training loop: mini-batch gradient descent as a generator of per-epoch records.

    for record in fit(model, optimizer, schedule, data, train_cfg, gens):
        ...   # record = {"epoch": 1, "train_loss": ..., "val_loss": ..., "lr": ..., "seconds": ...}

Every optimizer takes the same step, `optimizer.step(params, grads, closure)`; the closure evaluates the model's
exact objective on the batch for second-order methods (Newton's method, which also asks for the whole set per step
through `optimizer.full_batch`), and first-order rules never call it.

The loop knows nothing about files, progress bars or early stopping: the caller consumes the records and decides
(see `mlcli.training.callbacks` and `mlcli.training.loop`). Per batch: shuffle order from `gens.shuffle`, optional
augmentation, forward/backward, penalty gradients, clipping by global norm, the optimizer step. Train metrics are
running averages over the epoch's batches (training mode, weights moving), as Keras reports them; val metrics are
a full evaluation in eval mode after the epoch. `train_loss` is the data loss, comparable with `val_loss`; the
penalty is reported separately as `penalty` when regularization is on.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from mlcli.errors import DivergenceError
from mlcli.models.metrics import RunningMetrics
from mlcli.optim.regularizers import add_penalty_grads, clip_grad_norm, penalty
from mlcli.training.threads import training_threads


class TrainingStopped(Exception):
    """Raised inside the loop when `should_stop()` turned true (Ctrl-C, SIGTERM); the batch in hand finished."""

    def __init__(self, epoch: int, step: int) -> None:
        super().__init__(f"stopped in epoch {epoch} after step {step}")
        self.epoch = epoch
        self.step = step


@dataclass
class BatchEvent:
    """Sent to `on_batch` after every optimizer step (for progress bars)."""

    epoch: int
    step: int
    n_steps: int
    loss: float
    samples: int


def n_steps(n: int, batch_size: int) -> int:
    return max(1, math.ceil(n / batch_size))


def fit(model, optimizer, schedule: Callable[[int], float], data, train_cfg, gens, *, augment=None,
        should_stop: Callable[[], bool] = lambda: False,
        on_batch: Callable[[BatchEvent], None] | None = None, start_epoch: int = 0) -> Iterator[dict]:
    """Train `model` epoch by epoch, yielding one metrics record per finished epoch.

    data: a `PreparedData` (train/val splits); train_cfg: the `train` config section.
    Raises DivergenceError when the loss turns NaN/inf, TrainingStopped when `should_stop()` says so.
    Convolutional networks train with BLAS on one thread and mlcli's batch-splitting pool (see `threads`).
    """
    with training_threads(model.net):
        yield from _epochs(model, optimizer, schedule, data, train_cfg, gens, augment, should_stop, on_batch,
                           start_epoch)


def _epochs(model, optimizer, schedule, data, train_cfg, gens, augment, should_stop, on_batch,
            start_epoch) -> Iterator[dict]:
    x, y = data.train.x, data.train.y
    n = len(x)
    full = train_cfg.batch_size == "full" or optimizer.full_batch
    batch_size = n if full else min(int(train_cfg.batch_size), n)
    steps = n_steps(n, batch_size)
    reg = train_cfg.regularization
    regularize = reg.l1 > 0 or reg.l2 > 0
    clip = train_cfg.grad_clip.max_norm if train_cfg.grad_clip is not None else None
    # frozen parameters (`model.freeze`) get no optimizer state, no update, no penalty and no clipping share
    frozen = getattr(model, "frozen", frozenset())
    params = {k: v for k, v in model.net.params().items() if k not in frozen}
    grads = {k: v for k, v in model.net.grads().items() if k not in frozen}
    last_finite = float("nan")
    for epoch in range(start_epoch + 1, train_cfg.epochs + 1):
        optimizer.lr = schedule(epoch - 1)
        started = time.perf_counter()
        make_running = getattr(model, "running_metrics", None)  # a multitask model keeps per-head metrics
        running = make_running(model.target(x, y)) if make_running else RunningMetrics(model.task, model.target(x, y))
        # an optimizer that needs the whole set each step (Newton) takes it in its stored order
        order = np.arange(n) if optimizer.full_batch else gens.shuffle.permutation(n)
        for step in range(steps):
            idx = order[step * batch_size:(step + 1) * batch_size]
            xb, yb = x[idx], y[idx]
            if augment is not None:
                xb = augment(xb, gens.augment)
            # a diverging loss is reported by _check_finite, not by numpy warnings
            with np.errstate(over="ignore", invalid="ignore"):
                loss, out = model.train_batch(xb, yb)
            _check_finite(loss, epoch, step + 1, last_finite)
            last_finite = loss
            running.add(loss, out, model.target(xb, yb), model.decide)
            if regularize:
                add_penalty_grads(params, grads, l1=reg.l1, l2=reg.l2, include_bias=reg.include_bias)
            if clip is not None:
                clip_grad_norm(grads, clip)
            optimizer.step(params, grads, closure=lambda xb=xb, yb=yb: model.objective_closure(xb, yb, reg.l2)())
            if on_batch is not None:
                on_batch(BatchEvent(epoch, step + 1, steps, loss, len(idx)))
            if should_stop():
                raise TrainingStopped(epoch, step + 1)
        train_seconds = time.perf_counter() - started
        record: dict = {"epoch": epoch}
        record.update({f"train_{k}": v for k, v in running.result().items()})
        if regularize:
            record["penalty"] = penalty(params, l1=reg.l1, l2=reg.l2, include_bias=reg.include_bias)
        if data.val.n:
            with np.errstate(over="ignore", invalid="ignore"):
                val = model.evaluate(data.val.x, data.val.y)
            record.update({f"val_{k}": v for k, v in val.items()})
            _check_finite(record["val_loss"], epoch, steps, last_finite, what="validation loss")
        record["lr"] = float(optimizer.lr)
        record["seconds"] = time.perf_counter() - started
        record["samples_per_sec"] = n / train_seconds if train_seconds > 0 else float("inf")
        yield record


def _check_finite(loss: float, epoch: int, step: int, last_finite: float, what: str = "training loss") -> None:
    if not np.isfinite(loss):
        raise DivergenceError(
            f"the {what} became {loss} at epoch {epoch}, step {step} (last finite loss {last_finite:.6g}); "
            f"lower train.optimizer.lr, add train.grad_clip, or check the data scale"
        )
