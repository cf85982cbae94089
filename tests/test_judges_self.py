"""``self``: the model under test judges its own images (the STARS filter)."""

from __future__ import annotations

import json

import pytest
from judges_loopback import CASES, scene_image
from support import FIXTURES
from unisandbox.errors import UserError
from unisandbox.factories import build
from unisandbox.judges.selfjudge import (
    DESCRIBE_QUESTION,
    SelfJudge,
    filter_prompt,
    read_final_answer,
)
from unisandbox.protocols import Model
from unisandbox.records import JudgeItem, Sample
from unisandbox.run.config import Component, RunConfig
from unisandbox.run.runner import Runner
from unisandbox.run.scoring import score_images


@pytest.fixture
def jt_plugin(plugin_site):
    source = (FIXTURES / "judges_toy.py").read_text()
    return plugin_site("judges-toy", "0.1", {"judges_toy": source}, {"jt": "judges_toy"})


class ScriptedModel:
    """Stands in for a model's understand(): records questions, replies from a script."""

    def __init__(self, replies):
        self.replies, self.questions = list(replies), []

    def understand(self, images, questions):
        self.questions += questions
        return [self.replies.pop(0) for _ in questions]


def test_filter_prompt_shows_the_generation_prompt_and_the_answer_format():
    text = filter_prompt("Draw as many cups as 7 - 4.")
    assert "Instruction: Draw as many cups as 7 - 4." in text
    assert "Final Answer: YES" in text and "Final Answer: NO" in text
    assert text.rstrip().endswith("Final Answer: NO.")
    assert len(text.split()) < 50  # a small model reads every token of it
    assert filter_prompt("x") == filter_prompt("x")  # stable: models are trained on it


@pytest.mark.parametrize(("reply", "verdict"), [
    ("I count 3 cups.\nFinal Answer: YES", "yes"),
    ("Final Answer: no", "no"),
    ("**Final Answer:** **YES**", "yes"),
    ("The format is Final Answer: YES or Final Answer: NO.\nThere are 2 cups.\nFinal Answer: NO", "no"),
    ("Final Answer: YES\nwait, actually... Final Answer: unsure", None),
    ("Looks right to me. YES", None),
    ("", None),
])
def test_the_last_final_answer_counts(reply, verdict):
    assert read_final_answer(reply) == verdict


def test_verdicts_loading_and_errors(tmp_path):
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"{i}.png")
        scene_image(0).save(paths[-1])
    items = [JudgeItem("t", "math", Sample(id=str(i), prompt=f"Draw {i} cups.", answer=f"{i} cups"), p)
             for i, p in enumerate(paths)]
    items.append(JudgeItem("t", "math", Sample(id="x", prompt="p", answer="a"), tmp_path / "missing.png"))
    model = ScriptedModel(["ok\nFinal Answer: YES", "Final Answer: NO", "I am not sure."])
    loads = []
    judge = SelfJudge(model_loader=lambda: loads.append(1) or model, batch_size=2)
    assert judge.identity()["kind"] == "self" and not loads  # nothing loads before judging
    verdicts = judge.judge(items)
    assert loads == [1]
    assert [v.verdict for v in verdicts] == ["yes", "no", "error", "error"]
    assert "I am not sure." in verdicts[2].raw and "missing.png" in verdicts[3].raw
    assert model.questions == [filter_prompt(f"Draw {i} cups.") for i in range(3)]
    assert all("cups\n" not in q.split("Instruction:")[1].splitlines()[0] for q in model.questions)
    model.replies.append("Final Answer: YES")
    assert judge.judge(items[:1])[0].verdict == "yes"
    assert loads == [1]  # loaded once


def test_use_answer_shows_the_expected_answer_and_changes_identity(tmp_path):
    path = tmp_path / "a.png"
    scene_image(0).save(path)
    model = ScriptedModel(["Final Answer: YES"])
    judge = SelfJudge(model_loader=lambda: model, use_answer=True)
    judge.judge([JudgeItem("t", "math", Sample(id="1", prompt="Draw 1 + 2 cups.", answer="3 cups"), path)])
    assert "3 cups" in model.questions[0] and "1 + 2" not in model.questions[0]
    assert judge.identity() != SelfJudge(model_loader=lambda: model).identity()


class Answering(ScriptedModel, Model):
    """A scripted model that also answers text questions (chat), once per question."""

    capabilities = frozenset({"understand", "chat"})

    def __init__(self, replies, answers):
        super().__init__(replies)
        self.answers, self.asked = answers, []

    def chat(self, prompts):
        self.asked += prompts
        return [self.answers[p] for p in prompts]


def test_consistency_mode_compares_the_own_answer_with_the_description(tmp_path):
    from unisandbox.tasks.arith import MathTask

    task = MathTask(1, n=2, world="glyph")
    a, b = task.samples()
    noun = lambda s: s.answer.split(" ", 1)[1]  # noqa: E731
    path = tmp_path / "x.png"
    scene_image(0).save(path)  # the scripted model does not look at pixels
    items = [JudgeItem(task.name, "math", a, path), JudgeItem(task.name, "math", a, path),
             JudgeItem(task.name, "math", b, path), JudgeItem("other", "math", b, path)]
    model = Answering(
        [f"The image shows {a.answer}.", f"The image shows 9 {noun(a)}.", f"The image shows {b.answer}."],
        {a.question: f"{a.question_answer}.", b.question: "I cannot tell."})
    judge = SelfJudge(lambda: model, mode="consistency", tasks=[task])
    verdicts = judge.judge(items)
    assert [v.verdict for v in verdicts] == ["yes", "no", "no", "error"]
    assert model.asked == sorted({a.question, b.question})  # each question once, without the picture
    assert model.questions == [DESCRIBE_QUESTION] * 3  # the answer is never shown
    assert verdicts[0].description == f"The image shows {a.answer}."
    assert "own answer:" in verdicts[1].raw and "no usable answer" in verdicts[2].raw
    assert "'other'" in verdicts[3].raw
    assert judge.identity()["mode"] == "consistency"
    assert judge.identity() != SelfJudge(lambda: model).identity()


