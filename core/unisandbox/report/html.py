"""report.html: one self-contained file (inline CSS, images and charts as data URIs, no script)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from html import escape
from importlib.resources import files
from typing import Any

from .. import __version__
from .build import ReportData, RunView, TaskView
from .compare import COMPARE_HEADERS, P_NOTE
from .findings import Finding
from .images import png_uri, thumbnail
from .probes import ProbeSection, inline_html_fragment, markdown_to_html
from .samples import GridItem
from .stats import Cell, pct
from .tables import FACETS_NOTE, ResultRow, facet_table, result_headers

#: characters of thinking text shown per sample (the rest is cut, with a note)
THINK_CHARS = 1200
#: images at most this many pixels a side are shown pixelated (sandbox glyph images)
PIXELATED_BELOW = 96


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def anchor(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def _cell(cell: Cell | None) -> str:
    if cell is None or cell.accuracy is None:
        return '<td class="num">-</td>'
    return (f'<td class="num">{100 * cell.accuracy:.1f} '
            f'<span class="ci">[{100 * cell.lo:.1f}, {100 * cell.hi:.1f}]</span></td>')


def _verdict(label: str | None) -> str:
    label = label or "none"
    return f'<span class="verdict v-{_e(anchor(label))}">{_e(label)}</span>'


def results_table(rows: Sequence[ResultRow], modes: Sequence[str]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in result_headers(modes))
    body = []
    multi = {r.task for r in rows if r.level != "all"}
    for r in rows:
        cls = ' class="all"' if r.level == "all" and r.task in multi else ""
        body.append(
            f"<tr{cls}><td>{_e(r.task)}</td><td>{_e(r.level)}</td>{_cell(r.understanding)}"
            + "".join(_cell(r.generation.get(m)) for m in modes)
            + "".join(f'<td class="num">{pct(r.gap.get(m), signed=True)}</td>' for m in modes)
            + f'<td class="num">{_e(r.errors())}</td><td class="num">{_e(r.n_text())}</td>'
            f'<td class="num">{pct(r.chance)}</td></tr>')
    return (f'<table class="results"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}'
            "</tbody></table><p class=\"muted\">Accuracies in %, 95 % Wilson interval in "
            "brackets. U: the understanding side answers the item's question in text; "
            "G-mode: the generated image is judged right. Gap = U − G in points.</p>")


def findings_html(findings: Sequence[Finding], warnings: Sequence[str] = ()) -> str:
    rows = "".join(
        f"<tr><td>{f.number}</td><td>{_e(f.claim)}</td><td>{_verdict(f.verdict)}</td>"
        f"<td>{_e(f.measured)}</td><td class=\"test\">{_e(f.test)}</td></tr>" for f in findings)
    notes = "".join(f'<p class="note">Warning: {_e(w)}</p>' for w in warnings)
    return ('<section id="findings"><h2>Findings</h2>' + notes + '<table class="findings"><thead><tr>'
            "<th>#</th><th>claim</th><th>verdict</th><th>measured</th><th>test</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></section>")


def comparison_html(data: ReportData) -> str:
    c = data.comparison
    if c is None:
        return ""
    head = "".join(f"<th>{_e(h)}</th>" for h in COMPARE_HEADERS)
    num = ' class="num"'
    body = "".join("<tr>" + "".join(
        f"<td{num if i > 2 else ''}>{_e(v)}</td>" for i, v in enumerate(r.cells()))
        + "</tr>" for r in c.rows)
    return (f'<section id="compare"><h2>Compare: A = {_e(c.label_a)}, B = {_e(c.label_b)}</h2>'
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
            '<p class="muted">CIs separate: the two 95 % Wilson intervals do not overlap. '
            f"{_e(P_NOTE)}</p></section>")


def _images(records: Sequence[dict[str, Any]], view: RunView) -> str:
    """The item's images; each captioned with its own verdict when the item is a pair."""
    figs = []
    for r in records:
        path = view.run.image(r.get("image"))
        thumb = thumbnail(path) if path else None
        if thumb is None:
            img = '<div class="muted">missing image</div>'
        else:
            # small sandbox images are upscaled without smoothing, so pixels stay readable
            cls = ' class="px"' if thumb[1] <= PIXELATED_BELOW else ""
            img = f'<img{cls} alt="{_e(r.get("id"))}" src="{thumb[0]}">'
        caption = _e(r.get("description") or "")
        if len(records) > 1:
            caption = f"{_e(r.get('id'))}: {_verdict(r.get('verdict'))} {caption}"
        figs.append(f"<figure>{img}<figcaption>{caption}</figcaption></figure>")
    return f'<div class="imgs">{"".join(figs)}</div>'


def _think(records: Sequence[dict[str, Any]]) -> str:
    out = []
    for r in records:
        text = r.get("think")
        if not text:
            continue
        text = str(text)
        if len(text) > THINK_CHARS:
            text = text[:THINK_CHARS] + f" … [{len(text) - THINK_CHARS} more characters]"
        prefix = f"{r.get('id')}: " if len(records) > 1 else ""
        out.append(f'<div class="think">{_e(prefix + text)}</div>')
    return "".join(out)


def _member(record: dict[str, Any], members: Sequence[dict[str, Any]]) -> str:
    """``<b>7_A</b>: `` before a pair member's text; nothing for a single sample."""
    return f"<b>{_e(record.get('id'))}</b>: " if len(members) > 1 else ""


