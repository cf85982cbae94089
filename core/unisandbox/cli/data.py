"""``unisandbox data generate|audit|stats|leaks``: task sets as files, and label audits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .common import OutPath, arg_option, echo_json, json_option, percent, table

CORPUS = "knowledge-corpus"


@click.group()
def data() -> None:
    """Task sets as files: generate them, audit published labels, inspect and leak-check.

    \b
      unisandbox data generate math-2 --n 100 --world glyph --split test --out m2.jsonl
      unisandbox data audit path/to/benchmark/ --rounding floor
      unisandbox data stats m2.jsonl
      unisandbox data leaks train.jsonl test.jsonl
    """


@data.command("generate")
@click.argument("task_name", metavar="TASK")
@click.option("--n", type=int, default=None,
              help="Items (mapping: A/B pairs) to make  [default: the task's, 100; knowledge: all].")
@click.option("--seed", type=int, default=0, show_default=True, help="Generator seed.")
@click.option("--world", default="everyday", show_default=True, help="Vocabulary: everyday or glyph.")
@click.option("--split", default="test", show_default=True,
              type=click.Choice(["train", "dev", "test"]), help="Which leak-free split to draw from.")
@click.option("--counts", default=None, help="Math answer range, e.g. 1-5 or 1,2,3  [default: 1-5].")
@click.option("--n-characters", type=int, default=None,
              help="Knowledge: invented characters  [default: 10].")
@arg_option("task", "task factory (any other keyword it takes)")
@click.option("--out", required=True, type=OutPath(dir_okay=False),
              help="File to write (JSON lines, the published schema of the task's family).")
@click.option("--plain", is_flag=True,
              help="Write only the published fields (drop the 'unisandbox' extras: question, "
                   "target, steps; they are re-derived from the prompt on reading).")
def generate(task_name: str, n: int | None, seed: int, world: str, split: str, counts: str | None,
             n_characters: int | None, task_args: tuple[str, ...], out: Path, plain: bool) -> None:
    """Generate a task set and write it in the published schema.

    TASK is a generator task (math-1..3, mapping-1..3, knowledge-forward, knowledge-inverse;
    see `unisandbox tasks list`) or knowledge-corpus: the injection conversations (about 40
    question-answer pairs per character, name -> attribute only) for the characters that
    knowledge-forward/-inverse use with the same --seed, --split, --world and --n-characters.
    The same options always write the same file.
    """
    from ..errors import UserError
    from ..run.config import parse_pairs

    extra = parse_pairs(task_args, "--task-arg")
    own = sorted(set(extra) & {"n", "seed", "world", "split", "counts", "n_characters"})
    if own:
        raise UserError(f"--task-arg {own[0]}=...: `data generate` has its own option for it, "
                        f"--{own[0].replace('_', '-')}")
    args: dict[str, Any] = {"seed": seed, "world": world, "split": split, **extra}
    for key, value in (("n", n), ("counts", counts), ("n_characters", n_characters)):
        if value is not None:
            args[key] = value
    if task_name == CORPUS:
        _write_corpus(args, out)
        return
    from ..factories import accepted_arguments, build
    from ..registry import get_registry
    from ..tasks.published import FAMILIES, write_published

    registry = get_registry()
    generators = [s.name for s in registry.all("task") if not s.analysis
                  and "split" in (accepted_arguments(s) or ("split",))]
    if task_name not in generators:
        raise UserError(f"{task_name!r} is not a task that generates items; choose from "
                        f"{', '.join([*generators, CORPUS])}")
    task = build(registry.task(task_name), args)
    if task.family not in FAMILIES:
        raise click.UsageError(f"task {task_name!r} is a {task.family} task; only math, "
                               "mapping and knowledge tasks have a published schema")
    samples = list(task.samples())
    write_published(samples, task.family, out, extras=not plain)
    unit = "pairs" if task.unit == "pair" else "items"
    units = len({s.group or s.id for s in samples})
    click.echo(f"wrote {units} {unit} of {task_name} (split {split}, seed {seed}, world {world}) "
               f"to {out}")


def _write_corpus(args: dict[str, Any], out: Path) -> None:
    from ..errors import UserError
    from ..tasks.knowledge import KnowledgeTask, corpus
    from ..tasks.published import write_conversations

    extra = sorted(set(args) - {"seed", "world", "split", "n_characters"})
    if extra:
        raise UserError(f"{CORPUS} takes --seed, --world, --split and --n-characters, not {extra[0]!r}")
    task = KnowledgeTask("forward", **args)
    characters = task.characters()
    write_conversations(corpus(characters, task.world, task.seed), out)
    click.echo(f"wrote {sum(1 for _ in corpus(characters, task.world, task.seed))} conversations "
               f"about {len(characters)} characters ({', '.join(c.name for c in characters)}) to {out}")


@data.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
@click.option("--rounding", type=click.Choice(["floor", "round", "exact"]), default="floor",
              show_default=True,
              help="Math results that are not whole numbers and whose prompt does not say how to "
                   "round: round down, round half up, or count them as unwinnable.")
@click.option("--facts", type=click.Path(path_type=Path, exists=True), default=None,
              help="Knowledge training conversations (file or folder) that define the characters "
                   "[default: a knowledge_train folder next to the files, if any].")
@click.option("--world", default="everyday", show_default=True,
              help="Vocabulary for reading portraits (everyday or glyph).")
@click.option("--all", "show_all", is_flag=True, help="List every finding (default: up to 40 per file).")
@json_option
def audit(paths: tuple[Path, ...], rounding: str, facts: Path | None, world: str, show_all: bool,
          as_json: bool) -> None:
    """Recompute every label and report the ids whose label is wrong or unwinnable.

    PATHS are math, mapping or knowledge files, or folders of them (a folder's knowledge
    files are audited together). Math labels are recomputed exactly with the --rounding
    policy; mapping rule chains are resolved; knowledge answers are compared with the
    training conversations. Each file's accuracy ceiling is the share of scoring units (items;
    pairs for mapping) a perfect model could still win against these labels; "strict" also
    counts the units the audit could not read as lost.
    """
    from ..tasks.audit import audit_paths

    results = audit_paths(paths, rounding, facts, world)
    if as_json:
        echo_json({"rounding": rounding, "files": [r.to_json() for r in results]})
        return
    click.echo(f"rounding policy: {rounding}")
    for r in results:
        counts = r.counts()
        click.echo(f"\n{r.path} ({r.family}{f', level {r.level}' if r.level else ''}): "
                   f"{r.units} {'pairs' if r.family == 'mapping' else 'items'}, "
                   f"{counts['wrong']} wrong, {counts['unwinnable']} unwinnable, "
                   f"{counts['unverified']} unverified; ceiling {percent(r.ceiling)} %")
        for note in r.notes:
            click.echo(f"  note: {note}")
        shown = r.findings if show_all else r.findings[:40]
        if shown:
            rows = [(f.sample, f.where, f.category, _cut(f.label), _cut(f.expected), _cut(f.detail, 70))
                    for f in shown]
            click.echo("  " + table(rows, ["id", "line", "finding", "label", "should be", "why"])
                       .replace("\n", "\n  "))
        if len(r.findings) > len(shown):
            click.echo(f"  ... {len(r.findings) - len(shown)} more (use --all or --json)")
    click.echo("\nceilings imposed by the labels:")
    rows = [(Path(r.path).name, r.family, r.units, r.counts()["wrong"], r.counts()["unwinnable"],
             r.counts()["unverified"], percent(r.ceiling), percent(r.strict_ceiling)) for r in results]
    click.echo(table(rows, ["file", "family", "units", "wrong", "unwinnable", "unverified",
                            "ceiling %", "strict %"]))


def _cut(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


@data.command()
@click.argument("path", type=click.Path(path_type=Path, exists=True))
@click.option("--family", type=click.Choice(["math", "mapping", "knowledge"]), default=None,
              help="Read as this family (needed for a folder holding several).")
@json_option
def stats(path: Path, family: str | None, as_json: bool) -> None:
    """Summarise a task file: counts, levels, answers, operators, rules, characters."""
    from ..tasks.published import read_published
    from ..tasks.stats import file_stats

    info = file_stats(read_published(path, family))
    if as_json:
        echo_json(info)
        return
    for key, value in info.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}: {v}" for k, v in value.items()) or "-"
        elif isinstance(value, list):
            value = "; ".join(map(str, value)) or "-"
        click.echo(f"{key}: {value}")


@data.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
@click.option("--by", type=click.Choice(["split", "file"]), default="split", show_default=True,
              help="Compare the splits the samples declare (files of one split merge), or "
                   "every file with every other.")
@json_option
def leaks(paths: tuple[Path, ...], by: str, as_json: bool) -> None:
    """Prove that task sets share no expression, rule set, character or prompt.

    Exits 1 when an identity or prompt is in two groups, a sample declares a split its
    identity does not hash to, or one file mixes splits. Samples written by `data generate`
    declare their split and identity; other files are compared by identities re-derived from
    their prompts.
    """
    from ..tasks.leaks import check_leaks
    from ..tasks.published import read_published

    grouped: dict[str, dict[str, list[Any]]] = {}
    mixed: dict[str, list[str]] = {}  # a file holding samples of several declared splits
    for path in paths:
        loaded = read_published(path)
        declared = sorted({str(s.meta["split"]) for s in loaded.samples if "split" in s.meta})
        if len(declared) > 1:
            mixed[str(path)] = declared
        for s in loaded.samples:
            key = s.meta.get("split") if by == "split" else None
            group = key if isinstance(key, str) else str(path)
            grouped.setdefault(loaded.family, {}).setdefault(group, []).append(s)
    reports = {family: check_leaks(groups, family) for family, groups in grouped.items()}
    ok = all(r.ok for r in reports.values()) and not mixed
    if as_json:
        echo_json({"ok": ok, "mixed_files": mixed,
                   "families": {f: r.to_json() for f, r in reports.items()}})
    else:
        for path, splits in mixed.items():
            click.echo(f"MIXED {path} holds samples of the splits {', '.join(splits)}")
        for family, r in reports.items():
            sizes = ", ".join(f"{g}: {n}" for g, n in r.n_samples.items())
            click.echo(f"{family}: {len(r.groups)} groups ({sizes})")
            for what, shared in (("identity", r.shared_identities), ("prompt", r.shared_prompts)):
                for key, groups in list(shared.items())[:20]:
                    click.echo(f"  LEAK {what} {_cut(key, 70)!r} in {', '.join(groups)}")
            for group, sid, declared, actual in r.misassigned[:20]:
                click.echo(f"  MISASSIGNED {group} id {sid}: declares {declared}, identity is {actual}")
            if r.ok:
                click.echo("  no leaks")
    if not ok:
        raise click.exceptions.Exit(1)

