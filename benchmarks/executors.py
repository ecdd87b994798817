"""Benchmark: what the sweep executors (mlcli/sweeps/executors.py) cost per task, and the MALLOC_TRIM_THRESHOLD_
effect of notes/dask.md in a Dask worker.

1. Per-task overhead of each backend (serial, processes, dask; `--workers`, default the usable cores) on `--tasks`
   (200) trivial tasks: the latency (median of one-at-a-time submit -> next_result round trips) and the amortized
   cost (wall time of all tasks submitted at once / tasks). Startup and close are timed apart.
2. An allocation-heavy NumPy task (temporaries of 8 MB, allocated and freed in a loop) in a Dask LocalCluster
   worker, with MALLOC_TRIM_THRESHOLD_=65536 (Dask's default, inherited here from this process's environment)
   and without it (mlcli's setting): the median CPU seconds per task of `--rounds` (6) tasks, and their ratio.

Prints the environment first (cores, BLAS from threadpoolctl, OPENBLAS_* variables), then one line per result and
the ratio lines (each backend's cost against its target: processes under 50 ms per task, dask under 100 ms).
Run: `python benchmarks/executors.py [--tasks 200] [--rounds 6] [--workers N]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

from mlcli.sweeps.executors import make_executor, usable_cores

BACKENDS = ("serial", "processes", "dask")
TARGETS = {"processes": 0.050, "dask": 0.100}  # seconds of overhead per task


def trivial(i: int) -> int:
    return i


def allocation_heavy(rounds: int = 30, size: int = 1_000_000) -> tuple[float, str | None]:
    """CPU seconds of a loop of float64 temporaries of `size` (8 MB each), and the worker's MALLOC_TRIM_THRESHOLD_."""
    start = time.process_time()
    x = np.ones(size)
    for _ in range(rounds):
        y = x * 2.0 + 1.0
        z = np.sqrt(y) - x
        x = z / (1.0 + np.abs(z)) + 1.0
    return time.process_time() - start, os.environ.get("MALLOC_TRIM_THRESHOLD_")


def environment() -> str:
    import distributed
    from threadpoolctl import threadpool_info

    blas = [f"{i.get('internal_api')} {i.get('version')} x{i.get('num_threads')}"
            for i in threadpool_info() if i.get("user_api") == "blas"]
    openblas = {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS")}
    return (f"python {sys.version.split()[0]}, numpy {np.__version__}, distributed {distributed.__version__}, "
            f"{usable_cores()} usable cores ({os.cpu_count()} cpus), BLAS {', '.join(blas) or '?'}, "
            f"OPENBLAS_* {openblas or 'unset'}, load average {os.getloadavg()[0]:.2f}")


def drain(ex) -> list:
    results = []
    while ex.in_flight():
        result = ex.next_result(timeout=10)
        if result is not None:
            assert result.error is None, result.error
            results.append(result)
    return results


def overhead(scheduler: str, workers: int, tasks: int) -> dict[str, float]:
    start = time.perf_counter()
    ex = make_executor(scheduler, workers=None if scheduler == "serial" else workers)
    ex.submit("warm-up", trivial, 0)  # the pool starts its processes on first use
    drain(ex)
    started = time.perf_counter()
    latencies = []
    for i in range(tasks):
        t0 = time.perf_counter()
        ex.submit(f"one-{i}", trivial, i)
        drain(ex)
        latencies.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    for i in range(tasks):
        ex.submit(f"all-{i}", trivial, i)
    assert len(drain(ex)) == tasks
    amortized = (time.perf_counter() - t0) / tasks
    t0 = time.perf_counter()
    ex.close()
    return {"start": started - start, "latency": statistics.median(latencies), "amortized": amortized,
            "close": time.perf_counter() - t0}


def malloc_effect(workers: int, rounds: int) -> dict[str, tuple[float, str | None]]:
    found = {}
    for label, value in (("MALLOC_TRIM_THRESHOLD_=65536", "65536"), ("MALLOC_TRIM_THRESHOLD_ unset", None)):
        saved = os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
        if value is not None:
            os.environ["MALLOC_TRIM_THRESHOLD_"] = value  # an existing variable wins over mlcli's dask setting
        try:
            with make_executor("dask", workers=workers) as ex:
                for i in range(rounds):
                    ex.submit(f"alloc-{i}", allocation_heavy)
                values = [r.value for r in drain(ex)]
        finally:
            os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
            if saved is not None:
                os.environ["MALLOC_TRIM_THRESHOLD_"] = saved
        found[label] = (statistics.median(v[0] for v in values), values[0][1])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--workers", type=int, default=usable_cores())
    args = parser.parse_args()
    print(f"environment: {environment()}")
    print(f"per-task overhead, {args.tasks} trivial tasks, {args.workers} workers (serial: 1):")
    costs = {}
    for scheduler in BACKENDS:
        c = costs[scheduler] = overhead(scheduler, args.workers, args.tasks)
        print(f"  {scheduler:9s}  latency {c['latency'] * 1e3:7.2f} ms   amortized {c['amortized'] * 1e3:7.2f} ms/task"
              f"   start {c['start']:5.2f} s   close {c['close']:5.2f} s")
    for scheduler in ("processes", "dask"):
        cost, target = costs[scheduler]["amortized"], TARGETS[scheduler]
        print(f"ratio: {scheduler} per-task cost / its target ({target * 1e3:.0f} ms) = {cost / target:.3f} "
              f"({'ok' if cost < target else 'MISSED'})")
    print(f"ratio: dask / processes amortized per-task cost = "
          f"{costs['dask']['amortized'] / costs['processes']['amortized']:.2f}x")
    print(f"malloc effect, allocation-heavy NumPy task in a Dask worker, median of {args.rounds}:")
    effect = malloc_effect(args.workers, args.rounds)
    for label, (seconds, seen) in effect.items():
        print(f"  {label:30s} {seconds:.3f} CPU-s per task (the worker saw {seen!r})")
    (slow, _), (fast, _) = effect.values()
    print(f"ratio: MALLOC_TRIM_THRESHOLD_=65536 / unset CPU time = {slow / fast:.2f}x")


if __name__ == "__main__":
    main()
