"""``unisandbox judges list|check``."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..errors import UserError
from .common import arg_option, echo_json, json_option
from .listing import _list_group

if TYPE_CHECKING:
    from PIL.Image import Image

    from ..records import Sample

judges = _list_group("judge", "requires", "requires")

FAMILIES = ("math", "mapping", "knowledge")


#: the task whose first glyph-world test item is the example of each family (``--world glyph``)
GLYPH_TASKS = {"math": "math-1", "mapping": "mapping-1", "knowledge": "knowledge-forward"}


def glyph_example(family: str) -> tuple[Sample, Image]:
    """The first glyph-world test item of the family's level-1 task and the exact render of
    its answer: what the ``glyph`` judge (which reads a sample's structured target) can check."""
    from ..factories import build
    from ..registry import get_registry
    from ..world.glyph_draw import render

    task = build(get_registry().task(GLYPH_TASKS[family]), {"world": "glyph", "split": "test", "n": 2})
    sample = next(iter(task.samples()))
    return sample, render(sample.target, size=256)


def check_example(family: str) -> tuple[Sample, Image]:
    """A drawn image any competent VLM judges right, and its sample (expected verdict: yes)."""
    from PIL import Image as PILImage
    from PIL import ImageDraw

    from ..records import Sample

    image = PILImage.new("RGB", (384, 384), "white")
    draw = ImageDraw.Draw(image)
    if family == "math":
        for x in (32, 144, 256):
            draw.ellipse((x, 144, x + 96, 240), fill=(220, 30, 30))
        return Sample(id="check", prompt="Draw as many circles as 1 + 2.", answer="3 circles"), image
    if family == "mapping":
        draw.ellipse((112, 112, 272, 272), fill=(30, 60, 220))
        return Sample(id="check", prompt="Draw the object that symbol X stands for (X = circle).",
                      answer="circle"), image
    draw.ellipse((92, 112, 292, 312), fill=(245, 140, 20))
    draw.ellipse((180, 80, 230, 120), fill=(40, 150, 40))
    return Sample(id="check", prompt="Draw the favourite fruit of the tester (an orange).",
                  answer="orange"), image


@judges.command("check")
@click.argument("name")
@arg_option("judge", "judge factory (e.g. model=..., path=...)")
@click.option("--base-url", default=None, metavar="URL",
              help="Shorthand for --judge-arg base_url=URL (e.g. http://localhost:8000/v1).")
@click.option("--family", type=click.Choice(FAMILIES), default=None,
              help="Which protocol the example image is judged under  [default: math].")
@click.option("--world", type=click.Choice(("drawn", "glyph")), default=None,
              help="The example: a large hand-drawn picture (for VLM judges) or the exact render of "
                   "a glyph-world test item, which judges that read its structured answer need  "
                   "[default: glyph for the glyph judge, else drawn].")
@click.option("--task", "task_name", default=None, metavar="TASK",
              help="Judge your own --image against an item of this registered task instead of the "
                   "built-in example (a plugin judge on its own task, say).")
@arg_option("task", "task factory, with --task (e.g. n=5, world=glyph)")
@click.option("--item", default=None, metavar="ID", help="With --task: the item's id [default: its first].")
@click.option("--image", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None,
              help="With --task: the image to judge.")
@json_option
def check(name: str, judge_args: tuple[str, ...], base_url: str | None, family: str | None,
          world: str | None, task_name: str | None, task_args: tuple[str, ...], item: str | None,
          image: Path | None, as_json: bool) -> int:
    """Check that judge NAME answers: reachability, then one scored example.

    \b
    Example (vLLM on this machine):
      unisandbox judges check vlm-openai --base-url http://localhost:8000/v1 \\
          --judge-arg model=Qwen2.5-VL-7B-Instruct

    \b
    Your own image against an item of any task (a plugin judge on its own task):
      unisandbox judges check glyph --task math-2 --task-arg world=glyph --image my.png

    Exit 0 when the example got a verdict, 1 when it got none (a failed call or a reply
    without a verdict),
    2 when it cannot be reached or built. With --json every outcome once the options are read is a JSON object on
    stdout, with ok (true or false) and, on failure, error.
    """
    report: dict[str, Any] = {"judge": name}
    try:
        return _check(report, name, judge_args, base_url, family, world, task_name, task_args,
                      item, image, as_json)
    except UserError as exc:
        if as_json:  # a script reading stdout learns why, not just that nothing came
            echo_json({**report, "ok": False, "error": str(exc)})
        raise


def _check(report: dict[str, Any], name: str, judge_args: tuple[str, ...], base_url: str | None,
           family: str | None, world: str | None, task_name: str | None,
           task_args: tuple[str, ...], item: str | None, image: Path | None, as_json: bool) -> int:
    """``judges check`` itself; fills ``report`` as it goes, so a failure shows how far it got."""
    from ..factories import build, judge_task_context
    from ..records import JudgeItem
    from ..registry import get_registry
    from ..run.config import parse_pairs

    if (task_name is None) != (image is None) or (item is not None and task_name is None) or \
            (task_args and task_name is None):
        raise UserError("--task and --image go together (--item and --task-arg with them): the "
                        "image is judged against an item of the task")
    if task_name is not None and (family is not None or world is not None):
        raise UserError("--family and --world choose the built-in example; with --task the task's "
                        "own family applies")
    family = family or "math"
    spec = get_registry().judge(name)
    if spec.requires:
        raise UserError(f"judge {name!r} borrows the model under test ({', '.join(sorted(spec.requires))}); "
                        "check it through `unisandbox eval` with that model")
    args = parse_pairs(judge_args, "--judge-arg")
    if base_url:
        args["base_url"] = base_url
    task = None
    if task_name is not None:
        task = build(get_registry().task(task_name), parse_pairs(task_args, "--task-arg"))
        family = task.family
    judge = build(spec, args, **judge_task_context(spec, [task] if task is not None else []))
    report.update(identity=judge.identity(), family=family)
    try:
        if hasattr(judge, "ping"):
            t0 = time.perf_counter()
            report["reachable"] = False  # until the ping answers
            served = judge.ping()
            report.update(reachable=True, ping_s=round(time.perf_counter() - t0, 3), serves=served)
            if not as_json:
                where = getattr(judge, "base_url", None) or getattr(judge, "path", "")
                click.echo(f"reachable: {where} in {report['ping_s']:.3f} s"
                           + (f"; serves {', '.join(served)}" if served else ""))
            wanted = getattr(judge, "model", None)
            if served and isinstance(wanted, str) and wanted not in served:
                click.echo(f"warning: the server does not list model {wanted!r}", err=True)
        with tempfile.TemporaryDirectory(prefix="unisandbox-check-") as tmp:
            if task is not None and image is not None:
                sample, path, expected = _task_item(task, item), image, None
                report.update(task=task.name, item=sample.id, image=str(image))
            else:
                world = world or ("glyph" if name == "glyph" else "drawn")
                sample, drawn = glyph_example(family) if world == "glyph" else check_example(family)
                report["world"] = world
                path, expected = Path(tmp) / "check.png", "yes"
                drawn.save(path)
            t0 = time.perf_counter()
            verdict = judge.judge([JudgeItem(task.name if task is not None else "check", family, sample,
                                             path)])[0]
            latency = time.perf_counter() - t0
    finally:
        judge.close()
    no_verdict = ("the judge gave no verdict (error): its text says why (a failed call, or a "
                  "reply without a verdict)")
    report.update(verdict=verdict.verdict, expected=expected, latency_s=round(latency, 3),
                  description=verdict.description, raw=verdict.raw, ok=verdict.verdict != "error")
    if verdict.verdict == "error":
        report["error"] = no_verdict
    if as_json:
        echo_json(report)
    else:
        what = f"{task.name} item {sample.id}" if task is not None else f"example ({family})"
        click.echo(f"{what}: expected answer {sample.answer!r}")
        click.echo(f"verdict: {verdict.verdict}{f' (expected {expected})' if expected else ''} in "
                   f"{latency:.3f} s")
        if verdict.description:
            click.echo(f"description: {verdict.description}")
        click.echo("judge text:\n  " + "\n  ".join(verdict.raw.splitlines() or [""]))
    if verdict.verdict == "error":
        click.echo(no_verdict.replace("its text says", "its text above says"), err=True)
        return 1
    return 0


def _task_item(task: Any, item: str | None) -> Sample:
    """The task's item ``item`` (its first when None), or an error listing a few ids."""
    samples = list(task.samples())
    if not samples:
        raise UserError(f"task {task.name!r} has no items")
    if item is None:
        return samples[0]
    for sample in samples:
        if sample.id == item:
            return sample
    shown = ", ".join(s.id for s in samples[:5])
    raise UserError(f"task {task.name!r} has no item {item!r} (ids like {shown}{' ...' if len(samples) > 5 else ''})")
