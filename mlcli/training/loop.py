"""Drive one training through its callbacks: the state they see (`TrainingRun`) and the loop over epoch records.

    run = TrainingRun(config=cfg, model=model, data=data, gens=gens, optimizer=opt, schedule=sched)
    run_loop(run, [MetricsLogger(dir), BestCheckpoint(...), EarlyStopping(cfg), LastCheckpoint(...)])
    run.status, run.history, run.summary

The epochs come from `mlcli.training.trainer.fit` (a network) or are the one evaluation record of a model fitted in
closed form (`classical_records`). After every epoch the loop takes the resume state (`boundary`: weights,
optimizer state, the shuffle/dropout/augmentation generator states and every callback's `state_dict()`), so
that an interrupted run goes back to the end of its last whole epoch and a resume continues from there exactly.
Outcomes: `completed`, `early_stopped` (a callback set `stop_training`), `paused` (a callback set
`stop_training` and `pause`: stopped where a later resume continues, e.g. a sweep's ASHA rung), `interrupted`
(`should_stop()` turned true: the batch in hand finished), `diverged` (NaN/inf loss: the DivergenceError is
raised again after `on_train_end`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from mlcli.errors import DivergenceError
from mlcli.training.callbacks import CallbackList
from mlcli.training.trainer import TrainingStopped, fit

RESUMED_STREAMS = ("shuffle", "dropout", "augment")


@dataclass
class TrainingRun:
    """Everything a training and its callbacks share. `run_dir` is None when nothing is written."""

    config: Any
    model: Any
    data: Any
    gens: Any
    optimizer: Any = None
    schedule: Callable[[int], float] | None = None
    augment: Any = None
    run_dir: Any = None
    start_epoch: int = 0
    history: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    status: str = "running"
    stop_training: bool = False
    pause: bool = False  # with stop_training: stopped to be continued later (status `paused`, last weights kept)
    boundary: dict | None = None
    callbacks: CallbackList | None = None

    @property
    def epoch(self) -> int:
        """The last finished epoch."""
        return self.history[-1]["epoch"] if self.history else self.start_epoch

    def snapshot(self) -> dict:
        """The resume state at the end of the current epoch (copies)."""
        state = {"epoch": self.epoch, "callbacks": self.callbacks.state_dict() if self.callbacks else {}}
        if self.model.is_network:
            state.update(model=self.model.state(), optimizer=self.optimizer.state_dict(), rng=self.rng_state())
        return state

    def resume_state(self) -> dict:
        """What `last.npz` stores under `resume` (JSON-able), as at the end of the last whole epoch."""
        return {"rng": self.boundary["rng"], "callbacks": self.boundary["callbacks"]}

    def rng_state(self) -> dict:
        """The resumed generators' states now."""
        return {name: getattr(self.gens, name).bit_generator.state for name in RESUMED_STREAMS}

    def restore(self, resume: dict, *, model_state=None, optimizer_state=None, epoch: int) -> None:
        """Load a resume state (from `resume_state()` of an earlier run) into this run before it starts."""
        if model_state is not None:
            self.model.load_state(model_state)
        if optimizer_state is not None:
            self.optimizer.load_state_dict(optimizer_state)
        for name in RESUMED_STREAMS:
            getattr(self.gens, name).bit_generator.state = resume["rng"][name]
        self.callbacks.load_state_dict(resume.get("callbacks") or legacy_callback_states(resume))
        self.start_epoch = epoch


def legacy_callback_states(resume: dict) -> dict:
    """Callback states of a `last.npz` written before callbacks saved their own (`resume.tracking`)."""
    tracking = resume.get("tracking") or {}
    best = {"best": tracking.get("best"), "best_epoch": tracking.get("best_epoch")}
    return {"best": best, "early_stopping": {"wait": tracking.get("wait", 0), **best}}


def classical_records(model, data, fit_seconds: float) -> Iterator[dict]:
    """The one "epoch" of a model fitted in closed form: its train (and val) metrics."""
    record: dict = {"epoch": 1}
    record.update({f"train_{k}": v for k, v in model.evaluate(data.train.x, data.train.y).items()})
    if data.val.n:
        record.update({f"val_{k}": v for k, v in model.evaluate(data.val.x, data.val.y).items()})
    record["seconds"] = fit_seconds
    yield record


def run_loop(run: TrainingRun, callbacks, *, should_stop: Callable[[], bool] = lambda: False,
             fit_seconds: float | None = None) -> TrainingRun:
    """Train `run` to its configured epochs (or fit it), feeding every event to `callbacks`; returns `run`."""
    run.callbacks = cbs = callbacks if isinstance(callbacks, CallbackList) else CallbackList(callbacks)
    run.boundary = run.snapshot()
    cbs.on_train_begin(run)
    error: DivergenceError | None = None
    if run.model.is_network:
        records = fit(run.model, run.optimizer, run.schedule, run.data, run.config.train, run.gens,
                      augment=run.augment, should_stop=should_stop, on_batch=cbs.batch_hook(run),
                      start_epoch=run.start_epoch)
    else:
        records = classical_records(run.model, run.data, fit_seconds)
    run.status = "completed"
    try:
        for record in records:
            run.history.append(record)
            cbs.on_epoch_end(run, record)
            run.boundary = run.snapshot()
            if run.stop_training:
                run.status = "paused" if run.pause else "early_stopped"
                break
    except TrainingStopped as stop:
        run.status = "interrupted"
        run.summary["stopped_at"] = {"epoch": stop.epoch, "step": stop.step}
        run.model.load_state(run.boundary["model"])
        run.optimizer.load_state_dict(run.boundary["optimizer"])
    except DivergenceError as err:
        run.status = "diverged"
        run.summary["error"] = str(err)
        error = err
    cbs.on_train_end(run)
    if error is not None:
        raise error
    return run
