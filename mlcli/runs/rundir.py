"""The run directory: its layout, and the writers of its metrics and summary.

    runs/<name>-<YYYYmmdd-HHMMSS>[-N]/
        config.yaml        the resolved config (overrides and seed applied)
        metrics.jsonl      one JSON object per epoch, appended and flushed as each epoch ends
        metrics.csv        the same, as a table
        summary.json       status, final and best metrics, timings, versions
        checkpoints/best.npz, checkpoints/last.npz

A run directory is never reused: a name clash gets a `-N` suffix, created with `mkdir(exist_ok=False)`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from pathlib import Path

from mlcli.config.dump import dump_config
from mlcli.errors import RunIOError
from mlcli.runs.atomic import atomic_write_text


def create_run_dir(runs_dir: Path, name: str, *, checkpoints: bool = True) -> Path:
    """Make a new, unique run directory under `runs_dir` (created if missing), with checkpoints/ inside."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    try:
        Path(runs_dir).mkdir(parents=True, exist_ok=True)
        for n in range(1000):
            path = Path(runs_dir) / (f"{name}-{stamp}" if n == 0 else f"{name}-{stamp}-{n}")
            try:
                path.mkdir()
            except FileExistsError:
                continue
            if checkpoints:
                (path / "checkpoints").mkdir()
            return path
    except OSError as err:
        raise RunIOError(f"{runs_dir}: cannot create a run directory: {err.strerror or err}") from None
    raise RunIOError(f"{runs_dir}: too many runs named {name} in the same second")


def make_exact_dir(path: Path) -> Path:
    """Create exactly `path` (and its checkpoints/ folder); it must not exist yet."""
    try:
        Path(path).mkdir(parents=True, exist_ok=False)
        (Path(path) / "checkpoints").mkdir()
    except FileExistsError:
        raise RunIOError(f"{path}: already exists; a run directory is never reused") from None
    except OSError as err:
        raise RunIOError(f"{path}: cannot create a run directory: {err.strerror or err}") from None
    return Path(path)


def write_config(run_dir: Path, config_dict: dict) -> None:
    atomic_write_text(run_dir / "config.yaml", dump_config(config_dict))


def _json_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def clean(record: dict) -> dict:
    """A record safe for strict JSON (NaN -> null, inf -> "inf")."""
    return {k: (clean(v) if isinstance(v, dict) else _json_value(v)) for k, v in record.items()}


class MetricsWriter:
    """Appends each epoch's record to metrics.jsonl and metrics.csv, flushed at once."""

    def __init__(self, run_dir: Path) -> None:
        self.jsonl = run_dir / "metrics.jsonl"
        self.csv = run_dir / "metrics.csv"
        self.columns: list[str] | None = None

    def write(self, record: dict) -> None:
        try:
            with open(self.jsonl, "a", encoding="utf-8") as f:
                f.write(json.dumps(clean(record), allow_nan=False) + "\n")
                f.flush()
            if self.columns is None:
                self.columns = list(record)
                header = io.StringIO()
                csv.writer(header).writerow(self.columns)
                with open(self.csv, "w", encoding="utf-8", newline="") as f:
                    f.write(header.getvalue())
            with open(self.csv, "a", encoding="utf-8", newline="") as f:
                csv.writer(f).writerow([_csv_cell(record.get(c)) for c in self.columns])
                f.flush()
        except OSError as err:
            raise RunIOError(f"{self.jsonl.parent}: cannot write metrics: {err.strerror or err}") from None


def _csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def write_summary(run_dir: Path, summary: dict) -> None:
    atomic_write_text(run_dir / "summary.json", json.dumps(clean(summary), indent=2, allow_nan=False) + "\n")


def read_metrics(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def checkpoint_path(path: Path | str, which: str = "best") -> Path:
    """A checkpoint file as given, or a run directory's `checkpoints/<which>.npz` (`best` by default)."""
    path = Path(path)
    return path / "checkpoints" / f"{which}.npz" if path.is_dir() else path


def read_summary(run_dir: Path) -> dict | None:
    """A run's summary.json, or None when it has none (a run killed before it ended) or it is unreadable."""
    try:
        return json.loads((Path(run_dir) / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def check_room(runs_dir: Path, needed_bytes: int) -> None:
    """RunIOError before training when `runs_dir` (or the folder it would be made in) is not writable, or has
    less free space than `needed_bytes` (the checkpoints a run writes)."""
    import os
    import shutil

    folder = Path(runs_dir).resolve()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        raise RunIOError(f"{runs_dir}: cannot write run directories there ({folder} is not writable)")
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if free < needed_bytes:
        raise RunIOError(f"{runs_dir}: {free / 2**20:.1f} MiB free, but this run's checkpoints need about "
                         f"{needed_bytes / 2**20:.1f} MiB; free some space or choose --runs-dir elsewhere")
