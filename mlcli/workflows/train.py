"""Train a config into a new run directory, or continue a run: `mlcli.train` and `mlcli.resume`.

    result = train("configs/mlp.yaml", overrides={"train.epochs": 5}, runs_dir="runs", name="short")
    result.status, result.metrics["accuracy"], result.best_checkpoint
    more = resume(result.run_dir, epochs=10)

A run directory (`mlcli.runs.rundir`) gets config.yaml, metrics.jsonl/.csv, checkpoints/best.npz and last.npz and
summary.json, written by the callbacks of `mlcli.training.checkpointing`; `callbacks=[...]` adds the caller's own
(any object with some of `on_train_begin`, `on_batch_end`, `on_epoch_end`, `on_train_end`; see
`mlcli.training.callbacks`). Statuses: `completed`, `early_stopped`, `interrupted` (`should_stop()` turned true:
last.npz and the summary are written first), `diverged` (NaN/inf loss: the best checkpoint so far is kept and the
DivergenceError is raised after the summary is written).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mlcli.errors import ConfigError
from mlcli.runs.atomic import remove_stale_temporaries
from mlcli.runs.lock import RunLock
from mlcli.runs.provenance import provenance, utc_now
from mlcli.runs.rundir import check_room, create_run_dir, make_exact_dir, read_summary, write_config, write_summary
from mlcli.training.callbacks import CallbackList, EarlyStopping
from mlcli.training.checkpointing import BestCheckpoint, LastCheckpoint, MetricsLogger
from mlcli.training.diagnostics import Diagnostics
from mlcli.training.loop import TrainingRun, run_loop
from mlcli.workflows.build import augmenter, make_optimizer, make_schedule, resolve_config, setup


@dataclass
class RunResult:
    """What a training produced. `metrics` are the test metrics of the best weights ({} without a test split)."""

    run_dir: Path
    status: str
    summary: dict
    history: list[dict] = field(default_factory=list)

    @property
    def best_checkpoint(self) -> Path:
        return self.run_dir / "checkpoints" / "best.npz"

    @property
    def last_checkpoint(self) -> Path:
        return self.run_dir / "checkpoints" / "last.npz"

    @property
    def metrics(self) -> dict:
        return self.summary.get("test", {})


def train(config, *, overrides=None, runs_dir: str | Path = "runs", name: str | None = None,
          seed: int | None = None, callbacks=(), quiet: bool = True,
          should_stop: Callable[[], bool] | None = None) -> RunResult:
    """Train (or fit) the model `config` describes and write a new run directory under `runs_dir`.

    config: a YAML path, a dict of sections or a `Config`; overrides: dotted keys -> values (`--set` semantics);
    name: the run directory's prefix (default the config's `name`); seed: replaces the config's seed;
    callbacks: extra callbacks, called after the built-in ones; quiet=False prints progress to stderr;
    should_stop: polled after every batch (Ctrl-C handling), True stops after the batch with status `interrupted`.
    Raises the `mlcli.errors.MlcliError` subclasses (ConfigError, DataError, DivergenceError, RunIOError ...).
    """
    cfg, base_dir = resolve_config(config, overrides, seed)
    return run_config(cfg, base_dir=base_dir, runs_dir=Path(runs_dir), name=name, callbacks=callbacks, quiet=quiet,
                      should_stop=should_stop, overrides=overrides)


def resume(run_dir: str | Path, epochs: int | None = None, *, runs_dir: str | Path = "runs", callbacks=(),
           quiet: bool = True, should_stop: Callable[[], bool] | None = None) -> RunResult:
    """Continue `run_dir` from its last.npz into a new run directory, exactly as if it had not stopped.

    The run's own config.yaml is used; `epochs` raises the total number of epochs to train to. The new run keeps
    the old run's name and starts with a copy of its best.npz.
    """
    from mlcli.config.load import load_config

    run_dir = Path(run_dir)
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise ConfigError(f"{run_dir}: not a run directory (no config.yaml)")
    overrides = [f"train.epochs={epochs}"] if epochs is not None else []
    cfg = load_config(config_path, overrides)
    previous = read_summary(run_dir) or {}
    with RunLock(run_dir):  # a run still training is not resumed (exit 7); a killed one's lock is taken over
        for folder in (run_dir, run_dir / "checkpoints"):
            remove_stale_temporaries(folder)
        return run_config(cfg, base_dir=config_path.resolve().parent, runs_dir=Path(runs_dir),
                          name=previous.get("name"), callbacks=callbacks, quiet=quiet, should_stop=should_stop,
                          overrides=overrides, resume_from=run_dir)


def run_config(cfg, *, base_dir: Path | None = None, runs_dir: Path = Path("runs"), name: str | None = None,
               callbacks=(), quiet: bool = True, should_stop: Callable[[], bool] | None = None, overrides=None,
               data=None, run_dir: Path | None = None, resume_from: Path | None = None, loaded=None) -> RunResult:
    """Train a validated config. `data`: prepared splits to use (a cv fold's); `run_dir`: an exact new directory
    instead of one under `runs_dir`; `resume_from`: a run directory whose last.npz this run continues; `loaded`:
    the dataset already read (mlcli.data.pipeline.load_all), e.g. sent once to a sweep's workers."""
    if cfg.model.ensemble is not None:  # K members, each trained by this function (mlcli.workflows.ensemble_train)
        from mlcli.workflows.ensemble_train import train_ensemble

        return train_ensemble(cfg, base_dir=base_dir, runs_dir=runs_dir, name=name, callbacks=callbacks, quiet=quiet,
                              should_stop=should_stop, overrides=overrides, data=data, run_dir=run_dir,
                              resume_from=resume_from, loaded=loaded)
    started, started_at = time.time(), utc_now()
    gens, data, model = setup(cfg, base_dir, data, loaded)
    from mlcli.workflows.transfer import apply_transfer  # model.init_from, model.freeze

    callbacks = (*apply_transfer(cfg, model, base_dir, resuming=resume_from is not None, quiet=quiet), *callbacks)
    previous = _load_previous(Path(resume_from), model, cfg) if resume_from is not None else None
    fit_seconds = None
    if not model.is_network:  # fit before creating the run directory: a failing fit leaves nothing behind
        t0 = time.perf_counter()
        model.fit(data.train.x, data.train.y)
        fit_seconds = time.perf_counter() - t0
    optimizer = make_optimizer(cfg, model) if model.is_network else None
    check_room(runs_dir if run_dir is None else Path(run_dir).parent, _checkpoint_bytes(model, optimizer))
    run_name = name or cfg.name
    run_dir = create_run_dir(runs_dir, run_name) if run_dir is None else make_exact_dir(run_dir)
    with RunLock(run_dir):
        return _train(cfg, run_dir, run_name, model, data, gens, optimizer, previous, started, started_at,
                      base_dir=base_dir, callbacks=callbacks, quiet=quiet, should_stop=should_stop,
                      overrides=overrides, fit_seconds=fit_seconds, resume_from=resume_from)


def _checkpoint_bytes(model, optimizer) -> int:
    """About what a run's checkpoints take on disk: best and last, and last's temporary copy while it is written."""
    arrays = sum(a.nbytes for a in model.state().values())
    slots = len(getattr(optimizer, "slot_names", ())) if optimizer is not None else 0
    return 3 * arrays * (1 + slots) + (1 << 20)


def _train(cfg, run_dir: Path, run_name: str, model, data, gens, optimizer, previous, started: float,
           started_at: str, *, base_dir, callbacks, quiet, should_stop, overrides, fit_seconds,
           resume_from) -> RunResult:
    """The run in its (locked) directory: callbacks, resume state, the loop, the summary."""
    from mlcli.workflows.build import override_items

    write_config(run_dir, cfg.resolved())
    run = TrainingRun(config=cfg, model=model, data=data, gens=gens, optimizer=optimizer,
                      schedule=make_schedule(cfg) if model.is_network else None, augment=augmenter(cfg),
                      run_dir=run_dir)
    run.summary.update({"run_dir": str(run_dir), "name": run_name, "seed": cfg.seed, "model": cfg.model.type,
                        "task": model.task, "n_train": data.train.n, "n_val": data.val.n, "n_test": data.test.n,
                        "started_at": started_at, **provenance(base_dir, override_items(overrides))})
    best = _best_checkpoint(cfg, run, data)
    cbs = CallbackList([MetricsLogger(run_dir), best,
                        *([EarlyStopping(cfg.train.early_stopping)] if model.is_network and
                          cfg.train.early_stopping else []),
                        *([Diagnostics(run_dir)] if cfg.train.diagnostics else []),
                        *_progress(quiet, cfg), *callbacks,
                        LastCheckpoint(run_dir / "checkpoints" / "last.npz", every=cfg.train.checkpoint_every,
                                       seconds=cfg.train.checkpoint_seconds)])
    run.callbacks = cbs
    if previous is not None:
        last = previous["last"]
        run.restore(last.meta["resume"], model_state=last.model.state(), optimizer_state=last.optimizer_state,
                    epoch=int(last.meta["epoch"]))
        if previous["best"] is not None:
            best.resume_from(previous["best_path"], previous["best"].model.state(),
                             previous["best"].meta.get("metrics") or {})
        run.summary["resumed_from"] = {"run_dir": str(resume_from), "epoch": run.start_epoch}
    try:
        run_loop(run, cbs, should_stop=should_stop or (lambda: False), fit_seconds=fit_seconds)
    except Exception:
        if run.status == "diverged":
            run.summary.update(_outcome(run, best, started))
            write_summary(run_dir, run.summary)
        raise
    run.summary["test"] = best.evaluate_best(run, data.test)
    run.summary.update(_outcome(run, best, started))
    write_summary(run_dir, run.summary)
    return RunResult(run_dir=run_dir, status=run.status, summary=run.summary, history=run.history)


def _best_checkpoint(cfg, run: TrainingRun, data) -> BestCheckpoint:
    path = run.run_dir / "checkpoints" / "best.npz"
    if not run.model.is_network:
        return BestCheckpoint(path, None)
    stopping = cfg.train.early_stopping
    monitor = stopping.monitor if stopping else "val_loss"
    if data.val.n == 0 and monitor.startswith("val_"):
        monitor = "train_" + monitor.removeprefix("val_")
    run.summary["monitor"] = monitor
    return BestCheckpoint(path, monitor, stopping.mode if stopping else "auto",
                          restore_at_end=bool(stopping and stopping.restore_best))


def _progress(quiet: bool, cfg) -> list:
    if quiet:
        return []
    from mlcli.training.progress import ProgressPrinter

    return [ProgressPrinter(epochs=cfg.train.epochs if not cfg.is_fitted_in_closed_form() else 1)]


def _outcome(run: TrainingRun, best: BestCheckpoint, started: float) -> dict:
    return {"status": run.status, "epochs_completed": len(run.history), "best_epoch": best.best_epoch,
            "best": best.best_record, "final": run.history[-1] if run.history else {},
            "ended_at": utc_now(), "seconds": time.time() - started}


def _load_previous(run_dir: Path, model, cfg) -> dict:
    """The previous run's last checkpoint (and best, when there is one), checked against this model."""
    from mlcli.runs.snapshot import load_model

    last = load_model(run_dir / "checkpoints" / "last.npz")
    if "resume" not in last.meta:
        raise ConfigError(f"{run_dir}: its last.npz holds no resume state (a classical model, or written by "
                          f"another mlcli); start a new run instead")
    if last.model.state_specs() != model.state_specs():
        raise ConfigError(f"{run_dir}: its model differs from this config's; resume with the run's own config "
                          f"({run_dir / 'config.yaml'})")
    done = int(last.meta["epoch"])
    if done >= cfg.train.epochs:
        raise ConfigError(f"{run_dir}: already trained to epoch {done} of train.epochs {cfg.train.epochs}; "
                          f"nothing to resume (pass --epochs N with N > {done} to train further)")
    best_path = run_dir / "checkpoints" / "best.npz"
    best = load_model(best_path) if best_path.is_file() else None
    return {"last": last, "best": best, "best_path": best_path}
