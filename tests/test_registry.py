"""Plugin discovery and the registry's rules: broken, refused, duplicate, filtered."""

from __future__ import annotations

import json

import pytest
from support import run_cli
from unisandbox.errors import UserError
from unisandbox.registry import get_registry

GOOD = '''
from unisandbox.hookspecs import hookimpl
from unisandbox.specs import ModelSpec
PLUGIN_API_VERSION = 1

@hookimpl
def register_models(register):
    register(ModelSpec(name="{name}", factory=dict, description="a model", capabilities={{"chat"}}))
'''


def test_third_party_plugin_is_discovered_through_its_entry_point(toy_plugin):
    reg = get_registry()
    spec = reg.model("toy-painter")
    assert (spec.distribution, spec.version) == ("toy-unisandbox", "0.3")
    assert spec.capabilities == {"generate", "chat"}
    assert reg.task("toy-shades").distribution == "toy-unisandbox"
    info = {p.name: p for p in reg.plugins}["toy"]
    assert info.status == "ok"
    assert set(info.provides) == {"model:toy-painter", "task:toy-shades", "judge:toy-pixel"}


def test_broken_plugin_is_listed_and_the_rest_keeps_working(toy_plugin, plugin_site, tmp_path):
    plugin_site("broken-dist", "2.0", {"broken_mod": "import no_such_module_xyz\n"},
                {"broken": "broken_mod"})
    reg = get_registry()
    broken = {p.name: p for p in reg.plugins}["broken"]
    assert broken.status == "broken"
    assert "no_such_module_xyz" in broken.error and broken.distribution == "broken-dist"
    assert reg.model("toy-painter")  # others unaffected

    listed = run_cli("plugins", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert rows["broken"]["status"] == "broken" and rows["toy"]["status"] == "ok"

    out = tmp_path / "run"
    result = run_cli("eval", "--model", "toy-painter", "--task", "toy-shades", "--judge",
                     "toy-pixel", "--out", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    assert (out / "results.json").is_file()


def test_a_failing_hook_marks_the_plugin_broken(plugin_site):
    source = GOOD.format(name="x").replace('register(ModelSpec(', 'raise RuntimeError("boom"); register(ModelSpec(')
    plugin_site("hook-fails", "1.0", {"hook_fails": source}, {"hookfails": "hook_fails"})
    info = {p.name: p for p in get_registry().plugins}["hookfails"]
    assert info.status == "broken" and "boom" in info.error and "register_models" in info.error


def test_duplicate_names_fail_naming_both_distributions(plugin_site):
    plugin_site("dist-one", "1.0", {"mod_one": GOOD.format(name="same")}, {"one": "mod_one"})
    plugin_site("dist-two", "2.5", {"mod_two": GOOD.format(name="same")}, {"two": "mod_two"})
    reg = get_registry()
    with pytest.raises(UserError) as err:
        reg.model("same")
    assert "dist-one 1.0" in str(err.value) and "dist-two 2.5" in str(err.value)
    statuses = {p.name: p.status for p in reg.plugins}
    assert statuses["one"] == statuses["two"] == "conflict"
    # two entry points of one distribution: the message names the entry points
    plugin_site("dist-three", "1.0", {"mod_a": GOOD.format(name="twin"), "mod_b": GOOD.format(name="twin")},
                {"ep_a": "mod_a", "ep_b": "mod_b"})
    info = {p.name: p for p in get_registry(reload=True).plugins}["ep_a"]
    assert "registered by both entry points ep_a and ep_b of dist-three" in info.error
    with pytest.raises(UserError, match=r"'twin' is registered twice by dist-three 1.0 \(entry points ep_a and ep_b\)"):
        get_registry().model("twin")


def test_a_plugin_taking_a_built_in_name_is_ignored_marked_and_told_to_rename(plugin_site):
    plugin_site("dist-dup", "1.0", {"mod_dup": GOOD.format(name="glyph-oracle")}, {"dup": "mod_dup"})
    reg = get_registry()
    assert reg.model("glyph-oracle").distribution == "unisandbox"  # the built-in keeps working
    info = {p.name: p for p in reg.plugins}
    assert info["dup"].status == "conflict" and "rename it in dist-dup" in info["dup"].error
    assert info["tasks"].status == info["models"].status == info["glyph"].status == "ok"


def test_a_name_registered_twice_by_one_plugin_keeps_the_first_and_says_so(plugin_site):
    source = GOOD.format(name="twice").replace(
        "capabilities={\"chat\"}))", "capabilities={\"chat\"}))\n    register(ModelSpec(name=\"twice\", "
        "factory=list, description=\"again\", capabilities=set()))")
    plugin_site("dist-twice", "1.0", {"mod_twice": source}, {"twice": "mod_twice"})
    reg = get_registry()
    assert reg.model("twice").description == "a model"
    info = {p.name: p for p in reg.plugins}["twice"]
    assert info.status == "conflict" and "registers model 'twice' twice" in info.error


def test_a_misspelt_hook_is_a_broken_plugin_with_a_suggestion(plugin_site):
    source = GOOD.format(name="typo").replace("def register_models", "def register_model")
    plugin_site("dist-typo", "1.0", {"mod_typo": source}, {"typo": "mod_typo"})
    info = {p.name: p for p in get_registry().plugins}["typo"]
    assert info.status == "broken"
    assert info.error.startswith("unknown hook register_model (did you mean register_models?) (")
    assert info.error.endswith("mod_typo.py:6)")  # where the misnamed hook starts (its decorator)


def test_plugin_authors_mistakes_are_contained_and_explained(plugin_site):
    """An entry point naming an object, a hook without @hookimpl, a hook with a wrong argument
    name, a syntax error: each plugin is listed broken with the whole reason on one line, and
    where it can be told, the plugin's own file; the rest keeps working."""
    plugin_site("odd-dist", "1.0", {
        "obj_mod": GOOD.format(name="objm") + "class P:\n    pass\nINSTANCE = P()\n",
        "unmarked_mod": GOOD.format(name="unm").replace("@hookimpl\n", ""),
        "argname_mod": GOOD.format(name="argn").replace("register_models(register)", "register_models(reg)"),
        "syntax_mod": "PLUGIN_API_VERSION = 1\ndef broken(:\n", "fine_mod": GOOD.format(name="fine"),
    }, {"objinst": "obj_mod:INSTANCE", "unmarked": "unmarked_mod", "argname": "argname_mod",
        "syntax": "syntax_mod", "fine": "fine_mod"})
    infos = {p.name: p for p in get_registry(reload=True).plugins}
    assert infos["objinst"].status == "broken" and "loads a P, not a module" in infos["objinst"].error
    assert infos["unmarked"].status == "broken" and "not marked @hookimpl" in infos["unmarked"].error
    assert infos["argname"].status == "broken" and "\n" not in infos["argname"].error
    assert "can not be found in the hookspec" in infos["argname"].error
    assert "_manager.py" not in infos["argname"].error  # pluggy's line is not the author's
    assert "syntax_mod.py:2)" in infos["syntax"].error and "<frozen" not in infos["syntax"].error
    assert get_registry().model("fine") is not None  # the same distribution's good module loads


def test_odd_module_attributes_and_a_specname_hook_are_not_misnamed_hooks(plugin_site):
    source = GOOD.format(name="odd").replace("def register_models", "def my_models").replace(
        "@hookimpl", '@hookimpl(specname="register_models")') + '''
class AttrDict(dict):
    __getattr__ = dict.__getitem__


class Anything:
    def __getattr__(self, name):
        return {"specname": "nope"}


CFG = AttrDict(n=3)
EVERYTHING = Anything()
'''
    plugin_site("dist-odd", "1.0", {"mod_odd": source}, {"odd": "mod_odd"})
    reg = get_registry()
    info = {p.name: p for p in reg.plugins}["odd"]
    assert info.status == "ok", info.error
    assert reg.model("odd").distribution == "dist-odd"


@pytest.mark.parametrize("name", ["名字", "x²", "--help", "a/b", ""])
def test_record_names_are_ascii_and_start_with_a_letter_or_digit(plugin_site, name):
    plugin_site("dist-name", "1.0", {"mod_name": GOOD.format(name=name)}, {"badname": "mod_name"})
    info = {p.name: p for p in get_registry().plugins}["badname"]
    assert info.status == "broken" and "must be ASCII letters" in info.error
    assert "mod_name.py" in info.error  # the plugin's line, not the engine's check


def test_a_factory_must_be_callable(plugin_site):
    plugin_site("dist-fac", "1.0", {"mod_fac": GOOD.format(name="fac").replace("factory=dict", "factory=3")},
                {"fac": "mod_fac"})
    info = {p.name: p for p in get_registry().plugins}["fac"]
    assert info.status == "broken" and "factory must be callable" in info.error


def test_a_name_in_unisandbox_plugins_that_matches_nothing_is_listed(toy_plugin, monkeypatch):
    monkeypatch.setenv("UNISANDBOX_PLUGINS", "toy,tyo")
    info = {p.name: p for p in get_registry(reload=True).plugins}
    assert info["toy"].status == "ok" and info["tyo"].status == "missing"
    assert "UNISANDBOX_PLUGINS names it" in info["tyo"].error
    with pytest.raises(UserError, match=r"UNISANDBOX_PLUGINS=toy,tyo limits which plugins load"):
        get_registry().model("query-tiny")


def test_plugin_for_another_api_version_is_refused(plugin_site):
    plugin_site("future-dist", "9.0", {"future_mod": GOOD.format(name="future").replace(
        "PLUGIN_API_VERSION = 1", "PLUGIN_API_VERSION = 7")}, {"future": "future_mod"})
    plugin_site("undeclared-dist", "1.0", {"undeclared_mod": GOOD.format(name="und").replace(
        "PLUGIN_API_VERSION = 1", "")}, {"undeclared": "undeclared_mod"})
    plugin_site("text-dist", "1.0", {"text_mod": GOOD.format(name="txt").replace(
        "PLUGIN_API_VERSION = 1", "PLUGIN_API_VERSION = '1'")}, {"text": "text_mod"})
    reg = get_registry()
    info = {p.name: p for p in reg.plugins}
    assert info["future"].status == "refused" and "plugin API 7" in info["future"].error
    assert info["text"].status == "refused" and "PLUGIN_API_VERSION must be an int" in info["text"].error
    assert info["undeclared"].status == "refused" and "PLUGIN_API_VERSION" in info["undeclared"].error
    with pytest.raises(UserError, match="unknown model 'future'"):
        reg.model("future")


def test_registering_the_wrong_record_type_is_a_broken_plugin(plugin_site):
    source = GOOD.format(name="x").replace("def register_models", "def register_tasks")
    plugin_site("wrong-type", "1.0", {"wrong_type": source}, {"wrongtype": "wrong_type"})
    info = {p.name: p for p in get_registry().plugins}["wrongtype"]
    assert info.status == "broken" and "expected TaskSpec" in info.error


def test_unisandbox_plugins_restricts_loading(toy_plugin, plugin_site, monkeypatch):
    plugin_site("dist-one", "1.0", {"mod_one": GOOD.format(name="one-model")}, {"one": "mod_one"})
    monkeypatch.setenv("UNISANDBOX_PLUGINS", "toy")
    reg = get_registry(reload=True)
    assert "toy-painter" in reg.records["model"] and "one-model" not in reg.records["model"]
    monkeypatch.setenv("UNISANDBOX_PLUGINS", "dist-one")  # a distribution name works too
    reg = get_registry(reload=True)
    assert "one-model" in reg.records["model"] and "toy-painter" not in reg.records["model"]
    monkeypatch.setenv("UNISANDBOX_PLUGINS", "")
    reg = get_registry(reload=True)
    assert {p.distribution for p in reg.plugins} == {"unisandbox"}


def test_unknown_name_lists_what_is_available(toy_plugin):
    with pytest.raises(UserError, match=r"unknown judge 'nope'; available: .*toy-pixel"):
        get_registry().judge("nope")


def test_a_misspelt_name_gets_a_did_you_mean(toy_plugin):
    with pytest.raises(UserError, match=r"unknown task 'math1' \(did you mean 'math-1'\?\); available: .*math-2"):
        get_registry().task("math1")
    with pytest.raises(UserError, match=r"unknown model 'toy-paynter' \(did you mean 'toy-painter'\?\)"):
        get_registry().model("toy-paynter")
    with pytest.raises(UserError, match=r"unknown judge 'nope'; available:"):  # nothing close
        get_registry().judge("nope")
