"""The bench scripts' data builders: the figures in the docs are only as good as these."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch
from unisandbox.records import Sample

BENCH = Path(__file__).resolve().parents[1] / "bench"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def math_sample(expression: str, answer: str, rounding: str | None = None) -> Sample:
    return Sample(id="0", prompt="", answer="", question="", question_answer=answer, level=1,
                  meta={"expression": expression, "rounding": rounding, "draw": f"{answer} red stars"})


@pytest.mark.parametrize(("expression", "answer", "rounding", "chain"), [
    ("7 - 18 % 4", "5", None, "7 - 18 % 4 = 7 - 2 = 5."),
    ("(4 * (3 - 1)) / 8", "1", None, "(4 * (3 - 1)) / 8 = (4 * 2) / 8 = 8 / 8 = 1."),
    ("√64 - 7", "1", None, "√64 - 7 = 8 - 7 = 1."),
    ("2^3 - 5", "3", None, "2^3 - 5 = 8 - 5 = 3."),
    ("15 / 9", "1", "floor", "15 / 9 = 1 rounded down."),
    ("(7 / 2) * 2", "7", None, "(7 / 2) * 2 = 7."),  # a fractional step ends the chain
])
def test_rewrite_chains_evaluate_one_operation_per_step(expression: str, answer: str,
                                                          rounding: str | None, chain: str) -> None:
    assert load("lm_retrieval").rewrite_chain(math_sample(expression, answer, rounding)) == chain


def test_mqar_batches_ask_every_pair_once_and_label_only_the_asked_values() -> None:
    mqar = load("mqar")
    ids, labels = mqar.batch(32, 5, torch.Generator().manual_seed(0))
    assert ids.shape == labels.shape == (32, 2 * 5 + 1 + 2 * 5)
    for row, lab in zip(ids.tolist(), labels.tolist(), strict=True):
        context = dict(zip(row[0:10:2], row[1:10:2], strict=True))
        asked = list(zip(row[11::2], row[12::2], strict=True))
        assert row[10] == mqar.KEYS + mqar.VALUES
        assert sorted(k for k, _ in asked) == sorted(context)
        assert all(context[k] == v for k, v in asked)
        assert [x for x in lab if x != -100] == [v for _, v in asked]


def mapping_sample(question: str) -> Sample:
    return Sample(id="0", prompt="", answer="", question=question, question_answer="", level=2)


def test_rule_scans_look_each_key_up_in_rule_order_and_stop_at_its_rule() -> None:
    bench = load("lm_retrieval")
    sample = mapping_sample("Rule 1: The number '2' signifies blue squares. Rule 2: 'J' maps to '*'. "
                            "Rule 3: The symbol '*' represents yellow hearts. "
                            "Which object does the letter 'J' stand for?")
    assert bench.scan_steps(sample) == (
        "look 'J' : '2' no . 'J' yes . 'J' refers to '*'. "
        "look '*' : '2' no . 'J' no . '*' yes . '*' stands for yellow hearts.")
    assert bench.scan_steps(sample, whole=True) == (
        "look 'J' : '2' stands for blue squares. no . 'J' refers to '*'. yes . "
        "look '*' : '2' stands for blue squares. no . 'J' refers to '*'. no . "
        "'*' stands for yellow hearts. yes .")


def test_a_rule_scan_refuses_a_chain_without_an_object() -> None:
    sample = mapping_sample("Rule 1: 'J' maps to '*'. Rule 2: '*' maps to 'J'. "
                            "Which object does the letter 'J' stand for?")
    with pytest.raises(ValueError, match="no object"):
        load("lm_retrieval").scan_steps(sample)


def test_a_rule_scan_refuses_a_key_no_rule_defines() -> None:
    sample = mapping_sample("Rule 1: 'J' maps to '*'. Which object does the letter 'J' stand for?")
    with pytest.raises(ValueError, match="no rule for '\\*'"):
        load("lm_retrieval").scan_steps(sample)


def test_verbatim_steps_copy_each_hops_rule_from_its_key_on() -> None:
    sample = mapping_sample("Rule 1: The number '2' signifies blue squares. Rule 2: 'J' maps to '*'. "
                            "Rule 3: The symbol '*' represents yellow hearts. "
                            "Which object does the letter 'J' stand for?")
    assert load("lm_retrieval").verbatim_steps(sample) == "'J' maps to '*'. '*' represents yellow hearts."


@pytest.mark.parametrize(("question", "error"), [
    ("Rule 1: 'J' maps to '*'. Rule 2: '*' maps to 'J'. Which object does the letter 'J' stand for?",
     "no object"),
    ("Rule 1: 'J' maps to '*'. Which object does the letter 'J' stand for?", "no rule for '\\*'"),
])
def test_verbatim_steps_refuse_chains_that_do_not_end_in_an_object(question: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        load("lm_retrieval").verbatim_steps(mapping_sample(question))


def test_dense_lookup_drills_ask_every_key_once_and_echo_the_listed_entries() -> None:
    bench = load("lm_retrieval")
    for drill in bench.lookup_drills(50, "t", echo=True, entries=(3, 5)):
        listing, question = drill.user.split(" What do ")
        entries = [e.strip() for e in listing.split(" .") if e.strip()]
        asked = [e.strip() for e in drill.answer.split(" .") if e.strip()]
        assert 3 <= len(entries) <= 5 and sorted(asked) == sorted(entries)
        assert [a.split()[0] for a in asked] == question.replace(" and ", ", ").removesuffix(
            " stand for?").split(", ")  # answered in the order asked
    dense = bench.lookup_drills(5, "t", dense=True, entries=(2, 2))[0]
    assert dense.answer.count(" stands for ") == 2 and dense.category == "lookup-dense"


@pytest.mark.parametrize(("style", "entry"), [
    ("quoted", r"^'\S' \w+ \w+$"), ("bare", r"^\S \w+ \w+$"), ("one-word", r"^'\S' \w+$"),
    ("bare-one-word", r"^\S \w+$"),
    ("bare-verbs", r"^\S (means|represents|denotes|signifies|stands for|refers to) \w+ \w+$"),
])
def test_lookup_styles_change_only_the_keys_quotes_and_the_objects_length(style: str, entry: str) -> None:
    import re

    for drill in load("lm_retrieval").lookup_drills(20, "t", echo=True, style=style):
        for piece in drill.answer.split(" ."):
            assert not piece.strip() or re.match(entry, piece.strip()), (style, piece)


def test_bare_keys_drop_only_the_quotes_around_keys() -> None:
    bare = load("lm_retrieval").bare_keys
    assert bare("Rule 1: The letter 'H' refers to the symbol '^'. Rule 2: '10' means red stars. "
                "Alice's cat. Which object does 'H' stand for?") == (
        "Rule 1: The letter H refers to the symbol ^. Rule 2: 10 means red stars. "
        "Alice's cat. Which object does H stand for?")


def test_entries_right_counts_each_asked_entry_once() -> None:
    bench = load("lm_retrieval")
    drill = bench.lookup_drills(1, "t", dense=True, entries=(2, 2))[0]
    first, second = drill.answer.split(". ")
    assert bench.entries_right([drill.answer], [drill]) == (2, 2)  # not 3: the final "." ends no entry
    assert bench.entries_right([f"{first}. {first}."], [drill]) == (1, 2)
    assert bench.entries_right([first], [drill]) == (1, 2)
    assert bench.entries_right([f"{second} {first}."], [drill]) == (0, 2)  # the order asked counts
    assert bench.entries_right([""], [drill]) == (0, 2)


def test_mqar_gaps_put_each_value_one_to_gap_plus_one_tokens_after_its_key() -> None:
    mqar = load("mqar")
    pairs, gap = 3, 2
    ids, labels = mqar.batch(64, pairs, torch.Generator().manual_seed(1), gap=gap)
    width = gap + 2
    filler = mqar.KEYS + mqar.VALUES + 1
    distances = set()
    for row, lab in zip(ids.tolist(), labels.tolist(), strict=True):
        context = {}
        for p in range(pairs):
            slot = row[p * width:(p + 1) * width]
            key, rest = slot[0], slot[1:]
            assert key < mqar.KEYS
            values = [i for i, x in enumerate(rest) if mqar.KEYS <= x < mqar.KEYS + mqar.VALUES]
            assert len(values) == 1 and all(x >= filler for i, x in enumerate(rest) if i != values[0])
            distances.add(values[0] + 1)
            context[key] = rest[values[0]]
        asked = row[pairs * width + 1:]
        assert dict(zip(asked[::2], asked[1::2], strict=True)) == context
        assert [x for x in lab if x != -100] == asked[1::2]
    assert distances == set(range(1, gap + 2))


def test_mqar_gaps_need_filler_tokens() -> None:
    with pytest.raises(ValueError, match="filler"):
        load("mqar").batch(2, 2, torch.Generator(), vocab=torch.arange(200), gap=1)


def test_mqar_can_ask_only_some_of_the_pairs() -> None:
    mqar = load("mqar")
    ids, labels = mqar.batch(16, 4, torch.Generator().manual_seed(2), asked=1)
    assert ids.shape == (16, 2 * 4 + 1 + 2)
    for row, lab in zip(ids.tolist(), labels.tolist(), strict=True):
        context = dict(zip(row[0:8:2], row[1:8:2], strict=True))
        assert context[row[9]] == row[10]
        assert [x for x in lab if x != -100] == [row[10]]


def test_stars_seeds_pair_every_two_variants_over_seeds(capsys):
    stars = load("stars")
    runs = stars.stars_runs(["consistency", "no_filter"], [0, 1, 2])
    assert runs["consistency"] == ("consistency", 0) and runs["no_filter@2"] == ("no_filter", 2)
    pooled = {"consistency": (0.30, 0.20, 0.25), "no_filter": (0.20, 0.20, 0.20)}
    variants = {label: {"after": {t: {"normal": pooled[v][s]} for t in stars.MATH}}
                for label, (v, s) in runs.items()}
    summary = stars.seed_summary(variants, runs)
    paired = summary["paired"]["consistency - no_filter"]
    assert paired["differences"] == pytest.approx([0.10, 0.0, 0.05]) and paired["df"] == 2
    assert paired["mean"] == pytest.approx(0.05) and paired["t"] == pytest.approx(0.05 / (0.05 / 3 ** 0.5))
    assert list(summary["paired"]) == ["consistency - no_filter"]
    assert "+5.0 points" in capsys.readouterr().out


def test_stars_compares_methods_on_a_seed_and_each_method_across_seeds() -> None:
    stars = load("stars")
    runs = stars.stars_runs(["distill", "distill_no_filter"], [0, 1])
    assert stars.comparison_pairs(runs, "distill", 0) == [
        ("distill", "distill_no_filter"), ("distill@1", "distill_no_filter@1"),
        ("distill", "distill@1"), ("distill_no_filter", "distill_no_filter@1")]
    assert stars.comparison_pairs(stars.stars_runs(["distill"], [0]), "distill", 0) == []


def test_stars_seeds_pair_each_level_over_seeds() -> None:
    """The filter can win at one level and lose at another with the pooled figure flat."""
    stars = load("stars")
    runs = stars.stars_runs(["distill", "distill_no_filter"], [0, 1])
    levels = {("distill", 0): (0.60, 0.45, 0.20), ("distill", 1): (0.55, 0.40, 0.20),
              ("distill_no_filter", 0): (0.65, 0.35, 0.20), ("distill_no_filter", 1): (0.62, 0.34, 0.19)}
    variants = {label: {"after": {t: {"normal": levels[run][i]} for i, t in enumerate(stars.MATH)}}
                for label, run in runs.items()}
    cell = stars.seed_summary(variants, runs)["paired"]["distill - distill_no_filter"]
    assert cell["levels"]["math-1"]["differences"] == pytest.approx([-0.05, -0.07])
    assert cell["levels"]["math-2"]["mean"] == pytest.approx(0.08)
    assert cell["levels"]["math-3"]["differences"] == pytest.approx([0.0, 0.01])
    assert cell["differences"] == pytest.approx([0.05 / 3, 0.0])  # pooled: nearly flat


def test_count_probe_reads_a_linear_signal_and_not_noise():
    probe = load("count_probe")
    gen = torch.Generator().manual_seed(0)
    y = torch.randint(0, 5, (400,), generator=gen)
    signal = torch.nn.functional.one_hot(y, 5).float() * 4 + torch.randn(400, 5, generator=gen)  # Bayes rate ~0.97
    x = torch.cat([signal, torch.randn(400, 20, generator=gen)], 1)
    assert probe.probe_accuracy(x[:300], y[:300], x[300:], y[300:]) > 0.9
    noise = torch.randn(400, 25, generator=gen)
    assert probe.probe_accuracy(noise[:300], y[:300], noise[300:], y[300:]) < 0.4  # chance: 0.2


def test_stars_coverage_counts_prompts_with_a_right_and_a_kept_right_candidate(tmp_path: Path) -> None:
    """How many prompts stage III gets a right teacher for: a prompt counts once however many
    of its candidates are right; a kept wrong candidate is counted as a candidate."""
    import json

    rows = [("1", 0, True, "yes"), ("1", 1, True, "yes"),  # two right, both kept
            ("2", 0, True, "no"), ("2", 1, False, "yes"),  # the right one dropped, a wrong kept
            ("3", 0, False, "no"), ("3", 1, False, "error")]
    (tmp_path / "verdicts.jsonl").write_text("".join(
        json.dumps({"task": "math-3", "id": i, "k": k, "accepted": kept, "audit": audit}) + "\n"
        for i, k, kept, audit in rows))
    assert load("stars").coverage(tmp_path) == {"prompts": 3, "with_a_right_candidate": 2,
                                               "with_a_kept_right_candidate": 1,
                                               "kept_wrong_candidates": 1}


def test_stars_paired_items_is_an_exact_mcnemar_test_on_the_shared_items(tmp_path: Path) -> None:
    import json

    def run(name: str, right: list[bool]) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        rows = [{"task": "math-3", "id": str(i), "mode": "normal", "verdict": "yes" if r else "no"}
                for i, r in enumerate(right)]
        rows.append({"task": "math-3", "id": "0", "mode": "think", "verdict": "no"})  # other mode
        (folder / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        return folder

    # items 0-5 right only in the first, 6 in both, 7 in neither
    first = run("a", [True] * 7 + [False])
    second = run("b", [False] * 6 + [True, False])
    cell = load("stars").paired_items(first, second)["math-3"]
    assert cell == {"items": 8, "first_only": 6, "second_only": 0, "p": pytest.approx(2 / 2 ** 6)}
    assert load("stars").paired_items(first, first)["math-3"]["p"] == 1.0


def test_think_plans_split_the_reasoning_from_the_picture() -> None:
    plans = load("think_plans")
    assert plans.plan_of("9 / 9 = 1 . so draw 4 red hearts . so draw 1 red heart .") == "1 red heart"
    assert plans.plan_of("no plan here") is None and plans.plan_of(None) is None
    row = {"mode": "think", "level": 3, "task": "math-3", "expected": "2 red hearts"}
    table = plans.split([
        {**row, "think": "so draw 2 red hearts .", "description": "2 red hearts", "verdict": "yes"},
        {**row, "think": "so draw 2 red hearts .", "description": "3 red hearts", "verdict": "no"},
        {**row, "think": "so draw 4 red hearts .", "description": "4 red hearts", "verdict": "no"},
        {**row, "mode": "normal", "think": None, "description": "2 red hearts", "verdict": "yes"},
        {**row, "task": "mapping-3", "think": "so draw 2 red hearts .", "description": "2 red hearts",
         "verdict": "yes"},
    ])
    assert dict(table["math-3"]) == {"items": 3, "plan_right": 2, "follows_plan": 2, "right": 1,
                                     "right_with_right_plan": 1}
    assert table["mapping-3"]["items"] == 1  # another task at the same level stays apart


def test_chained_lookups_walk_both_chains_through_the_shuffled_list() -> None:
    drills = load("lm_retrieval").chain_drills(60, "t")
    hops_seen = set()
    for d in drills:
        listing, question = d.user.split(" What do ")
        entries = dict(e.strip().split(" ", 1) for e in listing.split(" .") if e.strip())
        heads = [w.strip("?") for w in question.replace(" stand for?", "").split(" and ")]
        steps = [e.strip().split(" ", 1) for e in d.answer.split(" .") if e.strip()]
        assert len(steps) == len(entries)  # every entry of both chains, once
        walk, key = [], heads[0]
        for step_key, value in steps:
            if not walk or walk[-1] is None:  # the start of a chain: the next asked head
                key = heads[len([w for w in walk if w is None])]
            assert step_key == key and entries[step_key] == value
            walk.append(None if not value.startswith("'") else value)
            key = value
        hops_seen.add(len(steps) // 2)
    assert hops_seen == {1, 2, 3}
