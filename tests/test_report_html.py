"""report.html / report.md: self-contained, with the tables, charts, sample grids and probe
sections; bad folders give one clear line."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image
from support import run_cli
from unisandbox.cli.main import main
from unisandbox.report import write_report
from unisandbox.report.load import load_run
from unisandbox.report.samples import grid_items
from unisandbox.run.config import Component, RunConfig
from unisandbox.run.runner import Runner


def glyph_run(out: Path) -> Path:
    """A real sandbox run: the oracle model, exact judge, math + mapping pairs + knowledge."""
    tasks = tuple(Component(t, {"n": 6, "world": "glyph"})
                  for t in ("math-1", "mapping-2", "knowledge-forward"))
    Runner(RunConfig(model=Component("glyph-oracle"), tasks=tasks, judge=Component("glyph"),
                     out=out, batch_size=8), progress=False).run()
    return out


def toy_run(out: Path, skill: int = 5, n: int = 12) -> Path:
    """The toy painter: think always right, normal right only below ``skill``."""
    Runner(RunConfig(model=Component("toy-painter", {"skill": skill}),
                     tasks=(Component("toy-shades", {"n": n}),), judge=Component("toy-pixel"),
                     out=out, batch_size=4), progress=False).run()
    return out


@pytest.fixture(scope="module")
def glyph(tmp_path_factory) -> Path:
    return glyph_run(tmp_path_factory.mktemp("glyph") / "run")


class Collect(HTMLParser):
    """Every tag with its attributes, for checking URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag


def assert_self_contained(text: str) -> Collect:
    parsed = Collect()
    parsed.feed(text)
    for tag, attrs in parsed.tags:
        assert tag not in {"script", "link", "iframe", "object", "embed", "base"}, tag
        for name, value in attrs.items():
            value = (value or "").strip()
            if name in {"src", "href", "srcset", "poster", "action"}:
                assert not re.match(r"(?i)^(https?:)?//", value), (tag, name, value[:80])
                if name == "href":
                    assert value.startswith("#"), (tag, value[:80])
            if tag == "img" and name == "src":
                assert value.startswith("data:image/"), value[:80]
            assert not name.startswith("on"), (tag, name)
    lowered = text.lower()
    for needle in ("http://", "https://", "@import", "@font-face", "url(", "<script"):
        assert needle not in lowered, needle
    return parsed


def decode_img(src: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))


def test_report_html_is_self_contained_with_tables_charts_and_grids(glyph, tmp_path):
    out = tmp_path / "rep"
    assert main([ "report", str(glyph), "--out", str(out), "--title", "Oracle"]) == 0
    text = (out / "report.html").read_text()
    parsed = assert_self_contained(text)
    imgs = [a["src"] for t, a in parsed.tags if t == "img"]
    charts = [a for t, a in parsed.tags if t == "img" and (a.get("alt") or "").endswith(" chart")]
    assert len(charts) == 3  # one bar chart per task
    for chart in charts:
        image = decode_img(chart["src"])
        assert image.size[0] > 200 and len(image.convert("RGB").getcolors(1 << 20)) > 10
    # results table: header and one row per task (math-1 and mapping-2 have one level each)
    for needle in ("<h1>Oracle</h1>", "G-normal", "G-think", "gap U−G-normal", "chance",
                   'class="results"', "glyph-oracle", "judge identity", "data sha256"):
        assert needle in text, needle
    results_table = text[text.index('class="results"'):text.index("</table>", text.index('class="results"'))]
    assert results_table.count('<tr><td>math-1</td><td>1</td>') == 1
    # the glyph judge's facets: one row per task and mode, the object and the count
    assert '<h3>What the pictures got right</h3>' in text
    assert "<th>object</th><th>count</th>" in text
    assert "<td>math-1</td><td>1</td><td>G-think</td><td>100.0 (n 6)</td>" in text
    assert "100.0 <span class=\"ci\">[" in text
    # sample grids: 6 items per task, both modes, the thinking text, the verdicts, U replies
    assert text.count('<table class="grid">') == 3
    sample_imgs = [s for s in imgs if s not in {c["src"] for c in charts}]
    assert len(sample_imgs) == 2 * (6 + 6 * 2 + 6)  # mapping items are A/B pairs
    assert "So draw" in text and 'class="verdict v-yes"' in text and "U: What is" in text
    md = (out / "report.md").read_text()
    assert "| task | level | U | G-normal | G-think |" in md
    assert (out / "figures" / "run-math-1.png").is_file()


