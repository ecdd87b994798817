"""Run a hyperparameter sweep from a sweep file: grid, random or TPE search, in parallel, resumable.

Every trial is a normal run directory under runs/<sweep-name>-<stamp>/trials/; sweep.jsonl is the ledger,
best.yaml the best config (ready for mlcli train), summary.json the result. Ctrl-C stops submitting and lets the
running trials finish (a second Ctrl-C stops at once); --resume runs what is missing.

\b
Examples:
  mlcli sweep configs/sweeps/quickstart_grid.yaml
  mlcli sweep configs/sweeps/quickstart_grid.yaml --workers 2 --json
  mlcli sweep sweep.yaml --scheduler dask                      # a local Dask cluster (pip install distributed)
  mlcli sweep sweep.yaml --scheduler tcp://10.0.0.5:8786       # an existing Dask cluster
  mlcli sweep --resume runs/quickstart-lr-20261201-101500
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from mlcli.cli.common import err, fmt, guarded, out, print_json
from mlcli.cli.signals import StopFlag


def sweep(
    sweep_file: Path = typer.Argument(None, help="The sweep file (YAML). Example: configs/sweeps/quickstart_grid.yaml",
                                      show_default=False),
    workers: int = typer.Option(None, "--workers", "-w", min=1, help="Trials at once (default: the cores). "
                                "Example: --workers 2"),
    scheduler: str = typer.Option("processes", "--scheduler", help="serial, processes, dask (a local cluster) or "
                                  "a Dask scheduler address tcp://HOST:PORT. Example: --scheduler serial"),
    scheduler_file: Path = typer.Option(None, "--scheduler-file", help="A Dask scheduler.json to connect to. "
                                        "Example: --scheduler-file ~/dask/scheduler.json"),
    resume: Path = typer.Option(None, "--resume", help="Continue this sweep directory: run only what it lacks. "
                                "Example: --resume runs/lr-20261201-101500"),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Where the sweep directory is created."),
    json_: bool = typer.Option(False, "--json", help="Print one JSON object for scripts."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No live progress."),
) -> None:
    with guarded():
        import mlcli

        live = LiveProgress(enabled=not quiet and not json_)
        with StopFlag() as stop, live:
            result = mlcli.sweep(sweep_file, runs_dir=runs_dir, workers=workers, scheduler=scheduler,
                                 scheduler_file=str(scheduler_file) if scheduler_file else None, resume=resume,
                                 should_stop=stop, on_event=live.update)
        if json_:
            print_json(result.to_dict())
        else:
            render(result)
        if result.status == "interrupted":
            err.print(f"interrupted; continue with: mlcli sweep --resume {result.sweep_dir}")
            raise typer.Exit(stop.exit_code)


class LiveProgress:
    """A live table on a terminal (running / done / failed / pruned, the best so far, elapsed, ETA); one line
    per finished trial otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.live = None
        self.last: dict | None = None

    def __enter__(self) -> LiveProgress:
        if self.enabled and self.tty:
            from rich.console import Console
            from rich.live import Live

            self.live = Live(console=Console(stderr=True), refresh_per_second=4, transient=True)
            self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)

    def update(self, event: dict) -> None:
        if not self.enabled:
            return
        self.last = event
        if self.live is not None:
            self.live.update(self._table(event))
        elif event["kind"] == "ended":
            r = event["record"]
            score = fmt(r["score"]) if r["score"] is not None else "-"
            tail = f" ({r['error']})" if r.get("error") else ""
            sys.stderr.write(f"trial {r['trial']} {r['status']}: {event['metric']}={score} epochs={r['epochs']} "
                             f"[{event['done']}/{event['total']} done]{tail}\n")
            sys.stderr.flush()

    @staticmethod
    def _table(event: dict):
        from rich.table import Table

        c = event["counts"]
        done = event["done"]
        elapsed = event["elapsed"]
        eta = elapsed / done * (event["total"] - done) if done else None
        best = event["best"]
        table = Table(title="sweep", show_header=True)
        for col in ("running", "done", "failed", "pruned", f"best {event['metric']}", "elapsed", "eta"):
            table.add_column(col, justify="right")
        table.add_row(str(event["running"]), f"{done}/{event['total']}", str(c["failed"]), str(c["pruned"]),
                      f"{fmt(best['score'])} ({best['trial']})" if best else "-", f"{elapsed:.0f}s",
                      f"{eta:.0f}s" if eta is not None else "-")
        return table


def render(result) -> None:
    from rich.table import Table

    varied = sorted({k for row in result.trials for k in row["overrides"]})
    paired = any(row.get("p_value") is not None for row in result.trials)
    table = Table(title=f"sweep {result.sweep_dir.name} — {result.status} — by {result.metric} ({result.mode})")
    table.add_column("trial")
    for k in varied:
        table.add_column(k)
    table.add_column(result.metric, justify="right")
    if paired:
        table.add_column("p vs best", justify="right")
    for col in ("epochs", "status", "seconds"):
        table.add_column(col, justify="right")
    for row in result.trials[:20]:
        score = "-" if row["score"] is None else fmt(row["score"])
        if row.get("std") is not None:
            score += f" ± {fmt(row['std'])}"
        cells = [row["trial"], *(fmt(row["overrides"].get(k)) for k in varied), score]
        if paired:
            cells.append("" if row.get("p_value") is None else f"{row['p_value']:.3g}")
        cells += [str(row["epochs"]), row["status"] if not row.get("error") else f"failed: {row['error'][:60]}",
                  f"{row['seconds']:.1f}"]
        table.add_row(*cells)
    out.print(table)
    if len(result.trials) > 20:
        out.print(f"... {len(result.trials) - 20} more trials in {result.sweep_dir / 'summary.json'}")
    out.print(f"sweep directory: {result.sweep_dir}")
    if result.best is not None and result.status == "completed":
        out.print(f"best config:     {result.sweep_dir / 'best.yaml'}  (mlcli train {result.sweep_dir / 'best.yaml'})")
