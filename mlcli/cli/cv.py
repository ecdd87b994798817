"""k-fold cross validation: one sub-run per fold, a table of each metric's mean and standard deviation.

A --set value with commas runs one cross validation per value and marks the best (how the course chooses k).

\b
Examples:
  mlcli cv configs/mlp.yaml --folds 5
  mlcli cv configs/knn.yaml --folds 5 --set model.k=1,3,5,7
  mlcli cv configs/softmax.yaml --folds 3 --json
"""

from __future__ import annotations

import itertools
from pathlib import Path

import typer
from rich.table import Table

from mlcli.cli.common import SET_HELP, ConfigArg, absolutize_data_path, err, fmt, guarded, load, out, print_json
from mlcli.cli.progress import Progress, StopFlag
from mlcli.errors import ConfigError


def expand(overrides: list[str]) -> list[list[str]]:
    """`model.k=1,3` -> [[model.k=1], [model.k=3]]; a bracketed list value is one value."""
    choices = []
    for item in overrides:
        key, sep, value = item.partition("=")
        v = value.strip()
        if sep and "," in v and not v.startswith(("[", "{", '"', "'")):
            choices.append([f"{key}={part.strip()}" for part in v.split(",")])
        else:
            choices.append([item])
    return [list(combo) for combo in itertools.product(*choices)]


def cross_validate(
    config: Path = ConfigArg,
    folds: int = typer.Option(None, "--folds", "-k", help="Number of folds (default: the config's cv.folds). "
                              "Example: --folds 5"),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP + "; a comma list runs one cv per value: "
                                   "--set model.k=1,3,5,7"),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Where the cv directory is created."),
    json_: bool = typer.Option(False, "--json", help="Print one JSON object for scripts."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No per-epoch progress."),
) -> None:
    with guarded():
        from mlcli.workflows.cv import run_cv

        combos = expand(set_)
        configs = [absolutize_data_path(load(config, combo), config) for combo in combos]
        k = folds if folds is not None else configs[0].cv.folds
        if k < 2:
            raise ConfigError(f"--folds must be >= 2, got {k}")
        results = []
        with StopFlag() as stop:
            for cfg in configs:
                def hooks_for(fold: int, cfg=cfg):
                    return Progress(True if json_ else quiet, cfg.train.epochs, stop).hooks()

                results.append(run_cv(cfg, k, runs_dir=runs_dir, base_dir=config.resolve().parent,
                                      hooks_for=hooks_for))
                if stop():
                    raise typer.Exit(stop.exit_code)
        if json_:
            if len(results) == 1:
                r = results[0]
                print_json({"folds": r["folds"], "mean": r["mean"], "std": r["std"], "cv_dir": r["cv_dir"]})
            else:
                print_json({"runs": [{"set": combo, **r} for combo, r in zip(combos, results, strict=False)]})
            return
        for combo, r in zip(combos, results, strict=False):
            render(r, " ".join(combo))
        if len(results) > 1:
            render_comparison(combos, results, configs[0])


def render(r: dict, label: str) -> None:
    names = list(r["mean"])
    table = Table(title=f"{r['k']}-fold cross validation {label}".strip())
    table.add_column("fold")
    for m in names:
        table.add_column(m, justify="right")
    for f in r["folds"]:
        table.add_row(str(f["fold"]), *(fmt(f["metrics"].get(m)) for m in names))
    table.add_row("mean", *(fmt(r["mean"][m]) for m in names))
    table.add_row("std", *(fmt(r["std"][m]) for m in names))
    out.print(table)
    err.print(f"cv directory: {r['cv_dir']}")


def render_comparison(combos: list[list[str]], results: list[dict], cfg) -> None:
    key = "accuracy" if "accuracy" in results[0]["mean"] else "loss"
    pick = max if key == "accuracy" else min
    best = pick(range(len(results)), key=lambda i: results[i]["mean"].get(key, float("nan")))
    table = Table(title=f"comparison by mean {key} (* = best)")
    table.add_column("setting")
    table.add_column(f"mean {key}", justify="right")
    table.add_column(f"std {key}", justify="right")
    for i, (combo, r) in enumerate(zip(combos, results, strict=False)):
        mark = " *" if i == best else ""
        table.add_row(" ".join(combo) + mark, fmt(r["mean"].get(key)), fmt(r["std"].get(key)))
    out.print(table)