def test_report_md_links_resolve_relative_to_the_report(glyph, tmp_path):
    out = tmp_path / "deep" / "rep"
    write_report([glyph], out)
    md = (out / "report.md").read_text()
    targets = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert any(t.startswith("figures/") for t in targets)
    assert any("images/math-1/think/" in t for t in targets)
    for target in targets:
        assert not Path(target).is_absolute() and (out / target).is_file(), target


def test_report_default_out_is_inside_the_run(glyph):
    assert main(["report", str(glyph)]) == 0
    assert (glyph / "report" / "report.html").is_file()


def test_grid_prefers_items_where_modes_disagree_and_is_deterministic(toy_plugin, tmp_path):
    run = load_run(toy_run(tmp_path / "toy", skill=5, n=12))
    records = run.records()
    items = grid_items(records, "toy-shades", ["normal", "think"], k=6)
    # shades 5..11 are wrong in normal mode and right in think mode: 7 disagreeing items
    assert len(items) == 6
    assert all(it.verdict("normal") == "no" and it.verdict("think") == "yes" for it in items)
    assert {str(it.level) for it in items} == {"1", "2"}  # spread over the levels
    assert [it.key for it in items] == [it.key for it in grid_items(records, "toy-shades",
                                                                     ["normal", "think"], k=6)]
    more = grid_items(records, "toy-shades", ["normal", "think"], k=12)
    assert [it.verdict("normal") for it in more[7:]] == ["yes"] * 5  # agreeing items last


def test_large_runs_embed_only_the_grid_items(toy_plugin, tmp_path):
    run = toy_run(tmp_path / "big", n=200)
    out = tmp_path / "rep"
    write_report([run], out, items_per_task=4)
    text = (out / "report.html").read_text()
    parsed = assert_self_contained(text)
    assert sum(1 for t, _ in parsed.tags if t == "img") == 1 + 2 * 4  # chart + 4 items x 2 modes


def write_png(path: Path, colour: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 30), colour).save(path)


def fake_probe(folder: Path, html: bool = True, md: bool = True) -> Path:
    """A probe folder as a probe plugin writes it: probe.json, a figure, section.html/.md."""
    write_png(folder / "fig" / "heat.png", (200, 30, 30))
    (folder / "probe.json").write_text(json.dumps({"probe": "fake", "rows": []}))
    (folder / "config.json").write_text(json.dumps({"model": {"name": "m"}}))  # as probes write
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 90, 200)).save(buffer, format="PNG")
    inline = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    if html:
        (folder / "section.html").write_text(
            '<section class="probe"><h3>Fake lens</h3><p onclick="x()">P(relevant) &amp; more</p>'
            f'<img alt="inline" src="{inline}"><img alt="svg" src="data:image/svg+xml;base64,PHN2Zz4=">'
            '<img alt="heat" src="fig/heat.png"><img alt="far" src="https://example.com/a.png">'
            '<img alt="up" src="../../config.json"><a href="https://example.com">ext</a>'
            '<a href="#top">top</a><script>alert(1)</script><link rel="stylesheet" href="//x.css">'
            '<style>@import url(http://x.css);</style><table><tr><td>q3</td></tr></table></section>')
    if md:
        (folder / "section.md").write_text(
            "# Fake lens\n\nQueries carry **the answer**.\n\n| pos | p |\n|---|---|\n| q3 | 0.8 |\n\n"
            "![heat](fig/heat.png)\n\n- one\n- two\n\n![far](https://example.com/md.png) "
            "![up](../../config.json)\n")
    return folder


