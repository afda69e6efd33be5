"""pyproject.toml tells the truth: package-data globs match files, extras are used by the package."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "dopa_rl"


def _project():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_package_data_entries_match_files():
    data = _project()["tool"]["setuptools"]["package-data"]
    for package, globs in data.items():
        base = ROOT / "src" / Path(*package.split("."))
        for g in globs:
            assert list(base.glob(g)), f"package-data {package}: {g} matches no file"


def test_every_extra_is_imported_by_the_package():
    extras = _project()["project"].get("optional-dependencies", {})
    source = "\n".join(p.read_text() for p in SRC.rglob("*.py"))
    for extra, reqs in extras.items():
        if extra == "dev":
            continue
        for req in reqs:
            name = re.split(r"[\[<>=!~ ;]", req, maxsplit=1)[0].replace("-", "_")
            assert re.search(rf"^\s*(import|from)\s+{name}\b", source, re.M), f"extra [{extra}]: {name} is never imported"


def test_commands_do_not_import_the_dispatcher():
    for path in (SRC / "commands").glob("*.py"):
        assert "dopa_rl.cli" not in path.read_text(), f"{path.name} imports dopa_rl.cli; use dopa_rl.commands.common"
