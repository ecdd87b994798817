"""Check a config before training, with the course's sanity checks, in a few seconds: each check ok, warn or fail.

Data: class balance, constant features, test (or val) samples equal to a training sample. Networks: the initial
loss against ln(C) for a softmax or sigmoid output; the gradients against central differences in float64 on a
small batch; overfitting 20 training samples (100% accuracy, or a loss near 0 for regression) with
regularization off; the loss rising under a strong L2 penalty; no NaN/inf in 30 steps at the configured learning
rate; the learning rate not orders of magnitude off (the loss of a fixed subset before and after those steps).
Every check starts from the config's initial weights. Exit 0 when no check failed (warnings allowed), 1 when one
failed, 2 for a config error.

\b
Examples:
  mlcli doctor configs/quickstart.yaml
  mlcli doctor configs/quickstart.yaml --set train.optimizer.lr=50     # a rate that diverges: fails
  mlcli doctor configs/mlp.yaml --json
"""

from __future__ import annotations

from pathlib import Path

import typer

from mlcli.cli.common import SET_HELP, ConfigArg, guarded, out, print_json

MARKS = {"ok": "ok", "warn": "WARN", "fail": "FAIL"}
STYLES = {"ok": "green", "warn": "yellow", "fail": "bold red"}


def doctor(
    config: Path = ConfigArg,
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    json_: bool = typer.Option(False, "--json", help="Print one JSON object for scripts: config, model, failed, "
                               "checks [{name, status, message, value}]."),
) -> None:
    with guarded():
        from mlcli.workflows.doctor import doctor as run_doctor

        report = run_doctor(config, overrides=set_)
        if json_:
            print_json(report.to_dict())
        else:
            from rich.table import Table
            from rich.text import Text

            table = Table(title=f"doctor: {config} ({report.model})")
            table.add_column("status")
            table.add_column("check")
            table.add_column("result", overflow="fold")
            for check in report.checks:
                table.add_row(Text(MARKS[check.status], style=STYLES[check.status]), check.name, Text(check.message))
            out.print(table)
            failed = [c.name for c in report.checks if c.status == "fail"]
            out.print(f"failed: {', '.join(failed)}" if failed else "no check failed")
        if report.failed:
            raise typer.Exit(1)
