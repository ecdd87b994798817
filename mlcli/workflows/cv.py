"""k-fold cross validation: one sub-run per fold, then the mean and spread of every metric; `mlcli.cv`.

    result = cv("configs/mlp.yaml", folds=5, runs_dir="runs")
    result.mean["accuracy"], result.std["accuracy"], result.folds[0]["metrics"], result.fold_indices[0]["val"]

The test split of the holdout (data.test_fraction; the official test set for MNIST/CIFAR-10) is set aside; the
rest is dealt into k stratified, seeded folds. Fold i trains on the other k-1 folds, standardized with their own
statistics, and is scored on fold i by its best epoch (the same rule as `best.npz`). Layout:

    runs/<name>-cv-<stamp>/config.yaml, folds.json, cv_summary.json, fold-1/ ... fold-k/ (ordinary run dirs)

`std` is the population standard deviation over folds (numpy's default, as `cross_val_score(...).std()`).
A comma list in a `key=value` override (`model.k=1,3,5`) runs one cross validation per value (`cv_grid`), and
`best_setting` picks the best by mean accuracy (or mean loss when there is no accuracy).
"""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlcli.data.pipeline import (
    OFFICIAL_SPLIT_TYPES,
    PreparedData,
    data_generators,
    load_dataset,
    split_indices,
    standardize,
)
from mlcli.data.splits import kfold_indices
from mlcli.errors import ConfigError, MlcliError
from mlcli.models.context import compute_dtype
from mlcli.models.metrics import mode_of
from mlcli.runs.atomic import atomic_write_text
from mlcli.runs.rundir import clean, create_run_dir, write_config
from mlcli.seeding import generators
from mlcli.workflows.build import override_items, resolve_config
from mlcli.workflows.train import run_config


@dataclass
class CVResult:
    """folds: [{"fold", "metrics", "status", "best_epoch", "run_dir"}]; fold_indices: [{"fold", "train", "val"}]
    (indices into the dataset as loaded); test_indices: the held-out test rows (None: the official test split)."""

    cv_dir: Path
    k: int
    folds: list[dict]
    mean: dict[str, float]
    std: dict[str, float]
    fold_indices: list[dict]
    test_indices: list[int] | None
    status: str = "completed"

    def to_dict(self) -> dict:
        """The JSON form (`mlcli cv --json`, cv_summary.json)."""
        return {"cv_dir": str(self.cv_dir), "k": self.k, "status": self.status, "folds": self.folds,
                "mean": self.mean, "std": self.std}


def fold_metrics(summary: dict) -> dict[str, float]:
    """A fold's score: the validation metrics of its best epoch, without the `val_` prefix."""
    best = summary.get("best", {})
    return {k.removeprefix("val_"): v for k, v in best.items() if k.startswith("val_")}


