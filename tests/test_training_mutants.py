"""The training driver and its callbacks called directly: `run_loop` and `TrainingRun` (mlcli/training/loop.py), the
best and last checkpoints (checkpointing.py: which epochs they write, checkpoint_every and checkpoint_seconds, the
end of training), snapshots, the training threads, the progress printer, the diagnostics and the optimizer
factory. Behaviours mutation testing (tools/mutate.py) found no test for.

The checkpoint callbacks are fed epoch records by hand with `save_model` replaced by a recorder, so that every
write is seen with its epoch, metrics, weights and resume state (one test writes real files)."""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from mlcli.config.train_schema import EarlyStopping as EarlyStoppingConfig
from mlcli.errors import DivergenceError, RunIOError
from mlcli.nn import parallel
from mlcli.optim.registry import make_optimizer
from mlcli.training import checkpointing
from mlcli.training.callbacks import Callback, CallbackList, EarlyStopping
from mlcli.training.checkpointing import BestCheckpoint, LastCheckpoint
from mlcli.training.diagnostics import Diagnostics, activation_stats, probe_activations, read_diagnostics
from mlcli.training.loop import RESUMED_STREAMS, TrainingRun, classical_records, legacy_callback_states, run_loop
from mlcli.training.progress import ProgressPrinter, epoch_line, format_value
from mlcli.training.snapshots import SnapshotCollector
from mlcli.training.threads import one_thread
from mlcli.training.trainer import BatchEvent
from mlcli.workflows.build import make_optimizer as build_optimizer
from mlcli.workflows.build import make_schedule, resolve_config, setup


def network_run(train=None, model=None, data=None) -> TrainingRun:
    """A TrainingRun of a small network on iris (120 train samples: 4 batches of 32 per epoch)."""
    cfg, base = resolve_config({"name": "t", "data": data or {"type": "iris"},
                                "model": model or {"type": "mlp", "hidden": [4]},
                                "train": {"epochs": 3, "batch_size": 32,
                                          "optimizer": {"type": "momentum", "lr": 0.05}, **(train or {})}})
    gens, prepared, net_model = setup(cfg, base)
    return TrainingRun(config=cfg, model=net_model, data=prepared, gens=gens,
                       optimizer=build_optimizer(cfg, net_model), schedule=make_schedule(cfg))


class Recorder(Callback):
    """Remembers what the loop showed it: the epoch numbers, the run's epoch counter, the status at the end."""

    name = "recorder"

    def __init__(self, stop_at: int | None = None, pause: bool = False) -> None:
        self.epochs, self.counters, self.states = [], [], {}
        self.stop_at, self.pause = stop_at, pause
        self.status_at_end = None

    def on_epoch_end(self, run, record) -> None:
        self.epochs.append(record["epoch"])
        self.counters.append(run.epoch)
        self.states[record["epoch"]] = run.model.state()
        if record["epoch"] == self.stop_at:
            run.stop_training, run.pause = True, self.pause

    def on_train_end(self, run) -> None:
        self.status_at_end = run.status


