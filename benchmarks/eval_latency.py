"""Benchmark: `mlcli eval` of the quickstart's checkpoint, end to end (process start to exit), and where it goes.

Trains `mlcli/examples/quickstart.yaml` once into a temporary runs folder (`--set train.epochs=2`: the weights do
not matter here, only the checkpoint's format), then runs, alternating, each in a fresh process `--runs` (7)
times: `python -c pass` (the floor), `python -c "import numpy"`, `mlcli eval <best.npz>` (the terminal report,
per-class table included) and `mlcli eval <best.npz> --json`. Printed per command: the median (and best) wall
time and the median CPU time (user + sys of the child, less sensitive to other jobs on a shared machine), the
load average, and whether the target (median wall of `mlcli eval` <= 0.6 s) holds.

Then the phases of one evaluation in a fresh process, in CPU milliseconds (`time.process_time`, in the order
`mlcli eval` meets them): importing numpy, the CLI app, the evaluate workflow, reading the checkpoint and
rebuilding the model (`load_model`), rebuilding the test split (`prepare`: the bundled digits are read from
scikit-learn's own data file without importing scikit-learn; the line says so if it was imported), the metrics,
the per-class report. `--imports N` adds the N
costliest imports of `python -X importtime -m mlcli eval` (cumulative microseconds, as Python reports them).

Bytecode: an installed package has its `.pyc` files; a machine with `PYTHONDONTWRITEBYTECODE=1` compiles every
module from source at every start (about 0.1-0.2 s CPU for mlcli's modules). The timed commands therefore run
with bytecode caching on, in a temporary `PYTHONPYCACHEPREFIX` (never in the source tree), warmed by one run;
`mlcli eval (no bytecode)` is timed too, with the environment as set.

Run: `python benchmarks/eval_latency.py [--runs 7] [--imports 12]` (the project's venv is enough; no torch).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 0.6
QUICKSTART = Path(__file__).resolve().parent.parent / "mlcli" / "examples" / "quickstart.yaml"

PHASES = r"""
import json, sys, time
clock = time.process_time
marks = [("start", clock())]
def mark(name): marks.append((name, clock()))
import numpy; mark("import numpy")
import mlcli.cli.app; mark("import mlcli.cli.app")
import mlcli.workflows.evaluate as ev; mark("import mlcli.workflows.evaluate")
from mlcli.runs.snapshot import load_model
loaded = load_model(sys.argv[1]); mark("load_model (checkpoint + rebuild)")
from mlcli.data.pipeline import prepare
from mlcli.models.context import compute_dtype
from mlcli.seeding import generators
cfg = loaded.config
data = prepare(cfg.data, generators(cfg.seed), dtype=compute_dtype(cfg), scaler=loaded.standardizer)
mark("prepare (load, split, standardize)" + (" [imported scikit-learn]" if "sklearn" in sys.modules else ""))
loaded.model.evaluate(data.test.x, data.test.y); mark("model.evaluate")
from mlcli.models.metrics import classification_report
proba = loaded.model.probabilities(data.test.x)
classification_report(data.test.y, loaded.model.predict(data.test.x), proba.shape[1],
                      loaded.meta.get("class_names"), scores=proba); mark("per-class report")
print(json.dumps([(b, 1e3 * (t1 - t0)) for (_, t0), (b, t1) in zip(marks, marks[1:])]))
"""


def mlcli_script() -> list[str]:
    script = Path(sys.executable).with_name("mlcli")
    return [str(script)] if script.exists() else [sys.executable, "-m", "mlcli"]


def train_checkpoint(runs_dir: Path) -> Path:
    subprocess.run([*mlcli_script(), "train", str(QUICKSTART), "--runs-dir", str(runs_dir), "--quiet",
                    "--set", "train.epochs=2"], check=True, capture_output=True)
    return next(runs_dir.glob("*/checkpoints/best.npz"))


def timed(argv: list[str], env: dict | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child: user + sys) of one run of `argv` in a fresh process."""
    before = os.times()
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env)
    wall = time.perf_counter() - start
    after = os.times()
    return wall, (after.children_user - before.children_user) + (after.children_system - before.children_system)


def top_imports(argv: list[str], n: int, env: dict) -> list[tuple[str, int]]:
    """The n mlcli-or-library modules with the largest cumulative import time (us) in `python -X importtime`,
    run with `env` (the cached bytecode: without it the times include compiling every module)."""
    err = subprocess.run([sys.executable, "-X", "importtime", "-m", "mlcli", *argv], capture_output=True,
                         text=True, env=env).stderr
    found = []
    for line in err.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
        if m and len(m.group(2)) <= 3:  # top-level imports and their direct children
            found.append((m.group(3), int(m.group(1))))
    return sorted(found, key=lambda kv: kv[1], reverse=True)[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--imports", type=int, default=12)
    args = parser.parse_args()
    env = ", ".join(f"{k}={os.environ.get(k, 'unset')}" for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                                                   "OPENBLAS_NUM_THREADS"))
    print(f"env: {env}; cpus={os.cpu_count()}; python {sys.version.split()[0]}; load average "
          + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    print(f"PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', 'unset')} as set; timed with "
          f"bytecode caching in a temporary PYTHONPYCACHEPREFIX unless marked (no bytecode)")
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = train_checkpoint(Path(tmp))
        cached = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        cached["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        eval_argv = [*mlcli_script(), "eval", str(ckpt)]
        commands = {"python -c pass": ([sys.executable, "-c", "pass"], cached),
                    "python -c 'import numpy'": ([sys.executable, "-c", "import numpy"], cached),
                    "mlcli eval best.npz": (eval_argv, cached),
                    "mlcli eval best.npz --json": ([*eval_argv, "--json"], cached),
                    "mlcli eval (no bytecode)": (eval_argv, None)}
        for argv, env in commands.values():  # warm the file and bytecode caches once
            timed(argv, env)
        walls: dict[str, list[float]] = {name: [] for name in commands}
        cpus: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, (argv, env) in commands.items():
                wall, cpu = timed(argv, env)
                walls[name].append(wall)
                cpus[name].append(cpu)
        print(f"{args.runs} alternating runs of each, fresh processes; load average after "
              + " ".join(f"{v:.2f}" for v in os.getloadavg()))
        for name in commands:
            print(f"  {name:28s} median {statistics.median(walls[name]):.3f} s wall (best {min(walls[name]):.3f}), "
                  f"median {statistics.median(cpus[name]):.3f} s cpu")
        med = statistics.median(walls["mlcli eval best.npz"])
        print(f"target: mlcli eval <= {TARGET_SECONDS} s wall: {'met' if med <= TARGET_SECONDS else 'MISSED'} "
              f"({med:.3f} s median)")
        phases = subprocess.run([sys.executable, "-c", PHASES, str(ckpt)], check=True, capture_output=True,
                                text=True, env=cached).stdout
        print("phases of one evaluation (fresh process, bytecode cached, CPU ms):")
        for name, ms in json.loads(phases.strip().splitlines()[-1]):
            print(f"  {name:44s} {ms:7.0f} ms")
        if args.imports:
            print("costliest imports of mlcli eval (cumulative, us; python -X importtime):")
            for name, us in top_imports(["eval", str(ckpt)], args.imports, cached):
                print(f"  {name:44s} {us:9d}")


if __name__ == "__main__":
    main()