def cv(config, folds: int | None = None, *, overrides=None, runs_dir: str | Path = "runs", name: str | None = None,
       seed: int | None = None, callbacks=(), quiet: bool = True, should_stop: Callable[[], bool] | None = None,
       scheduler: str | None = None, workers: int | None = None, scheduler_file: str | None = None) -> CVResult:
    """Cross-validate `config` (a path, dict or Config) over `folds` folds (default: its `cv.folds`).

    By default the folds run one after another in this process, with every thread it has; an interrupted fold
    ends the cross validation with status `interrupted` and the folds finished so far; `callbacks` (shared by
    every fold) see each fold's training. With a `scheduler` (serial, processes, dask, an address) the folds run
    through the sweep executors (mlcli.sweeps.executors) as pure tasks on one BLAS thread each, whose files this
    process writes: the fold metrics are then the same, bit for bit, on every scheduler (callbacks and progress
    are not sent to other processes).
    """
    cfg, base_dir = resolve_config(config, overrides, seed)
    k = folds if folds is not None else cfg.cv.folds
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise ConfigError(f"folds (--folds) must be an integer >= 2, got {k!r}")
    gens = data_generators(cfg.data, generators(cfg.seed))
    ds = load_dataset(cfg.data, gens.data, base_dir, targets=cfg.target_tasks())
    test_indices = None
    if cfg.data.type in OFFICIAL_SPLIT_TYPES:
        pool_idx = np.arange(ds.n)
        test = load_dataset(cfg.data, gens.data, base_dir, split="test", targets=cfg.target_tasks())
    else:
        tr, va, te = split_indices(ds, cfg.data, gens.split)
        pool_idx = np.sort(np.concatenate([tr, va]))
        test = ds.subset(te)
        test_indices = te.tolist()
    pool = ds.subset(pool_idx)
    labels, stratify = pool.split_labels()
    split = kfold_indices(labels, k=k, rng=gens.split, stratify=stratify)
    fold_indices = [{"fold": i + 1, "train": pool_idx[t].tolist(), "val": pool_idx[v].tolist()}
                    for i, (t, v) in enumerate(split)]
    cv_dir = create_run_dir(Path(runs_dir), f"{name or cfg.name}-cv", checkpoints=False)
    write_config(cv_dir, cfg.resolved())
    atomic_write_text(cv_dir / "folds.json", json.dumps({
        "k": k, "seed": cfg.seed, "test": test_indices if test_indices is not None else "official test split",
        "folds": fold_indices}) + "\n")
    datas = []
    for t, v in split:
        (train, val, test_std), scaler = standardize(pool.subset(t), [pool.subset(v), test], cfg.data,
                                                     compute_dtype(cfg))
        datas.append(PreparedData(train=train, val=val, test=test_std, standardizer=scaler))
    if scheduler is None and workers in (None, 1):
        results, status = [], "completed"
        for i, data in enumerate(datas):
            run = run_config(cfg, base_dir=base_dir, data=data, run_dir=cv_dir / f"fold-{i + 1}",
                             callbacks=callbacks, quiet=quiet, should_stop=should_stop, overrides=overrides)
            results.append(_fold_row(i + 1, run.summary, run.status, run.run_dir))
            if run.status == "interrupted":
                status = "interrupted"
                break
    else:
        try:
            results, status = _parallel_folds(cfg, datas, cv_dir, scheduler or "processes", workers, scheduler_file,
                                              should_stop)
        except MlcliError:
            if not any(cv_dir.glob("fold-*")):  # a bad --scheduler, an unreachable cluster: nothing ran
                shutil.rmtree(cv_dir, ignore_errors=True)
            raise
    names = sorted({m for r in results for m in r["metrics"]})
    values = {m: np.array([r["metrics"].get(m, np.nan) for r in results], dtype=np.float64) for m in names}
    result = CVResult(cv_dir=cv_dir, k=k, folds=results, mean={m: float(np.mean(v)) for m, v in values.items()},
                      std={m: float(np.std(v)) for m, v in values.items()}, fold_indices=fold_indices,
                      test_indices=test_indices, status=status)
    atomic_write_text(cv_dir / "cv_summary.json",
                      json.dumps(clean(result.to_dict()), indent=2, allow_nan=False) + "\n")
    return result


def _fold_row(fold: int, summary: dict, status: str, run_dir) -> dict:
    return {"fold": fold, "metrics": fold_metrics(summary), "status": status, "best_epoch": summary.get("best_epoch"),
            "run_dir": str(run_dir)}


