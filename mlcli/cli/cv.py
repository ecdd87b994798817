"""k-fold cross validation: one sub-run per fold, a table of each metric's mean and standard deviation.

A --set value with commas runs one cross validation per value and marks the best (how the course chooses k).

\b
Examples:
  mlcli cv configs/mlp.yaml --folds 5
  mlcli cv configs/knn.yaml --folds 5 --set model.k=1,3,5,7
  mlcli cv configs/softmax.yaml --folds 3 --json
"""

from __future__ import annotations

from pathlib import Path

import typer

from mlcli.cli.common import SET_HELP, ConfigArg, err, fmt, guarded, out, print_json
from mlcli.cli.signals import StopFlag


def cross_validate(
    config: Path = ConfigArg,
    folds: int = typer.Option(None, "--folds", "-k", help="Number of folds (default: the config's cv.folds). "
                              "Example: --folds 5"),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP + "; a comma list runs one cv per value: "
                                   "--set model.k=1,3,5,7"),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Where the cv directory is created."),
    json_: bool = typer.Option(False, "--json", help="Print one JSON object for scripts."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No per-epoch progress."),
    workers: int = typer.Option(None, "--workers", "-w", min=1, help="Folds at once (with --scheduler processes "
                                "or dask). Example: --workers 2"),
    scheduler: str = typer.Option(None, "--scheduler", help="Run the folds through an executor: serial, "
                                  "processes, dask, or a Dask address tcp://HOST:PORT (the same fold metrics on "
                                  "each; default: in this process, with progress). Example: --scheduler processes"),
    scheduler_file: Path = typer.Option(None, "--scheduler-file", help="A Dask scheduler.json to connect to."),
) -> None:
    with guarded():
        from mlcli.workflows.cv import best_setting, cv_grid

        with StopFlag() as stop:
            runs = cv_grid(config, folds, overrides=set_, runs_dir=runs_dir, quiet=quiet or json_,
                           should_stop=stop, scheduler=scheduler, workers=workers,
                           scheduler_file=str(scheduler_file) if scheduler_file else None)
        if stop():
            raise typer.Exit(stop.exit_code)
        if json_:
            if len(runs) == 1:
                print_json(runs[0][1].to_dict())
            else:
                print_json({"runs": [{"set": combo, **r.to_dict()} for combo, r in runs]})
            return
        for combo, r in runs:
            render(r, " ".join(combo))
        if len(runs) > 1:
            render_comparison(runs, *best_setting([r for _, r in runs]))


def render(r, label: str) -> None:
    from rich.table import Table

    names = list(r.mean)
    table = Table(title=f"{r.k}-fold cross validation {label}".strip())
    table.add_column("fold")
    for m in names:
        table.add_column(m, justify="right")
    for f in r.folds:
        table.add_row(str(f["fold"]), *(fmt(f["metrics"].get(m)) for m in names))
    table.add_row("mean", *(fmt(r.mean[m]) for m in names))
    table.add_row("std", *(fmt(r.std[m]) for m in names))
    out.print(table)
    err.print(f"cv directory: {r.cv_dir}")


def render_comparison(runs: list, best: int, key: str) -> None:
    from rich.table import Table

    table = Table(title=f"comparison by mean {key} (* = best)")
    table.add_column("setting")
    table.add_column(f"mean {key}", justify="right")
    table.add_column(f"std {key}", justify="right")
    for i, (combo, r) in enumerate(runs):
        mark = " *" if i == best else ""
        table.add_row(" ".join(combo) + mark, fmt(r.mean.get(key)), fmt(r.std.get(key)))
    out.print(table)
