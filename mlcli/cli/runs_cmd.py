"""Look at past runs: list them, show one, compare several (or the folds of a cv, the trials of a sweep).

\b
Examples:
  mlcli runs list
  mlcli runs list runs --sort val_loss --status completed
  mlcli runs show runs/mlp-20261201-120000
  mlcli runs compare runs/lr-0.1-20261201-120000 runs/lr-0.01-20261201-120500
  mlcli runs compare runs/mlp-cv-20261201-130000 --sort val_accuracy --json
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import typer

from mlcli.cli.common import fmt, guarded, out, print_json

app = typer.Typer(help=__doc__, no_args_is_help=True, rich_markup_mode=None)

SORT_HELP = ("Order by a column (name, model, status, started, seconds, epochs, best_epoch, best) or a metric "
             "(val_loss ascending, val_accuracy descending, test_accuracy, ...). Example: --sort val_loss")
STATUS_HELP = ("Keep only runs with this status (completed, early_stopped, interrupted, diverged, running, killed, "
               "unreadable); repeatable or a comma list. Example: --status completed,early_stopped")
JSON_HELP = "Print JSON instead of a table."


@app.command("list")
def list_(
    dir: Path = typer.Argument(Path("runs"), help="A folder of run directories (or a cv or sweep directory). "
                               "Example: runs"),
    sort: str = typer.Option(None, "--sort", help=SORT_HELP),
    status: list[str] = typer.Option([], "--status", help=STATUS_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """One row per run in DIR (default runs/), the folds of its cv directories and the trials of its sweeps
    included: name, model, status, monitored metric and its best value, best epoch, epochs, seconds, start.
    Example: mlcli runs list runs --sort val_loss --status completed"""
    with guarded():
        from mlcli.workflows.runs import list_runs

        runs = list_runs(dir, sort=sort, status=status or None)
        if as_json:
            print_json([run.to_dict() for run in runs])
            return
        render_list(runs, dir, sort)


@app.command("show", no_args_is_help=True)
def show(
    run: Path = typer.Argument(..., help="A run directory. Example: runs/mlp-20261201-120000", show_default=False),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Print a run's resolved config and its results: status, best epoch and its metrics, test metrics, timings,
    versions. Example: mlcli runs show runs/mlp-20261201-120000"""
    with guarded():
        from mlcli.workflows.runs import show_run

        shown = show_run(run)
        if as_json:
            print_json(shown)
            return
        render_show(shown)


