"""Evaluate a checkpoint on a split of its own data, or on another data file; self-contained.

The checkpoint holds the config, the weights and the standardization statistics, so nothing else is needed.
For a classifier the terminal also shows per-class precision, recall, F1 and support with their macro and weighted
averages, the confusion matrix (rows: true class) and, with more than 5 classes, the top-5 accuracy; --json adds
them (keys per_class, confusion, top5) with --per-class.

\b
Examples:
  mlcli eval runs/quickstart-20261127-101500/checkpoints/best.npz
  mlcli eval runs/<run>/checkpoints/best.npz --split val --json
  mlcli eval runs/<run> --json --per-class     # with the per-class report and the confusion matrix
  mlcli eval runs/<run>/checkpoints/last.npz --data new_samples.npz
  mlcli eval runs/<ae-run>/checkpoints/best.npz --codes codes.npy     # autoencoder: write the codes too
  mlcli eval runs/a runs/b runs/c --json     # an ensemble: averaged probabilities (same data.seed needed)
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from mlcli.cli.common import fmt, guarded, out, print_json


class Split(str, Enum):
    test = "test"
    val = "val"
    train = "train"


def evaluate(
    checkpoints: list[Path] = typer.Argument(..., help="A checkpoint file, or a run directory (its best.npz); "
                                             "several evaluate their ensemble. Example: runs/<run>/checkpoints/"
                                             "best.npz", show_default=False),
    split: Split = typer.Option(Split.test, "--split", help="Which split of the run's data to evaluate on. "
                                "Example: --split val"),
    data: Path = typer.Option(None, "--data", help="Evaluate on this .npz (x, y) or .csv file instead. "
                              "Example: --data holdout.npz"),
    json_: bool = typer.Option(False, "--json", help="Print one JSON object for scripts."),
    codes: Path = typer.Option(None, "--codes", help="Autoencoders: also save the codes of the evaluated "
                               "samples as .npy. Example: --codes codes.npy"),
    per_class: bool = typer.Option(None, "--per-class/--no-per-class", help="Classifiers: the per-class report "
                                   "and confusion matrix; shown in the terminal unless --no-per-class, in --json "
                                   "only with --per-class. Example: --json --per-class", show_default=False),
) -> None:
    with guarded():
        import mlcli

        wanted = per_class if per_class is not None else not json_
        result = mlcli.evaluate(checkpoints, split=split.value, data=data, codes=codes, per_class=wanted)
        if json_:
            print_json(result)
            return
        from rich.table import Table

        if "members" in result:
            title = f"ensemble of {len(checkpoints)} on {result['split']} (n={result['n']})"
        else:
            title = f"{result['checkpoint']} on {result['split']} (n={result['n']})"
        table = Table(title=title)
        table.add_column("metric")
        table.add_column("value", justify="right")
        for k, v in result["metrics"].items():
            table.add_row(k, fmt(v))
        if "top5" in result:
            table.add_row("top-5 accuracy", fmt(result["top5"]))
        out.print(table)
        if "per_class" in result:
            print_class_report(result)
        for head, report in result.get("per_task", {}).items():  # a multitask model's classification heads
            print_class_report(report, f"{head}: ")
        if codes is not None:
            out.print(f"codes written to {codes}")


def print_class_report(result: dict, prefix: str = "") -> None:
    """The per-class table (with the macro and weighted averages) and the confusion matrix; `prefix` names the
    head of a multitask model in the titles."""
    from rich.table import Table

    if "top5" in result and prefix:
        out.print(f"{prefix}top-5 accuracy {fmt(result['top5'])}")
    report = Table(title=f"{prefix}per class")
    for col, justify in (("class", "left"), ("precision", "right"), ("recall", "right"), ("f1", "right"),
                         ("support", "right")):
        report.add_column(col, justify=justify)
    rows = result["per_class"]
    for r in rows["classes"]:
        report.add_row(r["class"], fmt(r["precision"]), fmt(r["recall"]), fmt(r["f1"]), str(r["support"]))
    report.add_section()
    for kind in ("macro", "weighted"):
        avg = rows[kind]
        report.add_row(f"{kind} avg", fmt(avg["precision"]), fmt(avg["recall"]), fmt(avg["f1"]), str(avg["support"]))
    out.print(report)
    labels, matrix = result["confusion"]["labels"], result["confusion"]["matrix"]
    confusion = Table(title=f"{prefix}confusion matrix (rows: true class, columns: predicted)")
    confusion.add_column("true \\ pred")
    for name in labels:
        confusion.add_column(name, justify="right")
    for name, counts in zip(labels, matrix, strict=True):
        confusion.add_row(name, *(str(c) for c in counts))
    out.print(confusion)
