"""The ``glyph`` judge: verdict semantics, the verdict cache, bring-your-own images."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from unisandbox.errors import DataWarning, UserError
from unisandbox.factories import build
from unisandbox.judges.cache import CachedJudge
from unisandbox.judges.glyph import GlyphJudge
from unisandbox.records import JudgeItem, Sample, Verdict
from unisandbox.registry import get_registry
from unisandbox.run.scoring import score_images
from unisandbox.world import glyph_draw as gd

STARS = {"kind": "star", "colour": "red", "count": 3}
PERSON = {"ethnicity": "East Asian", "hair": "black", "age": "young", "gender": "female"}


def item(tmp_path: Path, name: str, target: dict[str, Any], image: Image.Image | None = None,
         family: str = "math") -> JudgeItem:
    path = tmp_path / f"{name}.png"
    if image is not None:
        image.save(path)
    return JudgeItem("t", family, Sample(id=name, prompt="p", answer="a", target=target), path)


@pytest.fixture
def judge() -> GlyphJudge:
    spec = get_registry().judge("glyph")
    made = build(spec, {})
    assert isinstance(made, GlyphJudge) and not spec.requires
    return made


def test_right_images_are_yes_with_the_stage_one_description(judge: GlyphJudge, tmp_path: Path) -> None:
    items = [
        item(tmp_path, "a", STARS, gd.render(STARS)),
        item(tmp_path, "b", {"kind": "tulip"}, gd.render({"kind": "tulip"}), "knowledge"),
        item(tmp_path, "c", {"kind": "grape"}, gd.render({"kind": "grape", "count": 4}), "knowledge"),
        item(tmp_path, "d", {"portrait": PERSON}, gd.render({"portrait": PERSON}), "knowledge"),
        item(tmp_path, "e", {"kind": "ring", "colour": "blue"},
             gd.render({"kind": "ring", "colour": "blue"}, layout="random", seed=3), "mapping"),
    ]
    verdicts = judge.judge(items)
    assert [v.verdict for v in verdicts] == ["yes"] * 5
    assert [v.description for v in verdicts] == [
        "3 red stars", "Object: tulip", "4 grapes", "Person: East Asian; black; young; female",
        "1 blue ring"]
    raw = json.loads(verdicts[0].raw)
    assert raw["parser"] == gd.PARSER_VERSION and raw["count"] == 3
    assert verdicts[0].facets == {"object": True, "count": True}
    assert verdicts[1].facets == {"object": True}  # a target without a count checks no count
    assert verdicts[3].facets == dict.fromkeys(PERSON, True)


def test_wrong_and_unclean_images_are_no(judge: GlyphJudge, tmp_path: Path) -> None:
    mixed = gd.render_array(STARS)
    mixed[0:8, 8:16] = gd.render_array({"kind": "heart", "colour": "red"})[0:8, 0:8]
    symbol = gd.render_array({"kind": "star", "colour": "red"})
    symbol[0:8, 8:16] = gd.render_array({"symbol": "%"})[0:8, 0:8]
    other_person = {**PERSON, "age": "old"}
    items = [
        item(tmp_path, "count", STARS, gd.render({**STARS, "count": 4})),
        item(tmp_path, "colour", STARS, gd.render({**STARS, "colour": "orange"})),
        item(tmp_path, "mixed", STARS, Image.fromarray(mixed)),
        item(tmp_path, "blank", STARS, Image.new("RGB", (32, 32), "white")),
        item(tmp_path, "symbol", {"kind": "star", "colour": "red"}, Image.fromarray(symbol), "mapping"),
        item(tmp_path, "age", {"portrait": PERSON}, gd.render({"portrait": other_person}), "knowledge"),
        item(tmp_path, "noise", STARS, Image.fromarray(
            np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8))),
    ]
    verdicts = judge.judge(items)
    assert [v.verdict for v in verdicts] == ["no"] * 7
    texts = [v.description for v in verdicts]
    assert texts[:2] == ["4 red stars", "3 orange stars"]
    assert texts[2:5] == ["Error: mixed kinds", "Error: blank", "Error: visible symbol"]
    assert texts[5] == "Person: East Asian; black; old; female"
    assert texts[6].startswith("Error: unreadable cell")
    # what each wrong picture got right: the object at the wrong count, the count in the wrong
    # colour, nothing in an unclean image, every attribute but the age
    facets = [v.facets for v in verdicts]
    assert facets[:4] == [{"object": True, "count": False}, {"object": False, "count": True},
                          {"object": False, "count": False}, {"object": False, "count": False}]
    assert facets[5] == {**dict.fromkeys(PERSON, True), "age": False}


def test_undecidable_items_are_errors(judge: GlyphJudge, tmp_path: Path) -> None:
    (tmp_path / "corrupt.png").write_bytes(b"not a png at all")
    items = [
        item(tmp_path, "missing", STARS),
        JudgeItem("t", "math", Sample(id="corrupt", prompt="p", answer="a", target=STARS),
                  tmp_path / "corrupt.png"),
        item(tmp_path, "size", STARS, gd.render(STARS).resize((50, 50))),
        item(tmp_path, "no-target", {}, gd.render(STARS)),
        item(tmp_path, "everyday", {"kind": "cup", "count": 2}, gd.render(STARS)),
        item(tmp_path, "symbol-target", {"symbol": "A"}, gd.render({"symbol": "A"})),
    ]
    verdicts = judge.judge(items)
    assert [v.verdict for v in verdicts] == ["error"] * 6
    assert "missing image" in verdicts[0].raw
    assert "cannot read image" in verdicts[1].raw
    assert "50x50" in verdicts[2].raw
    assert "no structured target" in verdicts[3].raw and "world=glyph" in verdicts[3].raw
    assert "unknown kind 'cup'" in verdicts[4].raw
    assert "symbol" in verdicts[5].raw
    # an image past PIL's decompression-bomb limit is unreadable, not the end of a whole score
    from PIL import Image

    Image.new("1", (20000, 20000), 1).save(tmp_path / "huge.png")
    huge = JudgeItem("t", "math", Sample(id="huge", prompt="p", answer="a", target=STARS), tmp_path / "huge.png")
    verdict = judge.judge([huge])[0]
    assert verdict.verdict == "error" and "cannot read image" in verdict.raw


def test_byo_images_of_larger_sizes_are_downsampled(judge: GlyphJudge, tmp_path: Path) -> None:
    t = {"kind": "sunflower", "count": 2}
    items = [item(tmp_path, f"s{size}", t, gd.render(t).resize((size, size), resample))
             for size, resample in ((64, Image.Resampling.NEAREST), (256, Image.Resampling.BICUBIC),
                                    (128, Image.Resampling.BILINEAR))]
    rgba = gd.render(t, size=64).convert("RGBA")
    rgba.save(tmp_path / "rgba.png")
    items.append(JudgeItem("t", "math", Sample(id="rgba", prompt="p", answer="a", target=t),
                           tmp_path / "rgba.png"))
    assert [v.verdict for v in judge.judge(items)] == ["yes"] * 4


def test_judge_through_the_verdict_cache(judge: GlyphJudge, tmp_path: Path) -> None:
    items = [item(tmp_path, "a", STARS, gd.render(STARS)),
             item(tmp_path, "b", STARS, gd.render({**STARS, "count": 2})),
             item(tmp_path, "gone", STARS)]
    cache = tmp_path / "cache.jsonl"
    first = CachedJudge(judge, cache)
    v1 = first.judge(items)
    assert [v.verdict for v in v1] == ["yes", "no", "error"] and first.misses == 3
    again = CachedJudge(GlyphJudge(), cache)
    v2 = again.judge(items)
    assert v2[:2] == v1[:2] and again.hits == 2 and again.misses == 1  # errors are retried
    assert isinstance(v2[0], Verdict) and v2[0].description == "3 red stars"
    # a damaged cache entry is a verdict to compute again, with one warning naming the line
    lines = cache.read_text().splitlines()
    bad_facets = json.dumps({**json.loads(lines[0]), "facets": {"count": 1}})
    cache.write_text("\n".join(["", "not json", '{"foo": 1}', "[1, 2]", bad_facets, lines[1]]) + "\n")
    with pytest.warns(DataWarning, match=r"cache.jsonl:2: field '\(not JSON\)': not a cached verdict; 4 such entries"):
        damaged = CachedJudge(GlyphJudge(), cache)
    assert [v.verdict for v in damaged.judge(items)] == ["yes", "no", "error"]
    assert damaged.hits == 1 and damaged.misses == 2
    # the identity names the parser and the template bank, so a changed parser re-judges
    ident = judge.identity()
    assert ident["kind"] == "glyph" and ident["parser"] == gd.PARSER_VERSION
    assert ident["templates"] == gd.templates_digest()


GLYPH_TASK = '''
from unisandbox.hookspecs import hookimpl
from unisandbox.protocols import Task
from unisandbox.records import Sample
from unisandbox.specs import TaskSpec

PLUGIN_API_VERSION = 1
TARGETS = [{"kind": "star", "colour": "red", "count": 3}, {"kind": "apple"},
           {"kind": "cross", "colour": "green", "count": 2},
           {"portrait": {"ethnicity": "Caucasian", "hair": "red", "age": "old", "gender": "male"}}]


class GlyphToyTask(Task):
    name = "gt-glyph"
    family = "math"

    def samples(self):
        return [Sample(id=str(i), prompt=f"draw {t}", answer=str(t), target=t, level=1)
                for i, t in enumerate(TARGETS)]


@hookimpl
def register_tasks(register):
    register(TaskSpec(name="gt-glyph", factory=GlyphToyTask, description="glyph targets"))
'''


def test_score_a_folder_of_byo_images(plugin_site: Any, tmp_path: Path) -> None:
    """Bring-your-own images (256 px, like a real model's) scored by the engine with glyph."""
    plugin_site("glyph-toy", "0.1", {"glyph_toy": GLYPH_TASK}, {"gt": "glyph_toy"})
    from glyph_toy import TARGETS

    folder = tmp_path / "imgs"
    folder.mkdir()
    drawn = [TARGETS[0], TARGETS[1], {**TARGETS[2], "count": 3}]  # the third is wrong
    for i, t in enumerate(drawn):
        gd.render(t, size=256).save(folder / f"{i}.png")  # id 3 has no image
    score_images(folder, task_name="gt-glyph", task_args={}, judge_name="glyph",
                 judge_args={}, progress=False)
    rows = {r["id"]: r for r in map(json.loads, (folder / "score" / "samples.jsonl").read_text().splitlines())}
    assert {k: r["verdict"] for k, r in rows.items()} == {"0": "yes", "1": "yes", "2": "no", "3": "no"}
    assert rows["2"]["description"] == "3 green crosses"


def test_an_everyday_world_task_is_refused_when_the_judge_is_built():
    from unisandbox.errors import UserError
    from unisandbox.factories import build
    from unisandbox.registry import get_registry

    reg = get_registry()
    everyday = build(reg.task("math-1"), {"n": 2})
    with pytest.raises(UserError, match=r"task 'math-1' is not in the glyph world .*add --task-arg world=glyph"):
        build(reg.judge("glyph"), {}, tasks=(everyday,))
    glyph = build(reg.task("math-1"), {"n": 2, "world": "glyph"})
    assert build(reg.judge("glyph"), {}, tasks=(glyph,)).identity()["kind"] == "glyph"
    # a knowledge task's first item may be a portrait (both worlds have them): every item counts
    knowledge = build(reg.task("knowledge-forward"), {"n": 30})
    assert knowledge.samples()[0].target.get("portrait")
    with pytest.raises(UserError, match=r"task 'knowledge-forward' is not in the glyph world"):
        build(reg.judge("glyph"), {}, tasks=(knowledge,))


def _verdicts(folder: Path) -> dict[str, str]:
    rows = map(json.loads, (folder / "samples.jsonl").read_text().splitlines())
    return {r["id"]: r["verdict"] for r in rows}  # the latest record per id


def test_a_rescore_judges_added_and_replaced_images_and_keeps_an_earlier_log(
        plugin_site: Any, tmp_path: Path, capsys: Any) -> None:
    plugin_site("glyph-toy", "0.1", {"glyph_toy": GLYPH_TASK}, {"gt": "glyph_toy"})
    from glyph_toy import TARGETS

    folder = tmp_path / "imgs"
    folder.mkdir()
    gd.render({**TARGETS[0], "count": 5}).save(folder / "0.png")  # wrong at first
    args = {"task_name": "gt-glyph", "task_args": {}, "judge_name": "glyph", "judge_args": {},
            "progress": False}
    score_images(folder, **args)
    scored = folder / "score"
    assert _verdicts(scored) == {"0": "no", "1": "no", "2": "no", "3": "no"}
    lines = len((scored / "samples.jsonl").read_text().splitlines())
    # nothing changed: no new records
    score_images(folder, **args)
    assert len((scored / "samples.jsonl").read_text().splitlines()) == lines
    # image 0 replaced by a right one, image 1 added: both judged again, the rest untouched
    gd.render(TARGETS[0]).save(folder / "0.png")
    gd.render(TARGETS[1]).save(folder / "1.png")
    results = score_images(folder, **args)
    assert _verdicts(scored) == {"0": "yes", "1": "yes", "2": "no", "3": "no"}
    assert len((scored / "samples.jsonl").read_text().splitlines()) == lines + 2
    assert results["tasks"]["gt-glyph"]["levels"]["1"]["normal"]["n_yes"] == 2
    # another mode is another scoring: a fresh log, the earlier one kept beside it
    capsys.readouterr()
    score_images(folder, **args, mode="think")
    assert "kept whole in replaced-1/" in capsys.readouterr().err
    kept = scored / "replaced-1"  # the earlier scoring, whole: log, images, config, results
    assert len((kept / "samples.jsonl").read_text().splitlines()) == lines + 2
    assert (kept / "images" / "gt-glyph" / "normal" / "0.png").is_file()
    assert json.loads((kept / "config.json").read_text())["run"]["modes"] == ["normal"]
    assert json.loads((scored / "config.json").read_text())["run"]["modes"] == ["think"]
    # an image gone from the source: "missing", and its earlier copy goes with it
    (folder / "1.png").unlink()
    score_images(folder, **args, mode="think")
    assert _verdicts(scored)["1"] == "no"
    assert not (scored / "images" / "gt-glyph" / "think" / "1.png").exists()


def test_score_never_writes_into_an_eval_run_nor_reads_outside_its_folder(
        plugin_site: Any, tmp_path: Path) -> None:
    from unisandbox.errors import UserError
    from unisandbox.run.store import atomic_write_json

    plugin_site("glyph-toy", "0.1", {"glyph_toy": GLYPH_TASK}, {"gt": "glyph_toy"})
    folder, run = tmp_path / "imgs", tmp_path / "run"
    folder.mkdir()
    gd.render(STARS).save(folder / "0.png")
    atomic_write_json(run / "config.json", {"run": {"modes": ["normal"]}})
    (run / "samples.jsonl").write_text('{"task": "x", "mode": "normal", "id": "1"}\n')
    args = {"task_name": "gt-glyph", "task_args": {}, "judge_name": "glyph", "judge_args": {},
            "progress": False}
    with pytest.raises(UserError, match="holds another kind of run"):
        score_images(folder, **args, out=run)
    assert len((run / "samples.jsonl").read_text().splitlines()) == 1  # untouched

    from unisandbox.run.scoring import _find_image

    gd.render(STARS).save(tmp_path / "outside.png")
    with pytest.raises(UserError, match="not a plain file name"):
        _find_image(folder, "../outside.png")

    # a task with such an id is refused before the score folder is touched
    from unisandbox.run.scoring import _found_images

    class Hostile:
        name = "hostile"

        def image_name(self, sample: Any) -> str:
            return f"{sample}.png"

    with pytest.raises(UserError, match="not a plain file name"):
        _found_images(folder, Hostile(), ["0", "../outside"], None, "normal")  # type: ignore[arg-type]


def test_a_folder_with_none_of_the_images_is_refused_naming_what_it_holds(
        plugin_site: Any, tmp_path: Path) -> None:
    from unisandbox.errors import UserError

    plugin_site("glyph-toy", "0.1", {"glyph_toy": GLYPH_TASK}, {"gt": "glyph_toy"})
    folder = tmp_path / "imgs"
    folder.mkdir()
    gd.render(STARS).save(folder / "item_0.png")  # another tool's naming
    args = {"task_name": "gt-glyph", "task_args": {}, "judge_name": "glyph", "judge_args": {},
            "progress": False}
    with pytest.raises(UserError, match=r"none of the 4 images .* \(named like 0.png, 1.png, 2.png; it holds item_0.png\)"):
        score_images(folder, **args)
    with pytest.raises(UserError, match="no such folder"):
        score_images(tmp_path / "nope", **args)
    assert not (folder / "score").exists()


def test_score_of_an_eval_run_finds_images_whose_ids_had_to_be_renamed(tmp_path: Path) -> None:
    """eval saves an id such as 'item 4' or 'a/b' under a safe name; scoring that run folder
    finds each image where eval put it (it read them as missing: 60 % for a 100 % run)."""
    from support import run_cli

    made = tmp_path / "m.jsonl"
    assert run_cli("data", "generate", "math-1", "--world", "glyph", "--n", "3",
                   "--out", str(made)).returncode == 0
    rows = [json.loads(line) for line in made.read_text().splitlines()]
    for row, new in zip(rows, ["item 4", "a/b", "é5"], strict=True):
        row["id"] = new
    made.write_text("".join(json.dumps(r) + "\n" for r in rows))
    task = ["--task", "unisandbox-file", "--task-arg", f"path={made}", "--task-arg", "world=glyph"]
    run = tmp_path / "run"
    evaluated = run_cli("eval", "--model", "glyph-oracle", *task, "--judge", "glyph", "--mode",
                        "normal", "--no-understanding", "--out", str(run), "--quiet")
    assert evaluated.returncode == 0, evaluated.stderr
    scored = run_cli("score", str(run), *task, "--judge", "glyph", "--json")
    assert scored.returncode == 0, scored.stderr
    cell = json.loads(scored.stdout)["tasks"]["m"]["levels"]["1"]["normal"]
    assert (cell["n"], cell["n_yes"]) == (3, 3) and "not found" not in scored.stderr


def test_score_out_keeps_another_tools_results_aside(plugin_site: Any, tmp_path: Path,
                                                    capsys: Any) -> None:
    """A folder with the original scorer's sheet or a results.json but no config.json is not
    overwritten: its files are kept whole in replaced-1/."""
    plugin_site("glyph-toy", "0.1", {"glyph_toy": GLYPH_TASK}, {"gt": "glyph_toy"})
    folder, out = tmp_path / "imgs", tmp_path / "theirs"
    folder.mkdir()
    out.mkdir()
    gd.render(STARS).save(folder / "0.png")
    (out / "evaluation_results.csv").write_text("id,score\n0,1\n")
    (out / "results.json").write_text('{"theirs": true}')
    score_images(folder, task_name="gt-glyph", task_args={}, judge_name="glyph", judge_args={},
                 progress=False, out=out)
    assert "kept whole in replaced-1/" in capsys.readouterr().err
    assert (out / "replaced-1" / "evaluation_results.csv").read_text() == "id,score\n0,1\n"
    assert json.loads((out / "replaced-1" / "results.json").read_text()) == {"theirs": True}
    assert "tasks" in json.loads((out / "results.json").read_text())
    # another tool's layout, out/images beside its results: the images being scored stay put
    tool = tmp_path / "tool"
    (tool / "images").mkdir(parents=True)
    gd.render(STARS).save(tool / "images" / "0.png")
    (tool / "results.json").write_text("{}")
    results = score_images(tool / "images", task_name="gt-glyph", task_args={}, judge_name="glyph",
                           judge_args={}, progress=False, out=tool)
    assert (tool / "images" / "0.png").is_file() and not (tool / "replaced-1" / "images").exists()
    assert results["tasks"]["gt-glyph"]["levels"]["1"]["normal"]["n_yes"] == 1


def test_a_file_that_is_no_image_scores_as_wrong_as_a_missing_one(plugin_site: Any, tmp_path: Path,
                                                                   capsys: Any) -> None:
    plugin_site("glyph-toy", "0.1", {"glyph_toy": GLYPH_TASK}, {"gt": "glyph_toy"})
    from glyph_toy import TARGETS

    folder = tmp_path / "imgs"
    folder.mkdir()
    gd.render(TARGETS[0]).save(folder / "0.png")
    (folder / "1.png").write_bytes(b"\x89PNG\r\n\x1a\nGARBAGE")  # a truncated download
    results = score_images(folder, task_name="gt-glyph", task_args={}, judge_name="glyph",
                           judge_args={}, progress=False)
    cell = results["tasks"]["gt-glyph"]["levels"]["1"]["normal"]
    assert (cell["n"], cell["n_yes"], cell.get("n_error", 0)) == (4, 1, 0)  # 2 and 3 missing
    rows = {r["id"]: r for r in map(json.loads, (folder / "score" / "samples.jsonl").read_text().splitlines())}
    assert rows["1"]["verdict"] == "no" and rows["1"]["description"] == "Error: unreadable image"
    assert "3 of 4 images were not found or not readable" in capsys.readouterr().err
    # scored where its copy would lie (--out above the images): the broken file is never deleted
    out = tmp_path / "out"
    (out / "images" / "gt-glyph" / "normal").mkdir(parents=True)
    bad = out / "images" / "gt-glyph" / "normal" / "1.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nGARBAGE")
    score_images(bad.parent, task_name="gt-glyph", task_args={}, judge_name="glyph",
                 judge_args={}, progress=False, out=out)
    assert bad.read_bytes().endswith(b"GARBAGE")
    # an --out of the user's own files, or the folder being scored: refused, nothing written
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    for where, needle in ((mine, "is not empty and holds no score (notes.txt)"),
                          (folder, "is the folder being scored")):
        with pytest.raises(UserError, match=re.escape(needle)):
            score_images(folder, task_name="gt-glyph", task_args={}, judge_name="glyph",
                         judge_args={}, progress=False, out=where)
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    lying = tmp_path / "lying" / "images" / "gt-glyph" / "normal"  # as a score keeps them,
    lying.mkdir(parents=True)  # but beside the user's notes: refused too
    gd.render(TARGETS[0]).save(lying / "0.png")
    (tmp_path / "lying" / "notes.txt").write_text("keep")
    with pytest.raises(UserError, match=re.escape("holds no score (notes.txt)")):
        score_images(lying, task_name="gt-glyph", task_args={}, judge_name="glyph",
                     judge_args={}, progress=False, out=tmp_path / "lying")


def test_a_16_bit_grey_picture_reads_as_its_8_bit_self_not_as_blank(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    grey = gd.render(STARS).convert("L")
    wide = Image.fromarray(np.asarray(grey).astype(np.uint16) * 257)  # I;16, as a PNG holds it
    wide.save(tmp_path / "w.png")
    with Image.open(tmp_path / "w.png") as reopened:
        reopened.load()
        assert reopened.mode.startswith("I")
        assert gd.parse(gd.as_array(reopened)).text == gd.parse(gd.as_array(grey)).text != "Error: blank"
