"""Mutation testing for mlcli's core: which single-point edits of a module do its tests fail to notice?

    python tools/mutate.py                         # every module of MODULES
    python tools/mutate.py mlcli/optim/optimizers.py --timeout 60
    python tools/mutate.py mlcli/nn/losses.py --list   # print the mutants without running anything

Each mutant is ONE change to a module's AST: an arithmetic operator swapped (`+` <-> `-`, `*` <-> `/`, `//` -> `/`,
`**` -> `*`, also in `+=`...), a comparison moved (`<` <-> `<=`, `>` <-> `>=`, `==` <-> `!=`, `is` <-> `is not`,
`in` <-> `not in`), `and` <-> `or`, a `not` or a unary minus dropped, a number changed (`n` -> `n + 1`, `0.0`
-> `1.0`, `x` -> `2 * x`), `True` <-> `False`, a `raise` replaced by `pass`. Error messages (f-strings, the
arguments of `raise`), docstrings and annotations are left alone.

Nothing in the working tree is touched: the repository (without .git, .venv and runs/) is copied to a temporary
folder, each mutant is written into the COPY, the module's related tests (`MODULES`) run there against it
(`PYTHONPATH` and the working directory are the copy), and the copy's file is restored in a `finally`. The tool
refuses to start when a module to mutate has uncommitted changes, so that the score is the score of a commit.
Tests run in a forked child of a process that has already imported NumPy, pytest and hypothesis (mlcli itself is
imported fresh by every child), stop at the first failure (`-x`) and are killed after `--timeout` seconds (a
mutant that hangs counts as killed: the suite's pytest-timeout would fail it too).

A mutant survives when the tests still pass. Survivors listed in `tools/mutation_equivalents.py` (mutants that
cannot change behaviour, each with the reason) are reported apart and left out of the score:
score = killed / (mutants - equivalent).
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))

from mutation_equivalents import EQUIVALENT  # noqa: E402

# module -> the test files that exercise it (the mutant's verdict comes from these alone)
MODULES: dict[str, list[str]] = {
    "mlcli/optim/optimizers.py": ["tests/test_optimizers.py", "tests/test_optimizer_state.py"],
    "mlcli/optim/regularizers.py": ["tests/test_regularizers.py", "tests/test_regularizer_defaults.py"],
    "mlcli/optim/schedules.py": ["tests/test_schedules.py", "tests/test_schedule_bounds.py"],
    "mlcli/optim/newton.py": ["tests/test_newton.py", "tests/test_newton_edges.py"],
    "mlcli/nn/layers.py": [
        "tests/test_nn_layers.py", "tests/test_layer_edges.py", "tests/test_conv.py", "tests/test_nn_gradients.py",
    ],
    "mlcli/nn/activations.py": ["tests/test_nn_layers.py", "tests/test_nn_gradients.py", "tests/test_activations.py"],
    "mlcli/nn/losses.py": ["tests/test_losses.py", "tests/test_loss_edges.py", "tests/test_nn_gradients.py"],
    "mlcli/nn/conv.py": ["tests/test_conv.py", "tests/test_conv_pool_reference.py", "tests/test_conv_pool_mutants.py",
                         "tests/test_nn_gradients.py"],
    "mlcli/nn/pooling.py": ["tests/test_conv.py", "tests/test_conv_pool_reference.py",
                            "tests/test_conv_pool_mutants.py", "tests/test_nn_gradients.py"],
    "mlcli/nn/init.py": ["tests/test_nn_layers.py", "tests/test_nn_gradients.py", "tests/test_init_edges.py"],
    # tests/test_nn_mutants.py first in these five: its small exact tests kill most of their mutants in a second
    "mlcli/nn/network.py": ["tests/test_nn_mutants.py", "tests/test_network_backward.py", "tests/test_nn_layers.py",
                            "tests/test_tied_autoencoder.py", "tests/test_nn_gradients.py"],
    "mlcli/nn/heads.py": ["tests/test_nn_mutants.py", "tests/test_multitask.py"],
    "mlcli/nn/functional.py": ["tests/test_nn_mutants.py", "tests/test_nn_layers.py", "tests/test_layer_edges.py",
                               "tests/test_nn_gradients.py", "tests/test_conv.py", "tests/test_dropout_modes.py"],
    "mlcli/nn/base.py": ["tests/test_nn_mutants.py", "tests/test_nn_layers.py", "tests/test_layer_edges.py"],
    "mlcli/nn/gradcheck.py": ["tests/test_nn_mutants.py", "tests/test_nn_gradients.py", "tests/test_conv.py",
                              "tests/test_gradcheck_configs.py"],
    "mlcli/nn/parallel.py": ["tests/test_parallel.py", "tests/test_threads.py", "tests/test_conv.py"],
    "mlcli/runs/checkpoint.py": ["tests/test_checkpoint.py", "tests/test_checkpoint_limits.py"],
    "mlcli/data/splits.py": ["tests/test_splits.py", "tests/test_data.py"],
    "mlcli/training/trainer.py": ["tests/test_trainer_mutants.py", "tests/test_api.py", "tests/test_resume.py",
                                  "tests/test_cli_train.py"],
    "mlcli/training/callbacks.py": ["tests/test_early_stopping.py", "tests/test_callbacks.py", "tests/test_resume.py"],
    # the fast mutant tests first: most mutants fail there within seconds, before the process and cluster tests
    "mlcli/sweeps/executors.py": ["tests/test_executor_mutants.py", "tests/test_executors.py"],
    "mlcli/sweeps/dask_cluster.py": ["tests/test_executor_mutants.py", "tests/test_executors.py"],
    # tests/test_training_mutants.py first: direct, fast tests of the loop and the callbacks without a run directory
    "mlcli/training/loop.py": ["tests/test_training_mutants.py", "tests/test_resume.py", "tests/test_api.py"],
    "mlcli/training/checkpointing.py": ["tests/test_training_mutants.py", "tests/test_resume.py",
                                        "tests/test_cli_train.py"],
    "mlcli/training/snapshots.py": ["tests/test_training_mutants.py", "tests/test_ensemble_train.py"],
    "mlcli/training/threads.py": ["tests/test_training_mutants.py", "tests/test_threads.py"],
    "mlcli/training/progress.py": ["tests/test_training_mutants.py"],
    "mlcli/training/diagnostics.py": ["tests/test_training_mutants.py", "tests/test_diagnostics.py"],
    "mlcli/optim/registry.py": ["tests/test_training_mutants.py", "tests/test_optimizers.py"],
}

_SWAP = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div,
    ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult, ast.BitAnd: ast.BitOr, ast.BitOr: ast.BitAnd,
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.And: ast.Or, ast.Or: ast.And,
}
_SYMBOL = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**",
    ast.BitAnd: "&", ast.BitOr: "|", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==",
    ast.NotEq: "!=", ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in", ast.And: "and",
    ast.Or: "or",
}


@dataclass(frozen=True)
class Mutant:
    path: str  # repository-relative
    index: int  # position in the module's walk order (identifies the node to change)
    line: int
    col: int
    change: str  # e.g. "`<` -> `<=`"

    def key(self, source_lines: list[str]) -> tuple[str, str, str]:
        """(path, stripped source line, change): how the exclusion list names a mutant (survives line shifts)."""
        return self.path, source_lines[self.line - 1].strip(), self.change


def _skipped_nodes(tree: ast.AST) -> set[int]:
    """ids of nodes never mutated: docstrings, f-strings, annotations, raise arguments, asserts."""
    skip: set[int] = set()

    def mark(node: ast.AST | None) -> None:
        if node is not None:
            skip.update(id(n) for n in ast.walk(node))

    for node in ast.walk(tree):
        if isinstance(node, (ast.JoinedStr, ast.Assert)):
            mark(node)
        elif isinstance(node, ast.Raise):
            mark(node.exc)
            mark(node.cause)
        elif isinstance(node, (ast.AnnAssign, ast.arg)):
            mark(node.annotation)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            mark(node.returns)
    return skip


def _changes(node: ast.AST) -> list[tuple[str, object]]:
    """The mutations of one node: (description, what `_apply` needs to carry it out)."""
    out: list[tuple[str, object]] = []
    if isinstance(node, (ast.BinOp, ast.AugAssign, ast.BoolOp)) and type(node.op) in _SWAP:
        new = _SWAP[type(node.op)]
        out.append((f"`{_SYMBOL[type(node.op)]}` -> `{_SYMBOL[new]}`", ("op", new)))
    elif isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            if type(op) in _SWAP:
                new = _SWAP[type(op)]
                out.append((f"`{_SYMBOL[type(op)]}` -> `{_SYMBOL[new]}`", ("cmp", i, new)))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
        out.append((f"drop `{'not' if isinstance(node.op, ast.Not) else '-'}`", ("unary",)))
    elif isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, bool):
            out.append((f"`{v}` -> `{not v}`", ("const", not v)))
        elif isinstance(v, int):
            out.append((f"`{v}` -> `{v + 1}`", ("const", v + 1)))
        elif isinstance(v, float):
            new = 1.0 if v == 0 else 2 * v
            out.append((f"`{v!r}` -> `{new!r}`", ("const", new)))
    elif isinstance(node, ast.Raise):
        out.append(("`raise` -> `pass`", ("raise",)))
    return out


def _docstring_ids(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def mutants_of(path: str, source: str) -> list[Mutant]:
    tree = ast.parse(source)
    skip = _skipped_nodes(tree) | _docstring_ids(tree)
    found = []
    for index, node in enumerate(ast.walk(tree)):
        if id(node) in skip:
            continue
        for change, _ in _changes(node):
            found.append(Mutant(path, index, node.lineno, node.col_offset, change))
    return sorted(found, key=lambda m: (m.line, m.col, m.index))


def apply(source: str, mutant: Mutant) -> str:
    """The source of the module with `mutant` applied (re-generated from the AST by `ast.unparse`)."""
    tree = ast.parse(source)
    node = list(ast.walk(tree))[mutant.index]
    what = dict(_changes(node))[mutant.change]
    kind = what[0]
    if kind == "op":
        node.op = what[1]()
    elif kind == "cmp":
        node.ops[what[1]] = what[2]()
    elif kind == "const":
        node.value = what[1]
    elif kind in ("unary", "raise"):
        replacement = node.operand if kind == "unary" else ast.Pass()
        for parent in ast.walk(tree):
            for field, value in ast.iter_fields(parent):
                if value is node:
                    setattr(parent, field, replacement)
                elif isinstance(value, list) and any(v is node for v in value):
                    value[next(i for i, v in enumerate(value) if v is node)] = replacement
    return ast.unparse(ast.fix_missing_locations(tree))


def _dirty(paths: list[str]) -> list[str]:
    out = subprocess.run(["git", "status", "--porcelain", "--", *paths], cwd=REPO, capture_output=True, text=True)
    return [line[3:] for line in out.stdout.splitlines()]


def _copy_repo() -> Path:
    # not in /tmp: the shared machine's temporary folder gets cleaned while a run takes minutes
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mlcli-mutate"
    cache.mkdir(parents=True, exist_ok=True)
    dest = Path(tempfile.mkdtemp(prefix="copy-", dir=cache)) / "repo"
    anywhere = shutil.ignore_patterns("__pycache__", ".hypothesis", ".pytest_cache", "*.egg-info")

    def ignore(folder: str, names: list[str]) -> set[str]:
        top = {".git", ".venv", "runs"} if Path(folder) == REPO else set()  # runs/ at the top, not mlcli/runs/
        return top & set(names) | anywhere(folder, names)

    shutil.copytree(REPO, dest, ignore=ignore)
    return dest


def _drop_pyc(file: Path) -> None:
    for pyc in (file.parent / "__pycache__").glob(f"{file.stem}.*.pyc"):
        pyc.unlink()


def _run_tests(copy_root: Path, tests: list[str], timeout: float) -> str:
    """'passed', 'failed' or 'timeout': the related tests run in a forked child against the copy."""
    pid = os.fork()
    if pid == 0:  # the child: import mlcli from the copy, run pytest, report by exit code
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.setpgid(0, 0)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            import pytest

            code = pytest.main(["-x", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "--timeout", str(timeout),
                                *tests])
            mlcli = sys.modules.get("mlcli")
            if mlcli is not None and not str(mlcli.__file__).startswith(str(copy_root)):
                os._exit(3)  # the tests imported the working tree's mlcli, not the copy's
            os._exit(0 if code == 0 else 1)
        except BaseException:
            os._exit(1)
    deadline = time.monotonic() + timeout + 30
    try:
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                pid = 0
                code = os.waitstatus_to_exitcode(status)
                return {0: "passed", 3: "imported the working tree, not the copy"}.get(code, "failed")
            time.sleep(0.05)
        return "timeout"
    finally:
        if pid:  # timed out, or this process is being stopped: the child and its workers go too
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def mutate_module(rel: str, copy_root: Path, timeout: float, equivalent: set) -> dict:
    file = copy_root / rel
    original = file.read_text()
    lines = original.splitlines()
    tests = [t for t in MODULES[rel] if (copy_root / t).exists()]
    mutants = mutants_of(rel, original)
    start = time.monotonic()
    baseline = apply_and_run(file, ast.unparse(ast.parse(original)), original, copy_root, tests, timeout)
    if baseline != "passed":
        print(f"{rel}: the related tests do not pass on the unmutated module ({baseline}); skipped", flush=True)
        return {"module": rel, "error": baseline}
    survivors, excluded = [], []
    for m in mutants:
        verdict = apply_and_run(file, apply(original, m), original, copy_root, tests, timeout)
        if verdict == "passed":
            (excluded if m.key(lines) in equivalent else survivors).append(m)
    counted = len(mutants) - len(excluded)
    killed = counted - len(survivors)
    score = killed / counted if counted else 1.0
    print(f"{rel}: {killed}/{counted} killed ({100 * score:.1f}%), {len(excluded)} equivalent excluded, "
          f"{len(mutants)} mutants, {time.monotonic() - start:.0f} s", flush=True)
    for m in survivors:
        print(f"  SURVIVED {rel}:{m.line}:{m.col + 1}: {m.change}    {lines[m.line - 1].strip()}", flush=True)
    return {"module": rel, "killed": killed, "counted": counted, "excluded": len(excluded), "score": score}


def apply_and_run(file: Path, mutated: str, original: str, copy_root: Path, tests: list[str], timeout: float) -> str:
    try:
        file.write_text(mutated)
        _drop_pyc(file)
        verdict = _run_tests(copy_root, tests, timeout)
        if not (copy_root / "tests").is_dir():  # a failure in a vanished copy would count as a kill: stop
            raise RuntimeError(f"the copy {copy_root} was removed during the run; no score")
        return verdict
    finally:
        file.write_text(original)
        _drop_pyc(file)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="repository-relative module paths (default: all of MODULES)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per mutant's test run (default 120)")
    parser.add_argument("--list", action="store_true", help="print the mutants and exit")
    args = parser.parse_args(argv)
    modules = args.modules or [m for m in MODULES if (REPO / m).exists()]
    unknown = [m for m in modules if m not in MODULES]
    if unknown:
        parser.error(f"no test mapping for {unknown}; known modules: {', '.join(MODULES)}")
    if args.list:
        for rel in modules:
            source = (REPO / rel).read_text()
            for m in mutants_of(rel, source):
                print(f"{rel}:{m.line}:{m.col + 1}: {m.change}    {source.splitlines()[m.line - 1].strip()}")
        return 0
    dirty = _dirty(modules)
    if dirty:
        print(f"refusing to start: uncommitted changes in {', '.join(dirty)} (commit them first)", file=sys.stderr)
        return 2
    equivalent = {(p, code, change) for p, code, change, _reason in EQUIVALENT}
    copy_root = _copy_repo()
    os.chdir(copy_root)
    sys.path.insert(0, str(copy_root))
    os.environ["PYTHONPATH"] = str(copy_root) + os.pathsep + os.environ.get("PYTHONPATH", "")
    # warm the parent so every forked child starts with these already imported (mlcli is imported per child)
    import hypothesis  # noqa: F401
    import numpy  # noqa: F401
    import pytest  # noqa: F401

    # `kill <pid>` (SIGTERM) unwinds through the finally blocks: the copy's file is restored and the copy removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results = []
    try:
        for rel in modules:
            results.append(mutate_module(rel, copy_root, args.timeout, equivalent))
    finally:
        shutil.rmtree(copy_root.parent, ignore_errors=True)
    print("\nmodule                           killed/counted   score   (equivalent excluded)")
    failing = False
    for r in results:
        if "error" in r:
            print(f"{r['module']:<32} baseline {r['error']}")
            failing = True
            continue
        print(f"{r['module']:<32} {r['killed']:>6}/{r['counted']:<7} {100 * r['score']:6.1f}%   ({r['excluded']})")
        failing |= r["score"] < 0.95
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
