"""Include what probe folders offer, without knowing any probe: ``section.html`` / ``section.md``.

A probe (or any analysis) that wants a place in the report writes a folder with a
``section.html`` fragment and/or a ``section.md`` plus its figures. The report finds such folders
in a run's ``probes/`` subfolder or when given one directly, inlines the fragment's local images
as data URIs, and drops anything that would reach outside the file (scripts, external links),
so the report stays self-contained whatever a plugin writes.
"""

from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

from ..errors import DataError
from .images import data_uri

SECTION_FILES = ("section.html", "section.md")
#: a section's own headings sit this many levels below its "Probe: ..." heading's level 1
HEADING_SHIFT = 3
#: elements dropped with their content (they would run code or fetch things)
_DROP = {"script", "style", "iframe", "object", "noscript", "template", "applet", "frameset"}
#: void elements dropped (they load, embed or redirect): only the tag goes, what follows stays
_DROP_VOID = {"link", "meta", "base", "embed", "frame"}
_VOID = {"area", "br", "col", "hr", "img", "input", "source", "track", "wbr", *_DROP_VOID}
_URL_ATTRS = {"src", "href", "srcset", "poster", "action", "formaction", "data", "xlink:href",
              "background", "lowsrc", "dynsrc", "ping", "longdesc", "manifest", "icon", "archive",
              "codebase"}
#: what in a style attribute could load something: url() and image-set() (and CSS escapes,
#: ``u\rl(``, that spell them another way); such a style is dropped whole
_STYLE_LOADS = re.compile(r"\\|url|image|src\s*\(|import|expression|/\*", re.IGNORECASE)


@dataclass
class ProbeSection:
    """One folder holding a section for the report."""

    folder: Path
    title: str
    html_path: Path | None
    md_path: Path | None

    @staticmethod
    def text(path: Path) -> str:
        """A section file's text; a damaged one is an error naming it, not a traceback."""
        try:
            return path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise DataError(path, None, None, "not UTF-8 text: the file is damaged") from None


def find_probe_sections(folder: Path) -> list[ProbeSection]:
    """The folder itself if it holds a section, and every folder under its ``probes/``."""
    folder = Path(folder)
    candidates: list[Path] = []
    if any((folder / name).is_file() for name in SECTION_FILES):
        candidates.append(folder)
    probes = folder / "probes"
    if probes.is_dir():
        found = {p.parent for name in SECTION_FILES for p in probes.rglob(name) if p.is_file()}
        candidates.extend(sorted(found))
    out = []
    for path in candidates:
        html_path, md_path = path / "section.html", path / "section.md"
        out.append(ProbeSection(
            folder=path, title=_title(path, folder),
            html_path=html_path if html_path.is_file() else None,
            md_path=md_path if md_path.is_file() else None))
    return out


def _title(path: Path, root: Path) -> str:
    rel = path.relative_to(root).as_posix() if path != root else ""
    return rel.removeprefix("probes/") or path.name


def _local_file(base: Path, target: str) -> Path | None:
    """``target`` as a file inside ``base``; None for URLs, absolute paths or escapes."""
    target = target.strip()
    if not target or re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith(("/", "\\")):
        return None
    target = target.split("#", 1)[0].split("?", 1)[0]
    path = (base / target).resolve()
    if not path.is_relative_to(base.resolve()) or not path.is_file():
        return None
    return path


def _shifted(tag: str) -> str:
    """A section's ``<h1>`` ... ``<h6>`` moved below the report's own headings."""
    if re.fullmatch(r"h[1-6]", tag):
        return f"h{min(6, int(tag[1]) + HEADING_SHIFT)}"
    return tag