def test_probe_sections_are_found_inlined_and_sanitised(glyph, tmp_path):
    fake_probe(glyph / "probes" / "lens")
    fake_probe(glyph / "probes" / "transfer" / "forward", html=False)  # Markdown only
    standalone = fake_probe(tmp_path / "probe-only", md=False)
    out = tmp_path / "rep"
    write_report([glyph, standalone], out)
    text = (out / "report.html").read_text()
    parsed = assert_self_contained(text)
    assert "Probe: lens" in text and "Probe: transfer/forward" in text and "Probe: probe-only" in text
    heats = [a for t, a in parsed.tags if t == "img" and a.get("alt") == "heat"]
    assert len(heats) == 3  # from section.html twice, and from the Markdown-only section
    assert all(decode_img(a["src"]).convert("RGB").getpixel((0, 0)) == (200, 30, 30) for a in heats)
    assert not any(a.get("alt") in {"far", "up", "svg"} and "src" in a
                   for t, a in parsed.tags if t == "img")
    inline = [a["src"] for t, a in parsed.tags if t == "img" and a.get("alt") == "inline"]
    assert len(inline) == 2 and decode_img(inline[0]).getpixel((0, 0)) == (0, 90, 200)
    assert "alert(1)" not in text and "P(relevant) &amp; more" in text and "<td>q3</td>" in text
    assert "<strong>the answer</strong>" in text and "<li>two</li>" in text
    md = (out / "report.md").read_text()
    assert "### Probe: lens" in md and "Queries carry **the answer**." in md
    # a section's headings sit below its "Probe:" heading, in both files
    assert "\n#### Fake lens\n" in md and "\n# Fake lens" not in md
    assert "<h6>Fake lens</h6>" in text and "<h4>Fake lens</h4>" in text  # html h3 / md h1
    link = re.search(r"!\[heat\]\(([^)]+)\)", md).group(1)
    assert (out / link).resolve() == (glyph / "probes/lens/fig/heat.png").resolve()
    assert "See [section.html](" in md  # the HTML-only folder is linked from Markdown
    assert "example.com" not in md and "config.json)" not in md and "[far] [up]" in md


def assert_user_error(code_or_result, capsys=None, *needles: str) -> None:
    if isinstance(code_or_result, int):
        assert code_or_result == 2
        err = capsys.readouterr().err
    else:
        assert code_or_result.returncode == 2, code_or_result.stderr
        err = code_or_result.stderr
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err


def test_not_a_run_folder_is_one_line_exit_2(tmp_path):
    (tmp_path / "empty").mkdir()
    assert_user_error(run_cli("report", str(tmp_path / "empty")), None, "not a run folder",
                      "no config.json")


@pytest.mark.parametrize(
    ("damage", "needles"),
    [
        (lambda r: (r / "results.json").unlink(), ["has no results.json", "resume"]),
        (lambda r: (r / "results.json").write_text('{"tasks": {\n  "math-1": [}'),
         ["results.json:2", "not valid JSON"]),
        (lambda r: (r / "results.json").write_text('{"modes": ["normal"], "tasks": {"math-1": {}}}'),
         ["results.json", "'tasks.math-1.levels'"]),
        (lambda r: (r / "results.json").write_text(json.dumps({"modes": ["normal"], "tasks": {
            "math-1": {"levels": {"1": {"normal": {"accuracy": 0.5, "n": 2, "n_yes": 1,
                                                   "n_error": 0}}}}}})),
         ["'tasks.math-1.levels.1.normal'", "missing ci95"]),
        (lambda r: (r / "results.json").write_text(json.dumps({"modes": ["normal"], "tasks": {
            "math-1": {"levels": {"1": {"normal": {"accuracy": 0.5, "n": 2, "n_yes": 1, "n_error": 0,
                                                   "ci95": [0.1, 0.9], "facets": {"count": 0.5}}}}}}})),
         ["'tasks.math-1.levels.1.normal.facets.count'", "expected"]),
        (lambda r: (r / "config.json").write_text("[]"), ["config.json", "'run'"]),
        (lambda r: (r / "samples.jsonl").write_text(
            '{"task": "math-1", "mode": "normal", "id": "1", "verdict": "yes"}\nnot json\n{}\n'),
         ["samples.jsonl:2", "corrupt"]),
        (lambda r: (r / "samples.jsonl").write_text('{"task": "math-1"}\n'),
         ["samples.jsonl:1", "task/mode/id"]),
        (lambda r: (r / "samples.jsonl").write_text(
            '{"task": "math-1", "mode": "normal", "id": "1", "verdict": "maybe"}\n'),
         ["samples.jsonl:1", "'verdict'", "got 'maybe'"]),
        (lambda r: (r / "samples.jsonl").write_text('{"task": "math-1", "mode": "normal", "id": "1"}\n'),
         ["samples.jsonl:1", "'verdict'", "got None"]),
        (lambda r: (r / "probes" / "lens").mkdir(parents=True)
         or (r / "probes" / "lens" / "section.html").write_bytes(b"<p>\xff</p>"),
         ["section.html", "not UTF-8"]),
    ],
)
def test_malformed_run_folder_gives_a_clear_error(glyph, tmp_path, capsys, damage, needles):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(glyph, broken, ignore=shutil.ignore_patterns("report", "probes"))
    damage(broken)
    assert_user_error(main(["report", str(broken), "--out", str(tmp_path / "o")]), capsys, *needles)


