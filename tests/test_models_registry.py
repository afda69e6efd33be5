"""The model registry: built once, options, run-time registration, entry-point plugins, user files."""
import subprocess
import sys
from pathlib import Path

import pytest

from dopa_rl.errors import InputError
from dopa_rl.models import (Model, Param, choice_model, get_model, list_models, model_names, register_model,
                            registry, unregister_model)

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _update(q, c, r, theta):
    q[c] += theta[0] * (r - q[c])


def test_each_model_is_built_once():
    assert get_model("rw-softmax") is get_model("rw-softmax")
    assert [m.name for m in list_models()][:2] == ["rw-softmax", "rw-softmax-lapse"]
    assert all(a is b for a, b in zip(list_models(), list_models()))


def test_existing_options_still_work():
    m = get_model("rw-softmax", q0=0.5, n_options=3)
    assert (m.q0, m.n_options, m.name) == (0.5, 3, "rw-softmax")
    assert get_model("rw-softmax").q0 == 0.0          # the shared instance is untouched
    td = get_model("td", representation="presence")
    assert td.representation == "presence" and td.name == "td"
    with pytest.raises(InputError, match="unknown option"):
        get_model("rw-softmax", gamma=0.3)
    with pytest.raises(InputError, match="takes no options"):
        get_model("rw-pavlovian", q0=1.0)
    with pytest.raises(InputError, match="unknown model 'nope'.*rw-softmax"):
        get_model("nope")


def test_register_model_then_get_and_list():
    m = choice_model("test-reg-rule", [Param("alpha", lower=0, upper=1)], _update)
    try:
        assert register_model(m) is m
        assert get_model("test-reg-rule") is m
        assert "test-reg-rule" in model_names() and m in list_models()
        assert get_model("test-reg-rule", q0=0.5).q0 == 0.5
        with pytest.raises(InputError, match="already registered"):
            register_model(choice_model("test-reg-rule", [Param("alpha", lower=0, upper=1)], _update))
        with pytest.raises(InputError, match="built-in"):
            register_model(choice_model("rw-softmax", [Param("alpha", lower=0, upper=1)], _update))
    finally:
        unregister_model("test-reg-rule")
    assert "test-reg-rule" not in model_names()


def test_listing_models_loads_no_numba_and_compiles_nothing():
    code = ("import sys; from dopa_rl.models import list_models; ms = list_models(); "
            "[m.describe() for m in ms]; print(len(ms), 'numba' in sys.modules, 'pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": SRC},
                         check=True).stdout.split()
    assert out == ["12", "False", "False"]
    code = ("import sys; from dopa_rl.cli import main; main(['models']); "
            "print('numba' in sys.modules, file=sys.stderr)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": SRC})
    assert r.returncode == 0 and "rw-softmax" in r.stdout and r.stderr.strip() == "False"


PLUGIN = '''
from dopa_rl.models import Param, choice_model

def _rule(q, c, r, theta):
    q[c] += theta[0] * (r - q[c])

def build():
    return choice_model("plugin-rule", [Param("alpha", lower=0, upper=1)], _rule)

LOADED = True
'''


def test_entry_point_plugin_is_found_and_loaded_lazily(tmp_path, monkeypatch):
    (tmp_path / "my_plugin_mod.py").write_text(PLUGIN)
    dist = tmp_path / "my_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[dopa_rl.models]\nplugin-rule = my_plugin_mod:build\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.forget_plugins()
    try:
        assert "plugin-rule" in model_names()
        assert "my_plugin_mod" not in sys.modules          # named, not imported
        m = get_model("plugin-rule")
        assert m.name == "plugin-rule" and m.param_names == ["alpha", "beta"]
        assert get_model("plugin-rule") is m
        assert m in list_models()
    finally:
        monkeypatch.undo()
        registry.forget_plugins()
        sys.modules.pop("my_plugin_mod", None)


def test_user_file_and_module_specs(tmp_path, monkeypatch):
    f = tmp_path / "mymodels.py"
    f.write_text(PLUGIN + "\nMODEL = build()\nNOT_A_MODEL = 3\n")
    m = get_model(f"{f}:MODEL")
    assert isinstance(m, Model) and m.name == "plugin-rule"
    assert get_model(f"{f}:MODEL") is m                      # the file is loaded once
    assert get_model(f"{f}:build").name == "plugin-rule"      # a function returning a model
    monkeypatch.syspath_prepend(str(tmp_path))
    assert get_model("mymodels:MODEL").name == "plugin-rule"
    with pytest.raises(InputError, match="not found"):
        get_model(f"{tmp_path / 'missing.py'}:MODEL")
    with pytest.raises(InputError, match="has no model 'NOPE'.*it defines: MODEL"):
        get_model(f"{f}:NOPE")
    with pytest.raises(InputError, match="not a model"):
        get_model(f"{f}:NOT_A_MODEL")
    with pytest.raises(InputError, match="no module named 'no_such_pkg_xyz'"):
        get_model("no_such_pkg_xyz.models:MODEL")
    bad = tmp_path / "broken.py"
    bad.write_text("raise RuntimeError('oops')\n")
    with pytest.raises(InputError, match="failed to load: RuntimeError: oops"):
        get_model(f"{bad}:MODEL")
