"""Hyperparameter sweeps: `mlcli sweep` and `mlcli.sweep`.

    result = sweep("configs/sweeps/quickstart_grid.yaml", workers=2)          # a sweep file, or a dict of one
    result.best["overrides"], result.best["score"], result.best_config, result.trials[0]
    sweep(None, resume="runs/lr-20261201-101500")                            # run what an interrupted sweep lacks

The sweep directory `runs/<name>-<stamp>/` holds sweep.yaml (the sweep with its base config inlined, so that it
resumes without the original files), sweep.jsonl (the ledger, mlcli.sweeps.ledger), trials/<trial-id>/ (a normal
run directory per trial; a cv directory for `cv: K`; seed-1/ ... for `seeds: S`), and at the end best.yaml (the
base config with the best trial's overrides, ready for `mlcli train`) and summary.json. Only this process writes
there; trials run through an executor (mlcli.sweeps.executors: serial, processes or Dask) as pure tasks
(mlcli.workflows.sweep_trial).

Seeds: trial i runs with seed SeedSequence([seed, i]) (with `seeds: S`, [seed, i, s]); every trial shares the data
and its split (`data.seed` = the sweep's seed unless the base or the sweep sets it), so trials are compared on the
same validation samples and, with `cv`, the same folds. A trial that fails (a bad value, a diverging loss, a worker
that keeps dying) is recorded as `failed` with its message and the sweep goes on.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlcli.errors import ConfigError, MlcliError

FINAL = ("completed", "failed", "pruned")


@dataclass
class SweepResult:
    """trials: one row per trial (trial, index, overrides, status, score, std, scores, p_value, epochs, seconds,
    error, metrics), best first among the scored; best: the best row (None when no trial has a score)."""

    sweep_dir: Path
    status: str
    metric: str
    mode: str
    trials: list[dict] = field(default_factory=list)
    best: dict | None = None
    best_config: dict | None = None

    def to_dict(self) -> dict:
        return {"sweep_dir": str(self.sweep_dir), "status": self.status, "metric": self.metric, "mode": self.mode,
                "best": self.best, "best_config": self.best_config, "trials": self.trials}


def trial_seed(sweep_seed: int, index: int, repeat: int | None = None) -> int:
    """The run seed (63 bits) of trial `index` and of its `repeat`-th seed: from SeedSequence([sweep seed, index(,
    s)]). (SeedSequence ignores trailing zeros of its entropy, so repeat 0 is the trial's own seed.)"""
    entropy = [sweep_seed, index] + ([repeat] if repeat is not None else [])
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def sweep(spec=None, *, runs_dir: str | Path = "runs", workers: int | None = None, scheduler: str = "processes",
          scheduler_file: str | None = None, resume: str | Path | None = None,
          should_stop: Callable[[], bool] | None = None,
          on_event: Callable[[dict], None] | None = None) -> SweepResult:
    """Run a sweep: `spec` is a sweep file's path or its content as a dict (paths relative to the current
    directory); `resume` an interrupted sweep's directory (then `spec` is not needed). `on_event(progress)` hears
    of every trial that starts or ends (for live tables); `should_stop()` is polled while trials run: True stops
    submitting, lets running trials finish and returns with status `interrupted`."""
    plan = _Plan.open(spec, Path(runs_dir), resume)
    from mlcli.sweeps.executors import make_executor

    try:
        executor = make_executor(scheduler, workers, scheduler_file=scheduler_file)
    except MlcliError:  # a bad --scheduler / --workers, an unreachable cluster: leave no empty sweep behind
        if resume is None:
            shutil.rmtree(plan.dir, ignore_errors=True)
        raise
    with executor:
        status = _Driver(plan, executor, should_stop or (lambda: False), on_event or (lambda e: None)).run()
    return plan.finish(status)


class _Plan:
    """The sweep's definition and its directory: which trials exist, what each runs, what is recorded."""

    def __init__(self, spec, base, folder: Path, sweep_dir: Path) -> None:
        from mlcli.models.metrics import mode_of
        from mlcli.sweeps.ledger import Ledger
        from mlcli.sweeps.space import SearchSpace

        self.spec, self.base, self.folder, self.dir = spec, base, folder, sweep_dir
        self.mode = mode_of(spec.metric) if spec.mode == "auto" else spec.mode
        self.space = SearchSpace(parameters={k: _dimension(v) for k, v in spec.parameters.items()},
                                 zipped=[dict(g) for g in spec.zip])
        self.ledger = Ledger(sweep_dir / "sweep.jsonl")
        self.records = self.ledger.latest()
        self.grid = self.space.grid() if spec.method == "grid" else None
        self.n_trials = len(self.grid) if self.grid is not None else spec.trials
        self.started = time.time()

    @classmethod
    def open(cls, spec, runs_dir: Path, resume) -> _Plan:
        from mlcli.config.sweep_schema import base_folder, build_sweep, load_sweep
        from mlcli.runs.rundir import create_run_dir

        if resume is not None:
            sweep_dir = Path(resume)
            if not (sweep_dir / "sweep.yaml").is_file():
                raise ConfigError(f"{sweep_dir}: not a sweep directory (no sweep.yaml)")
            loaded, base, _ = load_sweep(sweep_dir / "sweep.yaml")
            return cls(loaded, base, sweep_dir, sweep_dir)
        if spec is None:
            raise ConfigError("a sweep needs a sweep file (or --resume SWEEP_DIR)")
        if isinstance(spec, dict):
            loaded, base, folder = build_sweep(spec, "sweep", {}, Path.cwd())
        else:
            loaded, base, folder = load_sweep(Path(spec))
        from mlcli.workflows.build import absolutize_data_path

        base = absolutize_data_path(base, base_folder(loaded, folder))
        _check(loaded, base)  # before anything is written
        plan_dir = create_run_dir(runs_dir, loaded.name, checkpoints=False)
        plan = cls(loaded, base, folder, plan_dir)
        (plan_dir / "trials").mkdir()
        plan._write_spec()
        return plan

    def _write_spec(self) -> None:
        from mlcli.config.dump import dump_config
        from mlcli.runs.atomic import atomic_write_text

        data = self.spec.model_dump(mode="json", exclude_defaults=False)
        data["base"] = self.base.resolved()
        atomic_write_text(self.dir / "sweep.yaml", dump_config(data))

    # ------------------------------------------------------------------------------------------------ trials
    def trial_id(self, index: int) -> str:
        return f"t{index:04d}"

    def overrides(self, index: int, suggested: dict | None = None) -> dict:
        if self.grid is not None:
            return self.grid[index]
        if suggested is not None:
            return suggested
        return self.space.sample(self.spec.seed, index)

    def config_for(self, overrides: dict):
        """The trial's validated config: the base with `overrides` (ConfigError for a bad value)."""
        from mlcli.config.load import build_config
        from mlcli.workflows.build import override_items

        data = self.base.resolved()
        varies_data_seed = "data.seed" in overrides
        if not varies_data_seed and data["data"].get("seed") is None:
            data["data"]["seed"] = self.spec.seed  # every trial on the same data, split and folds
        return build_config(data, "sweep", {}, override_items(overrides))

    def seeds(self, index: int) -> list[int]:
        if self.spec.seeds > 1:
            return [trial_seed(self.spec.seed, index, s) for s in range(self.spec.seeds)]
        return [trial_seed(self.spec.seed, index)]

    def task(self, index: int, overrides: dict, cfg, epochs: int | None = None, resume_files=None) -> dict:
        trial = self.trial_id(index)
        return {"trial": trial, "index": index, "config": cfg.resolved(), "seeds": self.seeds(index),
                "metric": self.spec.metric, "mode": self.mode, "cv": self.spec.cv, "epochs": epochs,
                "resume_files": resume_files, "keep_checkpoints": self.spec.save != "none",
                "dest": str((self.dir / "trials" / trial).resolve())}

    # ------------------------------------------------------------------------------------------------ results
    def record(self, index: int, overrides: dict, outcome: dict, status: str) -> dict:
        record = {"trial": self.trial_id(index), "index": index, "overrides": overrides,
                  "seeds": self.seeds(index), "status": status, "score": _finite(outcome.get("score")),
                  "scores": [_finite(v) for v in outcome.get("scores", [])], "metrics": outcome.get("metrics", {}),
                  "epochs": outcome.get("epochs", 0), "seconds": round(float(outcome.get("seconds", 0.0)), 4),
                  "attempts": outcome.get("attempts", 1), "error": outcome.get("error")}
        self.ledger.append(record)
        self.records[record["trial"]] = record
        return record

    def write_trial_files(self, trial: str, files: dict[str, bytes]) -> None:
        """Put a trial's files in place, replacing an earlier rung's, through a temporary folder."""
        target = self.dir / "trials" / trial
        staging = self.dir / "trials" / f".{trial}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        for rel, data in files.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        staging.mkdir(parents=True, exist_ok=True)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)

    def checkpoint_files(self, trial: str) -> dict[str, bytes]:
        """The run directory of a paused (ASHA) trial, to continue it."""
        root = self.dir / "trials" / trial
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    def drop_checkpoints(self, trial: str) -> None:
        for path in (self.dir / "trials" / trial).rglob("*.npz"):
            path.unlink()

    def ranked(self) -> list[dict]:
        """Scored trials best first (ties by index), then the rest by index."""
        scored = [r for r in self.records.values() if r["status"] in ("completed", "pruned", "paused")
                  and r["score"] is not None]
        sign = 1.0 if self.mode == "min" else -1.0
        full = max((r["epochs"] for r in scored), default=0)
        # a pruned trial never beats one that ran its whole budget
        scored.sort(key=lambda r: (r["status"] != "completed" and r["epochs"] < full, sign * r["score"], r["index"]))
        rest = sorted((r for r in self.records.values() if r not in scored), key=lambda r: r["index"])
        return scored + rest

    def finish(self, status: str) -> SweepResult:
        from mlcli.runs.atomic import atomic_write_text
        from mlcli.runs.rundir import clean
        from mlcli.sweeps.stats import mean_std, paired_t_test

        ranked = self.ranked()
        best = ranked[0] if ranked and ranked[0]["score"] is not None else None
        rows = []
        for r in ranked:
            row = {k: r[k] for k in ("trial", "index", "overrides", "status", "score", "scores", "epochs",
                                     "seconds", "error", "metrics")}
            valid = [v for v in r["scores"] if v is not None]
            row["std"] = mean_std(valid)[1] if len(valid) > 1 else None
            row["p_value"] = None
            if best is not None and r is not best and len(valid) > 1 and len(valid) == len(best["scores"]) \
                    and None not in best["scores"]:
                row["p_value"] = paired_t_test(best["scores"], valid)[1]
            rows.append(row)
        best_row = rows[0] if best is not None else None
        best_config = None
        if best is not None:
            best_config = self.config_for(best["overrides"]).resolved()
            best_config["seed"] = best["seeds"][0]
            if status == "completed":
                from mlcli.config.dump import dump_config

                atomic_write_text(self.dir / "best.yaml", dump_config(best_config))
            if self.spec.save == "best":
                for r in ranked[1:]:
                    self.drop_checkpoints(r["trial"])
        counts = {s: sum(1 for r in self.records.values() if r["status"] == s) for s in (*FINAL, "paused")}
        summary = {"sweep_dir": str(self.dir), "name": self.spec.name, "status": status, "method": self.spec.method,
                   "metric": self.spec.metric, "mode": self.mode, "n_trials": self.n_trials, "counts": counts,
                   "best": best_row, "top": rows[:10], "seconds": time.time() - self.started}
        atomic_write_text(self.dir / "summary.json", json.dumps(clean(summary), indent=2, allow_nan=False) + "\n")
        return SweepResult(sweep_dir=self.dir, status=status, metric=self.spec.metric, mode=self.mode,
                           trials=rows, best=best_row, best_config=best_config)


class _Driver:
    """Keeps the executor busy with the next trials (ASHA promotions first), records results as they arrive."""

    def __init__(self, plan: _Plan, executor, should_stop, on_event) -> None:
        self.plan, self.executor, self.should_stop, self.on_event = plan, executor, should_stop, on_event
        self.running: dict[str, tuple[int, dict, int | None]] = {}  # trial -> (index, overrides, epochs)
        spec = plan.spec
        self.asha = None
        if spec.pruner is not None:
            from mlcli.sweeps.asha import Asha

            self.asha = Asha(plan.base.train.epochs, spec.pruner.min_epochs, spec.pruner.reduction_factor,
                             plan.mode)
        self.study = self._study() if spec.method == "tpe" else None
        self.todo = [i for i in range(plan.n_trials) if plan.trial_id(i) not in plan.records]
        self._restore_asha()
        self.data = self._shared_data()
        self.best_score: float | None = None

    def _study(self):
        try:
            import optuna
        except ImportError:
            raise ConfigError("method tpe needs the optional extra 'optuna': pip install optuna") from None
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = optuna.samplers.TPESampler(seed=self.plan.spec.seed)
        study = optuna.create_study(direction="minimize" if self.plan.mode == "min" else "maximize",
                                    sampler=sampler)
        dists = self.plan.space.optuna_distributions()
        for r in sorted(self.plan.records.values(), key=lambda r: r["index"]):  # the ledger is the record
            state = optuna.trial.TrialState.COMPLETE if r["score"] is not None else optuna.trial.TrialState.FAIL
            study.add_trial(optuna.trial.create_trial(
                params=self.plan.space.to_optuna(r["overrides"]), distributions=dists, state=state,
                value=r["score"] if state == optuna.trial.TrialState.COMPLETE else None))
        self.asked: dict[int, Any] = {}
        return study

    def _restore_asha(self) -> None:
        """Rebuild the rungs from every ledger record (a resumed sweep promotes as the interrupted one would)."""
        if self.asha is None:
            return
        for r in self.plan.ledger.records():
            if r["status"] in ("paused", "completed", "pruned") and r["epochs"] in self.asha.rungs:
                for epochs in self.asha.rungs[:self.asha.rung_of(r["epochs"]) + 1]:
                    self.asha.started(r["trial"], epochs)
                self.asha.report(r["trial"], r["epochs"], _nan(r["score"]))

    def _shared_data(self):
        """The dataset, read once here and sent once to each worker, when no trial changes the data section
        (else each trial reads its own; so do cv trials, whose folds are split from it)."""
        varied = [*self.plan.spec.parameters, *(k for g in self.plan.spec.zip for k in g)]
        if not self.todo or self.plan.spec.cv or any(k.split(".")[0] == "data" for k in varied):
            return None
        from mlcli.data.pipeline import load_all
        from mlcli.seeding import generators

        cfg = self.plan.config_for({})
        return self.executor.broadcast(load_all(cfg.data, generators(cfg.seed), None, cfg.target_tasks()))

    # ------------------------------------------------------------------------------------------------ loop
    def run(self) -> str:
        stopping = False
        while True:
            if not stopping and self.should_stop():
                stopping = True
                self.executor.cancel_pending()
            while not stopping and len(self.running) < self.executor.workers and self._submit_next():
                pass
            if not self.running:
                break
            result = self.executor.next_result(timeout=0.25)
            if not stopping and self.should_stop():
                stopping = True
                self.executor.cancel_pending()
            if result is not None:
                self._handle(result)
        if stopping:
            return "interrupted"
        self._finalize_pruned()
        return "completed"

    def _submit_next(self) -> bool:
        plan = self.plan
        epochs, resume_files = None, None
        if self.asha is not None:
            job = self.asha.next_job(new_trials_left=bool(self.todo))
            if job is None:
                return False
            kind, trial, epochs = job
            if kind == "promote":
                record = plan.records[trial]
                index, overrides = record["index"], record["overrides"]
                self.asha.started(trial, epochs)
                resume_files = plan.checkpoint_files(trial)
                return self._send(index, overrides, epochs, resume_files)
        if not self.todo:
            return False
        index = self.todo.pop(0)
        suggested = None
        if self.study is not None:
            trial = self.study.ask(plan.space.optuna_distributions())
            self.asked[index] = trial
            suggested = plan.space.from_optuna(trial.params)
        return self._send(index, plan.overrides(index, suggested), epochs, resume_files)

    def _send(self, index: int, overrides: dict, epochs: int | None, resume_files) -> bool:
        plan = self.plan
        try:
            cfg = plan.config_for(overrides)
        except MlcliError as err:  # a bad value: this trial fails, the sweep goes on
            self._record(index, overrides, {"error": " ".join(str(err).split())}, "failed")
            return True
        if self.asha is not None and epochs is not None and epochs >= cfg.train.epochs:
            epochs = None  # the last rung is the full run
        trial = plan.trial_id(index)
        self.running[trial] = (index, overrides, epochs)
        from mlcli.workflows.sweep_trial import run_trial

        self.executor.submit(trial, run_trial, plan.task(index, overrides, cfg, epochs, resume_files), self.data)
        self._event("started", trial)
        return True

    def _handle(self, result) -> None:
        index, overrides, _epochs = self.running.pop(result.key)
        outcome = result.value if result.error is None else {"status": "failed", "error": result.error}
        outcome["attempts"] = result.attempts
        if outcome.get("files"):
            self.plan.write_trial_files(result.key, outcome.pop("files"))
        status = outcome["status"]
        if status == "completed" and self.asha is not None:
            reached = outcome["epochs"]
            full = self.plan.base.train.epochs
            if reached in self.asha.rungs:
                self.asha.report(result.key, reached, _nan(outcome["score"]))
            if reached < full and not outcome.get("stopped_early"):
                status = "paused"
        self._record(index, overrides, outcome, status)

    def _record(self, index: int, overrides: dict, outcome: dict, status: str) -> None:
        plan = self.plan
        record = plan.record(index, overrides, outcome, status)
        if self.study is not None and status != "paused" and index in self.asked:
            import optuna

            trial = self.asked.pop(index)
            if record["score"] is not None:
                self.study.tell(trial, record["score"])
            else:
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        self._keep_checkpoints(record)
        self._event("ended", record["trial"], record)

    def _keep_checkpoints(self, record: dict) -> None:
        """save: best keeps only the best trial's checkpoints (a paused ASHA trial keeps them until the end)."""
        plan = self.plan
        if plan.spec.save != "best" or record["status"] == "paused":
            return
        score = record["score"]
        better = score is not None and (self.best_score is None or (
            score < self.best_score if plan.mode == "min" else score > self.best_score))
        if not better:
            plan.drop_checkpoints(record["trial"])
            return
        for r in plan.records.values():
            if r["trial"] != record["trial"] and r["status"] != "paused":
                plan.drop_checkpoints(r["trial"])
        self.best_score = score

    def _finalize_pruned(self) -> None:
        """Trials left on a rung below the top when nothing more can run: pruned at the epochs they reached."""
        for r in list(self.plan.records.values()):
            if r["status"] == "paused":
                if self.study is not None and r["index"] in self.asked:
                    import optuna

                    self.study.tell(self.asked.pop(r["index"]), state=optuna.trial.TrialState.PRUNED)
                self.plan.record(r["index"], r["overrides"], {**r, "attempts": r.get("attempts", 1)}, "pruned")
                if self.plan.spec.save != "all":
                    self.plan.drop_checkpoints(r["trial"])

    def _event(self, kind: str, trial: str, record: dict | None = None) -> None:
        records = self.plan.records.values()
        counts = {s: sum(1 for r in records if r["status"] == s) for s in (*FINAL, "paused")}
        scored = [r for r in records if r["score"] is not None and r["status"] != "failed"]
        best = None
        if scored:
            pick = min if self.plan.mode == "min" else max
            best = pick(scored, key=lambda r: r["score"])
        done = sum(counts[s] for s in FINAL)
        elapsed = time.time() - self.plan.started
        self.on_event({"kind": kind, "trial": trial, "record": record, "running": len(self.running),
                       "counts": counts, "done": done, "total": self.plan.n_trials, "best": best,
                       "elapsed": elapsed, "metric": self.plan.spec.metric})


def _check(spec, base) -> None:
    """What the sweep file's schema cannot know alone: the metric and the pruner against the base config."""
    available = [f"{split}_{m}" for split in ("train", "val") for m in base.metric_names()]
    if spec.metric not in available:
        raise ConfigError(f"metric: '{spec.metric}' is not a metric of the base config's {base.model.type}; "
                          f"available: {', '.join(available)}")
    if spec.pruner is not None and base.is_fitted_in_closed_form():
        raise ConfigError(f"pruner: {base.model.type} is fitted in one step; asha needs epochs to prune")
    if spec.pruner is not None and "train.epochs" in [*spec.parameters, *(k for g in spec.zip for k in g)]:
        raise ConfigError("pruner: asha's budget is the base config's train.epochs; do not vary train.epochs")


def _dimension(spec):
    from mlcli.sweeps.space import Choice, IntRange, LogUniform, Uniform

    if isinstance(spec, list):
        return Choice(tuple(spec))
    kind = spec.type
    if kind == "choice":
        return Choice(tuple(spec.values))
    if kind == "uniform":
        return Uniform(spec.low, spec.high)
    if kind == "loguniform":
        return LogUniform(spec.low, spec.high)
    return IntRange(spec.low, spec.high, getattr(spec, "step", 1))


def _finite(value):
    return float(value) if isinstance(value, (int, float)) and np.isfinite(value) else None


def _nan(value) -> float:
    return float("nan") if value is None else float(value)
