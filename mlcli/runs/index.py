"""The runs index: find run directories and read each into one `RunInfo`, never trusting what is on disk.

    find_runs(Path("runs"))        # every run under runs/, the folds of its cv dirs and the trials of its sweeps
    read_run(Path("runs/mlp-20261201-120000")).status, .metrics["val_loss"], .config["train"]["optimizer"]

What counts as a run directory (`is_run_dir`): a folder with config.yaml and summary.json, metrics.jsonl or
checkpoints/. A cv directory (`<name>-cv-<stamp>/`) holds config.yaml, folds.json or cv_summary.json and its runs
in `fold-*/`; a sweep directory holds its runs in `trials/<trial-id>/`. Both are groups: their runs are listed as
rows of kind `cv fold` / `sweep trial` whose `group` is the group's directory.

Status: summary.json's `status` (completed, early_stopped, interrupted, diverged, ...). A run without summary.json
never ended: `running` when its run.lock names a live process on this host, `killed` otherwise (killed, or a crash
that took the whole process); its epochs and best value then come from metrics.jsonl. A summary.json or
config.yaml that cannot be read (truncated, not JSON/YAML, too big, of the wrong shape) gives status `unreadable`
and the reason, with whatever else could be read. Files are read with size caps, regular files only, the config
through the strict YAML reader; nothing here writes.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import socket
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlcli.config.yaml_reader import load_yaml
from mlcli.errors import MlcliError
from mlcli.models.metrics import mode_of

MAX_SUMMARY_BYTES = 4 * 2**20
MAX_METRICS_BYTES = 64 * 2**20
MAX_LOCK_BYTES = 4096
KINDS = ("run", "cv fold", "sweep trial")


@dataclass
class RunInfo:
    """One run directory as read from disk. `metrics`: the best epoch's record (`train_*`, `val_*`) and the test
    metrics as `test_<name>`; `best`: the value of `monitor` at `best_epoch`; `started`: ISO 8601 UTC, from
    summary.json's `started_at` or else (`started_from` = "mtime") the time config.yaml was written."""

    path: Path
    kind: str = "run"
    group: Path | None = None
    name: str | None = None
    model: str | None = None
    status: str = "unreadable"
    monitor: str | None = None
    best: float | None = None
    best_epoch: int | None = None
    epochs: int | None = None
    seconds: float | None = None
    started: str | None = None
    started_from: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    reason: str | None = None
    summary: dict | None = field(default=None, repr=False)
    config: dict | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        """The JSON form of a row (`mlcli runs list --json`), strict JSON (see `json_safe`)."""
        group = None if self.group is None else str(self.group)
        return json_safe({"run": str(self.path), "kind": self.kind, "group": group, "name": self.name,
                          "model": self.model, "status": self.status, "monitor": self.monitor, "best": self.best,
                          "best_epoch": self.best_epoch, "epochs": self.epochs, "seconds": self.seconds,
                          "started": self.started, "started_from": self.started_from, "metrics": dict(self.metrics),
                          "reason": self.reason})


def is_run_dir(path: Path) -> bool:
    path = Path(path)
    return (path / "config.yaml").is_file() and any(
        (path / p).exists() for p in ("summary.json", "metrics.jsonl", "checkpoints"))


def is_cv_dir(path: Path) -> bool:
    path = Path(path)
    return (path / "config.yaml").is_file() and (
        (path / "folds.json").is_file() or (path / "cv_summary.json").is_file()) and not is_run_dir(path)


def is_sweep_dir(path: Path) -> bool:
    path = Path(path)
    return ((path / "trials").is_dir() or (path / "sweep.yaml").is_file()) and not is_run_dir(path)


def group_runs(path: Path) -> list[RunInfo] | None:
    """The runs of a cv directory (its folds, in fold order) or a sweep directory (its trials by name; a trial that
    is itself a cv directory, or holds one run per seed, gives those runs), or None if `path` is neither."""
    path = Path(path)
    if is_cv_dir(path):
        return [read_run(p, kind="cv fold", group=path) for p in _folds(path)]
    if is_sweep_dir(path):
        runs = []
        for trial in _subdirs(path / "trials"):
            if trial.name.startswith("."):  # a trial's files being put in place
                continue
            inner = [trial] if is_run_dir(trial) else _folds(trial) if is_cv_dir(trial) else [
                p for p in _subdirs(trial) if is_run_dir(p)]
            runs.extend(read_run(p, kind="sweep trial", group=path) for p in inner)
        return runs
    return None


def _folds(cv_dir: Path) -> list[Path]:
    folds = [p for p in _subdirs(cv_dir) if re.fullmatch(r"fold-\d+", p.name) and is_run_dir(p)]
    return sorted(folds, key=lambda p: int(p.name.removeprefix("fold-")))


