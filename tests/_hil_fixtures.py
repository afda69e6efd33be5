"""Fixtures that run the real firmware in the simavr emulator (imported by tests/conftest.py).

- ``emulator_build`` (session): builds firmware/build/dopa_rig.elf and emulator/build/dopa_emu once.
  Without the toolchain the test is skipped, unless ``DOPA_RL_REQUIRE_HIL=1`` (set by .ci/run): then it fails.
- ``emulated_dut``: a fresh :class:`emulator_harness.EmulatedDUT` (tools/) (firmware booted from reset) per
  test, closed afterwards; same interface as :class:`dopa_rl.testing.SimulatedDUT`.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import emulator_harness as emulator


def require_hil() -> None:
    """Skip (or fail under DOPA_RL_REQUIRE_HIL=1) when the AVR toolchain or simavr is missing."""
    why = emulator.toolchain_missing()
    if why is None:
        return
    if os.environ.get("DOPA_RL_REQUIRE_HIL") == "1":
        pytest.fail(f"HIL toolchain missing and DOPA_RL_REQUIRE_HIL=1: {why}")
    pytest.skip(f"HIL toolchain missing: {why}")


@pytest.fixture(scope="session")
def emulator_build() -> tuple[Path, Path]:
    """(firmware ELF, harness binary), built once per test session."""
    require_hil()
    return emulator.build()


@pytest.fixture
def emulated_dut(emulator_build: tuple[Path, Path]) -> Iterator[emulator.EmulatedDUT]:
    elf, harness = emulator_build
    dut = emulator.EmulatedDUT(elf, harness)
    try:
        # boot counts as a valve close: let the minimum gap after it (50 ms default) pass first
        now = dut.now_us()
        if now < 60_000:
            dut.advance(60_000 - now)
        yield dut
    finally:
        dut.close()
