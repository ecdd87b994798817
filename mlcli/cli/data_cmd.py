"""The datasets mlcli knows: synthetic generators, scikit-learn's bundled sets, and file formats."""

from __future__ import annotations

from pathlib import Path

import typer

from mlcli.cli.common import guarded, out

app = typer.Typer(help="Datasets. Example: mlcli data list", no_args_is_help=True, rich_markup_mode=None)


@app.command("list")
def list_() -> None:
    """List every dataset a config can name (data.type), with its task, sample shape and source.
    Example: mlcli data list"""
    with guarded():
        from rich.table import Table

        from mlcli.data.catalog import CATALOG

        table = Table(title="datasets (use the name as data.type)")
        for col in ("name", "kind", "task", "sample shape", "source"):
            table.add_column(col)
        for e in CATALOG:
            table.add_row(e.name, e.kind, e.task + (f"; {e.targets}" if e.targets else ""), e.shape, e.source)
        out.print(table)


@app.command("download", no_args_is_help=True)
def download(
    name: str = typer.Argument(..., help="mnist, fashion_mnist or cifar10.", show_default=False),
    dest: Path = typer.Option(Path("data"), "--dir", help="Folder to download into; use it as data.path. "
                              "Example: --dir data/mnist"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Download a dataset with SHA-256 verification, retries and resume; then point data.path at the folder.
    Example: mlcli data download mnist --dir data/mnist"""
    with guarded():
        from mlcli.data.download import download_dataset

        folder = download_dataset(name, dest, progress=not quiet)
        out.print(f"{name} is in {folder} (use data: {{type: {name}, path: {folder}}})")
