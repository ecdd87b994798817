"""The matplotlib boundary: the one place that imports it (lazily, headless Agg), and figures to PNG bytes.

    fig = figure(10, 4)             # a matplotlib Figure of 10 x 4 inches at DPI dots per inch, not tied to pyplot
    png = to_png(fig)               # bytes of a PNG of exactly 1000 x 400 pixels
    png_size(png) -> (1000, 400)

Figures are made with `matplotlib.figure.Figure`, not pyplot, so no global figure list grows and nothing needs
closing. Without matplotlib every plot is one ConfigError naming what to install.
"""

from __future__ import annotations

import io
import math
import struct

from mlcli.errors import ConfigError

DPI = 100
MISSING = "plots need matplotlib: pip install matplotlib (or the extra: pip install 'mlcli[plot]')"


def matplotlib_module():
    """matplotlib itself, switched to the headless Agg backend; ConfigError (exit 2) when it is not installed."""
    try:
        import matplotlib
    except ImportError:
        raise ConfigError(MISSING) from None
    matplotlib.use("Agg")
    return matplotlib


def figure(width: float, height: float):
    """A new Figure of `width` x `height` inches at `DPI` (so width*DPI x height*DPI pixels once saved)."""
    matplotlib_module()
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI)


def to_png(fig) -> bytes:
    """The figure as PNG bytes, at its own size (no tight bounding box: sizes stay what `figure` promised)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; ValueError when `data` is not a PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG file")
    return struct.unpack(">II", data[16:24])


def finite(values) -> list[float]:
    """Floats for plotting: None, strings ("inf" from a record) and non-finite numbers become NaN (a gap)."""
    out = []
    for v in values:
        f = float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan
        out.append(f if math.isfinite(f) else math.nan)
    return out


def note(ax, text: str) -> None:
    """A grey centred message in an empty panel (no epochs yet, nothing recorded)."""
    ax.text(0.5, 0.5, text, ha="center", va="center", color="0.4", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])
