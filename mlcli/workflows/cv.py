"""k-fold cross validation: one sub-run per fold, then the mean and spread of every metric.

    result = run_cv(config, folds=5, runs_dir=Path("runs"))
    result["mean"]["accuracy"], result["std"]["accuracy"]

The test split of the holdout (data.test_fraction; the official test set for MNIST/CIFAR-10) is set aside; the
rest is dealt into k stratified, seeded folds. Fold i trains on the other k-1 folds, standardized with their own
statistics, and is scored on fold i by its best epoch (the same rule as `best.npz`). Layout:

    runs/<name>-cv-<stamp>/config.yaml, folds.json, cv_summary.json, fold-1/ ... fold-k/ (ordinary run dirs)

`std` is the population standard deviation over folds (numpy's default, as `cross_val_score(...).std()`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
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
from mlcli.models.context import compute_dtype
from mlcli.runs.atomic import atomic_write_text
from mlcli.runs.rundir import clean, create_run_dir, write_config
from mlcli.seeding import generators
from mlcli.train.run import Hooks, run_training


def fold_metrics(summary: dict) -> dict[str, float]:
    """A fold's score: the validation metrics of its best epoch, without the `val_` prefix."""
    best = summary.get("best", {})
    return {k.removeprefix("val_"): v for k, v in best.items() if k.startswith("val_")}


def run_cv(config, folds: int, *, runs_dir: Path = Path("runs"), name: str | None = None,
           base_dir: Path | None = None, hooks_for: Callable[[int], Hooks] | None = None) -> dict:
    """Cross-validate `config` over `folds` folds; returns the cv summary (also written as cv_summary.json)."""
    gens = data_generators(config.data, generators(config.seed))
    ds = load_dataset(config.data, gens.data, base_dir)
    if config.data.type in OFFICIAL_SPLIT_TYPES:
        pool_idx = np.arange(ds.n)
        test = load_dataset(config.data, gens.data, base_dir, split="test")
    else:
        tr, va, te = split_indices(ds, config.data, gens.split)
        pool_idx = np.sort(np.concatenate([tr, va]))
        test = ds.subset(te)
    pool = ds.subset(pool_idx)
    fold_idx = kfold_indices(pool.y, k=folds, rng=gens.split, stratify=ds.task == "classification")
    cv_dir = create_run_dir(runs_dir, f"{name or config.name}-cv", checkpoints=False)
    write_config(cv_dir, config.resolved())
    atomic_write_text(cv_dir / "folds.json", json.dumps({
        "k": folds, "seed": config.seed, "test": te.tolist() if config.data.type not in OFFICIAL_SPLIT_TYPES
        else "official test split",
        "folds": [{"fold": i + 1, "train": pool_idx[t].tolist(), "val": pool_idx[v].tolist()}
                  for i, (t, v) in enumerate(fold_idx)]}) + "\n")
    results = []
    for i, (t, v) in enumerate(fold_idx):
        (train, val, test_std), scaler = standardize(pool.subset(t), [pool.subset(v), test], config.data,
                                                     compute_dtype(config))
        data = PreparedData(train=train, val=val, test=test_std, standardizer=scaler)
        run = run_training(config, data=data, run_dir=cv_dir / f"fold-{i + 1}",
                           hooks=hooks_for(i + 1) if hooks_for else None)
        results.append({"fold": i + 1, "metrics": fold_metrics(run.summary), "status": run.status,
                        "best_epoch": run.summary.get("best_epoch")})
    names = sorted({k for r in results for k in r["metrics"]})
    values = {m: np.array([r["metrics"].get(m, np.nan) for r in results], dtype=np.float64) for m in names}
    summary = {"cv_dir": str(cv_dir), "k": folds, "folds": results,
               "mean": {m: float(np.mean(v)) for m, v in values.items()},
               "std": {m: float(np.std(v)) for m, v in values.items()}}
    atomic_write_text(cv_dir / "cv_summary.json", json.dumps(clean(summary), indent=2, allow_nan=False) + "\n")
    return summary
