"""Collect models, tasks, judges and trainers from the built-ins and installed plugins.

Rules (see PLUGINS.md): a plugin whose import or hook fails is listed as *broken* and the rest
keep working; a plugin written for another plugin API is *refused*; two records with one name
are a *conflict* and using that name is an error naming both distributions;
``UNISANDBOX_PLUGINS=a,b`` loads only those entry points (or distributions), empty = built-ins.
"""

from __future__ import annotations

import importlib
import os
import traceback
from collections.abc import Callable, Iterable
from importlib import metadata
from types import ModuleType
from typing import Any

import attrs
import pluggy

from . import PLUGIN_API_VERSION, __version__, hookspecs
from .errors import UserError
from .specs import JudgeSpec, ModelSpec, Spec, TaskSpec, TrainerSpec

BUILTIN_MODULES = (
    "unisandbox.builtins.tasks",
    "unisandbox.builtins.judges",
    "unisandbox.builtins.models",
    "unisandbox.builtins.glyph",
)
KINDS = ("model", "task", "judge", "trainer")
BUILTIN_DISTRIBUTION = "unisandbox"
_KIND_OF_HOOK = {"register_models": "model", "register_tasks": "task",
                 "register_judges": "judge", "register_trainers": "trainer"}


@attrs.define
class PluginInfo:
    """One loaded (or not) plugin module, as ``unisandbox plugins list`` shows it."""

    name: str
    distribution: str
    version: str
    status: str = "ok"  # ok | broken | refused | conflict | missing (named in UNISANDBOX_PLUGINS only)
    error: str = ""
    provides: list[str] = attrs.field(factory=list)

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