def test_consistency_mode_errors(tmp_path):
    with pytest.raises(ValueError, match="mode must be one of"):
        SelfJudge(lambda: None, mode="vote")
    with pytest.raises(ValueError, match="use_answer"):
        SelfJudge(lambda: None, mode="consistency", use_answer=True)
    path = tmp_path / "x.png"
    scene_image(0).save(path)
    item = JudgeItem("t", "math", Sample(id="1", prompt="p", answer="a", question="q"), path)
    with pytest.raises(UserError, match="no 'chat' capability"):
        SelfJudge(lambda: ScriptedModel([]), mode="consistency").judge([item])


SEEING_ORACLE = """
from unisandbox.hookspecs import hookimpl
from unisandbox.judges.selfjudge import DESCRIBE_QUESTION
from unisandbox.models.oracle import GlyphOracle
from unisandbox.specs import ModelSpec
from unisandbox.world.glyph_draw import parse

PLUGIN_API_VERSION = 1


class SeeingOracle(GlyphOracle):
    \"\"\"The oracle painter with eyes (the glyph parser); off by one on the questions in WRONG.\"\"\"

    capabilities = frozenset({"generate", "chat", "understand"})
    WRONG: set = set()

    def chat(self, prompts):
        return [str(int(r) + 1) if p in self.WRONG else r
                for p, r in zip(prompts, super().chat(prompts), strict=True)]

    def understand(self, images, questions):
        assert set(questions) == {DESCRIBE_QUESTION}
        return [f"The image shows {parse(im).text}." for im in images]


@hookimpl
def register_models(register):
    register(ModelSpec(name="seeing-oracle", factory=SeeingOracle, description="oracle with eyes",
                       capabilities={"generate", "understand", "chat"}))
"""


def test_consistency_mode_in_a_run_gets_the_run_tasks(plugin_site, tmp_path):
    """Through the runner, on real tasks: right pictures pass exactly where the model's own
    text answer is right, and mapping resolves through the rule objects."""
    from unisandbox.registry import get_registry

    plugin_site("seeing-oracle", "0.1", {"seeing_oracle": SEEING_ORACLE}, {"so": "seeing_oracle"})
    import seeing_oracle

    math = build(get_registry().task("math-2"), {"world": "glyph", "n": 6})
    seeing_oracle.SeeingOracle.WRONG = {s.question for s in math.samples()[::2]}
    config = RunConfig(model=Component("seeing-oracle"),
                       tasks=(Component("math-2", {"world": "glyph", "n": 6}),
                              Component("mapping-1", {"world": "glyph", "n": 2})),
                       judge=Component("self", {"mode": "consistency"}), out=tmp_path / "run",
                       modes=("normal",), understanding=False)
    Runner(config, progress=False).run()
    records = [json.loads(x) for x in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    verdicts = {(r["task"], r["id"]): r["verdict"] for r in records}
    assert [verdicts["math-2", s.id] for s in math.samples()] == ["no", "yes"] * 3
    assert [v for (t, _), v in verdicts.items() if t == "mapping-1"] == ["yes"] * 4


def test_self_judge_in_a_run_uses_the_run_model(jt_plugin, tmp_path):
    config = RunConfig(model=Component("jt-painter"), tasks=(Component("jt-scenes"),),
                       judge=Component("self"), out=tmp_path / "run", modes=("normal",),
                       understanding=False, batch_size=3)
    runner = Runner(config, progress=False)
    results = runner.run()
    # the painter's understanding reads the scene back and compares it with the prompt
    cell = results["tasks"]["jt-scenes"]["levels"]["all"]["normal"]
    assert cell["n"] == len(CASES["math"]) and cell["n_error"] == 0
    records = [json.loads(x) for x in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    # the toy understanding compares words literally: "three circles" is not "3 circles" to it
    assert [r["verdict"] for r in records] == ["yes", "no", "no", "yes", "no", "yes"]
    assert all("Final Answer:" in r["judge_raw"] for r in records)
    assert runner.model.understand_calls == 2  # two batches, the same model instance
    conf = json.loads((tmp_path / "run" / "config.json").read_text())
    assert conf["judge_identity"]["kind"] == "self"


def test_score_refuses_the_self_judge(jt_plugin, tmp_path):
    with pytest.raises(UserError, match="needs the model under test"):
        score_images(tmp_path, task_name="jt-scenes", task_args={}, judge_name="self",
                     judge_args={}, progress=False)


@pytest.mark.parametrize(("replies", "needle"), [
    (lambda questions: ["Final Answer: YES"] * (len(questions) - 1),
     r"Short.understand\(\) returned 1 items for 2 inputs"),
    (lambda questions: [1] * len(questions), r"Short.understand\(\) returned a int at position 0; expected str"),
])
def test_a_model_whose_understand_returns_the_wrong_thing_is_named(tmp_path, replies, needle):
    from unisandbox.protocols.returns import PluginError

    class Short:
        def understand(self, images, questions):
            return replies(questions)

    paths = []
    for i in range(2):
        paths.append(tmp_path / f"{i}.png")
        scene_image(0).save(paths[-1])
    items = [JudgeItem("t", "math", Sample(id=str(i), prompt="Draw 1 cup.", answer="1 cup"), p)
             for i, p in enumerate(paths)]
    with pytest.raises(PluginError, match=needle):
        SelfJudge(model_loader=Short).judge(items)
