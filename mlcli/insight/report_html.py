"""The HTML of `mlcli report`: one self-contained page, built from escaped strings (no template engine).

    page("mlcli report: mlp", [Section("summary", "Summary", kv_table({...})), ...])   # -> str
    table(["epoch", "val_loss"], rows, highlight=3)     image(png_bytes, "curves", "Learning curves")

Self-contained by construction: images are `data:` URIs, the style sheet is inline, there is no script, and a
Content-Security-Policy (`default-src 'none'; img-src data:; style-src 'unsafe-inline'`) forbids the page any
request at all, so it opens the same from a mail attachment, offline, or years later. Every text from the run
directory goes through `html.escape`.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; color: #1d2330; margin: 0; background: #f6f7f9; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; background: #fff; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 10px; padding-bottom: 4px; border-bottom: 1px solid #dde1e7; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.sub { color: #5b6473; margin: 0 0 12px; }
nav a { margin-right: 14px; color: #2456a6; text-decoration: none; }
table { border-collapse: collapse; margin: 6px 0 12px; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #dde1e7; padding: 3px 8px; text-align: right; vertical-align: top; }
th { background: #f0f2f5; }
td.key, th.key, table.kv td { text-align: left; }
tr.best td { background: #fff4d6; font-weight: 600; }
.scroll { max-height: 420px; overflow: auto; display: inline-block; max-width: 100%; }
pre { background: #f6f7f9; border: 1px solid #dde1e7; padding: 10px; overflow: auto; font-size: 12px; }
figure { margin: 12px 0 24px; }
figure img { max-width: 100%; height: auto; border: 1px solid #dde1e7; }
figcaption { color: #5b6473; font-size: 13px; }
.note { color: #8a5a00; }
"""


@dataclass
class Section:
    """One `<section id=...>` with an `<h2>` heading; `body` is HTML already escaped."""

    id: str
    heading: str
    body: str


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def fmt(value) -> str:
    """A cell: floats with 4 significant digits (NaN and None as an empty cell), the rest as text."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        return esc(", ".join(map(str, value)) if isinstance(value, list) else value)
    return esc(value)


def table(headers: list[str], rows: list[list], *, highlight: int | None = None, scroll: bool = False,
          kind: str | None = None) -> str:
    """A table; the first column is left-aligned (a key); row number `highlight` is marked as the best; `kind`
    is its CSS class (`kv`: every cell left-aligned)."""
    head = "".join(f'<th{" class=key" if i == 0 else ""}>{esc(h)}</th>' for i, h in enumerate(headers))
    body = []
    for r, row in enumerate(rows):
        cells = "".join(f'<td{" class=key" if i == 0 else ""}>{fmt(v)}</td>' for i, v in enumerate(row))
        body.append(f'<tr{" class=best" if r == highlight else ""}>{cells}</tr>')
    css = f" class={kind}" if kind else ""
    out = f"<table{css}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    return f'<div class="scroll">{out}</div>' if scroll else out


def kv_table(items: dict) -> str:
    """A two-column table of a mapping (None values left out)."""
    rows = [[k, v] for k, v in items.items() if v is not None and v != ""]
    return table(["field", "value"], rows, kind="kv") if rows else note("nothing recorded")


def image(png: bytes, alt: str, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><img alt="{esc(alt)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def pre(text: str) -> str:
    return f"<pre>{esc(text)}</pre>"


def page(title: str, subtitle: str, sections: list[Section]) -> str:
    """The whole document: head (charset, CSP, no favicon request, inline style), title, a table of contents."""
    nav = "".join(f'<a href="#{esc(s.id)}">{esc(s.heading)}</a>' for s in sections)
    body = "".join(f'<section id="{esc(s.id)}"><h2>{esc(s.heading)}</h2>{s.body}</section>' for s in sections)
    return ("<!DOCTYPE html>\n"
            '<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<link rel="icon" href="data:,">'
            f"<title>{esc(title)}</title><style>{STYLE}</style></head>\n"
            f'<body><main><h1>{esc(title)}</h1><p class="sub">{esc(subtitle)}</p><nav>{nav}</nav>\n'
            f"{body}\n</main></body></html>\n")