class Registry:
    """Every registered record by kind and name, plus the plugins they came from."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Spec]] = {k: {} for k in KINDS}
        self.conflicts: dict[tuple[str, str], list[Spec]] = {}
        self.plugins: list[PluginInfo] = []

    # --- lookup -------------------------------------------------------------------------
    def get(self, kind: str, name: str) -> Any:
        if (kind, name) in self.conflicts:
            specs = self.conflicts[kind, name]
            owners = " and ".join(f"{s.distribution} {s.version}" for s in specs)
            plugins = [s.distribution for s in specs if s.distribution != BUILTIN_DISTRIBUTION]
            fix = (f"{kind} names built into unisandbox are reserved: {', '.join(plugins)} must "
                   "register it under another name" if len(plugins) < len(specs) else
                   "Uninstall one, or load only one with UNISANDBOX_PLUGINS=<entry point>.")
            raise UserError(f"{kind} {name!r} is registered by two distributions: {owners}. {fix}")
        try:
            return self.records[kind][name]
        except KeyError:
            known = ", ".join(sorted(self.records[kind])) or "none"
            broken = [p.name for p in self.plugins if p.status != "ok"]
            hint = f" (plugins not loaded: {', '.join(broken)}; see `unisandbox plugins list`)" if broken else ""
            if _plugin_filter() is not None:
                hint += f" (UNISANDBOX_PLUGINS={os.environ['UNISANDBOX_PLUGINS']} limits which plugins load)"
            raise UserError(f"unknown {kind} {name!r}; available: {known}{hint}") from None

    def model(self, name: str) -> ModelSpec:
        return self.get("model", name)

    def task(self, name: str) -> TaskSpec:
        return self.get("task", name)

    def judge(self, name: str) -> JudgeSpec:
        return self.get("judge", name)

    def trainer(self, name: str) -> TrainerSpec:
        return self.get("trainer", name)

    def all(self, kind: str) -> list[Spec]:
        return [self.records[kind][n] for n in sorted(self.records[kind])]

    def versions(self) -> dict[str, str]:
        """distribution -> version of every plugin that loaded, for config.json."""
        return {p.distribution: p.version for p in self.plugins if p.status in ("ok", "conflict")}

    # --- building -----------------------------------------------------------------------
    def _add(self, kind: str, spec: Spec, info: PluginInfo) -> None:
        table = self.records[kind]
        if (kind, spec.name) in self.conflicts:
            self.conflicts[kind, spec.name].append(spec)
        elif spec.name in table:
            first = table.pop(spec.name)
            self.conflicts[kind, spec.name] = [first, spec]
            for p in self.plugins:  # the two modules that registered the name, not their siblings
                if p is info or (p.distribution == first.distribution and f"{kind}:{spec.name}" in p.provides):
                    p.status = "conflict"
                    p.error = (f"{kind} {spec.name!r} registered by both "
                               f"{first.distribution} and {spec.distribution}")
        else:
            table[spec.name] = spec
        info.provides.append(f"{kind}:{spec.name}")


def _selected(entry_point: metadata.EntryPoint, only: set[str] | None) -> bool:
    if only is None:
        return True
    dist = entry_point.dist.name if entry_point.dist else ""
    return entry_point.name in only or dist in only


def _plugin_filter() -> set[str] | None:
    raw = os.environ.get("UNISANDBOX_PLUGINS")
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def _short_error(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" ({last[0].filename}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _check_api(module: ModuleType) -> str | None:
    declared = getattr(module, "PLUGIN_API_VERSION", None)
    if declared is None:
        return (f"module {module.__name__} does not declare PLUGIN_API_VERSION; "
                f"add `PLUGIN_API_VERSION = {PLUGIN_API_VERSION}` (see PLUGINS.md)")
    if declared != PLUGIN_API_VERSION:
        return (f"written for plugin API {declared}, this unisandbox {__version__} provides "
                f"API {PLUGIN_API_VERSION}; upgrade the plugin or unisandbox")
    return None


def _candidates() -> Iterable[tuple[str, str, str, Callable[[], ModuleType]]]:
    for module_name in BUILTIN_MODULES:
        yield (module_name.rsplit(".", 1)[-1], BUILTIN_DISTRIBUTION, __version__,
               lambda m=module_name: importlib.import_module(m))
    only = _plugin_filter()
    for ep in sorted(metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP), key=lambda e: e.name):
        if _selected(ep, only):
            dist = ep.dist.name if ep.dist else "?"
            version = ep.dist.version if ep.dist else "?"
            yield ep.name, dist, version, ep.load


def _unmatched_filter() -> list[str]:
    """Names in UNISANDBOX_PLUGINS that no installed entry point or distribution has (a typo
    would otherwise load only the built-ins without a word)."""
    only = _plugin_filter()
    if not only:  # no filter (the usual start-up): nothing to look up
        return []
    eps = metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP)
    known = {ep.name for ep in eps} | {ep.dist.name for ep in eps if ep.dist}
    return sorted(only - known)


def build_registry() -> Registry:
    """Load every plugin and call its hooks one by one, so one failure stays contained."""
    registry = Registry()
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    loaded: list[tuple[ModuleType, PluginInfo]] = []
    for name in _unmatched_filter():
        registry.plugins.append(PluginInfo(name=name, distribution="?", version="?", status="missing",
                                           error="UNISANDBOX_PLUGINS names it, but no installed plugin "
                                                 "has this entry point or distribution name"))
    for name, dist, version, load in _candidates():
        info = PluginInfo(name=name, distribution=dist, version=version)
        registry.plugins.append(info)
        try:
            module = load()
        except Exception as exc:  # a broken plugin must not take the CLI down
            info.status, info.error = "broken", _short_error(exc)
            continue
        problem = _check_api(module)
        if problem:
            info.status, info.error = "refused", problem
            continue
        try:
            pm.register(module, name=f"{dist}:{name}")
        except Exception as exc:
            info.status, info.error = "broken", _short_error(exc)
            continue
        loaded.append((module, info))

    for module, info in loaded:
        for hook_name, kind in _KIND_OF_HOOK.items():
            impls = [i for i in getattr(pm.hook, hook_name).get_hookimpls() if i.plugin is module]
            for impl in impls:
                staged: list[Spec] = []
                record_type = hookspecs.HOOKS[hook_name]

                def register(spec: Spec, _type: type = record_type, _staged: list = staged) -> None:
                    if not isinstance(spec, _type):
                        raise TypeError(f"expected {_type.__name__}, got {type(spec).__name__}")
                    _staged.append(spec)

                try:
                    impl.function(register=register)
                except Exception as exc:
                    info.status, info.error = "broken", f"{hook_name}: {_short_error(exc)}"
                    continue
                for spec in staged:
                    stamped = attrs.evolve(spec, distribution=info.distribution, version=info.version)
                    registry._add(kind, stamped, info)
    return registry


_REGISTRY: Registry | None = None


def get_registry(reload: bool = False) -> Registry:
    """The process-wide registry, built on first use."""
    global _REGISTRY
    if _REGISTRY is None or reload:
        _REGISTRY = build_registry()
    return _REGISTRY


__all__ = ["JudgeSpec", "ModelSpec", "PluginInfo", "Registry", "TaskSpec", "TrainerSpec",
           "build_registry", "get_registry"]
