"""``plugins list`` and ``models|tasks|judges|trainers list``: what is installed, from where."""

from __future__ import annotations

import inspect
import json
from typing import Any

import click

from ..registry import get_registry
from .common import echo_json, json_option, table


@click.group()
def plugins() -> None:
    """Installed plugins: where each name comes from, and which failed to load."""


@plugins.command("list")
@json_option
def plugins_list(as_json: bool) -> None:
    """List plugin modules with distribution, version, status and error.

    Status is ok, broken (import or hook failed, or a hook misnamed), refused (another plugin
    API version), conflict (a name registered twice, or a built-in's name taken) or missing (named
    in UNISANDBOX_PLUGINS, not installed). Set UNISANDBOX_PLUGINS=a,b to load only some.
    """
    registry = get_registry()
    if as_json:
        echo_json([p.to_json() for p in registry.plugins])
        return
    rows = [(p.name, p.distribution, p.version, p.status,
             ", ".join(p.provides) or p.error or "(registers nothing)")
            for p in registry.plugins]
    click.echo(table(rows, ["plugin", "distribution", "version", "status", "provides / error"]))
    problems = [p for p in registry.plugins if p.status != "ok"]
    for p in problems:
        click.echo(f"\n{p.name} ({p.distribution}) is {p.status}: {p.error}", err=True)


def _as_value(default: object) -> str:
    """A default as it is typed after ``KEY=`` (JSON: null, true, 0.05), else as Python shows it."""
    try:
        return json.dumps(default)
    except (TypeError, ValueError):
        return repr(default)


def component_arguments(kind: str, name: str) -> list[dict[str, Any]]:
    """A registered component's keyword arguments: name, default (absent when required) and
    the factory's note on it, as ``--KIND-arg KEY=VALUE`` takes them."""
    from ..factories import JUDGE_CONTEXT, argument_defaults

    spec = getattr(get_registry(), kind)(name)
    notes = getattr(spec.factory, "argument_notes", None) or {}
    context = JUDGE_CONTEXT if kind == "judge" else frozenset({"model_loader"})  # the engine's
    out = []
    for key, default in argument_defaults(spec):
        if key in context:
            continue
        entry: dict[str, Any] = {"name": key}
        if default is not inspect.Parameter.empty:
            entry["default"] = default
        if key in notes:
            entry["note"] = notes[key]
        out.append(entry)
    return out


def component_help(kind: str, name: str) -> list[str]:
    """What ``KIND show NAME`` (and ``train TRAINER --help``) print: where it comes from, what it
    needs or provides, every argument with its default."""
    from ..factories import ARG_FLAGS, accepted_arguments

    spec = getattr(get_registry(), kind)(name)
    what = "provides" if kind == "model" else "needs"
    caps = sorted(getattr(spec, "capabilities", None) or getattr(spec, "requires", ()) or ())
    lines = [f"{kind.capitalize()} {spec.name} ({spec.distribution} {spec.version}): {spec.description}",
             f"{what.capitalize()}: {', '.join(caps) or 'nothing special'}",
             "", f"{ARG_FLAGS[kind]} KEY=VALUE, for KEY in:"]
    arguments = component_arguments(kind, name)
    width = max((len(a["name"]) for a in arguments), default=0) + 1
    for a in arguments:
        shown = f"default {_as_value(a['default'])}" if "default" in a else "(required)"
        if "note" in a:
            shown += f": {a['note']}"
        lines.append(f"  {a['name']:<{width}}{shown}")
    if accepted_arguments(spec) is None:  # a factory taking **kwargs: it checks them itself
        lines.extend(_passed_on(kind, arguments))
    elif not arguments:
        lines.append("  (none)")
    return lines


def _passed_on(kind: str, arguments: list[dict[str, Any]]) -> list[str]:
    """What a factory taking ``**kwargs`` does with the other keywords. A task with a ``task``
    argument (a probe over base tasks, ``probe-lens``) hands them to the base task(s): listed
    here from an example base task, since "see the docs" sends the reader elsewhere."""
    if kind == "task" and any(a["name"] == "task" for a in arguments):
        registry = get_registry()
        bases = [s.name for s in registry.all("task") if not getattr(s, "analysis", False)]
        example = EXAMPLES["task"] if EXAMPLES["task"] in bases else next(iter(bases), None)
        if example is not None:
            keys = ", ".join(a["name"] for a in component_arguments("task", example))
            return [f"  + the arguments of the base task(s) named by task=, e.g. for {example}: "
                    f"{keys or '(none)'}", f"    (`unisandbox tasks show {example}` lists them "
                    "with defaults; one no base task takes is refused)"]
    return [f"  keywords the {kind}'s docs list (an unknown one is refused, naming the accepted ones)"]


#: a name of each kind for the help's example
EXAMPLES = {"model": "query-tiny", "task": "math-1", "trainer": "stars", "judge": "glyph"}


def _list_group(kind: str, extra_header: str, extra: str) -> click.Group:
    @click.group(name=kind + "s", help=f"Registered {kind}s.")
    def group() -> None:
        pass

    @group.command("list")
    @json_option
    def list_command(as_json: bool) -> None:
        specs = get_registry().all(kind)
        if as_json:
            echo_json([{"name": s.name, "description": s.description,
                        "distribution": s.distribution, "version": s.version,
                        extra: sorted(getattr(s, extra))} for s in specs])
            return
        rows = [(s.name, ", ".join(sorted(getattr(s, extra))), s.distribution, s.description)
                for s in specs]
        click.echo(table(rows, [kind, extra_header, "from", "description"]))

    list_command.help = (f"List registered {kind}s, the capabilities each {extra_header}, and the "
                         "distribution that registers it.")

    @group.command("show")
    @click.argument("name")
    @json_option
    def show_command(name: str, as_json: bool) -> None:
        spec = getattr(get_registry(), kind)(name)
        if as_json:
            echo_json({"name": spec.name, "kind": kind, "description": spec.description,
                       "distribution": spec.distribution, "version": spec.version,
                       extra: sorted(getattr(spec, extra)),
                       "arguments": json.loads(json.dumps(component_arguments(kind, name), default=repr))})
            return
        click.echo("\n".join(component_help(kind, name)))

    show_command.help = (f"One {kind}: where it comes from, what it {extra_header}, and every "
                         f"argument its factory takes, with defaults (e.g. `unisandbox {kind}s show "
                         f"{EXAMPLES[kind]}`).")
    return group


LIST_GROUPS = [
    _list_group("model", "provides", "capabilities"),
    _list_group("task", "requires", "requires"),
    _list_group("trainer", "requires", "requires"),
]