def demote_markdown(text: str) -> str:
    """A section's Markdown headings moved below the report's own (outside code fences)."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        m = None if fenced else re.match(r"^(#{1,6})(\s)", line)
        out.append("#" * min(6, len(m.group(1)) + HEADING_SHIFT) + line[len(m.group(1)):] if m else line)
    return "\n".join(out)


class _Inliner(HTMLParser):
    """Re-serialise an HTML fragment: local images inlined, everything external removed."""

    def __init__(self, base: Path, max_side: int) -> None:
        super().__init__(convert_charrefs=False)
        self.base, self.max_side = base, max_side
        self.out: list[str] = []
        self.skip_depth = 0
        self.skip_tag: str | None = None

    def _attrs(self, tag: str, attrs: list[tuple[str, str | None]]) -> str:
        kept = []
        for name, value in attrs:
            name = name.lower()
            if name.startswith("on"):
                continue
            if name == "style" and value and _STYLE_LOADS.search(value):
                continue
            if name in _URL_ATTRS:
                if value is None:
                    continue
                if name == "href" and value.strip().startswith("#"):
                    kept.append((name, value))
                    continue
                if name == "src" and tag in {"img", "source"}:
                    if re.match(r"(?i)^\s*data:image/(png|jpeg|gif|webp);base64,", value):
                        kept.append((name, value.strip()))  # already inline (SVG could script)
                        continue
                    local = _local_file(self.base, value)
                    if local is not None:
                        uri = data_uri(local, self.max_side)
                        if uri is not None:
                            kept.append((name, uri))
                continue  # every other URL would leave the file (or point at nothing)
            kept.append((name, value))
        return "".join(f" {n}" if v is None else f' {n}="{html.escape(v, quote=True)}"' for n, v in kept)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skip_depth:
            if tag == self.skip_tag:
                self.skip_depth += 1
            return
        if tag in _DROP:
            self.skip_tag, self.skip_depth = tag, 1
            return
        if tag in _DROP_VOID:
            return
        self.out.append(f"<{_shifted(tag)}{self._attrs(tag, attrs)}>")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skip_depth or tag in _DROP or tag in _DROP_VOID:
            return
        self.out.append(f"<{tag}{self._attrs(tag, attrs)}>")

    def handle_endtag(self, tag: str) -> None:
        if self.skip_depth:
            if tag == self.skip_tag:
                self.skip_depth -= 1
            return
        if tag not in _VOID:
            self.out.append(f"</{_shifted(tag)}>")

    def handle_data(self, data: str) -> None:
        if not self.skip_depth:
            self.out.append(data)

    def handle_entityref(self, name: str) -> None:
        if not self.skip_depth:
            self.out.append(f"&{name};")

    def handle_charref(self, name: str) -> None:
        if not self.skip_depth:
            self.out.append(f"&#{name};")


def inline_html_fragment(text: str, base: Path, max_side: int = 900) -> str:
    """The fragment with local images as data URIs and nothing that loads from elsewhere."""
    parser = _Inliner(base, max_side)
    parser.feed(text)
    parser.close()
    return "".join(parser.out)


_MD_TARGET = re.compile(r"(!?\[[^\]]*\]\()([^)\s]+)((?:\s+\"[^\"]*\")?\))")


def rebase_markdown(text: str, base: Path, out_dir: Path) -> str:
    """Markdown whose relative link and image targets still work from ``out_dir``; an image
    that is not a file inside ``base`` (a URL a viewer would fetch, a path out of the folder)
    becomes its alt text, as the HTML report drops it."""

    def fix(match: re.Match[str]) -> str:
        local = _local_file(base, match.group(2))
        if local is None:
            if match.group(1).startswith("!"):
                return match.group(1)[1:-1]  # "[alt]"
            return match.group(0)
        rel = quote(Path(os.path.relpath(local, out_dir.resolve())).as_posix())
        return f"{match.group(1)}{rel}{match.group(3)}"

    return _MD_TARGET.sub(fix, text)


def markdown_to_html(text: str, base: Path, max_side: int = 900) -> str:
    """A small Markdown subset (headings, paragraphs, lists, pipe tables, code, images) as
    HTML, for a section that only offers ``section.md``; local images become data URIs."""
    blocks: list[str] = []
    lines = text.splitlines()
    i = 0

    def inline(s: str) -> str:
        def image(m: re.Match[str]) -> str:
            local = _local_file(base, m.group(2))
            uri = data_uri(local, max_side) if local else None
            alt = html.escape(m.group(1))
            return f'<img alt="{alt}" src="{uri}">' if uri else f"[{alt}]"

        parts = re.split(r"(!\[[^\]]*\]\([^)\s]+\))", s)
        out = []
        for part in parts:
            m = re.fullmatch(r"!\[([^\]]*)\]\(([^)\s]+)\)", part)
            if m:
                out.append(image(m))
                continue
            esc = html.escape(part)
            esc = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", esc)  # links become their text
            esc = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", esc)
            esc = re.sub(r"`([^`]+)`", r"<code>\1</code>", esc)
            out.append(esc)
        return "".join(out)

    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif line.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            blocks.append("<pre>" + html.escape("\n".join(lines[i + 1 : j])) + "</pre>")
            i = j + 1
        elif m := re.match(r"^(#{1,6})\s+(.*)$", line):
            level = min(6, len(m.group(1)) + HEADING_SHIFT)  # below the report's own headings
            blocks.append(f"<h{level}>{inline(m.group(2))}</h{level}>")
            i += 1
        elif line.lstrip().startswith("|"):
            rows = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                if not all(re.fullmatch(r":?-+:?", c) for c in cells if c):
                    rows.append(cells)
                i += 1
            head, body = rows[0], rows[1:]
            blocks.append("<table><thead><tr>" + "".join(f"<th>{inline(c)}</th>" for c in head)
                          + "</tr></thead><tbody>" + "".join(
                              "<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>"
                              for r in body) + "</tbody></table>")
        elif re.match(r"^\s*[-*]\s+", line):
            items = []
            while i < len(lines) and re.match(r"^\s*[-*]\s+", lines[i]):
                items.append(re.sub(r"^\s*[-*]\s+", "", lines[i]))
                i += 1
            blocks.append("<ul>" + "".join(f"<li>{inline(x)}</li>" for x in items) + "</ul>")
        else:
            para = [line]
            i += 1
            while i < len(lines) and lines[i].strip() and not re.match(r"^(#|\||```|\s*[-*]\s)", lines[i]):
                para.append(lines[i])
                i += 1
            blocks.append(f"<p>{inline(' '.join(para))}</p>")
    return "\n".join(blocks)
