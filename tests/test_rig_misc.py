"""Rig holes of issue 7 closed on the host and the simulated device: configure() keeping flags, frames the
client cannot use, a dead worker, a full event queue, long silences and the 32-bit clock, lost lick edges
and safety trips on a full ring, lick polarity flips, and errors a rig user can act on."""
from __future__ import annotations

import time

import pytest

from dopa_rl.errors import DeviceError
from dopa_rl.rig import _protocol as P
from dopa_rl.rig.client import DeviceClient
from dopa_rl.rig.transports import open_link
from dopa_rl.testing import SimulatedDUT


@pytest.fixture
def dut_client():
    dut = SimulatedDUT(speed=1)
    c = DeviceClient(open_link(dut.url))
    try:
        c.start()
        yield dut, c
    finally:
        c.safe()
        dut.close()


def test_configure_keeps_the_flags_it_is_not_given(dut_client):
    dut, c = dut_client
    c.configure(flags=P.ConfigFlag.LICK_ACTIVE_LOW)
    assert dut.device.config["flags"] == P.ConfigFlag.LICK_ACTIVE_LOW
    c.configure(max_valve_ms=500)                  # omitted flags: the lick polarity stays inverted
    assert dut.device.config["flags"] == P.ConfigFlag.LICK_ACTIVE_LOW
    assert dut.device.config["max_valve_ms"] == 500
    c.configure(flags=0)
    assert dut.device.config["flags"] == 0
