"""One training run from a validated config to a finished run directory. The CLI's `train` is a shell over this.

    result = run_training(config, runs_dir=Path("runs"))
    result.run_dir, result.status, result.summary["test"]

Statuses: `completed`, `early_stopped`, `interrupted` (Ctrl-C / SIGTERM: `last.npz` and the summary are written
first), `diverged` (NaN/inf loss: the best checkpoint so far is kept, a DivergenceError is raised after the summary
is written).
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import mlcli
from mlcli.data.pipeline import PreparedData, prepare
from mlcli.errors import ConfigError, DivergenceError
from mlcli.models.context import BuildContext, compute_dtype
from mlcli.models.registry import build_model, n_outputs
from mlcli.runs.rundir import MetricsWriter, create_run_dir, make_exact_dir, write_config, write_summary
from mlcli.runs.snapshot import save_model
from mlcli.seeding import generators
from mlcli.train.callbacks import BestTracker, EarlyStopping
from mlcli.train.trainer import BatchEvent, TrainingStopped, fit


@dataclass
class RunResult:
    run_dir: Path
    status: str
    summary: dict
    history: list[dict] = field(default_factory=list)


@dataclass
class Hooks:
    """What the caller wants to hear about; all optional."""

    on_start: Callable[[dict], None] | None = None
    on_batch: Callable[[BatchEvent], None] | None = None
    on_epoch: Callable[[dict], None] | None = None
    should_stop: Callable[[], bool] = lambda: False


def setup(config, base_dir: Path | None = None, data: PreparedData | None = None):
    """Generators, prepared data and a freshly built model for `config`."""
    gens = generators(config.seed)
    if data is None:
        data = prepare(config.data, gens, dtype=compute_dtype(config), base_dir=base_dir)
    n_feat = int(np.prod(data.train.input_shape))
    if config.model.type == "autoencoder" and data.train.x.ndim > 2 and not config.is_image_data():
        raise ConfigError("autoencoder needs tabular or image data")
    ctx = BuildContext(input_shape=data.train.input_shape,
                       n_outputs=n_outputs(config, data.n_classes, data.n_targets, n_feat),
                       dtype=compute_dtype(config), init_rng=gens.init, dropout_rng=gens.dropout)
    if config.loss_config() is not None and config.loss_config().type == "sigmoid_bce" and data.n_classes != 2:
        raise ConfigError(f"loss.type sigmoid_bce needs exactly 2 classes; the data has {data.n_classes}")
    return gens, data, build_model(config, ctx)


def make_optimizer(config):
    """The configured optimizer (ConfigError for values only the optimizer itself can judge)."""
    opt_cfg = config.train.optimizer
    hyper = opt_cfg.model_dump(exclude={"type"})
    if opt_cfg.type == "newton":
        from mlcli.optim.newton import Newton

        return Newton(**hyper)
    from mlcli.optim.optimizers import make_optimizer as make

    return make(opt_cfg.type, **hyper)


def make_schedule(config):
    from mlcli.optim.schedules import make_schedule as make

    sched = config.train.schedule
    base_lr = getattr(config.train.optimizer, "lr", 1.0)
    try:
        return make(sched.type, base_lr=base_lr, epochs=config.train.epochs, **sched.model_dump(exclude={"type"}))
    except ValueError as err:
        raise ConfigError(f"train.schedule: {err}") from None


def versions() -> dict:
    return {"mlcli": mlcli.__version__, "numpy": np.__version__, "python": platform.python_version()}


def run_training(config, *, runs_dir: Path = Path("runs"), name: str | None = None,
                 base_dir: Path | None = None, hooks: Hooks | None = None,
                 data: PreparedData | None = None, run_dir: Path | None = None,
                 resume: Path | None = None) -> RunResult:
    """Train (or fit) the model `config` describes and write its run directory.

    `data` lets cross validation pass a fold's splits; `run_dir` an exact (new) directory for the run.
    `resume`: a previous run directory whose `last.npz` this run continues from (weights, optimizer state,
    random generator states, best-epoch tracking), into a new run directory, up to `config.train.epochs`.
    """
    hooks = hooks or Hooks()
    started = time.time()
    gens, data, model = setup(config, base_dir, data)
    previous = _load_previous(Path(resume), model) if resume is not None else None
    fit_seconds = None
    if not model.is_network:  # fit before creating the run directory: a failing fit leaves nothing behind
        t0 = time.perf_counter()
        model.fit(data.train.x, data.train.y)
        fit_seconds = time.perf_counter() - t0
    optimizer = make_optimizer(config) if model.is_network else None
    if getattr(optimizer, "is_newton", False):
        from mlcli.optim.newton import check_hessian_memory

        try:
            check_hessian_memory(model.net.num_params(), config.train.optimizer.max_memory_mb)
        except ValueError as err:
            raise ConfigError(f"train.optimizer.max_memory_mb: {err}; raise it or use a first-order "
                              f"optimizer") from None
    schedule = make_schedule(config) if model.is_network else None
    run_dir = create_run_dir(runs_dir, name or config.name) if run_dir is None else make_exact_dir(run_dir)
    write_config(run_dir, config.resolved())
    if hooks.on_start:
        hooks.on_start({"run_dir": str(run_dir), "n_train": data.train.n, "n_val": data.val.n,
                        "n_test": data.test.n, "model": config.model.type})
    writer = MetricsWriter(run_dir)
    ckpt = run_dir / "checkpoints"
    summary = {"run_dir": str(run_dir), "name": config.name, "seed": config.seed, "model": config.model.type,
               "task": model.task, "n_train": data.train.n, "n_val": data.val.n, "n_test": data.test.n,
               "versions": versions()}
    if not model.is_network:
        return _record_classical(config, model, data, run_dir, writer, summary, started, hooks, fit_seconds)

    monitor = config.train.early_stopping.monitor if config.train.early_stopping else "val_loss"
    if data.val.n == 0 and monitor.startswith("val_"):
        monitor = "train_" + monitor.removeprefix("val_")
    best = BestTracker(monitor, config.train.early_stopping.mode if config.train.early_stopping else "auto")
    stopper = EarlyStopping(config.train.early_stopping) if config.train.early_stopping else None
    augment = _augmenter(config)
    history: list[dict] = []
    best_state = None
    start_epoch = 0
    if previous is not None:
        start_epoch, best_state = _continue_from(previous, model, optimizer, gens, best, stopper, ckpt)
        summary["resumed_from"] = {"run_dir": str(resume), "epoch": start_epoch}
    status = "completed"
    summary["monitor"] = monitor
    boundary = _snapshot(model, optimizer, gens, best, stopper, start_epoch)
    try:
        for record in fit(model, optimizer, schedule, data, config.train, gens, augment=augment,
                          should_stop=hooks.should_stop, on_batch=hooks.on_batch, start_epoch=start_epoch):
            history.append(record)
            writer.write(record)
            if best.update(record):
                best_state = model.state()
                save_model(ckpt / "best.npz", config, model, data, epoch=record["epoch"], metrics=record)
            if hooks.on_epoch:
                hooks.on_epoch(record)
            stopping = stopper is not None and stopper.update(record)
            boundary = _snapshot(model, optimizer, gens, best, stopper, record["epoch"])
            if stopping:
                status = "early_stopped"
                summary["stopped_epoch"] = stopper.stopped_epoch
                break
    except TrainingStopped as stop:
        status = "interrupted"
        summary["stopped_at"] = {"epoch": stop.epoch, "step": stop.step}
        # last.npz holds the state at the end of the last completed epoch, so that resuming redoes the
        # interrupted epoch exactly as an uninterrupted run would have
        model.load_state(boundary["model"])
        optimizer.load_state_dict(boundary["optimizer"])
    except DivergenceError as err:
        summary.update(_outcome(history, best, "diverged", started))
        summary["error"] = str(err)
        write_summary(run_dir, summary)
        raise
    last_epoch = history[-1]["epoch"] if history else start_epoch
    restore = config.train.early_stopping.restore_best if config.train.early_stopping else False
    final_state = model.state()
    if restore and best_state is not None:  # Keras' restore_best_weights: the run ends on the best weights
        model.load_state(best_state)
        summary["final_weights"] = f"best (epoch {best.best_epoch}, restored)"
    save_model(ckpt / "last.npz", config, model, data, epoch=last_epoch,
               metrics=history[-1] if history else {}, optimizer=optimizer,
               extra={"resume": {"rng": boundary["rng"], "tracking": boundary["tracking"]}})
    if best_state is None:  # no epoch finished (or none had a finite monitor): last is the best we have
        save_model(ckpt / "best.npz", config, model, data, epoch=last_epoch,
                   metrics=history[-1] if history else {})
    else:
        model.load_state(best_state)
        summary["test"] = model.evaluate(data.test.x, data.test.y) if data.test.n else {}
        if not restore:
            model.load_state(final_state)
    summary.update(_outcome(history, best, status, started))
    write_summary(run_dir, summary)
    return RunResult(run_dir=run_dir, status=status, summary=summary, history=history)


def _snapshot(model, optimizer, gens, best: BestTracker, stopper, epoch: int) -> dict:
    """Everything a resume needs, as it is at the end of `epoch` (copies)."""
    return {"epoch": epoch, "model": model.state(), "optimizer": optimizer.state_dict(),
            "rng": {name: getattr(gens, name).bit_generator.state for name in RESUMED_STREAMS},
            "tracking": {"best": best.best, "best_epoch": best.best_epoch,
                         "wait": stopper.wait if stopper is not None else 0}}


RESUMED_STREAMS = ("shuffle", "dropout", "augment")


def _load_previous(run_dir: Path, model):
    """The previous run's last checkpoint (and best, when there is one), checked against this model."""
    from mlcli.runs.snapshot import load_model

    last = load_model(run_dir / "checkpoints" / "last.npz")
    if "resume" not in last.meta:
        raise ConfigError(f"{run_dir}: its last.npz holds no resume state (a classical model, or written by "
                          f"another mlcli); start a new run instead")
    if last.model.state_specs() != model.state_specs():
        raise ConfigError(f"{run_dir}: its model differs from this config's; resume with the run's own config "
                          f"({run_dir / 'config.yaml'})")
    best_path = run_dir / "checkpoints" / "best.npz"
    best = load_model(best_path) if best_path.is_file() else None
    return {"dir": run_dir, "last": last, "best": best}