@app.command("compare", no_args_is_help=True)
def compare(
    runs: list[Path] = typer.Argument(..., help="Run directories, or one cv or sweep directory (its folds or "
                                      "trials). Example: runs/a-20261201-120000 runs/b-20261201-120500",
                                      show_default=False),
    sort: str = typer.Option(None, "--sort", help=SORT_HELP),
    status: list[str] = typer.Option([], "--status", help=STATUS_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Runs side by side: the config fields that differ between them (dotted keys; the others are counted as
    "same in all") and the metrics of each run's best epoch (val_*) and of the test split (test_*).
    Example: mlcli runs compare runs/mlp-cv-20261201-130000"""
    with guarded():
        from mlcli.workflows.runs import compare_runs

        comparison = compare_runs(runs, sort=sort, status=status or None)
        if as_json:
            print_json(comparison.to_dict())
            return
        render_compare(comparison)


def render_list(runs, root: Path, sort: str | None) -> None:
    """The table of `mlcli runs list`; the kind column only when folds or trials are among the rows, the monitor
    in the header of `best` when every run monitors the same metric, and the sort metric as a column of its own."""
    from rich.table import Table

    monitors = {r.monitor for r in runs if r.monitor}
    kinds = any(r.kind != "run" for r in runs)
    extra = sort if sort and any(sort in r.metrics for r in runs) and monitors != {sort} else None
    best = f"best {monitors.pop()}" if len(monitors) == 1 else "best"
    columns = ["run", *(["kind"] if kinds else []), "name", "model", "status", *(["monitor"] if best == "best"
               else []), best, "best epoch", "epochs", "seconds", "started", *([extra] if extra else [])]
    table = Table(title=cell(f"{len(runs)} run{'s' if len(runs) != 1 else ''} in {root}"))
    for col in columns:
        table.add_column(cell(col), justify="left" if col in ("run", "kind", "name", "model", "status", "monitor",
                                                               "started") else "right")
    for r in runs:
        row = {"run": _relative(r.path, root), "kind": r.kind, "name": r.name, "model": r.model, "status": r.status,
               "monitor": r.monitor, best: r.best, "best epoch": r.best_epoch, "epochs": r.epochs,
               "seconds": None if r.seconds is None else f"{r.seconds:.1f}",
               "started": (r.started or "") + (" (mtime)" if r.started_from == "mtime" else "")}
        if extra:
            row[extra] = r.metrics.get(extra)
        table.add_row(*(cell(row[c]) for c in columns))
    print_wide(table)


def render_show(shown: dict) -> None:
    from rich.table import Table

    from mlcli.config.dump import dump_config

    out.print(cell(f"run: {shown['run']} ({shown['kind']})"))
    if shown.get("config") is not None:
        sys.stdout.write("# config.yaml\n" + dump_config(shown["config"]))
    best, test = shown.get("best") or {}, shown.get("test") or {}
    metrics = sorted({k.split("_", 1)[1] for k in best if k.startswith(("train_", "val_"))} | set(test))
    table = Table(title=cell(f"{shown['model']} — {shown['status']} — best epoch {shown.get('best_epoch')}"))
    table.add_column("split")
    for m in metrics:
        table.add_column(cell(m), justify="right")
    for split in ("train", "val"):
        if any(f"{split}_{m}" in best for m in metrics):
            table.add_row(split, *(cell(best.get(f"{split}_{m}")) for m in metrics))
    if test:
        table.add_row("test", *(cell(test.get(m)) for m in metrics))
    out.print(table)
    lines = [("status", shown["status"] + (f" ({shown['reason']})" if shown.get("reason") else "")),
             ("monitor", shown.get("monitor")), ("epochs", shown.get("epochs_completed")),
             ("seconds", shown.get("seconds")), ("started", shown.get("started")), ("ended", shown.get("ended_at"))]
    versions = shown.get("versions")
    if isinstance(versions, dict):
        lines.append(("versions", ", ".join(f"{k} {v}" for k, v in versions.items() if isinstance(v, str))))
    for label, value in lines:
        if value is not None:
            out.print(cell(f"{label + ':':<9} {fmt(value)}"))


def render_compare(comparison) -> None:
    from rich.table import Table

    runs = comparison.runs
    root = _common_root([r.path for r in runs])
    same = len(comparison.same)
    table = Table(title=f"{len(runs)} run{'s' if len(runs) != 1 else ''}; same in all: {same} "
                        f"field{'s' if same != 1 else ''}")
    for col in ("run", "status", "best epoch", *comparison.differing, *comparison.metrics):
        table.add_column(cell(col), justify="left" if col in ("run", "status") or col in comparison.differing
                         else "right")
    for run, values in zip(runs, comparison.values, strict=True):
        table.add_row(cell(_relative(run.path, root)), cell(run.status), cell(run.best_epoch),
                      *(cell(_config_value(values, k)) for k in comparison.differing),
                      *(cell(run.metrics.get(m)) for m in comparison.metrics))
    print_wide(table)


def print_wide(table) -> None:
    """Print a table whole: on a terminal rich fits it to the window; into a pipe or file it gets its natural width
    instead of rich's default 80 columns, so that no run name or value is cut."""
    if out.is_terminal:
        out.print(table)
        return
    from rich.measure import Measurement

    console = out._console  # created by the is_terminal lookup above
    natural, width = Measurement.get(console, console.options.update_width(10_000), table).maximum, console.width
    console.width = max(natural, width)  # print(width=) alone is capped at the console's width
    try:
        console.print(table)
    finally:
        console.width = width


def _config_value(values: dict, key: str) -> str:
    """A config field as YAML spells it: null, true; a dash when the run's config has no such field."""
    if key not in values:
        return "—"
    value = values[key]
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def safe(value) -> str:
    """A value from a run's files as printable text: control characters (terminal escapes) become '?'."""
    return _CONTROL.sub("?", fmt(value) if not isinstance(value, (list, dict)) else str(value))


def cell(value):
    """A table cell that rich prints as is (a name like '[bold]' is not markup)."""
    from rich.text import Text

    return Text(safe(value))


def _relative(path: Path, root: Path) -> str:
    try:
        rel = Path(path).relative_to(root)
    except ValueError:
        return str(path)
    return str(rel) if str(rel) != "." else str(path)


def _common_root(paths: list[Path]) -> Path:
    parents = {Path(p).parent for p in paths}
    if len(parents) == 1:
        return parents.pop()
    groups = {Path(p).parent.parent for p in paths}
    return groups.pop() if len(groups) == 1 else Path(".")