def _equal_states(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------- loop.py


def test_run_loop_by_default_trains_every_configured_epoch_from_the_first():
    run = network_run()
    assert run.epoch == 0 and not run.stop_training and not run.pause
    rec = Recorder()
    assert run_loop(run, [rec]) is run  # no should_stop given: nothing interrupts
    assert run.status == "completed" and rec.status_at_end == "completed"
    assert rec.epochs == [1, 2, 3] and rec.counters == [1, 2, 3]  # run.epoch is the last finished epoch
    assert run.epoch == 3 and run.boundary["epoch"] == 3
    assert _equal_states(run.boundary["model"], run.model.state())
    assert run.boundary["rng"] == run.rng_state() and set(run.boundary["rng"]) == set(RESUMED_STREAMS)


@pytest.mark.parametrize(("pause", "status"), [(False, "early_stopped"), (True, "paused")])
def test_a_callback_that_stops_training_ends_the_run_early_stopped_or_paused(pause, status):
    run = network_run()
    rec = Recorder(stop_at=2, pause=pause)
    run_loop(run, [rec])
    assert run.status == status and rec.epochs == [1, 2] and run.epoch == 2


def test_an_interrupt_goes_back_to_the_end_of_the_last_whole_epoch():
    run = network_run()
    rec = Recorder()
    calls = {"n": 0}

    def stop_after_step_two_of_epoch_two() -> bool:
        calls["n"] += 1
        return calls["n"] == 4 + 2

    run_loop(run, [rec], should_stop=stop_after_step_two_of_epoch_two)
    assert run.status == "interrupted" and rec.status_at_end == "interrupted"
    assert run.summary["stopped_at"] == {"epoch": 2, "step": 2}
    assert run.epoch == 1 and rec.epochs == [1]
    assert _equal_states(run.model.state(), rec.states[1])


def test_divergence_is_raised_again_after_the_callbacks_saw_the_end():
    run = network_run({"optimizer": {"type": "sgd", "lr": 1e30}})
    rec = Recorder()
    with pytest.raises(DivergenceError, match="the training loss became") as info:
        run_loop(run, [rec])
    assert run.status == "diverged" and rec.status_at_end == "diverged"
    assert run.summary["error"] == str(info.value)


def _early_stopping():
    return EarlyStopping(EarlyStoppingConfig(monitor="val_loss", patience=50))


def test_restore_loads_weights_optimizer_generators_callback_states_and_the_start_epoch():
    first = network_run({"epochs": 2})
    run_loop(first, [_early_stopping()])
    saved = first.boundary
    assert saved["callbacks"]["early_stopping"]["best_epoch"] is not None
    again = network_run()
    again.callbacks = CallbackList([stopping := _early_stopping()])
    again.restore(first.resume_state(), model_state=saved["model"], optimizer_state=saved["optimizer"], epoch=2)
    assert _equal_states(again.model.state(), first.model.state())
    assert again.optimizer.state_dict()["t"] == first.optimizer.state_dict()["t"] == 8
    assert again.rng_state() == first.rng_state()
    assert stopping.state_dict() == saved["callbacks"]["early_stopping"]
    assert again.start_epoch == 2 and again.epoch == 2


def test_restore_without_weights_or_optimizer_state_keeps_the_runs_own():
    run = network_run()
    weights, t = run.model.state(), run.optimizer.state_dict()["t"]
    run.callbacks = CallbackList([])
    run.restore({"rng": run.rng_state(), "callbacks": {}}, epoch=1)
    assert _equal_states(run.model.state(), weights) and run.optimizer.state_dict()["t"] == t


def test_a_resume_state_written_before_callbacks_saved_their_own_restores_the_tracking():
    assert legacy_callback_states({"tracking": {"best": 0.25, "best_epoch": 4, "wait": 2}}) == {
        "best": {"best": 0.25, "best_epoch": 4}, "early_stopping": {"wait": 2, "best": 0.25, "best_epoch": 4}}
    assert legacy_callback_states({"tracking": {"best": 0.25, "best_epoch": 4}})["early_stopping"]["wait"] == 0
    assert legacy_callback_states({}) == {"best": {"best": None, "best_epoch": None},
                                          "early_stopping": {"wait": 0, "best": None, "best_epoch": None}}
    run = network_run()
    run.callbacks = CallbackList([stopping := _early_stopping()])
    run.restore({"rng": run.rng_state(), "tracking": {"best": 0.5, "best_epoch": 3, "wait": 1}}, epoch=3)
    assert stopping.state_dict() == {"wait": 1, "best": 0.5, "best_epoch": 3}


def test_a_model_fitted_in_closed_form_has_one_epoch_of_train_and_val_metrics():
    cfg, base = resolve_config({"name": "k", "data": {"type": "iris"}, "model": {"type": "knn", "k": 3}})
    gens, data, model = setup(cfg, base)
    model.fit(data.train.x, data.train.y)
    (record,) = classical_records(model, data, 0.25)
    assert record["epoch"] == 1 and record["seconds"] == 0.25
    assert record["train_accuracy"] == model.evaluate(data.train.x, data.train.y)["accuracy"]
    assert record["val_accuracy"] == model.evaluate(data.val.x, data.val.y)["accuracy"]
    run = run_loop(TrainingRun(config=cfg, model=model, data=data, gens=gens), [], fit_seconds=0.25)
    assert run.status == "completed" and run.history == [record] and run.epoch == 1


# ---------------------------------------------------------------- checkpointing.py


class FakeModel:
    """A network model of one weight `w` whose evaluation reports that weight (and the split's size)."""

    is_network = True

    def __init__(self) -> None:
        self.w = 0.0

    def state(self) -> dict:
        return {"w": np.array([self.w])}

    def load_state(self, state: dict) -> None:
        self.w = float(state["w"][0])

    def evaluate(self, x, y) -> dict:
        return {"w": self.w, "n": len(x)}


def fake_run(**fields) -> TrainingRun:
    gens = SimpleNamespace(**{name: np.random.default_rng(i) for i, name in enumerate(RESUMED_STREAMS)})
    run = TrainingRun(config="cfg", model=FakeModel(), data="data", gens=gens, optimizer="opt", **fields)
    run.callbacks = CallbackList([])
    return run


@pytest.fixture
def saves(monkeypatch):
    """Every save_model call of the checkpoint callbacks: file, epoch, metrics, the weight, optimizer, extra."""
    calls = []

    def save_model(path, config, model, data, *, epoch, metrics, optimizer=None, extra=None):
        calls.append(SimpleNamespace(file=Path(path).name, epoch=epoch, metrics=metrics, w=model.w,
                                     optimizer=optimizer, extra=extra))

    monkeypatch.setattr(checkpointing, "save_model", save_model)
    return calls


def feed(run, callback, values, key="val_loss", first=1):
    """Epochs `first`, `first + 1`, ... with `key` = each value and the model's weight = the epoch number."""
    for epoch, value in enumerate(values, start=first):
        record = {"epoch": epoch, key: value}
        run.model.w = float(epoch)
        run.history.append(record)
        callback.on_epoch_end(run, record)


def test_best_checkpoint_writes_the_improving_epochs_only_and_keeps_the_last_weights_by_default(saves, tmp_path):
    run = fake_run()
    best = BestCheckpoint(tmp_path / "best.npz", "val_loss")
    feed(run, best, [3.0, 1.0, 2.0])
    assert [(s.file, s.epoch, s.w, s.metrics["val_loss"]) for s in saves] == [("best.npz", 1, 1.0, 3.0),
                                                                             ("best.npz", 2, 2.0, 1.0)]
    assert best.best_epoch == 2 and best.best_state["w"][0] == 2.0
    assert best.state_dict() == {"best": 1.0, "best_epoch": 2}
    run.status = "completed"
    best.on_train_end(run)
    assert len(saves) == 2  # the best epoch is on disk already
    assert run.model.w == 3.0 and "final_weights" not in run.summary  # no restore_at_end: the last weights


@pytest.mark.parametrize("pause", [False, True])
def test_restore_at_end_puts_the_best_weights_back_unless_the_run_is_paused(saves, tmp_path, pause):
    run = fake_run(pause=pause)
    best = BestCheckpoint(tmp_path / "best.npz", "val_loss", restore_at_end=True)
    feed(run, best, [3.0, 1.0, 2.0])
    run.status = "paused" if pause else "early_stopped"
    best.on_train_end(run)
    if pause:  # a paused run goes on later from its last weights
        assert run.model.w == 3.0 and "final_weights" not in run.summary
    else:
        assert run.model.w == 2.0 and run.summary["final_weights"] == "best (epoch 2, restored)"


def test_without_a_finite_monitored_value_the_final_weights_are_written_as_the_best(saves, tmp_path):
    run = fake_run()
    best = BestCheckpoint(tmp_path / "best.npz", "val_loss")
    feed(run, best, [math.nan, math.nan, math.nan])
    assert saves == [] and best.best_epoch is None
    run.status = "completed"
    best.on_train_end(run)
    assert [(s.epoch, s.w, s.metrics) for s in saves] == [(3, 3.0, {"epoch": 3, "val_loss": run.history[-1]["val_loss"]})]


def test_a_diverged_run_writes_no_best_checkpoint_at_the_end(saves, tmp_path):
    run = fake_run()
    best = BestCheckpoint(tmp_path / "best.npz", "val_loss")
    feed(run, best, [math.nan])
    run.status = "diverged"
    best.on_train_end(run)
    assert saves == []


def test_a_run_stopped_before_its_first_epoch_writes_its_start_as_the_best(saves, tmp_path):
    run = fake_run(start_epoch=4)
    run.status = "interrupted"
    BestCheckpoint(tmp_path / "best.npz", "val_loss").on_train_end(run)
    assert [(s.epoch, s.metrics) for s in saves] == [(4, {})]


def test_without_a_monitor_every_epoch_is_the_best(saves, tmp_path):
    run = fake_run()
    best = BestCheckpoint(tmp_path / "best.npz", None)
    feed(run, best, [3.0, 1.0, 2.0])
    assert [s.epoch for s in saves] == [1, 2, 3] and best.best_epoch == 3
    assert best.state_dict() == {}
    best.load_state_dict({"best": 0.5, "best_epoch": 1})  # nothing to restore
    assert best.best_epoch == 3


def test_a_restored_best_checkpoint_only_writes_epochs_that_beat_the_restored_best(saves, tmp_path):
    run = fake_run(start_epoch=4)
    best = BestCheckpoint(tmp_path / "best.npz", "val_loss")
    best.load_state_dict({"best": 0.5, "best_epoch": 4})
    assert best.best_epoch == 4 and best.state_dict() == {"best": 0.5, "best_epoch": 4}
    feed(run, best, [0.6, 0.4], first=5)
    assert [s.epoch for s in saves] == [6] and best.best_epoch == 6


def test_evaluate_best_scores_the_best_weights_and_keeps_the_current_ones(tmp_path):
    run = fake_run()
    best = BestCheckpoint(tmp_path / "best.npz", "val_loss")

    def split(n):
        return SimpleNamespace(n=n, x=np.zeros((n, 1)), y=np.zeros(n))

    run.model.w = 3.0
    assert best.evaluate_best(run, split(5)) == {"w": 3.0, "n": 5}  # no best yet: the current weights
    assert best.evaluate_best(run, split(0)) == {}
    best.best_state = {"w": np.array([2.0])}
    assert best.evaluate_best(run, split(1)) == {"w": 2.0, "n": 1}
    assert best.evaluate_best(run, split(0)) == {}
    assert run.model.w == 3.0


def _resume_of(save) -> dict:
    return save.extra["resume"]


def test_last_checkpoint_by_default_writes_every_epoch_and_the_end(saves, tmp_path):
    for last in (LastCheckpoint(tmp_path / "last.npz"), LastCheckpoint(tmp_path / "last.npz", seconds=None)):
        saves.clear()
        run = fake_run()
        run.callbacks = CallbackList([stopping := _early_stopping(), last])
        for epoch, value in enumerate([3.0, 1.0, 2.0], start=1):
            run.model.w = float(epoch)
            record = {"epoch": epoch, "val_loss": value}
            run.history.append(record)
            run.callbacks.on_epoch_end(run, record)
            assert saves[-1].epoch == epoch and saves[-1].w == epoch and saves[-1].optimizer == "opt"
            assert _resume_of(saves[-1]) == {"rng": run.rng_state(), "callbacks": {"early_stopping":
                                                                                   stopping.state_dict()}}
        assert [s.epoch for s in saves] == [1, 2, 3]
        run.boundary = {"rng": "rng at epoch 3", "callbacks": "states at epoch 3"}
        run.status = "completed"
        last.on_train_end(run)
        assert [s.epoch for s in saves] == [1, 2, 3, 3]
        assert saves[-1].metrics == run.history[-1]
        assert _resume_of(saves[-1]) == {"rng": "rng at epoch 3", "callbacks": "states at epoch 3"}


def test_checkpoint_every_writes_those_epochs_and_the_end(saves, tmp_path):
    run = fake_run()
    last = LastCheckpoint(tmp_path / "last.npz", every=2)
    feed(run, last, [5.0, 4.0, 3.0, 2.0, 1.0])
    assert [s.epoch for s in saves] == [2, 4]
    run.boundary = {"rng": {}, "callbacks": {}}
    run.status = "completed"
    last.on_train_end(run)
    assert [(s.epoch, s.w, s.metrics["val_loss"]) for s in saves][-1] == (5, 5.0, 1.0)


def test_checkpoint_seconds_is_the_least_time_between_two_writes(saves, tmp_path, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(checkpointing, "time", SimpleNamespace(monotonic=lambda: now[0]))
    run = fake_run()
    last = LastCheckpoint(tmp_path / "last.npz", seconds=5.0)
    for epoch, t in enumerate([1000.0, 1003.0, 1005.0, 1009.9, 1010.5, 1011.0], start=1):
        now[0] = t
        feed(run, last, [1.0], first=epoch)
    # the first epoch is always written; then an epoch only once 5 s have passed since the previous write
    assert [s.epoch for s in saves] == [1, 3, 5]


def test_an_interrupted_run_keeps_the_last_npz_of_its_last_whole_epoch(saves, tmp_path):
    run = fake_run()
    last = LastCheckpoint(tmp_path / "last.npz")
    feed(run, last, [2.0, 1.0])
    run.status = "interrupted"
    last.on_train_end(run)
    assert [s.epoch for s in saves] == [1, 2]  # epoch 2 is written already: not again

    saves.clear()
    run = fake_run()
    last = LastCheckpoint(tmp_path / "last.npz", every=2)
    feed(run, last, [3.0, 2.0, 1.0])
    run.model.w = 3.0  # the loop has put back the end of epoch 3
    run.boundary = {"rng": "rng at epoch 3", "callbacks": "states at epoch 3"}
    run.status = "interrupted"
    last.on_train_end(run)
    assert [(s.epoch, s.w) for s in saves] == [(2, 2.0), (3, 3.0)]  # epoch 3 was not written: it is now
    assert _resume_of(saves[-1]) == {"rng": "rng at epoch 3", "callbacks": "states at epoch 3"}

    saves.clear()
    run = fake_run(start_epoch=4)  # a resumed run interrupted in its first epoch: its start again
    run.boundary = {"rng": "rng at epoch 4", "callbacks": {}}
    run.status = "interrupted"
    LastCheckpoint(tmp_path / "last.npz").on_train_end(run)
    assert [(s.epoch, s.metrics) for s in saves] == [(4, {})]


def test_a_diverged_run_keeps_the_last_npz_of_its_last_good_epoch(saves, tmp_path):
    run = fake_run()
    last = LastCheckpoint(tmp_path / "last.npz", every=2)
    feed(run, last, [2.0, 1.0, 0.5])
    run.status = "diverged"
    last.on_train_end(run)
    assert [s.epoch for s in saves] == [2]


def test_last_npz_on_disk_holds_the_last_written_epoch_and_its_resume_state(tmp_path):
    import mlcli
    from mlcli.runs.snapshot import load_model

    result = mlcli.train({"name": "l", "data": {"type": "iris"}, "model": {"type": "mlp", "hidden": [4]},
                          "train": {"epochs": 3, "batch_size": 64, "checkpoint_every": 2,
                                    "optimizer": {"type": "sgd", "lr": 0.1}}}, runs_dir=tmp_path)
    last = load_model(result.run_dir / "checkpoints" / "last.npz")
    assert last.meta["epoch"] == 3 and last.optimizer_state["t"] == 3 * 2
    assert set(last.meta["resume"]["rng"]) == set(RESUMED_STREAMS)
    assert last.meta["resume"]["callbacks"]["best"]["best_epoch"] == result.summary["best_epoch"]


# ---------------------------------------------------------------- snapshots.py


def test_snapshots_are_the_cycle_ends_and_last_k_are_the_newest():
    run = fake_run()
    collector = SnapshotCollector([9, 3, 6])
    for epoch in range(1, 11):
        run.model.w = float(epoch)
        collector.on_epoch_end(run, {"epoch": epoch})
    assert sorted(collector.states) == [3, 6, 9]

    def picked(k):
        return [(e, float(s["w"][0])) for e, s in collector.last(k)]

    assert picked(None) == [(3, 3.0), (6, 6.0), (9, 9.0)]
    assert picked(1) == [(9, 9.0)]
    assert picked(2) == [(6, 6.0), (9, 9.0)]


# ---------------------------------------------------------------- threads.py


def _blas_threads() -> set[int]:
    from threadpoolctl import threadpool_info

    return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}


@pytest.mark.parametrize("previous", [None, "2"])
def test_one_thread_puts_blas_and_the_pool_on_one_thread_and_restores_the_setting(monkeypatch, previous):
    if previous is None:
        monkeypatch.delenv("MLCLI_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("MLCLI_NUM_THREADS", previous)
    before = _blas_threads()
    with one_thread():
        assert os.environ["MLCLI_NUM_THREADS"] == "1" and parallel.num_threads() == 1
        if before:
            assert _blas_threads() == {1}
    assert os.environ.get("MLCLI_NUM_THREADS") == previous
    assert _blas_threads() == before


# ---------------------------------------------------------------- progress.py


def test_metrics_print_with_four_decimals_or_in_scientific_notation_when_small():
    values = [0.5, 12.25, 0.001, 0.0015, 0.0, -0.0005, 0.0005, 3, None, "x"]
    assert [format_value(v) for v in values] == ["0.5000", "12.2500", "0.0010", "0.0015", "0.0000", "-5.000e-04",
                                                 "5.000e-04", "3", "", "x"]
    assert epoch_line({"epoch": 3, "train_loss": 0.123456, "lr": 1e-4, "penalty": None}) == (
        "epoch 3: train_loss=0.1235  lr=1.000e-04  penalty=")


def _progress_run():
    split = SimpleNamespace
    return SimpleNamespace(run_dir="runs/x", config=SimpleNamespace(model=SimpleNamespace(type="mlp")),
                           data=SimpleNamespace(train=split(n=120), val=split(n=15), test=split(n=15)))


def test_without_a_terminal_the_progress_is_one_line_per_epoch():
    stream = io.StringIO()
    printer = ProgressPrinter(epochs=2, stream=stream)
    assert CallbackList([printer]).batch_hook("run") is None  # no bar: nobody listens to batches
    run = _progress_run()
    printer.on_train_begin(run)
    printer.on_epoch_end(run, {"epoch": 1, "train_loss": 0.5})
    printer.on_train_end(run)
    assert stream.getvalue() == "run runs/x: mlp on 120 train / 15 val / 15 test samples\nepoch 1: train_loss=0.5000\n"
    assert ProgressPrinter(epochs=2).stream is __import__("sys").stderr


class Terminal(io.StringIO):
    """What the printer writes to, seen as a terminal whose size is that of the pseudo-terminal `fd`."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self.fd = fd

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.fd


@pytest.fixture
def terminal():
    """A Terminal and a function that resizes it (a real pseudo-terminal holds the size)."""
    import struct

    fcntl = pytest.importorskip("fcntl")
    termios = pytest.importorskip("termios")
    leader, follower = os.openpty()

    def resize(columns: int) -> None:
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 30, columns, 0, 0))

    resize(100)
    yield Terminal(follower), resize
    os.close(leader)
    os.close(follower)


def _screen(text: str) -> list[str]:
    """The lines a terminal shows for `text` (a carriage return goes back to the start of the line)."""
    lines = []
    for raw in text.split("\n"):
        cells: list[str] = []
        for part in raw.split("\r"):
            for i, ch in enumerate(part):
                if i < len(cells):
                    cells[i] = ch
                else:
                    cells.append(ch)
        lines.append("".join(cells).rstrip())
    return [line for line in lines if line]


def test_on_a_terminal_a_bar_counts_the_batches_and_gives_way_to_the_epoch_line(terminal):
    stream, resize = terminal
    printer = ProgressPrinter(epochs=4, stream=stream)
    hook = CallbackList([printer]).batch_hook("run")
    for step in (1, 2, 3):
        hook(BatchEvent(epoch=2, step=step, n_steps=5, loss=0.123456, samples=32))
    shown = str(printer.bar)
    assert shown.startswith("epoch 2/4:") and " 3/5 " in shown and "loss=0.1235" in shown
    assert len(shown) == 99  # the bar takes the terminal's width...
    resize(60)
    assert len(str(printer.bar)) == 59  # ...and follows it when the terminal is resized
    printer.on_epoch_end("run", {"epoch": 2, "train_loss": 0.5})
    assert printer.bar is None
    assert _screen(stream.getvalue()) == ["epoch 2: train_loss=0.5000"]  # the bar is erased, not left behind
    hook(BatchEvent(epoch=3, step=1, n_steps=5, loss=0.5, samples=32))
    assert str(printer.bar).startswith("epoch 3/4:")  # a new bar per epoch
    printer.on_train_end("run")
    assert printer.bar is None


# ---------------------------------------------------------------- diagnostics.py


def test_saturation_and_dead_units_at_their_boundaries():
    sig = np.array([[0.01, 0.99, 0.015, 0.985, 0.0099, 0.9901]])
    assert activation_stats("sigmoid", sig)["saturated"] == pytest.approx(2 / 6)  # strictly within 0.01
    tanh = np.array([[0.99, -0.99, 0.985, -0.9901, 0.995, 0.0]])
    assert activation_stats("tanh", tanh)["saturated"] == pytest.approx(2 / 6)
    maps = np.ones((2, 2, 3, 3))
    maps[:, 1, 0, :] = 0.0  # channel 1 is 0 in one row of every sample: not a dead unit
    maps[:, 0] = 0.0  # channel 0 is 0 everywhere: dead
    stats = activation_stats("relu", maps)
    assert stats["dead_units"] == 0.5 and stats["dead"] == pytest.approx((18 + 6) / 36)


def test_the_probe_runs_every_sample_through_the_layers_in_eval_mode():
    run = network_run(model={"type": "mlp", "hidden": [8], "batchnorm": True, "dropout": 0.5})
    net, x = run.model.net, run.data.train.x[:70]
    buffers = {k: v.copy() for k, v in run.model.state().items()}
    stats = probe_activations(net, x)
    assert _equal_states(run.model.state(), buffers)  # no running statistic moved
    expected, y = {}, x
    for i, layer in enumerate(net.layers):
        y = layer.forward(y, False)
        if layer.kind not in ("flatten", "dropout"):
            expected[f"{i}.{layer.kind}"] = activation_stats(layer.kind, y)
    assert list(stats) == list(expected) and any(k.endswith(".batchnorm") for k in stats)
    for name, want in expected.items():
        assert stats[name] == pytest.approx(want, rel=1e-5, abs=1e-7), name


def _diagnostics_run(n: int, start_epoch: int = 0):
    from mlcli.nn.layers import Linear
    from mlcli.nn.network import Sequential

    net = Sequential([Linear(3, 2, rng=np.random.default_rng(0), init="small", init_scale=0.1)])
    x = np.random.default_rng(1).standard_normal((n, 3)).astype(np.float32)
    return SimpleNamespace(model=SimpleNamespace(is_network=True, net=net), start_epoch=start_epoch,
                           data=SimpleNamespace(train=SimpleNamespace(x=x)))


def test_diagnostics_record_the_first_step_of_each_epoch_against_the_weights_before_it(tmp_path):
    run = _diagnostics_run(300, start_epoch=5)
    net = run.model.net
    diag = Diagnostics(tmp_path)
    diag.on_train_begin(run)
    w0 = net.params()["0.linear.W"].copy()
    assert 0 < np.linalg.norm(w0) < 1 and not net.params()["0.linear.b"].any()
    step = np.full_like(w0, 0.01)
    for g, delta in ((0.5, step), (7.0, 3 * step)):  # the second step of the epoch is not the recorded one
        net.grads()["0.linear.W"][...] = g
        net.params()["0.linear.W"][...] += delta
        net.params()["0.linear.b"][...] += 0.01
        diag.on_batch_end(run, None)
    diag.on_epoch_end(run, {"epoch": 6})
    begin, end = read_diagnostics(tmp_path)
    assert (begin["epoch"], begin["probe"], end["epoch"], end["probe"]) == (5, 256, 6, 256)
    assert set(begin["params"]["0.linear.W"]) == {"norm"}
    w = end["params"]["0.linear.W"]
    assert w["grad_norm"] == pytest.approx(0.5 * math.sqrt(w0.size), rel=1e-6)
    assert w["update_ratio"] == pytest.approx(np.linalg.norm(step) / np.linalg.norm(w0), rel=1e-5)
    assert w["norm"] == pytest.approx(float(np.linalg.norm(net.params()["0.linear.W"])), rel=1e-6)
    assert end["params"]["0.linear.b"]["update_ratio"] is None  # b was all zeros before the step


def test_diagnostics_do_nothing_for_a_model_fitted_in_closed_form(tmp_path):
    diag = Diagnostics(tmp_path)
    run = SimpleNamespace(model=SimpleNamespace(is_network=False), start_epoch=0)
    diag.on_train_begin(run)
    diag.on_epoch_end(run, {"epoch": 1})
    assert not (tmp_path / "diagnostics.jsonl").exists() and read_diagnostics(tmp_path) == []


def test_a_diagnostics_file_that_cannot_be_written_is_a_run_io_error(tmp_path):
    with pytest.raises(RunIOError, match=r"diagnostics.jsonl: cannot write diagnostics"):
        Diagnostics(tmp_path / "missing").on_train_begin(_diagnostics_run(4))


def test_read_diagnostics_skips_cut_and_foreign_lines(tmp_path):
    (tmp_path / "diagnostics.jsonl").write_text(json.dumps({"epoch": 0}) + "\n[1, 2]\n" + '{"epoch": 1}\n{"epo')
    assert read_diagnostics(tmp_path) == [{"epoch": 0}, {"epoch": 1}]


# ---------------------------------------------------------------- optim/registry.py


def test_an_optimizer_with_a_learning_rate_needs_one_and_newton_does_not():
    with pytest.raises(ValueError, match=r"^optimizer 'sgd' needs lr$"):
        make_optimizer("sgd")
    assert make_optimizer("adam", lr=0.5).lr == 0.5
    assert type(make_optimizer("newton")).__name__ == "Newton"