def run_fold(config: dict, fold: int, data: PreparedData, dest: str) -> dict:
    """One fold as a pure task (for an executor): train on `data` in a temporary folder; return the summary and
    every file written as bytes, paths inside summary.json naming `dest`."""
    import shutil
    import tempfile

    from mlcli.config.load import build_config
    from mlcli.training.threads import one_thread

    tmp = Path(tempfile.mkdtemp(prefix="mlcli-fold-"))
    try:
        with one_thread():  # the same fold metrics on every scheduler
            run = run_config(build_config(config, f"fold {fold}", {}), data=data, run_dir=tmp / "fold", quiet=True)
        root = tmp / "fold"
        files = {}
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            blob = path.read_bytes()
            files[path.relative_to(root).as_posix()] = (blob.replace(str(root).encode(), dest.encode())
                                                        if path.suffix == ".json" else blob)
        summary = json.loads(files["summary.json"])
        return {"summary": summary, "status": run.status, "files": files}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_folds_in_parallel(jobs, *, scheduler: str, workers: int | None, scheduler_file: str | None = None,
                          should_stop=None, what: str = "cv") -> tuple[dict[str, dict], str]:
    """Run prepared-data trainings (cv folds, ensemble members) as `run_fold` tasks of an executor.

    jobs: (key, config dict, PreparedData, run directory) each; every run's files are written into its directory
    as it arrives. Returns ({key: run_fold's value}, "completed" | "interrupted"); a failed run is an MlcliError
    naming `what` and the key.
    """
    from mlcli.sweeps.executors import make_executor

    values, status = {}, "completed"
    with make_executor(scheduler, workers, scheduler_file=scheduler_file) as executor:
        for n, (key, config, data, run_dir) in enumerate(jobs, start=1):
            executor.submit(key, run_fold, config, n, data, str(Path(run_dir).resolve()))
        dirs = {key: Path(run_dir) for key, _, _, run_dir in jobs}
        while executor.in_flight():
            if should_stop is not None and should_stop() and status != "interrupted":
                status = "interrupted"
                executor.cancel_pending()
            res = executor.next_result(timeout=0.25)
            if res is None:
                continue
            if res.error is not None:
                raise MlcliError(f"{what} {res.key}: {res.error}")
            for rel, blob in res.value["files"].items():
                path = dirs[res.key] / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(blob)
            values[res.key] = res.value
    return values, status


def _parallel_folds(cfg, datas, cv_dir: Path, scheduler, workers, scheduler_file, should_stop):
    """Run the folds through an executor; write each fold's files as it arrives."""
    jobs = [(f"fold-{i + 1}", cfg.resolved(), data, cv_dir / f"fold-{i + 1}") for i, data in enumerate(datas)]
    values, status = run_folds_in_parallel(jobs, scheduler=scheduler, workers=workers,
                                           scheduler_file=scheduler_file, should_stop=should_stop)
    rows = {int(key.split("-")[1]): _fold_row(int(key.split("-")[1]), v["summary"], v["status"], cv_dir / key)
            for key, v in values.items()}
    return [rows[f] for f in sorted(rows)], status


def expand_overrides(overrides) -> list[list[str]]:
    """`["model.k=1,3", "seed=2"]` -> [[model.k=1, seed=2], [model.k=3, seed=2]]: the product of every comma list;
    a bracketed or quoted value is one value."""
    choices = []
    for item in override_items(overrides):
        key, sep, value = item.partition("=")
        v = value.strip()
        if sep and "," in v and not v.startswith(("[", "{", '"', "'")):
            choices.append([f"{key}={part.strip()}" for part in v.split(",")])
        else:
            choices.append([item])
    return [list(combo) for combo in itertools.product(*choices)]


def cv_grid(config, folds: int | None = None, *, overrides=None, **options) -> list[tuple[list[str], CVResult]]:
    """One cross validation per combination of the comma lists in `overrides` (see `expand_overrides`)."""
    results = []
    for combo in expand_overrides(overrides):
        result = cv(config, folds, overrides=combo, **options)
        results.append((combo, result))
        if result.status == "interrupted":
            break
    return results


def best_setting(results: list[CVResult]) -> tuple[int, str]:
    """(index of the best result, the metric it was chosen by): the highest mean accuracy, else the lowest loss."""
    metric = "accuracy" if "accuracy" in results[0].mean else "loss"
    sign = 1.0 if mode_of(metric) == "max" else -1.0
    scores = [sign * r.mean.get(metric, float("nan")) for r in results]
    return max(range(len(results)), key=lambda i: -np.inf if np.isnan(scores[i]) else scores[i]), metric