def _continue_from(previous: dict, model, optimizer, gens, best: BestTracker, stopper, ckpt: Path):
    """Load the previous run's state into this one; returns (start epoch, best weights or None)."""
    import shutil

    last = previous["last"]
    model.load_state(last.model.state())
    if last.optimizer_state is not None:
        optimizer.load_state_dict(last.optimizer_state)
    state = last.meta["resume"]
    try:
        for name in RESUMED_STREAMS:
            getattr(gens, name).bit_generator.state = state["rng"][name]
    except (KeyError, TypeError, ValueError) as err:
        raise ConfigError(f"{previous['dir']}: its generator states cannot be restored: {err}") from None
    tracking = state.get("tracking", {})
    best.best, best.best_epoch = tracking.get("best"), tracking.get("best_epoch")
    if stopper is not None:
        stopper.wait = int(tracking.get("wait", 0))
        stopper.tracker.best, stopper.tracker.best_epoch = best.best, best.best_epoch
    best_state = None
    if previous["best"] is not None:
        shutil.copyfile(previous["dir"] / "checkpoints" / "best.npz", ckpt / "best.npz")
        best_state = previous["best"].model.state()
    return int(last.meta["epoch"]), best_state


def _outcome(history: list[dict], best: BestTracker, status: str, started: float) -> dict:
    best_record = next((r for r in history if r["epoch"] == best.best_epoch), None)
    return {"status": status, "epochs_completed": len(history), "best_epoch": best.best_epoch,
            "best": best_record or {}, "final": history[-1] if history else {},
            "seconds": time.time() - started}


