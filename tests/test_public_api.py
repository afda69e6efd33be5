"""Public modules say what they export (``__all__``), every exported name exists, and every exported function
and class has a docstring (DESIGN section 8; issue 15 item 4)."""
from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import dopa_rl


def _public_modules() -> list[str]:
    out = []
    for m in pkgutil.walk_packages(dopa_rl.__path__, "dopa_rl."):
        parts = m.name.split(".")
        if any(p.startswith("_") for p in parts[1:]) or parts[1] == "commands":
            continue
        out.append(m.name)
    return sorted(out)


MODULES = _public_modules()


def test_the_walk_finds_the_package():
    assert {"dopa_rl.results", "dopa_rl.fit.results", "dopa_rl.io.nwb_results", "dopa_rl.cli"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_public_module_declares_all_with_documented_names(name):
    mod = importlib.import_module(name)
    if not mod.__file__.endswith("__init__.py"):
        assert hasattr(mod, "__all__"), f"{name} has no __all__"
    exported = list(getattr(mod, "__all__", []))
    missing = [n for n in exported if not hasattr(mod, n)]
    assert not missing, f"{name}.__all__ names what it lacks: {missing}"
    undocumented = []
    for n in exported:
        obj = getattr(mod, n)
        if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == name:
            if not (inspect.getdoc(obj) or "").strip():
                undocumented.append(n)
    assert not undocumented, f"{name}: no docstring for {undocumented}"


@pytest.mark.parametrize("obj", ["dopa_rl.testing.conformance:check_model", "dopa_rl.results:Result.to_nwb",
                                 "dopa_rl.results:Result.to_json"])
def test_central_entry_points_have_their_parameters_documented(obj):
    where, _, attr = obj.partition(":")
    target = importlib.import_module(where)
    for part in attr.split("."):
        target = getattr(target, part)
    doc = inspect.getdoc(target)
    params = [p for p in inspect.signature(target).parameters if p not in ("self", "cls")]
    assert all(p in doc for p in params), (obj, params)
