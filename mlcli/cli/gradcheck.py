"""Check the configured model's analytic gradients against numerical ones (float64, central differences).

Runs on a small batch of the config's data with dropout masks held fixed, and prints the relative error
||analytic - numerical|| / (||analytic|| + ||numerical||) per parameter. Exit 1 when any exceeds --tol.

\b
Examples:
  mlcli gradcheck configs/mlp.yaml
  mlcli gradcheck configs/mlp.yaml --batch 4 --tol 1e-7
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from mlcli.cli.common import SET_HELP, ConfigArg, guarded, load, out


def gradcheck(
    config: Path = ConfigArg,
    batch: int = typer.Option(8, "--batch", min=1, help="Samples in the checked batch. Example: --batch 4"),
    tol: float = typer.Option(1e-6, "--tol", help="Largest acceptable relative error. Example: --tol 1e-7"),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
) -> None:
    with guarded():
        from mlcli.workflows.gradcheck import check_config

        cfg = load(config, [*set_, "train.dtype=float64"])
        report = check_config(cfg, batch=batch, base_dir=config.resolve().parent)
        table = Table(title=f"gradient check of {cfg.model.type} (float64, batch {batch})")
        table.add_column("parameter")
        table.add_column("shape")
        table.add_column("rel. error", justify="right")
        table.add_column("ok")
        failed = False
        for name, (shape, error) in report.items():
            ok = error <= tol
            failed |= not ok
            table.add_row(name, str(shape), f"{error:.2e}", "yes" if ok else "NO")
        out.print(table)
        if failed:
            raise typer.Exit(1)
