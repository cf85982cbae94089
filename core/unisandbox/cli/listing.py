"""``plugins list`` and ``models|tasks|judges|trainers list``: what is installed, from where."""

from __future__ import annotations

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
    return group


LIST_GROUPS = [
    _list_group("model", "provides", "capabilities"),
    _list_group("task", "requires", "requires"),
    _list_group("trainer", "requires", "requires"),
]