def grid_html(items: Sequence[GridItem], view: RunView) -> str:
    modes = view.run.modes
    head = "<th>item</th>" + "".join(f"<th>G-{_e(m)}</th>" for m in modes)
    body = []
    for item in items:
        first = item.members[modes[0]]
        prompts = "".join(f'<p class="prompt">{_member(r, first)}{_e(r.get("prompt"))}</p>'
                          for r in first)
        expected = ", ".join(str(r.get("expected")) for r in first)
        u = "".join(f"<div>{_member(r, item.understanding)}U: {_e(r.get('question'))} → {_e(r.get('reply'))} "
                    f"{_verdict(r.get('verdict'))}</div>" for r in item.understanding)
        level = f' <span class="muted">level {_e(item.level)}</span>' if item.level is not None else ""
        left = (f"<td class=\"item\"><b>{_e(item.key)}</b>{level}{prompts}<div class=\"muted\">expected: {_e(expected)}"
                f"</div>{u}</td>")
        cells = "".join(
            f"<td>{_verdict(item.verdict(m))}{_images(item.members[m], view)}"
            f"{_think(item.members[m])}</td>" for m in modes)
        body.append(f"<tr>{left}{cells}</tr>")
    return f'<table class="grid"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def probe_html(section: ProbeSection) -> str:
    if section.html_path is not None:
        inner = inline_html_fragment(section.text(section.html_path), section.folder)
    elif section.md_path is not None:
        inner = markdown_to_html(section.text(section.md_path), section.folder)
    else:
        inner = ""
    return (f'<section class="probe" id="probe-{anchor(str(section.folder))}">'
            f"<h3>Probe: {_e(section.title)}</h3>{inner}</section>")


def task_html(task: TaskView, view: RunView) -> str:
    parts = [f'<h4 id="{anchor(view.run.label + "-" + task.name)}-samples">{_e(task.name)}: '
             "samples, normal vs think on the same items</h4>"]
    if task.items:
        parts.append(grid_html(task.items, view))
    else:
        parts.append('<p class="muted">No items with images in every mode.</p>')
    return "".join(parts)


def run_html(view: RunView) -> str:
    run = view.run
    rid = anchor(run.label)
    header = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in view.header)
    parts = [f'<section id="run-{rid}"><h2>Run: {_e(run.label)}</h2>',
             f'<table class="header"><tbody>{header}</tbody></table>']
    if run.missing_tasks:
        then = ("It is still running." if run.running else
                f"Resume it with the same <code>{_e(run.command)}</code> command.")
        parts.append(f'<p class="note">Not finished: {_e("; ".join(run.missing_tasks))}. {then}</p>')
    parts.append("<h3>Results</h3>" + results_table(view.rows, run.modes))
    headers, rows = facet_table(run.results)
    if rows:
        head = "".join(f"<th>{_e(h)}</th>" for h in headers)
        body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
        parts.append(f'<h3>What the pictures got right</h3><table class="facets"><thead><tr>{head}'
                     f'</tr></thead><tbody>{body}</tbody></table><p class="muted">{_e(FACETS_NOTE)}</p>')
    charts = [t for t in view.tasks if t.chart]
    if charts:
        parts.append("<h3>U vs G per level (95 % intervals)</h3><div class=\"charts\">" + "".join(
            f'<figure><img alt="{_e(t.name)} chart" src="{png_uri(t.chart)}"></figure>'
            for t in charts if t.chart) + "</div>")
    if run.modes and (view.grid_note or any(t.items for t in view.tasks)):
        parts.append("<h3>Samples</h3>")
        if view.grid_note:
            parts.append(f'<p class="note">{_e(view.grid_note)}</p>')
        else:
            parts.append('<p class="muted">Up to a few items per task, chosen deterministically; '
                         "items where the modes disagree first.</p>")
            parts.extend(task_html(t, view) for t in view.tasks)
    if run.probes:
        parts.append("<h3>Probes</h3>" + "".join(probe_html(s) for s in run.probes))
    parts.append("</section>")
    return "".join(parts)


def render_html(data: ReportData) -> str:
    css = files("unisandbox.report").joinpath("style.css").read_text(encoding="utf-8")
    nav = []
    if data.findings is not None:
        nav.append('<a href="#findings">Findings</a>')
    if data.comparison is not None:
        nav.append('<a href="#compare">Compare</a>')
    nav += [f'<a href="#run-{anchor(v.run.label)}">{_e(v.run.label)}</a>' for v in data.runs]
    if data.probes:
        nav.append('<a href="#probes">Probes</a>')
    body = [f"<h1>{_e(data.title)}</h1>",
            f'<p class="sub">unisandbox {_e(__version__)} report of {_e(data.contents)}</p>'
            f'<nav>{"".join(nav)}</nav>']
    if data.findings is not None:
        body.append(findings_html(data.findings, data.findings_warnings))
    body.append(comparison_html(data))
    body.extend(run_html(v) for v in data.runs)
    if data.probes:
        body.append('<section id="probes"><h2>Probes</h2>'
                    + "".join(probe_html(s) for s in data.probes) + "</section>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(data.title)}</title><style>{css}</style></head>"
            f"<body><main>{''.join(body)}</main></body></html>\n")

