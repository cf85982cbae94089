"""A probe's report section, written once as Markdown and once as a self-contained HTML fragment.

Probes describe their section as a list of blocks (heading, paragraph, table, figure); this
module renders both forms from the same blocks, so the two never disagree. The HTML embeds
figures as base64 ``data:`` URIs and links nothing external: the report stays one file.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
from unisandbox.protocols.analysis import SECTION_HTML, SECTION_MD
from unisandbox.run.store import atomic_write_bytes


@attrs.frozen
class Heading:
    """Level 1 is the section's title (``#`` in Markdown, ``<h3>`` in HTML, below the
    report's own headings), 2 a subsection."""

    text: str
    level: int = 1


@attrs.frozen
class Paragraph:
    text: str


@attrs.frozen
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


@attrs.frozen
class Figure:
    path: Path  # a PNG inside the probe folder
    caption: str


Block = Heading | Paragraph | Table | Figure


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def markdown(blocks: Sequence[Block], root: Path) -> str:
    """Markdown with figures linked relative to ``root`` (the probe folder)."""
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append("#" * b.level + " " + b.text)
        elif isinstance(b, Paragraph):
            out.append(b.text)
        elif isinstance(b, Table):
            out.append("| " + " | ".join(b.headers) + " |")
            out.append("|" + "---|" * len(b.headers))
            out += ["| " + " | ".join(_cell(c).replace("|", "\\|") for c in row) + " |"
                    for row in b.rows]
        else:
            out.append(f"![{b.caption}]({b.path.relative_to(root).as_posix()})\n\n*{b.caption}*")
        out.append("")
    return "\n".join(out)


def html_fragment(blocks: Sequence[Block]) -> str:
    """One ``<section>`` element; figures inline as data URIs."""
    out = ['<section class="probe">']
    for b in blocks:
        if isinstance(b, Heading):
            tag = f"h{min(6, b.level + 2)}"
            out.append(f"<{tag}>{html.escape(b.text)}</{tag}>")
        elif isinstance(b, Paragraph):
            out.append(f"<p>{html.escape(b.text)}</p>")
        elif isinstance(b, Table):
            head = "".join(f"<th>{html.escape(h)}</th>" for h in b.headers)
            body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(c))}</td>" for c in row)
                           + "</tr>" for row in b.rows)
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        else:
            data = base64.b64encode(b.path.read_bytes()).decode("ascii")
            out.append(f'<figure><img alt="{html.escape(b.caption)}" '
                       f'src="data:image/png;base64,{data}"><figcaption>'
                       f"{html.escape(b.caption)}</figcaption></figure>")
    out.append("</section>")
    return "\n".join(out) + "\n"


def write_section(blocks: Sequence[Block], out_dir: Path) -> None:
    """Write ``section.md`` and ``section.html`` into the probe folder."""
    atomic_write_bytes(out_dir / SECTION_MD, markdown(blocks, out_dir).encode())
    atomic_write_bytes(out_dir / SECTION_HTML, html_fragment(blocks).encode())
