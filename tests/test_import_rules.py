"""DESIGN section 2's import rules, checked with import-linter (contracts in pyproject.toml, [tool.importlinter]).

Indirect imports count: fit may not reach io through a third module either.  The graph check is not
vacuous: it must see the imports the command line really makes, and it must break on a forbidden one.
"""
from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

import dopa_rl

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def _lint(config: Path) -> int:
    from importlinter.cli import lint_imports

    src = str(Path(dopa_rl.__file__).resolve().parents[1])
    if src not in sys.path:
        sys.path.insert(0, src)
    return lint_imports(config_filename=str(config), no_cache=True, no_logo=True)


def test_design_import_rules_hold():
    assert _lint(PYPROJECT) == 0


def test_the_graph_sees_real_imports():
    import grimp

    graph = grimp.build_graph("dopa_rl", cache_dir=None)
    assert graph.direct_import_exists(importer="dopa_rl.commands.fit", imported="dopa_rl.fit.schedulers")
    assert graph.direct_import_exists(importer="dopa_rl.fit.results", imported="dopa_rl.results")
    assert graph.chain_exists(importer="dopa_rl.commands.regress", imported="dopa_rl.io.atomic")


def test_a_forbidden_import_breaks_the_contract(tmp_path):
    """The commands import fit (allowed); a contract forbidding it must break, so the test can fail."""
    config = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]
    bad = tmp_path / "bad.toml"
    bad.write_text(f'[tool.importlinter]\nroot_package = "{config["root_package"]}"\n\n'
                   '[[tool.importlinter.contracts]]\nname = "commands may not use fit (a wrong rule)"\n'
                   'type = "forbidden"\nsource_modules = ["dopa_rl.commands"]\nforbidden_modules = ["dopa_rl.fit"]\n')
    assert _lint(bad) == 1


@pytest.mark.parametrize("module", ["dopa_rl.fit.results", "dopa_rl.fit.compare", "dopa_rl.neural.regression"])
def test_results_write_files_without_importing_io(module):
    """fit/results.py -> io/atomic.py is gone: results reach io through the wiring of the package root."""
    import grimp

    graph = grimp.build_graph("dopa_rl", cache_dir=None)
    assert not graph.chain_exists(importer=module, imported="dopa_rl.io.atomic")
