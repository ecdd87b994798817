"""Predict with a checkpoint on new samples (standardized as in training); writes a CSV or prints JSON lines.

\b
Examples:
  mlcli predict runs/<run>/checkpoints/best.npz new_samples.npz
  mlcli predict runs/<run> new_samples.npy --out predictions.csv
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from mlcli.cli.common import guarded, out


def predict(
    checkpoint: Path = typer.Argument(..., help="A checkpoint file, or a run directory (its best.npz). "
                                      "Example: runs/<run>/checkpoints/best.npz", show_default=False),
    inputs: Path = typer.Argument(..., help="A .npz with an array x (N, ...) or a .npy array. Example: new.npz",
                                  show_default=False),
    out_path: Path = typer.Option(None, "--out", help="Write index,prediction rows to this CSV (written "
                                  "atomically) instead of printing JSON lines. Example: --out preds.csv"),
) -> None:
    with guarded():
        import mlcli

        rows = mlcli.predict(checkpoint, inputs, out=out_path)
        if out_path is None:
            sys.stdout.write("".join(json.dumps(r) + "\n" for r in rows))
        else:
            out.print(f"{len(rows)} predictions written to {out_path}")