def group_of(run_dir: Path) -> tuple[str, Path | None]:
    """(kind, group directory) of a run directory: a fold of a cv directory, a trial of a sweep (also a fold or a
    seed of one), or ("run", None)."""
    path = Path(run_dir)
    for up in (path.parent, path.parent.parent, path.parent.parent.parent):
        if up.name == "trials" and is_sweep_dir(up.parent):
            return "sweep trial", up.parent
    if path.name.startswith("fold-") and is_cv_dir(path.parent):
        return "cv fold", path.parent
    return "run", None


def find_runs(root: Path) -> list[RunInfo] | None:
    """The runs `root` is or holds: itself when it is a run directory, a group's runs, or those of the run, cv and
    sweep directories directly inside it (in name order). None when `root` is not a directory."""
    root = Path(root)
    if not root.is_dir():
        return None
    if is_run_dir(root):
        return [read_run(root)]
    grouped = group_runs(root)
    if grouped is not None:
        return grouped
    found: list[RunInfo] = []
    for child in _subdirs(root):
        if is_run_dir(child):
            found.append(read_run(child))
        else:
            found.extend(group_runs(child) or [])
    return found


def read_run(path: Path, *, kind: str = "run", group: Path | None = None) -> RunInfo:
    """Read one run directory; never raises for what is inside it (see the module docstring)."""
    path = Path(path)
    info = RunInfo(path=path, kind=kind, group=group)
    problems = []
    try:
        info.config = _as_dict(load_yaml(path / "config.yaml")[0], "config.yaml")
    except (MlcliError, RecursionError, ValueError) as err:
        problems.append(_reason(err, path / "config.yaml"))
    summary_path = path / "summary.json"
    if summary_path.exists() or summary_path.is_symlink():
        try:
            info.summary = _as_dict(_read_json(summary_path), "summary.json")
            _fill_from_summary(info, info.summary)
        except (OSError, ValueError, RecursionError) as err:
            problems.append(_reason(err, summary_path))
    else:
        _fill_from_metrics(info, problems)
    if info.config is not None:
        info.name = info.name or _text(info.config.get("name"))
        model = info.config.get("model")
        info.model = info.model or (_text(model.get("type")) if isinstance(model, dict) else None)
    if info.started is None:
        info.started, info.started_from = _mtime(path), "mtime"
    if problems:
        info.status, info.reason = "unreadable", "; ".join(problems)
    return info


def _fill_from_summary(info: RunInfo, s: dict) -> None:
    status = _text(s.get("status"))
    if status is None:
        raise ValueError("no status (a summary.json written by something else than mlcli?)")
    info.status = status
    info.name, info.model, info.monitor = _text(s.get("name")), _text(s.get("model")), _text(s.get("monitor"))
    info.best_epoch, info.epochs = _int(s.get("best_epoch")), _int(s.get("epochs_completed"))
    info.seconds = _number(s.get("seconds"))
    started = _text(s.get("started_at"))
    if started is not None:
        info.started, info.started_from = started, "summary"
    best = s.get("best") if isinstance(s.get("best"), dict) else {}
    test = s.get("test") if isinstance(s.get("test"), dict) else {}
    info.metrics = {**_numbers(best, skip=("epoch", "lr", "seconds", "samples_per_sec")),
                    **{f"test_{k}": v for k, v in _numbers(test).items()}}
    info.monitor = info.monitor or _default_monitor(info.metrics)
    info.best = info.metrics.get(info.monitor) if info.monitor else None


def _fill_from_metrics(info: RunInfo, problems: list[str]) -> None:
    """A run that never ended: `running` or `killed`, its progress read from metrics.jsonl."""
    lock = lock_owner(info.path)
    info.status = "running" if lock is not None and lock[2] else "killed"
    if lock is not None and not lock[2] and lock[1] not in (None, socket.gethostname()):
        info.reason = f"run.lock names pid {lock[0]} on host {lock[1]}; cannot tell whether it still runs"
    records = _read_records(info.path / "metrics.jsonl", problems)
    info.epochs = len(records)
    stopping = ((info.config or {}).get("train") or {}).get("early_stopping")
    monitor = _text(stopping.get("monitor")) if isinstance(stopping, dict) else None
    if records:
        monitor = monitor or _default_monitor(records[-1])
        scored = [r for r in records if isinstance(r.get(monitor), (int, float))]
        if scored:
            pick = max if mode_of(monitor) == "max" else min
            best = pick(scored, key=lambda r: r[monitor])
            info.best_epoch = _int(best.get("epoch"))
            info.metrics = _numbers(best, skip=("epoch", "lr", "seconds", "samples_per_sec"))
            info.best = info.metrics.get(monitor)
        info.seconds = sum(_number(r.get("seconds")) or 0.0 for r in records)
    info.monitor = monitor


