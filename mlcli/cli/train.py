"""Train the model a YAML config describes; writes metrics and checkpoints under runs/.

\b
Examples:
  mlcli train configs/quickstart.yaml
  mlcli train configs/mlp.yaml --set train.epochs=5 --set train.optimizer.lr=0.05 --name mlp-short
  mlcli train configs/mlp.yaml --seed 3 --runs-dir /tmp/runs --quiet
  mlcli train configs/quickstart.yaml --diagnostics && mlcli plot runs/quickstart-* --what diagnostics
"""

from __future__ import annotations

from pathlib import Path

import typer

from mlcli.cli.common import SET_HELP, ConfigArg, fmt, guarded, out
from mlcli.cli.signals import StopFlag


def train(
    config: Path = ConfigArg,
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    name: str = typer.Option(None, "--name", help="Run name (default: the config's name). Example: --name "
                             "lr-0.1"),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Where run directories are created. "
                                  "Example: --runs-dir /tmp/runs"),
    seed: int = typer.Option(None, "--seed", help="Override the config's seed. Example: --seed 3"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output, only the final table."),
    diagnostics: bool = typer.Option(False, "--diagnostics", help="Write per-layer activation, gradient and "
                                     "update statistics to RUN/diagnostics.jsonl (= --set train.diagnostics=true)."),
) -> None:
    with guarded():
        import mlcli

        if diagnostics:
            set_ = [*set_, "train.diagnostics=true"]
        with StopFlag() as stop:
            result = mlcli.train(config, overrides=set_, runs_dir=runs_dir, name=name, seed=seed, quiet=quiet,
                                 should_stop=stop)
        render(result)
        if result.status == "interrupted":
            raise typer.Exit(stop.exit_code)


def render(result) -> None:
    from rich.table import Table

    s = result.summary
    table = Table(title=f"{s['model']} — {s['status']} — best epoch {s.get('best_epoch')}")
    table.add_column("split")
    metrics = sorted({k.split("_", 1)[1] for k in s.get("best", {}) if k.startswith(("train_", "val_"))})
    for m in metrics:
        table.add_column(m, justify="right")
    for split in ("train", "val"):
        if any(f"{split}_{m}" in s.get("best", {}) for m in metrics):
            table.add_row(split, *(fmt(s["best"].get(f"{split}_{m}")) for m in metrics))
    if s.get("test"):
        table.add_row("test", *(fmt(s["test"].get(m)) for m in metrics))
    out.print(table)
    out.print(f"run directory: {result.run_dir}")
    out.print(f"checkpoint:    {result.best_checkpoint}")
