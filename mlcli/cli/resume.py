"""Continue a run from its last checkpoint into a new run directory, exactly as if it had not stopped.

The run's own resolved config.yaml is used; the weights, optimizer state, random generator states and best-epoch
tracking come from its checkpoints/last.npz, which always holds the end of the last completed epoch (an
interrupted epoch is redone). --epochs raises the total number of epochs to train to.

\b
Examples:
  mlcli resume runs/mlp-20261127-101500                 # after Ctrl-C
  mlcli resume runs/mlp-20261127-101500 --epochs 60     # train longer
"""

from __future__ import annotations

from pathlib import Path

import typer

from mlcli.cli.common import guarded
from mlcli.cli.signals import StopFlag
from mlcli.cli.train import render


def resume(
    run_dir: Path = typer.Argument(..., help="The run directory to continue. Example: runs/mlp-20261127-101500",
                                   show_default=False),
    epochs: int = typer.Option(None, "--epochs", min=1, help="Total epochs to train to (default: the run's "
                               "train.epochs). Example: --epochs 60"),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Where the new run directory is created. "
                                  "Example: --runs-dir /tmp/runs"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output, only the final table."),
) -> None:
    with guarded():
        import mlcli

        with StopFlag() as stop:
            result = mlcli.resume(run_dir, epochs, runs_dir=runs_dir, quiet=quiet, should_stop=stop)
        render(result)
        if result.status == "interrupted":
            raise typer.Exit(stop.exit_code)
