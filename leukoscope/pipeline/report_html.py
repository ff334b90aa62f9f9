"""The report's blocks and their two renderings: Markdown, and one self-contained HTML page.

A report is a list of :class:`Block` (headings, paragraphs, tables, images), so that sections
can be added by appending blocks, and the Markdown and HTML always say the same thing.

Table cells are text; a line break inside a cell starts a second, smaller line (an interval
under its estimate): Markdown shows it after a space, HTML in a smaller line of its own. In HTML
no cell wraps, cells that start with a number are right-aligned, the rows listed in
``Block.highlight`` are shaded, and a table wider than the screen scrolls sideways inside its own
box, so the page itself never does. Images are embedded as base64 PNG: the page opens from disk
with no server and no network.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

NUMBER = re.compile(r"^[-+−]?(\d|\.\d|n/a$)")
"""A cell whose text starts like this is a number: right-aligned."""

STYLE = """
body{font-family:system-ui,sans-serif;max-width:1200px;margin:1.5em auto;padding:0 1em;line-height:1.4;
  overflow-wrap:anywhere}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #ddd}
.scroll{overflow-x:auto;max-width:100%;margin:0.8em 0}
table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 7px;white-space:nowrap;text-align:left;vertical-align:top;
  overflow-wrap:normal}
th{background:#eee}td.num{text-align:right;font-variant-numeric:tabular-nums}
td .sub{display:block;font-size:11px;color:#555}
tr.highlight td{background:#fff3c4;font-weight:600}
p.stamp,p.meta{font-size:12px;color:#555;margin:0.2em 0}
p.warning{background:#fdecea;border-left:4px solid #c0392b;padding:0.5em 0.8em}
p.banner{background:#e8f0fe;border-left:4px solid #1a5fb4;padding:0.5em 0.8em;font-weight:600}
img{max-width:100%;height:auto}figure{margin:1em 0}figcaption{font-size:13px;color:#444}
"""


@dataclass(frozen=True)
class Block:
    """One piece of the report.

    Attributes
    ----------
    kind : str
        ``h1``, ``h2``, ``p``, ``table`` or ``img``.
    text : str
        The heading or paragraph; for ``img``, the PNG's file name in the report's folder.
    table : DataFrame or None
        For ``table``: every cell text (a line break starts the cell's second, smaller line).
    caption : str
        For ``img``.
    style : str
        For ``p``: ``""``, ``stamp`` (this run's date and command: differs between runs),
        ``meta`` (small print), ``warning`` or ``banner``.
    highlight : tuple of int
        For ``table``: row positions to shade (the headline).
    """

    kind: str
    text: str = ""
    table: pd.DataFrame | None = None
    caption: str = ""
    style: str = ""
    highlight: tuple[int, ...] = ()


def _md_table(table: pd.DataFrame) -> str:
    def cell(value: object) -> str:
        return " ".join(str(value).split("\n")).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(c) for c in table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def to_markdown(blocks: list[Block]) -> str:
    """Render the blocks as Markdown (images linked by file name; warnings and banners quoted)."""
    parts = []
    for block in blocks:
        if block.kind == "h1":
            parts.append(f"# {block.text}")
        elif block.kind == "h2":
            parts.append(f"## {block.text}")
        elif block.kind == "p":
            parts.append(f"> {block.text}" if block.style in ("warning", "banner") else block.text)
        elif block.kind == "table" and block.table is not None:
            parts.append(_md_table(block.table))
        else:
            parts.append(f"![{block.caption}]({block.text})\n\n{block.caption}")
    return "\n\n".join(parts) + "\n"


def _html_cell(value: object) -> str:
    first, *rest = str(value).split("\n")
    kind = ' class="num"' if NUMBER.match(first) else ""
    subs = "".join(f'<span class="sub">{html.escape(line)}</span>' for line in rest)
    return f"<td{kind}>{html.escape(first)}{subs}</td>"


def _html_table(block: Block) -> str:
    table = block.table if block.table is not None else pd.DataFrame()
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    rows = []
    for k, row in enumerate(table.itertuples(index=False)):
        shaded = ' class="highlight"' if k in block.highlight else ""
        rows.append(f"<tr{shaded}>" + "".join(_html_cell(v) for v in row) + "</tr>")
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>'
            + "".join(rows) + "</tbody></table></div>")


def to_html(blocks: list[Block], folder: Path, *, title: str = "leukoscope comparison report") -> str:
    """Render the blocks as one HTML page with every image embedded (base64 PNG)."""
    body = []
    for block in blocks:
        if block.kind in ("h1", "h2"):
            body.append(f"<{block.kind}>{html.escape(block.text)}</{block.kind}>")
        elif block.kind == "p":
            style = f' class="{block.style}"' if block.style else ""
            body.append(f"<p{style}>{html.escape(block.text)}</p>")
        elif block.kind == "table":
            body.append(_html_table(block))
        else:
            data = base64.b64encode((folder / block.text).read_bytes()).decode("ascii")
            caption = html.escape(block.caption)
            body.append(f'<figure><img alt="{caption}" src="data:image/png;base64,{data}">'
                        f"<figcaption>{caption}</figcaption></figure>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


STAMP = re.compile(r'^(<p class="stamp">)?Run stamp: .*$', re.MULTILINE)
"""The line of a rendered report that holds the run's date and command (differs between runs)."""


__all__ = ["Block", "STAMP", "STYLE", "to_html", "to_markdown"]
