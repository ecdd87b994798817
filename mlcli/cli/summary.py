"""Print each layer's output shape, parameters, connections (multiply-adds) and receptive field, without training.

The input shape and class count come from the config's data (loaded if they are not known in advance), or from
--input-shape and --classes. With --explain, instead of the layers: the equations the trainer will apply per step
(loss, penalty, gradient, clipping, the optimizer's update rule and the learning-rate schedule) with the config's
numbers substituted; for a model fitted in closed form, what it fits.

\b
Examples:
  mlcli summary configs/cnn_digits.yaml
  mlcli summary configs/alexnet.yaml --input-shape 3,227,227 --classes 1000
  mlcli summary --explain configs/quickstart.yaml
"""

from __future__ import annotations

from pathlib import Path

import typer

from mlcli.cli.common import SET_HELP, ConfigArg, guarded, out, print_json
from mlcli.errors import ConfigError


def summary(
    config: Path = ConfigArg,
    input_shape: str = typer.Option(None, "--input-shape", help="One sample's shape, comma separated, instead "
                                    "of the data's. Example: --input-shape 3,32,32"),
    classes: int = typer.Option(None, "--classes", min=1, help="Number of classes (outputs) instead of the "
                                "data's. Example: --classes 10"),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    json_: bool = typer.Option(False, "--json", help="Print one JSON object for scripts."),
    explain: bool = typer.Option(False, "--explain", help="Print the update equations with the configured numbers "
                                 "instead of the layers. Example: --explain"),
) -> None:
    with guarded():
        import mlcli

        if explain:
            from mlcli.workflows.summary import explain as explain_config

            print_explanation(explain_config(config, overrides=set_), json_)
            return
        shape = None
        if input_shape is not None:
            try:
                shape = tuple(int(v) for v in input_shape.split(","))
            except ValueError:
                raise ConfigError(
                    f"--input-shape must be integers separated by commas, got {input_shape!r}") from None
        result = mlcli.summary(config, overrides=set_, input_shape=shape, classes=classes)
        if json_:
            print_json({"layers": result["layers"], "totals": result["totals"]})
            return
        totals = result["totals"]
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"{result['model']}: input {totals['input_shape']}")
        for col, justify in (("#", "right"), ("layer", "left"), ("", "left"), ("output shape", "left"),
                             ("params", "right"), ("connections", "right"), ("receptive field", "right")):
            table.add_column(col, justify=justify)
        for r in result["layers"]:
            table.add_row(str(r["index"]), r["name"], r["detail"], str(r["output_shape"]), f"{r['params']:,}",
                          f"{r['connections']:,}", r["receptive_field"])
        table.add_row("", "total", "", str(totals["output_shape"]), f"{totals['params']:,}",
                      f"{totals['connections']:,}", "")
        Console(width=max(out.width, 120)).print(table)
        if "frozen_params" in totals:
            out.print(f"trainable: {totals['trainable_params']:,} of {totals['params']:,} parameters; frozen by "
                      f"model.freeze: {', '.join(totals['frozen'])}")


def print_explanation(result: dict, json_: bool) -> None:
    if json_:
        print_json(result)
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"{result['model']}: what each training step computes", show_header=False, box=None)
    table.add_column("part", style="bold")
    table.add_column("equation", overflow="fold")
    for row in result["equations"]:  # Text: an equation's brackets ("theta = [W, b]") are not rich markup
        table.add_row(row["part"], Text(row["equation"]))
    Console(width=max(out.width, 120)).print(table)
