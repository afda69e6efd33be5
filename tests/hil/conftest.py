"""HIL test fixtures: every test in this folder is marked ``hil`` and gets a ``link`` to a fresh emulated
firmware (the ``emulated_dut`` fixture comes from tests/_hil_fixtures.py via tests/conftest.py)."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from hil_link import Link

from emulator_harness import EmulatedDUT


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/hil/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.hil)


@pytest.fixture
def link(emulated_dut: EmulatedDUT) -> Iterator[Link]:
    lk = Link(emulated_dut.url)
    try:
        yield lk
    finally:
        lk.close()
