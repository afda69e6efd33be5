"""Shared pytest fixtures and the real-data / HIL switches."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# repository tools (the protocol generator, the emulator harness wrapper) are not part of the package
sys.path.insert(0, str(ROOT / "tools"))

# HIL fixtures (real firmware in simavr): emulator_build, emulated_dut -- see tests/_hil_fixtures.py
from _hil_fixtures import emulated_dut, emulator_build  # noqa: F401
# synthetic NWB sessions for the dopamine-analysis tests, written once per run -- see tests/_neural_support.py
from _neural_support import rw_sessions  # noqa: F401

REAL_DATA = ROOT.parent / "shared" / "data" / "real"
FIRMWARE_BUILDERS = {"test_firmware_host.py"}   # modules that run make in firmware/ themselves
BROWSER_TESTS = {"test_dashboard.py"}            # headless Chromium (one at a time: it is the heaviest process)


@pytest.hookimpl(tryfirst=True)   # before xdist's worker hook, which reads the groups into the node ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Groups for ``pytest -n N --dist loadgroup`` (make test): each group's tests run in one worker, one
    after another.

    * ``firmware``: tests that build or run the firmware (make in firmware/ and emulator/, the emulated rig):
      two makes in the same folder at once would race.
    * ``browser``: the dashboard in headless Chromium (one browser at a time).
    No test uses a fixed network port (the dashboard takes a free one, Chromium talks over a pipe, the
    emulator and the simulated rig over ptys and in-process links); tests write under their own ``tmp_path``
    (test_wheel.py alone also builds in the source tree's build/)."""
    uses_emulator: dict[Path, bool] = {}
    for item in items:
        # a module may take the emulated rig at run time (request.getfixturevalue("emulated_dut"), or the
        # two-device `dut` fixture it imports from test_rig_scenarios), as the
        # scenarios and resets run on both devices): its fixtures do not show it, its text does.  Outside the
        # group, another worker's session-scoped emulator_build re-linked dopa_emu while this one ran it
        # ("Text file busy")
        path = Path(item.path)
        if path not in uses_emulator:
            text = path.read_text() if path.suffix == ".py" else ""
            uses_emulator[path] = any(w in text for w in ("emulated_dut", "emulator_build", "import dut"))
        if ("emulator_build" in getattr(item, "fixturenames", ()) or item.path.name in FIRMWARE_BUILDERS
                or uses_emulator[path]):
            item.add_marker(pytest.mark.xdist_group("firmware"))
            item.add_marker(pytest.mark.realtime)
        elif item.path.name in BROWSER_TESTS:
            item.add_marker(pytest.mark.xdist_group("browser"))


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Under ``--dist loadgroup`` xdist writes each item's group into its node id (``...@firmware``); if a
    pytest or xdist upgrade stops that, the groups would be ignored without a word and two workers would
    build and run the emulator at once (CI once failed so).  Say so instead."""
    if not session.config.getoption("loadgroup", default=False):
        return
    lost = [i.nodeid for i in session.items if any(True for _ in i.iter_markers("xdist_group")) and "@" not in i.nodeid]
    if lost:
        raise pytest.UsageError(f"xdist groups are ignored by this pytest/pytest-xdist pair ({len(lost)} tests, "
                                f"e.g. {lost[0]}): install the versions pyproject.toml names")


def require_real_data() -> Path:
    """Path of the real recordings beside the project; skip when absent unless CI demands them."""
    if REAL_DATA.is_dir():
        return REAL_DATA
    if os.environ.get("DOPA_RL_REQUIRE_DATA") == "1":
        pytest.fail(f"real data folder {REAL_DATA} is missing and DOPA_RL_REQUIRE_DATA=1")
    pytest.skip(f"real data folder {REAL_DATA} not present")


@pytest.fixture
def real_data() -> Path:
    return require_real_data()
