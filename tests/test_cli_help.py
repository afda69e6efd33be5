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


def test_every_file_the_readme_commands_read_is_explained_or_made_first():
    """A new user meets `lab.tsv` or `trials.csv`: each input file of a README command is written by an earlier
    README command (its --out) or explained in the README's text (`name` or a "name:" comment)."""
    import re
    import shlex

    made, unexplained = set(), []
    lines = README.splitlines()
    prose = "\n".join(line for line in lines if not line.startswith("dopa-rl "))
    for line in lines:
        if not line.startswith("dopa-rl "):
            continue
        words = shlex.split(line.split("  #")[0])
        for i, w in enumerate(words[2:], 2):
            if words[i - 1] in ("--out",):
                made.add(w.rstrip("/"))
                continue
            if words[i - 1].startswith("--") or w.startswith("-"):
                continue
            if re.search(r"\.(csv|tsv|nwb)$", w) or w.endswith("/"):
                name = w.rstrip("/")
                if any(name == m or name.startswith(m + "/") for m in made):
                    continue
                if f"`{name}`" in prose or f"`{name}/`" in prose or f"{name}:" in prose:
                    continue
                unexplained.append(name)
    assert not unexplained, f"README commands read files it never explains: {sorted(set(unexplained))}"
