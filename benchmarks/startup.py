"""Benchmark: how long `mlcli --help` takes to start, beside an empty Python start.

Runs each command `--runs` (10) times in a fresh process, alternating them so that machine noise hits both alike,
and prints the median (and the fastest) wall time of each, the environment, and whether the target (`mlcli --help`
within 0.25 s) holds. The commands: `python -c pass`, `python -m mlcli --help`, and the `mlcli` console script next
to this Python when it is installed. With `--imports N`, also prints the N mlcli modules whose import costs most
(cumulative, from `python -X importtime -m mlcli --help`), with the heaviest library each pulls in, to show where
the time goes.

Run: `python benchmarks/startup.py [--runs 10] [--imports 10]`.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_SECONDS = 0.25


def wall_time(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def commands() -> dict[str, list[str]]:
    found = {"python -c pass": [sys.executable, "-c", "pass"],
             "python -m mlcli --help": [sys.executable, "-m", "mlcli", "--help"]}
    script = Path(sys.executable).with_name("mlcli")
    if script.exists():
        found["mlcli --help"] = [str(script), "--help"]
    return found


def import_costs(top: int) -> list[tuple[float, str, str]]:
    """(cumulative seconds, mlcli module, its heaviest non-mlcli direct import) of the `top` costliest."""
    stderr = subprocess.run([sys.executable, "-X", "importtime", "-m", "mlcli", "--help"], capture_output=True,
                            text=True, check=True).stderr
    rows = []  # (depth, name, cumulative seconds), in the order importtime prints them: children before parents
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line or "cumulative" in line:
            continue
        _, cumulative, name = line.split("|")
        rows.append((len(name) - len(name.lstrip()), name.strip(), int(cumulative) / 1e6))
    costs = []
    for i, (depth, name, seconds) in enumerate(rows):
        if not name.startswith("mlcli"):
            continue
        children = []
        for child_depth, child, child_seconds in reversed(rows[:i]):
            if child_depth <= depth:
                break
            if child_depth == depth + 2 and not child.startswith("mlcli"):
                children.append((child_seconds, child))
        heaviest = max(children, default=(0.0, "-"))
        costs.append((seconds, name, f"{heaviest[1]} {heaviest[0]:.3f} s" if children else "-"))
    return sorted(costs, reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="fresh processes per command (default 10)")
    parser.add_argument("--imports", type=int, default=0, help="also print the N costliest mlcli imports")
    args = parser.parse_args()

    print(f"python {platform.python_version()} ({sys.executable}), {platform.system()} {platform.machine()}, "
          f"{os.cpu_count()} cpus")
    todo = commands()
    for argv in todo.values():  # warm the file cache and the bytecode cache once
        wall_time(argv)
    times: dict[str, list[float]] = {name: [] for name in todo}
    for _ in range(args.runs):
        for name, argv in todo.items():
            times[name].append(wall_time(argv))
    baseline = statistics.median(times["python -c pass"])
    for name in todo:
        if name == "python -c pass":
            continue
        median = statistics.median(times[name])
        print(f"{name}: {median:.3f} s median, best {min(times[name]):.3f} s (python -c pass: {baseline:.3f} s); "
              f"target <= {TARGET_SECONDS} s: {'ok' if median <= TARGET_SECONDS else 'MISSED'}")
    if args.imports:
        print("costliest mlcli imports of `mlcli --help` (cumulative; heaviest library it imports directly):")
        for seconds, name, heaviest in import_costs(args.imports):
            print(f"  {seconds:6.3f} s  {name:<28} {heaviest}")


if __name__ == "__main__":
    main()
