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

An ensemble run is not resumable (train it again); an interrupted member ends the run with status `interrupted`
and no ensemble checkpoint.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from mlcli.config.load import located
from mlcli.errors import ConfigError, DivergenceError
from mlcli.models.registry import member_config
from mlcli.runs.lock import RunLock
from mlcli.runs.provenance import provenance, utc_now
from mlcli.runs.rundir import MetricsWriter, create_run_dir, make_exact_dir, write_config, write_summary
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

    if resume_from is not None:
        raise ConfigError(f"{resume_from}: an ensemble run is not resumable; train it again")
    ens = cfg.model.ensemble
    if cfg.is_fitted_in_closed_form() and not ens.snapshot and not ens.bagging:
        # an ensemble of existing fits (`mlcli ensemble CV_DIR`) may hold them; training them would repeat one fit
        raise ConfigError(located(cfg, f"model.ensemble.bagging: model.type {cfg.model.type} is fitted in closed "
                                       f"form, so its members would be identical; set bagging: true (a bootstrap "
                                       f"sample each)"))
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
        options = {"base_dir": base_dir, "callbacks": callbacks, "quiet": quiet, "should_stop": should_stop}
        try:
            if ens.snapshot:
                rows, best_models, last_models, status = _snapshot_members(cfg, data, run_dir, options)
            else:
                rows, best_models, last_models, status = _independent_members(cfg, data, run_dir, options)
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
    the ensemble's own metrics are in summary.json (`best`, `final`, `test`)."""
    from mlcli.runs.rundir import read_metrics

    runs = list(dict.fromkeys(r["run_dir"] for r in rows))
    histories = [read_metrics(Path(d)) for d in runs]
    curve = []
    for epoch in range(1, max((len(h) for h in histories), default=0) + 1):
        records = [h[epoch - 1] for h in histories if len(h) >= epoch]
        keys = [k for k in records[0] if k != "epoch" and all(isinstance(r.get(k), (int, float)) for r in records)]
        curve.append({"epoch": epoch, **{k: float(np.mean([r[k] for r in records])) for k in keys}})
    return curve


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


def _independent_members(cfg, data, run_dir: Path, options: dict):
    from mlcli.workflows.train import run_config

    configs = _member_configs(cfg)
    members_dir = run_dir / "members"
    members_dir.mkdir()
    datas = [_member_data(cfg, data, i) for i in range(len(configs))]
    rows, status = [], "completed"
    if cfg.model.ensemble.workers > 1:
        rows, status = _parallel_members(cfg, configs, datas, members_dir, options["should_stop"])
    else:
        for i, (mcfg, (mdata, unique)) in enumerate(zip(configs, datas, strict=True)):
            run = run_config(mcfg, data=mdata, run_dir=members_dir / f"member-{i + 1}", **options)
            rows.append(_member_row(i, mcfg.seed, run.summary, run.status, run.run_dir,
                                    **({"bootstrap_unique": unique} if unique is not None else {})))
            if run.status == "interrupted":
                status = "interrupted"
                break
    if status != "completed":
        return rows, [], [], status
    best = [load_model(Path(r["run_dir"]) / "checkpoints" / "best.npz").model for r in rows]
    last = [load_model(Path(r["run_dir"]) / "checkpoints" / "last.npz").model for r in rows]
    return rows, best, last, status


def _parallel_members(cfg, configs, datas, members_dir: Path, should_stop):
    """The members as pure tasks of a process pool (`mlcli.workflows.cv.run_folds_in_parallel`); their files
    written here."""
    from mlcli.workflows.cv import run_folds_in_parallel

    jobs = [(f"member-{i + 1}", mcfg.resolved(), mdata, members_dir / f"member-{i + 1}")
            for i, (mcfg, (mdata, _unique)) in enumerate(zip(configs, datas, strict=True))]
    values, status = run_folds_in_parallel(jobs, scheduler="processes",
                                           workers=min(cfg.model.ensemble.workers, len(configs)),
                                           should_stop=should_stop, what="ensemble")
    results = {}
    for key, value in values.items():
        i = int(key.split("-")[1]) - 1
        unique = datas[i][1]
        results[i] = _member_row(i, configs[i].seed, value["summary"], value["status"], members_dir / key,
                                 **({"bootstrap_unique": unique} if unique is not None else {}))
        if value["status"] == "interrupted":
            status = "interrupted"
    rows = [results[i] for i in sorted(results)]
    return rows, (status if len(rows) == len(configs) else "interrupted")


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
