"""Predict with a checkpoint on new samples (standardized as in training); writes a CSV or prints JSON lines.

With --proba a classifier also gives its class probabilities per row: under "probabilities" (class name ->
probability) in each JSON line, or one CSV column per class, named by the class, after index and prediction.

\b
Examples:
  mlcli predict runs/<run>/checkpoints/best.npz new_samples.npz
  mlcli predict runs/<run> new_samples.npy --out predictions.csv
  mlcli predict runs/<run> new_samples.npz --proba --out probabilities.csv
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
    proba: bool = typer.Option(False, "--proba", help="Classifiers: the class probabilities of each row too "
                               "(one column per class in the CSV). Example: --proba"),
) -> None:
    with guarded():
        import mlcli

        rows = mlcli.predict(checkpoint, inputs, out=out_path, proba=proba)
        if out_path is None:
            sys.stdout.write("".join(json.dumps(r) + "\n" for r in rows))
        else:
            out.print(f"{len(rows)} predictions written to {out_path}")
