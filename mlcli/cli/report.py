"""Write one self-contained HTML report of a run: summary, metrics per epoch, plots, per-class metrics, the
resolved config and the environment. Images are inline and the page makes no request, so it can be mailed or
archived as one file. Needs matplotlib (pip install matplotlib).

\b
Examples:
  mlcli report runs/quickstart-20261127-101500                 # -> runs/quickstart-20261127-101500/report.html
  mlcli report runs/quickstart-20261127-101500 --out quickstart.html
"""

from __future__ import annotations

from pathlib import Path

import typer

from mlcli.cli.common import guarded, out


def report(
    run: Path = typer.Argument(..., help="A run directory. Example: runs/quickstart-20261127-101500",
                               show_default=False),
    out_file: Path = typer.Option(None, "--out", help="Where to write the HTML (default: RUN/report.html). "
                                  "Example: --out report.html", show_default=False),
) -> None:
    with guarded():
        from mlcli.workflows.report import report as write_report

        out.print(str(write_report(run, out=out_file)), highlight=False)
