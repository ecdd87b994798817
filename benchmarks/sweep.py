"""Benchmark: sweeps on each scheduler, and ASHA beside the same trials run in full.

1. A grid of 16 short trials (an MLP on digits, 4 learning rates x 4 widths, `--epochs` (20) epochs each)
   run by `mlcli.sweep` with `--scheduler serial`, `processes` with 2 workers and a Dask LocalCluster with 2
   workers, alternating in fresh processes for `--rounds` rounds; and the same grid doubled (x 2 activations, 32
   trials). Printed: each run's wall time; per scheduler the median wall time and its speed-up over serial
   (target: >= 1.8x with 2 workers on 2 cores), both for the whole sweep (which includes the one-time costs:
   importing scikit-learn for the digits, starting workers) and for the 16 trials the doubled grid adds (the
   marginal cost of trials: what a longer sweep converges to); the per-trial overhead of the marginal trials,
   `(marginal wall x workers - their own seconds) / 16` (targets: < 50 ms processes, < 100 ms Dask); and a
   check that every scheduler gave the same per-trial scores.
2. ASHA: 27 random trials of up to 27 epochs (`pruner: asha`, factor 3) beside the same 27 trials in full:
   epochs spent, wall time, and whether both find the same best trial.

The Dask malloc setting (MALLOC_TRIM_THRESHOLD_, ../shared/notes/dask.md) is measured by benchmarks/executors.py.
Run: `python benchmarks/sweep.py` (and `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/sweep.py`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

GRID = {"name": "bench", "base": {
    "data": {"type": "digits"},
    "model": {"type": "mlp", "hidden": [64]},
    "train": {"epochs": 3, "batch_size": 32, "optimizer": {"type": "momentum", "lr": 0.05}}},
    "metric": "val_loss", "method": "grid",
    "parameters": {"train.optimizer.lr": [0.01, 0.03, 0.1, 0.3], "model.hidden": [[32], [64], [128], [64, 32]]},
    "save": "none"}


def environment() -> str:
    from threadpoolctl import threadpool_info

    blas = [f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} x{i.get('num_threads')}"
            for i in threadpool_info() if i.get("user_api") == "blas"]
    names = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS")
    env = {k: os.environ[k] for k in names if k in os.environ}
    return f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, BLAS {', '.join(blas) or '?'}, env {env}"


def one_run(scheduler: str, workers: int, epochs: int, double: bool) -> dict:
    """Child process: run the grid once on `scheduler`; print wall time, trial seconds and scores as JSON."""
    import mlcli

    spec = json.loads(json.dumps(GRID))
    spec["base"]["train"]["epochs"] = epochs
    if double:
        spec["parameters"]["model.activation"] = ["relu", "tanh"]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = mlcli.sweep(spec, runs_dir=tmp, scheduler=scheduler, workers=workers)
        wall = time.perf_counter() - t0
    return {"wall": wall, "trial_seconds": sum(t["seconds"] for t in result.trials),
            "scores": {t["trial"]: t["score"] for t in result.trials}, "n": len(result.trials)}


def asha_vs_full(trials: int, epochs: int) -> None:
    import mlcli

    spec = {"name": "asha", "base": {"data": {"type": "digits"}, "model": {"type": "mlp", "hidden": [64]},
                                     "train": {"epochs": epochs, "batch_size": 32,
                                               "optimizer": {"type": "momentum", "lr": 0.05}}},
            "metric": "val_loss", "method": "random", "trials": trials, "seed": 0, "save": "none",
            "parameters": {"train.optimizer.lr": {"type": "loguniform", "low": 1e-3, "high": 0.5},
                           "train.optimizer.momentum": {"type": "uniform", "low": 0.0, "high": 0.95}}}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        full = mlcli.sweep(spec, runs_dir=tmp, scheduler="processes", workers=2)
        t_full = time.perf_counter() - t0
        t0 = time.perf_counter()
        asha = mlcli.sweep(spec | {"pruner": {"type": "asha", "min_epochs": 1, "reduction_factor": 3}}, runs_dir=tmp,
                           scheduler="processes", workers=2)
        t_asha = time.perf_counter() - t0
    e_full, e_asha = sum(t["epochs"] for t in full.trials), sum(t["epochs"] for t in asha.trials)
    print(f"asha: {trials} trials x up to {epochs} epochs: {e_asha} epochs in {t_asha:.1f} s vs {e_full} epochs in "
          f"{t_full:.1f} s run in full ({e_asha / e_full:.2f}x the epochs, {t_asha / t_full:.2f}x the time)")
    same = "same" if asha.best["trial"] == full.best["trial"] else "different"
    print(f"asha: best trial {asha.best['trial']} (score {asha.best['score']:.4f}); full runs' best "
          f"{full.best['trial']} (score {full.best['score']:.4f}): {same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--asha-trials", type=int, default=27)
    parser.add_argument("--asha-epochs", type=int, default=27)
    parser.add_argument("--child", nargs=3, metavar=("SCHEDULER", "WORKERS", "DOUBLE"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one_run(args.child[0], int(args.child[1]), args.epochs, args.child[2] == "1")))
        return
    print(environment(), f"load average {os.getloadavg()[0]:.2f}")
    plan = [("serial", 1), ("processes", 2), ("dask", 2)]
    runs: dict[tuple[str, bool], list[dict]] = {(name, d): [] for name, _ in plan for d in (False, True)}
    for r in range(args.rounds):
        for double in (False, True):
            for name, workers in plan:
                out = subprocess.run([sys.executable, __file__, "--child", name, str(workers), str(int(double)),
                                      "--epochs", str(args.epochs)], capture_output=True, text=True, check=True)
                res = json.loads(out.stdout.strip().splitlines()[-1])
                runs[name, double].append(res)
                print(f"round {r + 1} {name:9s} x{workers} {res['n']} trials: {res['wall']:.2f} s wall, "
                      f"{res['trial_seconds']:.2f} s in trials")
    med = {key: statistics.median(x["wall"] for x in rs) for key, rs in runs.items()}
    own = {key: statistics.median(x["trial_seconds"] for x in rs) for key, rs in runs.items()}
    serial_whole, serial_marginal = med["serial", False], med["serial", True] - med["serial", False]
    reference = runs["serial", False][0]["scores"]
    same = all(x["scores"] == reference for (name, d), rs in runs.items() if not d for x in rs)
    for name, workers in plan:
        marginal = med[name, True] - med[name, False]
        overhead = (marginal * workers - (own[name, True] - own[name, False])) / 16
        print(f"ratio serial/{name}: {serial_whole / med[name, False]:.2f}x speed-up median of the whole sweep "
              f"({med[name, False]:.2f} s), {serial_marginal / marginal:.2f}x on the 16 added trials "
              f"({marginal:.2f} s), per-trial overhead {overhead * 1000:.0f} ms")
    print(f"identical per-trial scores on every scheduler: {same}")
    asha_vs_full(args.asha_trials, args.asha_epochs)


if __name__ == "__main__":
    main()