def lock_owner(run_dir: Path) -> tuple[int, str | None, bool] | None:
    """(pid, host or None, alive on this host) from `run_dir/run.lock`, or None without a readable lock.

    Read as JSON (`{"pid": 123, "host": "box"}`) or as text whose first integer is the pid (`123`, `pid=123
    host=box`, `box:123`); a host other than this one is never called alive, since its pids cannot be checked."""
    path = Path(run_dir) / "run.lock"
    try:
        text = _read_capped(path, MAX_LOCK_BYTES).decode("utf-8", "replace")
    except (OSError, ValueError):
        return None
    pid, host = None, None
    try:
        data = json.loads(text)
        if isinstance(data, dict):
            pid, host = _int(data.get("pid")), _text(data.get("host") or data.get("hostname"))
        elif isinstance(data, int) and not isinstance(data, bool):
            pid = data
    except ValueError:
        found = re.search(r"\d+", text)
        pid = int(found.group()) if found else None
        named = re.search(r"host(?:name)?\s*[=:]\s*(\S+)", text) or re.match(r"\s*([A-Za-z][\w.-]*):\d+", text)
        host = named.group(1) if named else None
    if pid is None or pid <= 0:
        return None
    return pid, host, (host in (None, socket.gethostname())) and _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    except (OSError, OverflowError):
        return False
    return True


def read_records(run_dir: Path) -> list[dict]:
    """metrics.jsonl's records; lines that do not parse (a run killed in mid-write) are skipped."""
    return _read_records(Path(run_dir) / "metrics.jsonl", [])


def _read_records(path: Path, problems: list[str]) -> list[dict]:
    if not path.exists():
        return []
    try:
        raw = _read_capped(path, MAX_METRICS_BYTES)
    except (OSError, ValueError) as err:
        problems.append(_reason(err, path))
        return []
    records = []
    for line in raw.decode("utf-8", "replace").splitlines():
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted keys of a nested config (`train.optimizer.lr`); a list of mappings is indexed (`model.layers.0.type`,
    as `--set` writes it), a list of plain values is one value (`model.hidden` = [64, 32])."""
    if isinstance(config, dict):
        items = config.items()
    elif isinstance(config, list) and any(isinstance(v, (dict, list)) for v in config):
        items = ((str(i), v) for i, v in enumerate(config))
    else:
        return {prefix: config}
    flat: dict[str, Any] = {}
    for key, value in items:
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def json_safe(value: Any) -> Any:
    """`value` as strict JSON can hold it: NaN (which json.loads accepts from a hostile file) -> None, infinities ->
    "inf"/"-inf" as `rundir.clean` writes them, tuples -> lists, keys -> strings, other objects -> their str."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if value is None or isinstance(value, (str, int, float)):
        return value
    return str(value)


def _read_json(path: Path) -> Any:
    raw = _read_capped(path, MAX_SUMMARY_BYTES)
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"not valid JSON ({err.msg} at line {err.lineno}, column {err.colno}; truncated?)") from None


def _read_capped(path: Path, cap: int) -> bytes:
    """The bytes of the regular file `path` (never a FIFO or device, which could block or never end)."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise ValueError("not a regular file")
    with open(path, "rb") as f:
        raw = f.read(cap + 1)
    if len(raw) > cap:
        raise ValueError(f"larger than the {cap} byte limit")
    return raw


def _as_dict(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"{what} holds a {type(value).__name__}, expected a mapping")
    return value


def _reason(err: BaseException, path: Path) -> str:
    if isinstance(err, RecursionError):
        return f"{path}: nested too deeply"
    if isinstance(err, OSError):
        return f"{path}: cannot read: {err.strerror or err}"
    message = str(err)
    return message if message.startswith(str(path)) else f"{path}: {message}"


def _default_monitor(record: dict) -> str | None:
    """The monitor of a run whose summary names none (classical models): val_loss, else the first val_ metric."""
    if "val_loss" in record:
        return "val_loss"
    return next((k for k in record if k.startswith("val_")), None)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _number(value: Any) -> float | None:
    """A metric as written by `rundir.clean`: a number, or "inf"/"-inf" for infinities (NaN was written as null)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return None if math.isnan(value) else float(value)
    if value in ("inf", "-inf"):
        return math.inf if value == "inf" else -math.inf
    return None


def _numbers(record: dict, skip: tuple[str, ...] = ()) -> dict[str, float]:
    found = {str(k): _number(v) for k, v in record.items() if k not in skip}
    return {k: v for k, v in found.items() if v is not None}


def _subdirs(path: Path) -> list[Path]:
    try:
        return sorted(p for p in Path(path).iterdir() if p.is_dir())
    except OSError:
        return []


def _mtime(path: Path) -> str | None:
    """When config.yaml was written (the first file of a run, never rewritten), else the directory's mtime: the
    directory's own mtime moves each time a file is added to it, summary.json last."""
    for candidate in (path / "config.yaml", path):
        try:
            stamp = os.stat(candidate).st_mtime
        except OSError:
            continue
        return dt.datetime.fromtimestamp(int(stamp), dt.timezone.utc).isoformat().replace("+00:00", "Z")
    return None
