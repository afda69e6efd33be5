"""The firmware core's C unit tests (golden vectors, safety kernel on a fake clock), built with the host gcc."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_firmware_core_host_unit_tests() -> None:
    if shutil.which("gcc") is None or shutil.which("make") is None:
        pytest.skip("gcc/make not installed")
    proc = subprocess.run(["make", "-s", "-C", str(ROOT / "firmware"), "test-host"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "test_link:" in proc.stdout and "test_rig:" in proc.stdout and "test_session:" in proc.stdout
    assert " 0 failed" in proc.stdout


def test_hil_switch_skips_without_toolchain_unless_required(monkeypatch: pytest.MonkeyPatch) -> None:
    import _hil_fixtures

    monkeypatch.setattr(_hil_fixtures.emulator, "toolchain_missing", lambda root=None: "avr-gcc not found")
    monkeypatch.delenv("DOPA_RL_REQUIRE_HIL", raising=False)
    with pytest.raises(pytest.skip.Exception):
        _hil_fixtures.require_hil()
    monkeypatch.setenv("DOPA_RL_REQUIRE_HIL", "1")
    with pytest.raises(pytest.fail.Exception, match="DOPA_RL_REQUIRE_HIL"):
        _hil_fixtures.require_hil()

