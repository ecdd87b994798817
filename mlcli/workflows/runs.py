"""Look back at finished (and unfinished) runs: `mlcli.list_runs`, `mlcli.show_run`, `mlcli.compare_runs`.

    rows = list_runs("runs", sort="val_loss", status=["completed", "early_stopped"])
    rows[0].name, rows[0].best, rows[0].metrics["test_accuracy"]
    show_run(rows[0].path)["config"]["train"]["optimizer"]
    c = compare_runs(["runs/a-20261201-120000", "runs/b-20261201-120500"])   # or one cv / sweep directory
    c.differing, c.same, c.values[0]["train.optimizer.lr"], c.runs[0].metrics["val_loss"]

Runs are read by `mlcli.runs.index` (a corrupt file makes a row `unreadable`, never an error); only a path that
does not exist or holds no run is a ConfigError. Nothing here writes.

Sorting (`sort`): by a column (`name`, `model`, `status`, `started`, `seconds`, `epochs`, `best_epoch`, `run`,
`kind`, `monitor`; `best` puts each row's best monitored value first) or by a metric of the best epoch
(`val_loss`, `train_accuracy`) or of the test split (`test_accuracy`): losses and errors ascending, accuracy and
r2 descending (`mlcli.models.metrics.mode_of`). Rows without the value come last. The default is the start time.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlcli.errors import ConfigError
from mlcli.models.metrics import mode_of
from mlcli.runs.index import (
    RunInfo,
    find_runs,
    flatten,
    group_of,
    group_runs,
    is_cv_dir,
    is_run_dir,
    is_sweep_dir,
    json_safe,
    read_records,
    read_run,
)

COLUMNS = ("run", "kind", "name", "model", "status", "monitor", "best", "best_epoch", "epochs", "seconds", "started")
STATUSES = ("completed", "early_stopped", "interrupted", "diverged", "running", "killed", "unreadable")


@dataclass
class Comparison:
    """Runs side by side. `differing`: the dotted config keys whose values are not the same in every run (in config
    order); `values[i]`: run i's value of each of them (a key absent from a run's config is absent here); `same`:
    the keys equal in all, with their value; `metrics`: the metric columns (best epoch's `val_*`, then `test_*`).
    Runs whose config.yaml is unreadable take no part in `differing` and `same`."""

    runs: list[RunInfo]
    differing: list[str]
    values: list[dict[str, Any]]
    same: dict[str, Any] = field(default_factory=dict)
    metrics: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The JSON form (`mlcli runs compare --json`)."""
        rows = [{**run.to_dict(), "config": values} for run, values in zip(self.runs, self.values, strict=True)]
        return json_safe({"runs": rows, "differing": list(self.differing), "same": dict(self.same),
                          "metrics": list(self.metrics)})


def list_runs(dir: str | Path = "runs", *, sort: str | None = None,
              status: str | list[str] | tuple[str, ...] | None = None) -> list[RunInfo]:
    """Every run in `dir`: its run directories, the folds of its cv directories and the trials of its sweeps
    (`dir` may also be one of those itself). `status`: keep only these statuses (a list, or a comma list)."""
    root = Path(dir)
    runs = find_runs(root)
    if runs is None:
        what = "not a directory" if root.exists() else "no such directory"
        raise ConfigError(f"{root}: {what}; expected a folder of run directories (mlcli train's --runs-dir)")
    return sort_runs(filter_runs(runs, status), sort)


def show_run(run_dir: str | Path) -> dict:
    """One run: its resolved config (config.yaml, as a dict) and summary (best epoch and record, final record, test
    metrics, status, timings, versions); for a run that never ended, what metrics.jsonl holds."""
    path = Path(run_dir)
    run = _read_one(path)
    s = run.summary or {}
    keys = ("monitor", "best_epoch", "best", "final", "test", "epochs_completed", "seconds", "started_at",
            "ended_at", "seed", "task", "n_train", "n_val", "n_test", "resumed_from", "command", "overrides",
            "versions", "git_commit")
    shown = {k: s[k] for k in keys if k in s}
    shown.update({k: s[k] if isinstance(s.get(k), dict) else {} for k in ("best", "final", "test") if k in s})
    shown.update({"monitor": run.monitor, "best_epoch": run.best_epoch, "epochs_completed": run.epochs,
                  "seconds": run.seconds})
    if run.summary is None:  # a run that never ended: what its metrics.jsonl holds
        records = read_records(path)
        shown["best"] = {k: v for k, v in run.metrics.items() if not k.startswith("test_")}
        shown["final"] = records[-1] if records else {}
    return json_safe({"run": str(path), "kind": run.kind, "name": run.name, "model": run.model, "status": run.status,
                      "reason": run.reason, "started": run.started, **shown, "config": run.config})


def compare_runs(paths, *, sort: str | None = None,
                 status: str | list[str] | tuple[str, ...] | None = None) -> Comparison:
    """Compare run directories; a cv directory, a sweep directory or a folder of runs among `paths` stands for
    the runs it holds (one such directory alone compares its folds or trials)."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not paths:
        raise ConfigError("compare: give one or more run directories, or one cv or sweep directory")
    runs: list[RunInfo] = []
    seen: set[Path] = set()
    for path in map(Path, paths):
        found = [_read_one(path)] if is_run_dir(path) else _held_runs(path)
        for run in found:
            if run.path.resolve() not in seen:
                seen.add(run.path.resolve())
                runs.append(run)
    runs = sort_runs(filter_runs(runs, status), sort)
    flats = [flatten(run.config) if run.config is not None else None for run in runs]
    keys = list(dict.fromkeys(k for flat in flats if flat is not None for k in flat))
    readable = [flat for flat in flats if flat is not None]
    differing = [k for k in keys if not _all_equal([flat.get(k, _ABSENT) for flat in readable])]
    same = {k: readable[0][k] for k in keys if k not in differing}
    values = [{k: flat[k] for k in differing if k in flat} if flat is not None else {} for flat in flats]
    metrics = list(dict.fromkeys(k for run in runs for k in run.metrics if k.startswith("val_")))
    metrics += list(dict.fromkeys(k for run in runs for k in run.metrics if k.startswith("test_")))
    return Comparison(runs=runs, differing=differing, values=values, same=same, metrics=metrics)


def filter_runs(runs: list[RunInfo], status) -> list[RunInfo]:
    """The runs whose status is one of `status` (a name, a comma list or a list of either; None keeps all)."""
    if status is None:
        return list(runs)
    items = [status] if isinstance(status, str) else list(status)
    wanted = {s.strip() for item in items for s in str(item).split(",") if s.strip()}
    if not wanted:
        return list(runs)
    known = set(STATUSES) | {run.status for run in runs}
    unknown = sorted(wanted - known)
    if unknown:
        raise ConfigError(f"--status: unknown status {unknown[0]!r}{_suggest(unknown[0], known)}; "
                          f"one of {', '.join(sorted(known))}")
    return [run for run in runs if run.status in wanted]


def sort_runs(runs: list[RunInfo], key: str | None) -> list[RunInfo]:
    """`runs` ordered by `key` (see the module docstring); by start time when `key` is None."""
    by_start = sorted(runs, key=lambda r: (r.started or "", str(r.path)))
    if key is None or key == "started":
        return by_start
    metric_keys = {k for run in runs for k in run.metrics}
    if key not in COLUMNS and key not in metric_keys:
        if not runs and key.startswith(("train_", "val_", "test_")):
            return by_start
        available = [*COLUMNS, *sorted(metric_keys)]
        raise ConfigError(f"--sort: unknown key {key!r}{_suggest(key, available)}; "
                          f"one of {', '.join(available)}")
    present = [r for r in by_start if _sort_value(r, key) is not None]
    missing = [r for r in by_start if _sort_value(r, key) is None]
    descending = key not in COLUMNS and mode_of(key) == "max"
    return sorted(present, key=lambda r: _sort_value(r, key), reverse=descending) + missing


def _sort_value(run: RunInfo, key: str):
    if key == "best":
        if run.best is None or run.monitor is None:
            return None
        return run.best if mode_of(run.monitor) == "min" else -run.best
    if key == "run":
        return str(run.path)
    if key in COLUMNS:
        value = getattr(run, key)
        return value if value is None or isinstance(value, (str, int, float)) else str(value)
    return run.metrics.get(key)


def _read_one(path: Path) -> RunInfo:
    """A run directory, with its kind when it sits in a cv or sweep directory; ConfigError for anything else."""
    if not path.exists():
        raise ConfigError(f"{path}: no such run directory")
    if not is_run_dir(path):
        if is_cv_dir(path) or is_sweep_dir(path):
            kind = "a cv" if is_cv_dir(path) else "a sweep"
            raise ConfigError(f"{path}: {kind} directory, not a run; see its runs with 'mlcli runs compare {path}'")
        raise ConfigError(f"{path}: not a run directory (expected config.yaml and summary.json, metrics.jsonl or "
                          f"checkpoints/)")
    kind, group = group_of(path)
    return read_run(path, kind=kind, group=group)


def _held_runs(path: Path) -> list[RunInfo]:
    if not path.exists():
        raise ConfigError(f"{path}: no such run directory")
    runs = group_runs(path)
    if runs is None:
        runs = find_runs(path) or []
    if not runs:
        raise ConfigError(f"{path}: not a run directory, and holds no runs (expected config.yaml and summary.json, "
                          f"metrics.jsonl or checkpoints/; or a cv or sweep directory)")
    return runs


_ABSENT = object()


def _all_equal(values: list) -> bool:
    """Equal in every run; `true` and `1` are not (YAML tells them apart), `1` and `1.0` are."""
    first = values[0]
    return all(v is not _ABSENT and v == first and isinstance(v, bool) == isinstance(first, bool) for v in values)


def _suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
