"""Draw a run's plots as PNG files (learning curves, learning rate, confusion matrix, weights or filters,
diagnostics) and print their paths. Needs matplotlib (pip install matplotlib).

Several runs, a sweep directory (its trials) or a cv directory (its folds) are overlaid in one curves.png and
lr.png. Files go to RUN/plots/ by default (plots/ for several runs), with stable names: <kind>.png.

\b
Examples:
  mlcli plot runs/quickstart-20261127-101500
  mlcli plot runs/quickstart-20261127-101500 --what curves,confusion --split val
  mlcli plot runs/a runs/b --out compare/
  mlcli plot runs/sweep-20261127-101500 --what curves
  mlcli plot runs/<run> --what diagnostics      # a run trained with --diagnostics
"""

from __future__ import annotations

from pathlib import Path

import typer

from mlcli.cli.common import guarded, out


def plot(
    runs: list[Path] = typer.Argument(..., help="Run directories, or a sweep or cv directory. Example: "
                                      "runs/quickstart-20261127-101500", show_default=False),
    out_dir: Path = typer.Option(None, "--out", help="Folder for the PNG files (default: RUN/plots/, or plots/ "
                                 "for several runs). Example: --out figures/", show_default=False),
    what: str = typer.Option(None, "--what", help="Comma list of curves, lr, confusion, weights, filters, "
                             "diagnostics (default: all that apply). Example: --what curves,confusion",
                             show_default=False),
    split: str = typer.Option("test", "--split", help="The split of the confusion matrix: test, val or train. "
                              "Example: --split val"),
) -> None:
    with guarded():
        from mlcli.workflows.plot import plot as plot_runs

        for path in plot_runs(runs, out=out_dir, what=what, split=split):
            out.print(str(path), highlight=False)
