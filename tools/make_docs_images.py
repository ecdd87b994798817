"""Regenerate the README's pictures in docs/ from real runs: `python tools/make_docs_images.py`.

    docs/plot-curves.png       mlcli plot: learning curves of the quickstart (trained with --diagnostics)
    docs/plot-weights.png      mlcli plot: the class templates of a softmax classifier on digits
    docs/diagnostics.png       mlcli plot --what diagnostics of the same quickstart run
    docs/report.png            mlcli report of that run, as headless Chromium shows it (skipped without Chromium)

Runs train into a temporary folder; the PNGs are reduced to a 96-colour palette (Pillow, which matplotlib
depends on) to keep the repository small. Needs matplotlib and scikit-learn (the bundled digits).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
COLOURS = 96


def shrink(source: Path, target: Path) -> None:
    """Save `source` as `target` with a small adaptive palette."""
    from PIL import Image

    with Image.open(source) as image:
        image.convert("RGB").quantize(colors=COLOURS, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)
    print(f"{target.relative_to(REPO)}: {target.stat().st_size // 1024} KiB")


def screenshot(html: Path, png: Path, profile: Path) -> bool:
    """A headless Chromium screenshot of the top of `html`; False when no Chromium is installed."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        print("no chromium: docs/report.png left as it is", file=sys.stderr)
        return False
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={profile}", "--window-size=1100,1500", "--hide-scrollbars",
                    f"--screenshot={png}", "--virtual-time-budget=5000", html.as_uri()],
                   check=True, capture_output=True, timeout=120)
    return True


def main() -> None:
    import mlcli
    from mlcli.workflows.plot import plot
    from mlcli.workflows.report import report

    DOCS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        quick = mlcli.train(REPO / "configs" / "quickstart.yaml", overrides={"train.diagnostics": True},
                            runs_dir=tmp / "runs", name="quickstart").run_dir
        softmax = mlcli.train(REPO / "configs" / "softmax.yaml", runs_dir=tmp / "runs", name="softmax").run_dir
        for path in plot(quick, out=tmp / "quick", what="curves,diagnostics"):
            shrink(path, DOCS / ("plot-curves.png" if path.stem == "curves" else "diagnostics.png"))
        (weights,) = plot(softmax, out=tmp / "softmax", what="weights")
        shrink(weights, DOCS / "plot-weights.png")
        html = report(quick, out=tmp / "report.html")
        if screenshot(html, tmp / "report.png", tmp / "profile"):
            shrink(tmp / "report.png", DOCS / "report.png")


if __name__ == "__main__":
    main()
