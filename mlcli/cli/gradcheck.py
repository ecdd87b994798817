"""Check the configured model's analytic gradients against numerical ones (float64, central differences).

Runs on a small batch of the config's data (with a tiny seeded jitter that removes exact ties) with dropout
masks held fixed, and prints per parameter the relative error ||analytic - numerical|| / (||analytic|| +
||numerical||) over the coordinates checked. A coordinate whose +h and -h evaluations fall on different sides of
a kink (a ReLU input changing sign, a max-pool argmax changing) is retried with h/10, and left out and counted
under "kinks" if it still crosses. Exit 1 when any error exceeds --tol, or when every coordinate of an array
sits on a kink.

\b
Examples:
  mlcli gradcheck configs/mlp.yaml
  mlcli gradcheck configs/cnn_digits.yaml --coords 0
  mlcli gradcheck configs/mlp.yaml --batch 4 --tol 1e-7
"""

from __future__ import annotations

from pathlib import Path

import typer

from mlcli.cli.common import SET_HELP, ConfigArg, guarded, out


def gradcheck(
    config: Path = ConfigArg,
    batch: int = typer.Option(8, "--batch", min=1, help="Samples in the checked batch. Example: --batch 4"),
    tol: float = typer.Option(1e-6, "--tol", help="Largest acceptable relative error. Example: --tol 1e-7"),
    coords: int = typer.Option(200, "--coords", min=0, help="Coordinates checked per array: a seeded random "
                               "sample of larger arrays; 0 checks all. Example: --coords 0"),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
) -> None:
    with guarded():
        from rich.table import Table

        import mlcli

        report = mlcli.gradcheck(config, overrides=set_, batch=batch, max_coords=coords or None)
        table = Table(title=f"gradient check of {config} (float64, batch {batch})")
        table.add_column("parameter")
        table.add_column("shape")
        table.add_column("rel. error", justify="right")
        table.add_column("checked", justify="right")
        table.add_column("kinks", justify="right")
        table.add_column("ok")
        failed = False
        for name, check in report.items():
            ok = check.passed(tol)
            failed |= not ok
            table.add_row(name, str(check.shape), f"{check.error:.2e}", str(check.checked), str(check.kinks),
                          "yes" if ok else "NO")
        out.print(table)
        if failed:
            raise typer.Exit(1)
