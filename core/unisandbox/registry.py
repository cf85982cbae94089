"""Collect models, tasks, judges and trainers from the built-ins and installed plugins.

Rules (see PLUGINS.md): a plugin whose import or hook fails is listed as *broken* and the rest
keep working; a plugin written for another plugin API is *refused*; two records with one name
are a *conflict* and using that name is an error naming both distributions;
``UNISANDBOX_PLUGINS=a,b`` loads only those entry points (or distributions), empty = built-ins.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import sysconfig
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
            if len({s.distribution for s in specs}) == 1:  # two entry points of one package
                points = " and ".join(p.name for p in self.plugins if f"{kind}:{name}" in p.provides)
                raise UserError(f"{kind} {name!r} is registered twice by {specs[0].distribution} "
                                f"{specs[0].version} (entry points {points}): rename one in that package")
            owners = " and ".join(f"{s.distribution} {s.version}" for s in specs)
            fix = "Uninstall one, or load only one with UNISANDBOX_PLUGINS=<entry point>."
            raise UserError(f"{kind} {name!r} is registered by two distributions: {owners}. {fix}")
        try:
            return self.records[kind][name]
        except KeyError:
            known = ", ".join(sorted(self.records[kind])) or "none"
            broken = [p.name for p in self.plugins if p.status in ("broken", "refused", "missing")]
            hint = f" (plugins not loaded: {', '.join(broken)}; see `unisandbox plugins list`)" if broken else ""
            if _plugin_filter() is not None:
                hint += f" (UNISANDBOX_PLUGINS={os.environ['UNISANDBOX_PLUGINS']} limits which plugins load)"
            # as click does for a misspelt command: the likeliest name first, then all of them
            close = difflib.get_close_matches(name, list(self.records[kind]), n=1)
            guess = f" (did you mean {close[0]!r}?)" if close else ""
            raise UserError(f"unknown {kind} {name!r}{guess}; available: {known}{hint}") from None

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
        key = f"{kind}:{spec.name}"
        first = table.get(spec.name)
        if key in info.provides:  # one plugin module registering a name twice: the first stands
            _flag(info, f"registers {kind} {spec.name!r} twice; the first record is used")
            return
        if first is not None and first.distribution == BUILTIN_DISTRIBUTION:
            # the built-ins always load and keep their names: a plugin cannot take one over
            _flag(info, f"{kind} {spec.name!r} is a name built into unisandbox; this plugin's record is "
                        f"ignored (rename it in {spec.distribution})")
            return
        if (kind, spec.name) in self.conflicts:
            self.conflicts[kind, spec.name].append(spec)
            _flag(info, f"{kind} {spec.name!r} registered by more than one distribution")
        elif first is not None:
            table.pop(spec.name)
            self.conflicts[kind, spec.name] = [first, spec]
            owners = [p for p in self.plugins  # the two modules that registered the name, not their siblings
                      if p is info or (p.distribution == first.distribution and key in p.provides)]
            both = (f"{first.distribution} and {spec.distribution}" if first.distribution != spec.distribution
                    else f"entry points {' and '.join(p.name for p in owners)} of {spec.distribution}")
            for p in owners:
                _flag(p, f"{kind} {spec.name!r} registered by both {both}")
        else:
            table[spec.name] = spec
        info.provides.append(key)


def _flag(info: PluginInfo, problem: str) -> None:
    """Mark a plugin as in conflict, keeping every problem it has (``plugins list`` shows all)."""
    info.status = "conflict"
    if problem not in info.error.split("; "):
        info.error = f"{info.error}; {problem}" if info.error else problem


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


_ENGINE_DIR = os.path.dirname(os.path.abspath(__file__))


def _short_error(exc: BaseException) -> str:
    """The error and where it happened: the last line of the plugin's own code, not the
    engine's check that caught it (the line the plugin's author has to change)."""
    message = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    if isinstance(exc, SyntaxError) and exc.filename:  # the plugin's file, not the importer's
        return f"SyntaxError: {exc.msg} ({exc.filename}:{exc.lineno})"
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    engine, stdlib = os.path.join(_ENGINE_DIR, ""), os.path.join(sysconfig.get_paths()["stdlib"], "")
    outside = (stdlib, os.path.join(os.path.dirname(os.path.abspath(pluggy.__file__)), ""))
    own = [f for f in frames if not f.filename.startswith("<")  # attrs' generated __init__, importlib
           and not os.path.abspath(f.filename).startswith(outside)  # json.loads', pluggy's own lines
           and (not os.path.abspath(f.filename).startswith(engine)
                or os.path.join(_ENGINE_DIR, "builtins", "") in os.path.abspath(f.filename))]
    where = f" ({own[-1].filename}:{own[-1].lineno})" if own else ""
    return f"{type(exc).__name__}: {message}{where}"


def _check_api(module: ModuleType) -> str | None:
    declared = getattr(module, "PLUGIN_API_VERSION", None)
    if declared is None:
        return (f"module {module.__name__} does not declare PLUGIN_API_VERSION; "
                f"add `PLUGIN_API_VERSION = {PLUGIN_API_VERSION}` (see PLUGINS.md)")
    if type(declared) is not int:
        return (f"PLUGIN_API_VERSION must be an int (PLUGIN_API_VERSION = {PLUGIN_API_VERSION}), got "
                f"{declared!r}")
    if declared != PLUGIN_API_VERSION:
        return (f"written for plugin API {declared}, this unisandbox {__version__} provides "
                f"API {PLUGIN_API_VERSION}; upgrade the plugin or unisandbox")
    return None


def _unknown_hooks(module: ModuleType) -> str | None:
    """A hook implementation whose name is no hook (``register_model``): pluggy would keep it
    and never call it, so the plugin would load and register nothing, silently."""
    marker = f"{hookspecs.PROJECT}_impl"
    unknown = []
    for name in sorted(vars(module)):
        value = vars(module)[name]
        if not inspect.isroutine(value):  # pluggy looks at functions only
            continue
        opts = inspect.getattr_static(value, marker, None)
        if opts is None and name in _KIND_OF_HOOK and getattr(value, "__module__", None) == module.__name__:
            return (f"{name} is not marked @hookimpl, so it is never called: decorate it with "
                    f"`@hookimpl` (from unisandbox import hookimpl){_where(value)}")
        if isinstance(opts, dict) and (opts.get("specname") or name) not in _KIND_OF_HOOK:
            unknown.append((opts.get("specname") or name, value))
    if not unknown:
        return None
    hook, function = unknown[0]
    close = difflib.get_close_matches(hook, list(_KIND_OF_HOOK), n=1)
    hint = f" (did you mean {close[0]}?)" if close else f"; the hooks are {', '.join(_KIND_OF_HOOK)}"
    return f"unknown hook {hook}{hint}{_where(function)}"


def _where(function: Any) -> str:
    """`` (file:line)`` of a plugin's function, where it can be told."""
    code = getattr(inspect.unwrap(function), "__code__", None)
    return f" ({code.co_filename}:{code.co_firstlineno})" if code is not None else ""


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
        if not isinstance(module, ModuleType):
            info.status = "broken"
            info.error = (f"the entry point loads a {type(module).__name__}, not a module: name the "
                          "module that holds the hooks (`name = \"package.plugin\"`, no `:attr`)")
            continue
        problem = _check_api(module)
        if problem:
            info.status, info.error = "refused", problem
            continue
        try:
            unknown = _unknown_hooks(module)
        except Exception as exc:  # a module whose attributes misbehave when looked at
            unknown = _short_error(exc)
        if unknown:
            info.status, info.error = "broken", unknown
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
