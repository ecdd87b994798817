"""Train an ensemble in one run (`model.ensemble`), called by `mlcli.workflows.train.run_config`.

    result = mlcli.train({"data": {"type": "digits"}, "model": {"type": "mlp", "ensemble": {"members": 5}}, ...})
    result.metrics                      # the ensemble's test metrics
    result.summary["members"]           # each member: its run directory, seed, status, best val and test metrics

The run directory holds the ensemble (`checkpoints/best.npz`: every member's best weights, `last.npz`: their last
weights, arrays `model.member.<i>.<name>`), config.yaml, summary.json and one metrics.jsonl line with the
ensemble's train/val metrics, and under `members/` the ordinary run directory of each member:

- independent members (`members: K`): `members/member-<i>/`, each the config's model without the ensemble section,
  its seed drawn from the run's SeedSequence (`member_seeds`), on the same split and standardization (its data
  seed fixed to the run's); `bagging`: each on its own bootstrap sample of the training split (`bootstrap_indices`,
  seeded by the run's seed), k-NN and the Gaussian classifier included. With `workers` > 1 the members train at
  once in processes (mlcli.sweeps.executors), each a pure task on one BLAS thread whose files this process
  writes (as `mlcli.cv(..., scheduler=...)` runs folds).
- `snapshot`: one run `members/run/` under cosine warm restarts; the weights at the end of each cycle
  (`mlcli.training.snapshots`), the last `members` of them (or all), are the members.

An interrupted member ends the run with status `interrupted` and no ensemble checkpoint. `mlcli resume` continues
such a run of independent members into a new run directory: a member that finished (completed, early stopped) is
copied as it is; one interrupted in this process is resumed from its last.npz, exactly (`mlcli.training.loop`);
one that never started (or ran in a worker process, whose files are written only when it ends) is trained. A
snapshot ensemble is not resumable: its cycle snapshots live in memory until the run ends (train it again).
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

import numpy as np

from mlcli.config.load import located
from mlcli.errors import ConfigError, DivergenceError
from mlcli.models.registry import member_config
from mlcli.runs.lock import RunLock
from mlcli.runs.provenance import provenance, utc_now
from mlcli.runs.rundir import MetricsWriter, create_run_dir, make_exact_dir, read_summary, write_config, write_summary
from mlcli.runs.snapshot import load_model, save_model

MEMBER_KEY = 0x656E73  # spawn key of the members' seed sequences: apart from mlcli.seeding's streams


def member_seeds(seed: int, k: int) -> list[int]:
    """The run seeds of K independent members, drawn from the run's SeedSequence (each < 2**63)."""
    return [int(np.random.SeedSequence(seed, spawn_key=(MEMBER_KEY, i)).generate_state(1, np.uint64)[0] >> 1)
            for i in range(k)]


