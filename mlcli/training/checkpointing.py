"""The callbacks that write a run directory: metrics lines, the best checkpoint and the last (resume) checkpoint.

    callbacks = [MetricsLogger(run_dir), BestCheckpoint(run_dir / "checkpoints" / "best.npz", "val_loss"),
                 EarlyStopping(cfg), LastCheckpoint(run_dir / "checkpoints" / "last.npz")]

`best.npz` is the best epoch by the monitored metric (written when an epoch improves on it; if none did, the final
weights at the end). `last.npz` holds the end of the last written epoch (every epoch by default) with the optimizer
state and the resume state of the loop (generators, callback states), and the end of training; a diverged run
keeps its best checkpoint and the last.npz of its last good epoch.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlcli.runs.rundir import MetricsWriter
from mlcli.runs.snapshot import save_model
from mlcli.training.callbacks import BestTracker, Callback


@contextmanager
def _weights(model, state: dict) -> Iterator[None]:
    """`model` holds the weights `state` while the block runs, and its own again afterwards (also on errors)."""
    current = model.state()
    model.load_state(state)
    try:
        yield
    finally:
        model.load_state(current)


class MetricsLogger(Callback):
    """Appends every epoch's record to metrics.jsonl and metrics.csv, flushed at once."""

    def __init__(self, run_dir: Path) -> None:
        self.writer = MetricsWriter(Path(run_dir))

    def on_epoch_end(self, run, record: dict) -> None:
        self.writer.write(record)


class BestCheckpoint(Callback):
    """Tracks the best epoch by `monitor` and writes its checkpoint to `path`; keeps the best weights in memory.

    `monitor=None` takes every epoch as the best (a model fitted in closed form has one). With `restore_at_end`
    (early stopping's `restore_best`, Keras' `restore_best_weights`) the run ends on the best weights.
    """

    name = "best"

    def __init__(self, path: Path, monitor: str | None, mode: str = "auto", *, restore_at_end: bool = False) -> None:
        self.path = Path(path)
        self.tracker = BestTracker(monitor, mode) if monitor is not None else None
        self.restore_at_end = restore_at_end
        self.best_state: dict | None = None
        self.best_epoch: int | None = None
        self.best_record: dict = {}  # the best epoch's metrics record ({} until there is one)

    def on_epoch_end(self, run, record: dict) -> None:
        if self.tracker is not None and not self.tracker.update(record):
            return
        self.best_epoch = int(record["epoch"])
        self.best_state = run.model.state()
        self.best_record = dict(record)
        save_model(self.path, run.config, run.model, run.data, epoch=record["epoch"], metrics=record)

    def on_train_end(self, run) -> None:
        if run.status == "diverged":
            return
        if self.best_state is None:  # no epoch finished (or none had a finite monitor): last is the best we have
            save_model(self.path, run.config, run.model, run.data, epoch=run.epoch,
                       metrics=run.history[-1] if run.history else {})
        elif self.restore_at_end and not run.pause:  # a paused run goes on from its last weights
            run.model.load_state(self.best_state)
            run.summary["final_weights"] = f"best (epoch {self.best_epoch}, restored)"

    def evaluate_best(self, run, split) -> dict:
        """Metrics of the best weights on `split` (a Dataset); the model's current weights are kept."""
        if self.best_state is None or split.n == 0:
            return run.model.evaluate(split.x, split.y) if split.n else {}
        with _weights(run.model, self.best_state):
            return run.model.evaluate(split.x, split.y)

    def state_dict(self) -> dict:
        return self.tracker.state_dict() if self.tracker is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.tracker is not None:
            self.tracker.load_state_dict(state)
            self.best_epoch = self.tracker.best_epoch

    def resume_from(self, best_path: Path, best_state: dict, best_record: dict) -> None:
        """Continue a previous run: its best checkpoint is copied here, and its weights and metrics record (as
        the checkpoint stores it) are the best so far."""
        import shutil

        shutil.copyfile(best_path, self.path)
        self.best_state = best_state
        self.best_record = {**best_record, "epoch": int(best_record["epoch"])} if "epoch" in best_record else {}


class LastCheckpoint(Callback):
    """Writes `last.npz`: the weights, the optimizer state and (for networks) the resume state, at the end of
    every `every`-th epoch unless the previous write is less than `seconds` ago (0: no such limit; the first due
    epoch is always written), and at the end; so a run killed at any moment (SIGKILL, the OOM killer, a power loss)
    resumes from its last written epoch, losing at most `seconds` of work (plus one epoch) to redo.

    Writes are atomic and fsynced (mlcli.runs.atomic): a kill mid-write leaves the previous last.npz whole. A write
    costs tens of milliseconds (mostly the two fsyncs), hence the time limit for runs of many very short epochs.
    """

    name = "last"

    def __init__(self, path: Path, every: int = 1, seconds: float | None = 0.0) -> None:
        self.path = Path(path)
        self.every = every
        self.seconds = seconds or 0.0
        self.written_at: float | None = None
        self.written_epoch: int | None = None

    def on_epoch_end(self, run, record: dict) -> None:
        epoch = int(record["epoch"])
        recent = self.written_at is not None and time.monotonic() - self.written_at < self.seconds
        if epoch % self.every == 0 and not recent:
            # the callbacks before this one have taken this epoch in: their state is the epoch's end
            self._write(run, record, lambda: {"rng": run.rng_state(), "callbacks": run.callbacks.state_dict()})

    def on_train_end(self, run) -> None:
        if run.status == "diverged":
            return
        if run.status == "interrupted" and self.written_epoch == run.epoch and run.history:
            return  # last.npz already holds the end of the last whole epoch
        record = run.history[-1] if run.history else {}
        ended = (run.boundary or {}).get("model")  # the last epoch's weights (a network's snapshot holds them)
        if ended is None:
            self._write(run, record, run.resume_state)
            return
        # last.npz is where a resume continues: the last whole epoch's weights beside its optimizer state, also
        # when the run ends on other weights (the best checkpoint's restore_at_end ran before this)
        with _weights(run.model, ended):
            self._write(run, record, run.resume_state)

    def _write(self, run, record: dict, resume_state) -> None:
        extra = {"resume": resume_state()} if run.model.is_network else None
        save_model(self.path, run.config, run.model, run.data, epoch=record.get("epoch", run.epoch), metrics=record,
                   optimizer=run.optimizer, extra=extra)
        self.written_at = time.monotonic()
        self.written_epoch = record.get("epoch", run.epoch)