def test_partial_run_is_reported_as_not_finished_with_what_it_lacks(glyph, tmp_path, capsys):
    import shutil

    partial = tmp_path / "partial"
    shutil.copytree(glyph, partial, ignore=shutil.ignore_patterns("report", "probes"))
    log = partial / "samples.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    normal = [r for r in records if r["task"] == "knowledge-forward" and r["mode"] == "normal"]
    # interrupted in knowledge-forward's normal stage: one item of it recorded, nothing after
    kept = [r for r in records if r["task"] != "knowledge-forward"] + normal[:1]
    log.write_text("".join(json.dumps(r) + "\n" for r in kept))
    n = json.loads((partial / "config.json").read_text())["tasks"]["knowledge-forward"]["n"]
    write_report([partial], tmp_path / "o")
    text = (tmp_path / "o" / "report.html").read_text()
    modes = json.loads((partial / "config.json").read_text())["run"]["modes"]
    lacks = ", ".join([f"{m} {1 if m == 'normal' else 0} of {n}" for m in modes] + [f"U 0 of {n}"])
    assert f"Not finished: knowledge-forward ({lacks})" in text
    assert main(["compare", str(glyph), str(partial)]) == 0
    assert f"warning: B ({partial}) is not finished: knowledge-forward" in capsys.readouterr().err


def test_several_runs_need_out(glyph, tmp_path, capsys):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(glyph, other)
    assert_user_error(main(["report", str(glyph), str(other)]), capsys, "--out")


@pytest.mark.parametrize("bad", ['<img src="https://x.org/a.png">', '<img src="a.png">',
                                 '<a href="//x.org/">x</a>', '<a href="run/report.md">x</a>',
                                 '<link rel="stylesheet" href="x.css">',
                                 '<p style="background: url(x.png)">x</p>', "<script></script>",
                                 "<style>@font-face { font-family: f; }</style>"])
def test_the_self_contained_check_catches_external_references(bad):
    with pytest.raises(AssertionError):
        assert_self_contained(f"<html><body>{bad}</body></html>")


@pytest.mark.slow
def test_a_real_probe_lens_folder_is_included_and_feeds_claim_6(glyph, tmp_path):
    """The probes plugin's own output (an untrained sandbox model: ~30 s on 2 cores)."""
    from unisandbox.registry import get_registry
    from unisandbox.report.findings import NOT_MEASURED, evaluate_findings

    if "probe-lens" not in {s.name for s in get_registry().all("task")}:
        pytest.skip("unisandbox-probes is not installed")
    lens = tmp_path / "lens"
    done = run_cli("probe", "--model", "query-tiny", "--model-arg", "init=scratch", "--task",
                   "probe-lens", "--task-arg", "task=math-1", "--task-arg", "world=glyph",
                   "--task-arg", "n=2", "--out", str(lens), timeout=600)
    assert done.returncode == 0, done.stderr
    write_report([glyph, lens], tmp_path / "rep")
    text = (tmp_path / "rep" / "report.html").read_text()
    assert_self_contained(text)
    assert "Probe: lens" in text and text.count("data:image/png") >= 2 + 3
    claim = evaluate_findings({"probes": lens})[5]
    assert claim.verdict != NOT_MEASURED and claim.numbers["n"] == 4


