"""Evaluate a checkpoint on a split of its own data, or on another data file; self-contained.

The checkpoint holds the config, the weights and the standardization statistics, so nothing else is needed.

\b
Examples:
  mlcli eval runs/quickstart-20261127-101500/checkpoints/best.npz
  mlcli eval runs/<run>/checkpoints/best.npz --split val --json
  mlcli eval runs/<run>/checkpoints/last.npz --data new_samples.npz
  mlcli eval runs/<ae-run>/checkpoints/best.npz --codes codes.npy     # autoencoder: write the codes too
  mlcli eval runs/a runs/b runs/c --json     # an ensemble: averaged probabilities (same data.seed needed)
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from mlcli.cli.common import fmt, guarded, out, print_json


class Split(str, Enum):
    test = "test"
    val = "val"
    train = "train"


def evaluate(
    checkpoints: list[Path] = typer.Argument(..., help="A checkpoint file, or a run directory (its best.npz); "
                                             "several evaluate their ensemble. Example: runs/<run>/checkpoints/"
                                             "best.npz", show_default=False),
    split: Split = typer.Option(Split.test, "--split", help="Which split of the run's data to evaluate on. "
                                "Example: --split val"),
    data: Path = typer.Option(None, "--data", help="Evaluate on this .npz (x, y) or .csv file instead. "
                              "Example: --data holdout.npz"),
    json_: bool = typer.Option(False, "--json", help="Print one JSON object for scripts."),
    codes: Path = typer.Option(None, "--codes", help="Autoencoders: also save the codes of the evaluated "
                               "samples as .npy. Example: --codes codes.npy"),
) -> None:
    with guarded():
        import mlcli

        result = mlcli.evaluate(checkpoints, split=split.value, data=data, codes=codes)
        if json_:
            print_json(result)
            return
        from rich.table import Table

        if "members" in result:
            title = f"ensemble of {len(checkpoints)} on {result['split']} (n={result['n']})"
        else:
            title = f"{result['checkpoint']} on {result['split']} (n={result['n']})"
        table = Table(title=title)
        table.add_column("metric")
        table.add_column("value", justify="right")
        for k, v in result["metrics"].items():
            table.add_row(k, fmt(v))
        out.print(table)
        if codes is not None:
            out.print(f"codes written to {codes}")
