"""Judge templates (built-in and task-brought) and the shared two-stage protocol."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest
from judges_loopback import CASES, fake_vlm_reply, scene_image
from unisandbox.errors import DataError, UserError
from unisandbox.judges.templates import (
    Template,
    builtin_templates,
    load_template,
    resolve_templates,
)
from unisandbox.judges.vlm import (
    ChatRequest,
    Reply,
    TwoStage,
    judge_batched,
    judge_each,
    read_score,
)
from unisandbox.records import JudgeItem, Sample


def test_builtin_templates_have_versions_hashes_and_the_protocol_rules():
    t = builtin_templates()
    assert set(t) == {"math", "mapping", "knowledge"}
    for family, template in t.items():
        assert template.family == family and template.version
        assert len(template.sha256) == 64 and template.identity()["sha256"] == template.sha256
        assert "Score: YES" in template.compare and "Score: NO" in template.compare
    assert t["math"].label == "Caption" and t["math"].short_circuit == ("Error",)
    assert t["mapping"].label == "Object" and "letter" in t["mapping"].describe
    assert t["knowledge"].short_circuit == ("Reject",)
    for word in ("Person:", "Flower:", "Fruit:", "kid", "mid-age", "old"):
        assert word in t["knowledge"].describe
    assert len({x.sha256 for x in t.values()}) == 3


def test_hash_follows_every_field():
    math = builtin_templates()["math"]
    assert attrs.evolve(math, describe=math.describe + " ").sha256 == math.sha256  # stripped
    for change in ({"describe": math.describe + " Be brief."}, {"version": "2"}, {"label": "Answer"},
                   {"short_circuit": ("Error", "None")}):
        assert attrs.evolve(math, **change).sha256 != math.sha256


@pytest.mark.parametrize(("family", "reply", "description", "short"), [
    ("math", "Caption: 3 apples", "3 apples", False),
    ("math", "Error", "Error", True),
    ("math", "Caption: Error", "Error", True),
    ("math", "caption: ERROR.", "ERROR", True),
    ("math", "**Caption:** 2 chairs\n(looks fine)", "2 chairs", False),
    ("math", "Caption:\n4 stars", "4 stars", False),
    ("math", "4 stars", "4 stars", False),
    ("mapping", "Object: car", "car", False),
    ("mapping", "Object: Error", "Error", True),
    ("knowledge", "Person: East Asian; black; old; male\nextra", "Person: East Asian; black; old; male", False),
    ("knowledge", "Reject", "Reject", True),
    ("knowledge", "Fruit: apple", "Fruit: apple", False),
    ("math", "   ", "", False),
])
def test_reading_stage_one_replies(family, reply, description, short):
    template = builtin_templates()[family]
    got = template.read_description(reply)
    assert got == description
    assert template.is_short_circuit(got) is short


@pytest.mark.parametrize(("text", "score"), [
    ("Score: YES", "yes"), ("score:no", "no"), ("**Score: NO**", "no"), ("Score: [YES]", "yes"),
    ("Reasoning...\nScore: NO\nScore: YES", "no"),  # the first match counts
    ("**Score:** YES", "yes"), ("Score: maybe", None), ("YES", None), ("Score: NOPE", None), ("", None),
])
def test_reading_scores(text, score):
    assert read_score(text) == score


def test_compare_prompt_fills_placeholders_and_leaves_other_braces():
    template = Template(family="f", version="1", describe="d",
                        compare="{x} {description} vs {expected} {{y}}")
    assert template.compare_prompt("3 {cups}", "4") == "{x} 3 {cups} vs 4 {{y}}"
    with pytest.raises(ValueError, match="expected"):
        Template(family="f", version="1", describe="d", compare="{description}")


def test_load_template_errors_name_file_line_and_field(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('family = "f"\nversion = "1"\ndescribe = "d"\ncompare = "no placeholders"\n')
    with pytest.raises(DataError) as err:
        load_template(path)
    assert err.value.line == 4 and err.value.field == "compare" and str(path) in str(err.value)
    path.write_text('family = "f"\nversion = 1\ndescribe = "d"\ncompare = "{description}{expected}"\n')
    with pytest.raises(DataError, match="version"):
        load_template(path)
    path.write_text('family = "f"\ncolour = "red"\n')
    with pytest.raises(DataError, match="colour"):
        load_template(path)
    path.write_text('family = "f\n')
    with pytest.raises(DataError, match="invalid TOML"):
        load_template(path)
    with pytest.raises(UserError, match="cannot read"):
        load_template(tmp_path / "missing.toml")


class FakeTask:
    def __init__(self, name: str, family: str, judge_templates=None) -> None:
        self.name, self.family = name, family
        self.judge_templates = judge_templates or {}


def custom(family: str = "shapes", version: str = "1") -> Template:
    return Template(family=family, version=version, describe="Say Shape: <name>.",
                    compare="{description} = {expected}? Score: YES or Score: NO", label="Shape")


def test_tasks_bring_templates_for_their_families(tmp_path):
    path = tmp_path / "shapes.toml"
    path.write_text('family = "shapes"\nversion = "3"\ndescribe = "d"\n'
                    'compare = "{description} {expected}"\n')
    table = resolve_templates([FakeTask("a", "shapes", {"shapes": str(path)}), FakeTask("b", "math")])
    assert set(table) == {"shapes", "math"} and table["shapes"].version == "3"
    assert table["math"] is builtin_templates()["math"]
    assert resolve_templates() == builtin_templates()
    # a task may also replace a built-in family's template for its run
    table = resolve_templates([FakeTask("a", "math", {"math": attrs.evolve(builtin_templates()["math"], version="9")})])
    assert table["math"].version == "9"


def test_conflicting_or_mislabelled_task_templates_are_refused():
    with pytest.raises(UserError, match="different judge templates"):
        resolve_templates([FakeTask("a", "shapes", {"shapes": custom()}),
                           FakeTask("b", "shapes", {"shapes": custom(version="2")})])
    resolve_templates([FakeTask("a", "shapes", {"shapes": custom()}),
                       FakeTask("b", "shapes", {"shapes": custom()})])  # the same one twice is fine
    with pytest.raises(UserError, match="is a template for family 'other'"):
        resolve_templates([FakeTask("a", "shapes", {"shapes": custom("other")})])
    with pytest.raises(UserError, match="Template objects or paths"):
        resolve_templates([FakeTask("a", "shapes", {"shapes": 42})])
    with pytest.raises(TypeError, match="Task objects"):
        resolve_templates(["math"])


def test_vlm_judges_refuse_tasks_without_a_template():
    from unisandbox.judges.openai import OpenAIJudge

    with pytest.raises(ValueError, match=r"no judge template for t \(toy\)"):
        OpenAIJudge(model="m", tasks=[FakeTask("t", "toy")])
    judge = OpenAIJudge(model="m", tasks=[FakeTask("t", "shapes", {"shapes": custom()})])
    assert set(judge.identity()["templates"]) == {"shapes"}


def scripted_items(tmp_path: Path) -> list[JudgeItem]:
    out = []
    for family, cases in CASES.items():
        for i, (scene, answer, expect) in enumerate(cases):
            path = tmp_path / f"{family}-{i}.png"
            scene_image(scene).save(path)
            out.append(JudgeItem("t", family, Sample(id=f"{family}{i}", prompt="p", answer=answer,
                                                     meta={"expect": expect}), path))
    out.append(JudgeItem("t", "nope", Sample(id="x", prompt="p", answer="a"), path))
    out.append(JudgeItem("t", "math", Sample(id="y", prompt="p", answer="a"), tmp_path / "gone.png"))
    return out


def ask_fake(request: ChatRequest) -> Reply:
    if request.image is None:
        body = {"messages": [{"content": request.text}]}
    else:
        import base64

        url = "data:image/png;base64," + base64.b64encode(request.image.read_bytes()).decode()
        body = {"messages": [{"content": [{"type": "image_url", "image_url": {"url": url}},
                                          {"type": "text", "text": request.text}]}]}
    return Reply(fake_vlm_reply(body))


def test_item_and_batch_drivers_agree(tmp_path):
    items = scripted_items(tmp_path)
    protocol = TwoStage(builtin_templates())
    each = [judge_each(protocol, item, ask_fake) for item in items]
    batched = judge_batched(protocol, items, lambda reqs: [ask_fake(r) for r in reqs])
    assert each == batched
    assert [v.verdict for v in each[:-2]] == [i.sample.meta["expect"] for i in items[:-2]]
    assert each[-2].verdict == "error" and "no judge template for family 'nope'" in each[-2].raw
    assert each[-1].verdict == "error" and "image not found: gone.png" in each[-1].raw


def test_failed_calls_are_errors_with_their_text(tmp_path):
    items = scripted_items(tmp_path)[:1]
    protocol = TwoStage(builtin_templates())
    v = judge_each(protocol, items[0], lambda r: Reply(None, error="HTTP 502", raw="<html>bad gateway"))
    assert v.verdict == "error" and v.raw == "stage 1: HTTP 502\n<html>bad gateway"
    answers = iter([Reply("Caption: 3 circles"), Reply(None, error="timed out")])
    v = judge_each(protocol, items[0], lambda r: next(answers))
    assert v.verdict == "error" and v.description == "3 circles"
    assert v.raw == "[stage 1]\nCaption: 3 circles\n\nstage 2: timed out"
    v = judge_each(protocol, items[0], lambda r: Reply(""))
    assert v.verdict == "error" and "no description" in v.raw
    with pytest.raises(RuntimeError, match="replies"):
        judge_batched(protocol, items, lambda reqs: [])