def test_a_fragment_keeps_nothing_that_could_load_and_loses_nothing_after_a_void_tag(tmp_path):
    from unisandbox.report.probes import inline_html_fragment

    attacks = ['<div style="background-image: u\\rl(http://x.org/a.png)">a</div>',
               '<div style="background-image: image-set(\'http://x.org/b.png\' 1x)">b</div>',
               '<table background="http://x.org/c.png"><tr><td background="http://x.org/d.png">c</td>'
               '</tr></table>',
               '<p>before</p><embed src="http://x.org/e.swf"><p>after embed</p>',
               '<p style="color: rgb(200, 30, 30)">kept style</p>']
    out = inline_html_fragment("".join(attacks), tmp_path)
    assert "x.org" not in out and "u\\rl" not in out
    assert "after embed" in out and ">a</div>" in out and ">c</td>" in out
    assert 'style="color: rgb(200, 30, 30)"' in out  # a style that loads nothing stays


def test_report_md_links_survive_spaces_and_hashes_in_folder_names(glyph, tmp_path):
    import shutil
    from urllib.parse import unquote

    odd = tmp_path / "my run #1"
    shutil.copytree(glyph, odd, ignore=shutil.ignore_patterns("report", "probes"))
    out = tmp_path / "rep"
    write_report([odd], out)
    targets = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", (out / "report.md").read_text())
    images = [t for t in targets if "images/" in t]
    assert images and all("my%20run%20%231/" in t and " " not in t for t in images)
    assert all((out / unquote(t)).is_file() for t in targets)


def test_a_finished_file_task_run_is_not_reported_as_unfinished(tmp_path, capsys):
    """A file task is named after its file, not after its record (unisandbox-file)."""
    assert main(["data", "generate", "math-1", "--n", "4", "--world", "glyph", "--out", str(tmp_path / "m1.jsonl")]) == 0
    assert main(["eval", "--model", "glyph-oracle", "--task", "unisandbox-file", "--task-arg",
                 f"path={tmp_path / 'm1.jsonl'}", "--task-arg", "world=glyph", "--judge", "glyph",
                 "--mode", "normal", "--out", str(tmp_path / "run"), "--quiet"]) == 0
    assert main(["report", str(tmp_path / "run")]) == 0
    assert "Not finished" not in (tmp_path / "run/report/report.md").read_text()
    shutil.copytree(tmp_path / "run", tmp_path / "again")
    assert main(["compare", str(tmp_path / "run"), str(tmp_path / "again")]) == 0
    assert "not finished" not in capsys.readouterr().err


def test_a_folder_given_twice_is_refused(glyph, tmp_path):
    assert_user_error(run_cli("report", str(glyph), str(glyph), "--out", str(tmp_path / "r")), None,
                      "is given twice")


def test_the_run_header_names_the_weights_evaluated(toy_plugin, tmp_path):
    """config.json's model_identity (checkpoint, fingerprint, settings) is in both reports'
    headers, long values cut; a run without one shows as before."""
    run = toy_run(tmp_path / "run")
    config = json.loads((run / "config.json").read_text())
    config["model_identity"] = {
        "class": "unisandbox_query.model.QueryModel",
        "checkpoint": "/data/" + "deep/" * 20 + "stars-ckpt",
        "weights_fingerprint": "sha256:0123456789abcdef" + "f" * 48,
        "steps": 20, "cfg_scale": 3.0, "precision": "fp32"}
    (run / "config.json").write_text(json.dumps(config))
    assert main(["report", str(run), "--out", str(tmp_path / "rep")]) == 0
    html = (tmp_path / "rep" / "report.html").read_text()
    md = (tmp_path / "rep" / "report.md").read_text()
    line = next(x for x in md.splitlines() if x.startswith("| model identity |"))
    assert "checkpoint …" in line and "deep/stars-ckpt;" in line and "/data/" not in line
    assert "weights sha256:0123456789ab;" in line and "0123456789abc" not in line
    assert "steps=20, cfg_scale=3.0, precision=fp32, class=unisandbox_query.model.QueryModel" in line
    assert "model identity" in html and "weights sha256:0123456789ab;" in html
    del config["model_identity"]
    (run / "config.json").write_text(json.dumps(config))
    assert main(["report", str(run), "--out", str(tmp_path / "old")]) == 0
    assert "model identity" not in (tmp_path / "old" / "report.md").read_text()