def _record_classical(config, model, data, run_dir, writer, summary, started, hooks, fit_seconds) -> RunResult:
    """Metrics, checkpoints and summary of a fitted classical model (one "epoch")."""
    record = {"epoch": 1}
    record.update({f"train_{k}": v for k, v in model.evaluate(data.train.x, data.train.y).items()})
    if data.val.n:
        record.update({f"val_{k}": v for k, v in model.evaluate(data.val.x, data.val.y).items()})
    record["seconds"] = fit_seconds
    writer.write(record)
    if hooks.on_epoch:
        hooks.on_epoch(record)
    ckpt = run_dir / "checkpoints"
    for which in ("best.npz", "last.npz"):
        save_model(ckpt / which, config, model, data, epoch=1, metrics=record)
    summary["test"] = model.evaluate(data.test.x, data.test.y) if data.test.n else {}
    summary.update({"status": "completed", "epochs_completed": 1, "best_epoch": 1, "best": record,
                    "final": record, "seconds": time.time() - started})
    write_summary(run_dir, summary)
    return RunResult(run_dir=run_dir, status="completed", summary=summary, history=[record])


def _augmenter(config):
    aug = config.data.augment
    if not (aug.hflip or aug.crop_padding or aug.noise_std):
        return None
    from mlcli.data.augment import Augmenter

    return Augmenter(hflip=aug.hflip, crop_padding=aug.crop_padding, noise_std=aug.noise_std)