def bootstrap_indices(n: int, seed: int, member: int) -> np.ndarray:
    """A bootstrap sample of range(n) for `member`: n indices drawn with replacement, seeded by the run's seed."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(MEMBER_KEY, member, 1))))
    return rng.integers(0, n, size=n)


def train_ensemble(cfg, *, base_dir=None, runs_dir: Path = Path("runs"), name=None, callbacks=(), quiet=True,
                   should_stop=None, overrides=None, data=None, run_dir=None, resume_from=None, loaded=None):
    """Train the members of `cfg.model.ensemble` and save their ensemble; returns a `RunResult`."""
    from mlcli.data.pipeline import prepare
    from mlcli.models.context import compute_dtype
    from mlcli.seeding import generators
    from mlcli.workflows.build import override_items
    from mlcli.workflows.train import RunResult

    ens = cfg.model.ensemble
    if resume_from is not None and ens.snapshot:
        raise ConfigError(f"{resume_from}: a snapshot ensemble run is not resumable (its cycle snapshots are kept in "
                          f"memory until the run ends); train it again")
    if cfg.is_fitted_in_closed_form() and not ens.snapshot and not ens.bagging:
        # an ensemble of existing fits (`mlcli ensemble CV_DIR`) may hold them; training them would repeat one fit
        raise ConfigError(located(cfg, f"model.ensemble.bagging: model.type {cfg.model.type} is fitted in closed "
                                       f"form, so its members would be identical; set bagging: true (a bootstrap "
                                       f"sample each)"))
    if resume_from is not None and all(_member_plan(resume_from, i, cfg.train.epochs)[0] == "done"
                                       for i in range(ens.members)):
        raise ConfigError(f"{resume_from}: every member already finished (train.epochs {cfg.train.epochs}); nothing "
                          f"to resume (pass --epochs N to train the members further)")
    started, started_at = time.time(), utc_now()
    if data is None:
        data = prepare(cfg.data, generators(cfg.seed), dtype=compute_dtype(cfg), base_dir=base_dir, loaded=loaded)
    run_name = name or cfg.name
    run_dir = create_run_dir(Path(runs_dir), run_name) if run_dir is None else make_exact_dir(Path(run_dir))
    with RunLock(run_dir):
        write_config(run_dir, cfg.resolved())
        summary = {"run_dir": str(run_dir), "name": run_name, "seed": cfg.seed, "model": cfg.model.type,
                   "task": cfg.task(),
                   "n_train": data.train.n, "n_val": data.val.n, "n_test": data.test.n, "started_at": started_at,
                   "ensemble": ens.model_dump(mode="json"),
                   **provenance(base_dir, override_items(overrides))}
        if resume_from is not None:
            summary["resumed_from"] = {"run_dir": str(resume_from)}
        options = {"base_dir": base_dir, "callbacks": callbacks, "quiet": quiet, "should_stop": should_stop}
        try:
            if ens.snapshot:
                rows, best_models, last_models, status = _snapshot_members(cfg, data, run_dir, options)
            else:
                rows, best_models, last_models, status = _independent_members(cfg, data, run_dir, options,
                                                                              resume_from)
        except DivergenceError as err:
            summary.update({"status": "diverged", "error": str(err), "ended_at": utc_now(),
                            "seconds": time.time() - started})
            write_summary(run_dir, summary)
            raise
        summary["members"] = rows
        history = _member_curve(rows)
        writer = MetricsWriter(run_dir)
        for record in history:
            writer.write(record)
        final: dict = {}
        if status == "completed":
            final, summary["test"] = _save_ensemble(cfg, data, run_dir, history, best_models, last_models)
        summary.update({"status": status, "epochs_completed": len(history), "best_epoch": None,
                        "best": final, "final": final, "ended_at": utc_now(), "seconds": time.time() - started})
        write_summary(run_dir, summary)
    return RunResult(run_dir=run_dir, status=status, summary=summary, history=history)


def _member_curve(rows: list[dict]) -> list[dict]:
    """metrics.jsonl of an ensemble run: per epoch, the mean of its members' records (of the one snapshot run's);
    the ensemble's own metrics are in summary.json (`best`, `final`, `test`). A resumed member's earlier epochs
    come from the run it was resumed from."""
    runs = list(dict.fromkeys(r["run_dir"] for r in rows))
    histories = [{r["epoch"]: r for r in _full_history(Path(d))} for d in runs]
    curve = []
    for epoch in range(1, max((max(h, default=0) for h in histories), default=0) + 1):
        records = [h[epoch] for h in histories if epoch in h]
        if not records:
            continue
        keys = [k for k in records[0] if k != "epoch" and all(isinstance(r.get(k), (int, float)) for r in records)]
        curve.append({"epoch": epoch, **{k: float(np.mean([r[k] for r in records])) for k in keys}})
    return curve


def _full_history(run_dir: Path, depth: int = 0) -> list[dict]:
    """A run's metrics records, preceded by those of the run it was resumed from (and so on), for the epochs
    before its own first."""
    from mlcli.runs.rundir import read_metrics

    records = read_metrics(run_dir)
    previous = ((read_summary(run_dir) or {}).get("resumed_from") or {}).get("run_dir")
    if previous and records and depth < 100 and Path(previous).is_dir():
        first = records[0]["epoch"]
        records = [r for r in _full_history(Path(previous), depth + 1) if r["epoch"] < first] + records
    return records


def _member_row(i: int, seed: int, summary: dict, status: str, run_dir: Path, **extra) -> dict:
    best = summary.get("best") or {}
    return {"member": i, "run_dir": str(run_dir), "seed": seed, "status": status,
            "best_epoch": summary.get("best_epoch"), "epochs_completed": summary.get("epochs_completed"),
            "val": {k.removeprefix("val_"): v for k, v in best.items() if k.startswith("val_")},
            "test": summary.get("test", {}), **extra}


def _member_configs(cfg) -> list:
    """Each member's config: the model without `ensemble`, its own seed, the run's data seed (the same split)."""
    base = member_config(cfg)
    data_seed = cfg.data.seed if cfg.data.seed is not None else cfg.seed
    base = base.model_copy(update={"data": cfg.data.model_copy(update={"seed": data_seed})})
    return [base.model_copy(update={"seed": s}) for s in member_seeds(cfg.seed, cfg.model.ensemble.members)]


def _member_data(cfg, data, i: int):
    if not cfg.model.ensemble.bagging:
        return data, None
    idx = bootstrap_indices(data.train.n, cfg.seed, i)
    return dataclasses.replace(data, train=data.train.subset(idx)), len(np.unique(idx))


def _independent_members(cfg, data, run_dir: Path, options: dict, resume_from: Path | None = None):
    from mlcli.workflows.train import run_config

    configs = _member_configs(cfg)
    members_dir = run_dir / "members"
    members_dir.mkdir()
    datas = [_member_data(cfg, data, i) for i in range(len(configs))]
    plans = [_member_plan(resume_from, i, cfg.train.epochs) for i in range(len(configs))]
    rows: dict[int, dict] = {}
    status = "completed"
    for i, (kind, old) in enumerate(plans):
        if kind == "done":  # finished in the run being resumed: kept as it is
            target = members_dir / f"member-{i + 1}"
            shutil.copytree(old, target)
            summary = read_summary(target) or {}
            rows[i] = _member_row(i, configs[i].seed, summary, summary.get("status", "completed"), target,
                                  **_unique(datas[i]))
    todo = [i for i in range(len(configs)) if i not in rows]
    if cfg.model.ensemble.workers > 1 and not any(plans[i][0] == "resume" for i in todo):
        parallel_rows, status = _parallel_members(cfg, configs, datas, members_dir, options["should_stop"], todo)
        rows.update(parallel_rows)
    else:
        # members run here; with workers > 1 (a resumed run) on one BLAS thread, as the worker processes would
        from contextlib import nullcontext

        from mlcli.training.threads import one_thread

        with one_thread() if cfg.model.ensemble.workers > 1 else nullcontext():
            for i in todo:
                kind, old = plans[i]
                run = run_config(configs[i], data=datas[i][0], run_dir=members_dir / f"member-{i + 1}",
                                 resume_from=old if kind == "resume" else None, **options)
                rows[i] = _member_row(i, configs[i].seed, run.summary, run.status, run.run_dir, **_unique(datas[i]))
                if run.status == "interrupted":
                    status = "interrupted"
                    break
    rows_list = [rows[i] for i in sorted(rows)]
    if status != "completed" or len(rows_list) != len(configs):
        return rows_list, [], [], "interrupted" if status == "completed" else status
    best = [load_model(Path(r["run_dir"]) / "checkpoints" / "best.npz").model for r in rows_list]
    last = [load_model(Path(r["run_dir"]) / "checkpoints" / "last.npz").model for r in rows_list]
    return rows_list, best, last, status


def _unique(member_data) -> dict:
    """The row field of a bagged member: how many distinct training samples its bootstrap drew."""
    return {"bootstrap_unique": member_data[1]} if member_data[1] is not None else {}


def _member_plan(resume_from: Path | None, i: int, epochs: int) -> tuple[str, Path | None]:
    """What a resumed ensemble does with member i: ("done", its old dir) when it finished the epochs asked
    for (or stopped early), ("resume", its old dir) when it has a last.npz to continue, else ("fresh", None)."""
    if resume_from is None:
        return "fresh", None
    from mlcli.runs.rundir import read_metrics

    old = Path(resume_from) / "members" / f"member-{i + 1}"
    summary = read_summary(old) or {}
    records = read_metrics(old) if old.is_dir() else []
    reached = records[-1]["epoch"] if records else 0
    if summary.get("status") == "early_stopped" or (summary.get("status") == "completed" and reached >= epochs):
        return "done", old
    if (old / "checkpoints" / "last.npz").is_file():
        return "resume", old
    return "fresh", None


def _parallel_members(cfg, configs, datas, members_dir: Path, should_stop, todo: list[int]):
    """Members `todo` as pure tasks of a process pool (`mlcli.workflows.cv.run_folds_in_parallel`); their files
    written here. Returns ({member: row}, status)."""
    from mlcli.workflows.cv import run_folds_in_parallel

    jobs = [(f"member-{i + 1}", configs[i].resolved(), datas[i][0], members_dir / f"member-{i + 1}") for i in todo]
    values, status = run_folds_in_parallel(jobs, scheduler="processes",
                                           workers=min(cfg.model.ensemble.workers, len(todo)),
                                           should_stop=should_stop, what="ensemble")
    results = {}
    for key, value in values.items():
        i = int(key.split("-")[1]) - 1
        results[i] = _member_row(i, configs[i].seed, value["summary"], value["status"], members_dir / key,
                                 **_unique(datas[i]))
        if value["status"] == "interrupted":
            status = "interrupted"
    return results, (status if len(results) == len(todo) else "interrupted")


def _snapshot_members(cfg, data, run_dir: Path, options: dict):
    from mlcli.config.schema import restart_cycle_ends
    from mlcli.training.snapshots import SnapshotCollector
    from mlcli.workflows.train import run_config

    sched = cfg.train.schedule
    collector = SnapshotCollector(restart_cycle_ends(cfg.train.epochs, sched.warmup_epochs, sched.t0, sched.t_mult))
    mcfg = member_config(cfg)
    (run_dir / "members").mkdir()
    opts = {**options, "callbacks": (collector, *options["callbacks"])}
    run = run_config(mcfg, data=data, run_dir=run_dir / "members" / "run", **opts)
    if run.status == "interrupted":
        return [], [], [], "interrupted"
    snaps = collector.last(cfg.model.ensemble.members)
    wanted = cfg.model.ensemble.members or len(collector.cycle_ends)
    if len(snaps) < wanted:  # early stopping ended the run before the last cycles
        raise ConfigError(f"model.ensemble.snapshot: the run stopped at epoch {run.history[-1]['epoch']} with "
                          f"{len(snaps)} of {wanted} cycle snapshots; lower members or turn off early stopping")
    models, rows = [], []
    for i, (epoch, state) in enumerate(snaps):
        model = load_model(run.last_checkpoint).model
        model.load_state(state)
        models.append(model)
        metrics = model.evaluate(data.test.x, data.test.y) if data.test.n else {}
        val = model.evaluate(data.val.x, data.val.y) if data.val.n else {}
        rows.append({"member": i, "run_dir": str(run.run_dir), "epoch": epoch, "status": run.status,
                     "epochs_completed": len(run.history), "val": val, "test": metrics})
    return rows, models, models, "completed"


def _save_ensemble(cfg, data, run_dir: Path, history: list[dict], best_models: list, last_models: list):
    """Write best.npz and last.npz; returns the ensemble's train/val record and its test metrics."""
    from mlcli.models.ensemble import EnsembleModel

    ens = cfg.model.ensemble
    has_loss = "loss" in cfg.metric_names()
    best = EnsembleModel(best_models, vote=ens.vote, has_loss=has_loss)
    last = EnsembleModel(last_models, vote=ens.vote, has_loss=has_loss)
    record: dict = {"epoch": len(history)}
    record.update({f"train_{k}": v for k, v in best.evaluate(data.train.x, data.train.y).items()})
    if data.val.n:
        record.update({f"val_{k}": v for k, v in best.evaluate(data.val.x, data.val.y).items()})
    test = best.evaluate(data.test.x, data.test.y) if data.test.n else {}
    checkpoints = run_dir / "checkpoints"
    save_model(checkpoints / "best.npz", cfg, best, data, epoch=record["epoch"], metrics=record)
    save_model(checkpoints / "last.npz", cfg, last, data, epoch=record["epoch"], metrics=record)
    return record, test
