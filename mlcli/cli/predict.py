"""Predict with a checkpoint on new samples (standardized as in training); writes a CSV or prints JSON lines.

\b
Examples:
  mlcli predict runs/<run>/checkpoints/best.npz new_samples.npz
  mlcli predict runs/<run> new_samples.npy --out predictions.csv
"""

from __future__ import annotations

import csv
import io
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
        from mlcli.runs.atomic import atomic_write_text
        from mlcli.workflows.predict import predict_file

        if checkpoint.is_dir():
            checkpoint = checkpoint / "checkpoints" / "best.npz"
        rows = predict_file(checkpoint, inputs)
        if out_path is None:
            sys.stdout.write("".join(json.dumps(r) + "\n" for r in rows))
            return
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(["index", "prediction"])
        for r in rows:
            value = r["prediction"]
            writer.writerow([r["index"], " ".join(map(str, value)) if isinstance(value, list) else value])
        atomic_write_text(out_path, buf.getvalue())
        out.print(f"{len(rows)} predictions written to {out_path}")
