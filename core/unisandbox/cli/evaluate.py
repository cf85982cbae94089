"""``unisandbox eval`` (generate -> judge -> aggregate) and ``unisandbox score`` (your images)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from .common import OutPath, arg_option, echo_json, json_option, percent, table


def print_results(results: dict[str, Any], order: Sequence[str] = ()) -> None:
    """The per task / level / mode table every command that evaluates prints: accuracy with its
    95 % interval as [low, high] (Wilson intervals are not symmetric, so never "±")."""
    from ..report.load import iter_levels

    rows = []
    # the tasks in the order the user gave them (results.json keeps its keys sorted)
    tasks = sorted(results["tasks"], key=lambda t: (list(order).index(t) if t in order else len(order), t))
    # U and the gap only where U was measured (a run with --no-understanding, a score folder)
    with_u = any(cells.get("understanding") for entry in results["tasks"].values()
                 for cells in entry["levels"].values())
    for task in tasks:
        entry = results["tasks"][task]
        # levels in order, "all" only where it pools several (as the report shows them)
        for level, cells in iter_levels(entry["levels"]):
            row = [task, level]
            for mode in (*results["modes"], *(["understanding"] if with_u else [])):
                cell = cells.get(mode)
                row.append("-" if cell is None else
                           f"{percent(cell['accuracy'])} [{percent(cell['ci95'][0])}, {percent(cell['ci95'][1])}]"
                           f" (n={cell['n']})"
                           + (f" [{cell['n_error']} err]" if cell["n_error"] else ""))
            if with_u:  # signed, as the report shows it: a negative gap is G above U
                row += ["-" if cells["gap"].get(m) is None else f"{100 * cells['gap'][m]:+.1f}"
                        for m in results["modes"]]
            rows.append(row)
    headers = ["task", "level", *results["modes"],
               *(["U", *[f"gap U-{m}" for m in results["modes"]]] if with_u else [])]
    click.echo(table(rows, headers))


@click.command("eval")
@click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False),
              help="A run.toml (layout above); the command line wins, and --task-arg applies to "
                   "its tasks too.")
@click.option("--model", help="Registered model name (see `unisandbox models list`).")
@arg_option("model", "model factory (e.g. path=DIR)")
@click.option("--task", "tasks", multiple=True, help="Task name; repeat for several.")
@arg_option("task", "task factories (e.g. n=50, world=glyph, path=FILE; math-1:counts=1-3 for one task only)")
@click.option("--judge", help="Judge name (see `unisandbox judges list`); not needed with --mode none.")
@arg_option("judge", "judge factory (e.g. base_url=..., model=...)")
@click.option("--mode", "modes", default=None, metavar="MODES",
              help="Comma-separated generation modes: normal, think; none measures understanding "
                   "(U) alone, with no judge  [default: normal,think].")
@click.option("--out", type=OutPath(file_okay=False),
              help="Run folder (required, here or in --config). An existing folder with the same "
                   "configuration is resumed.")
@click.option("--seed", type=int, default=None, help="Run seed  [default: 0].")
@click.option("--batch-size", type=int, default=None, help="Samples per batch  [default: 16].")
@click.option("--understanding/--no-understanding", default=None,
              help="Also measure U (the model's text answer to each item's question)  [default: on].")
@click.option("--reference-scoring", is_flag=True, default=None,
              help="Count judge errors as wrong, exactly like the original scorer.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@json_option
def eval_command(config_file: Path | None, model: str | None, model_args: tuple[str, ...],
                 tasks: tuple[str, ...], task_args: tuple[str, ...], judge: str | None,
                 judge_args: tuple[str, ...], modes: str | None, out: Path | None,
                 seed: int | None, batch_size: int | None, understanding: bool | None,
                 reference_scoring: bool | None, quiet: bool, as_json: bool) -> None:
    """Evaluate a model: generate images, judge them, measure U, aggregate.

    \b
    Example (the sandbox world, exact judge):
      unisandbox eval --model glyph-oracle --task math-1 --task math-2 \\
          --task-arg world=glyph --judge glyph --mode normal,think --out runs/oracle

    Writes config.json, images/<task>/<mode>/<id>.png, samples.jsonl and results.json in
    --out. Run the same command again to resume an interrupted run (the images whose
    verdict was an error are judged again).

    \b
    A run.toml for --config (every key optional but model, tasks, judge and out; the
    command line may give them; no judge with modes = ["none"]):
      out = "runs/math"
      modes = ["normal", "think"]      # --mode
      seed = 0
      batch_size = 16
      understanding = true
      reference_scoring = false
      [model]
      name = "query-tiny"
      args = { steps = 10 }            # --model-arg
      [[tasks]]
      name = "math-1"
      args = { n = 50, world = "glyph" }
      [judge]
      name = "glyph"
    """
    from ..run.config import parse_modes, parse_pairs, resolve
    from ..run.runner import Runner

    config = resolve(
        config_file=config_file, model=model, model_args=parse_pairs(model_args, "--model-arg"),
        tasks=tasks, task_args=parse_pairs(task_args, "--task-arg"), judge=judge,
        judge_args=parse_pairs(judge_args, "--judge-arg"), out=out,
        modes=parse_modes(modes) if modes is not None else None, seed=seed,
        batch_size=batch_size, understanding=understanding,
        reference_scoring=reference_scoring or None,
    )
    runner = Runner(config, progress=not quiet and not as_json)
    results = runner.run()
    from ..distributed import get_dist

    if not get_dist().is_main:  # under torchrun one process reports
        return
    if as_json:
        echo_json({**results, "run_folder": str(config.out)})
    else:
        print_results(results, order=[t.name for t in runner.tasks])
        click.echo(f"\nrun folder: {config.out}")


@click.command()
@click.argument("source", type=click.Path(path_type=Path, exists=True))
@click.option("--task", "task_name", required=True, help="The task the images answer.")
@arg_option("task", "task factory (TASK:key=value is taken too, as eval takes it)")
@click.option("--judge", required=True, help="Judge name.")
@arg_option("judge", "judge factory")
@click.option("--mode", default="normal", show_default=True,
              help="Which mode the images are (a label; for a run folder, the sub-folder read).")
@click.option("--out", type=OutPath(file_okay=False), default=None,
              help="Run folder to write  [default: SOURCE/score-JUDGE-MODE for a run folder, else FOLDER/score].")
@click.option("--reference-scoring", is_flag=True, help="Count judge errors as wrong.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@json_option
def score(source: Path, task_name: str, task_args: tuple[str, ...], judge: str,
          judge_args: tuple[str, ...], mode: str, out: Path | None, reference_scoring: bool,
          quiet: bool, as_json: bool) -> None:
    """Score images another tool produced (bring your own images).

    SOURCE is a folder of images named like the published scorer expects (<id>.png; mapping
    <ID>_A.png and <ID>_B.png), a single image (for a one-sample task), or a run folder
    (images/<task>/<mode>/ is read). Missing images score wrong.
    """
    from ..run.config import parse_pairs, task_args_by_name
    from ..run.scoring import score_images

    mine = task_args_by_name(parse_pairs(task_args, "--task-arg"), [task_name])[task_name]
    results = score_images(
        source, task_name=task_name, task_args=mine,
        judge_name=judge, judge_args=parse_pairs(judge_args, "--judge-arg"), mode=mode,
        out=out, reference_scoring=reference_scoring, progress=not quiet and not as_json,
    )
    if as_json:
        echo_json(results)
    else:
        print_results(results)
