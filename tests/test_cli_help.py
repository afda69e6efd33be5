"""Every registered command answers --help with an example (DESIGN section 7), and the README lists it."""
from __future__ import annotations

from pathlib import Path

import pytest

from dopa_rl.cli import COMMANDS, main

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


@pytest.mark.parametrize("name", [c[0] for c in COMMANDS])
def test_help_has_an_example(name, capsys):
    assert main([name, "--help"]) == 0
    assert "Example" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["distributional", "kernels", "regress", "photometry"])
def test_readme_shows_the_dopamine_commands(name):
    assert f"dopa-rl {name} " in README
