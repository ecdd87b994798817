"""Build one ensemble checkpoint from the runs of a sweep or a cross validation, without retraining.

A sweep directory gives its K best trials (ranked by the sweep's metric; a trial run with several seeds or folds
gives one member per run); a cv directory its folds' models (the K best by validation score with --top). The
members must share the data and split. The checkpoint (default SOURCE/ensemble.npz) works with eval, predict and
mlcli.load like any other: eval reports the ensemble and each member.

\b
Examples:
  mlcli ensemble runs/mlp-sweep-20261201-101500 --top 3
  mlcli ensemble runs/mlp-cv-20261201-101500 --out ensemble.npz
  mlcli eval ensemble.npz --json
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from mlcli.cli.common import guarded


def ensemble(
    source: Path = typer.Argument(..., help="A sweep directory (with sweep.jsonl) or a cv directory (with "
                                  "folds.json). Example: runs/mlp-sweep-20261201-101500", show_default=False),
    top: int = typer.Option(None, "--top", min=1, help="Take the K best trials (sweep) or folds (cv); default "
                            "all. Example: --top 3"),
    out: Path = typer.Option(None, "--out", help="The checkpoint to write (default SOURCE/ensemble.npz). "
                             "Example: --out ensemble.npz"),
    vote: str = typer.Option("soft", "--vote", help="soft (mean probabilities) or hard (majority of labels)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    with guarded():
        from mlcli.workflows.ensemble_build import build_ensemble

        result = build_ensemble(source, top=top, out=out, vote=vote)
        if as_json:
            typer.echo(json.dumps(result, indent=2))
            return
        typer.echo(f"wrote {result['out']}: {len(result['members'])} members from the {result['kind']} "
                   f"{result['source']}")
        for m in result["members"]:
            which = f"trial {m['trial']}" if "trial" in m else f"fold {m['fold']}"
            typer.echo(f"  member {m['member']}: {which}  {m['checkpoint']}")
        typer.echo("test: " + "  ".join(f"{k} {v:.4f}" for k, v in result["metrics"].items()))
