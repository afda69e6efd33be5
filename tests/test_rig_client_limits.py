"""The first HELLO carries the limits given to DeviceClient (issue 18: a 50x simulated rig otherwise ran on
the 1000 ms default host timeout, 20 ms of real time, until CONFIGURE)."""
from __future__ import annotations

import pytest

from dopa_rl.errors import InputError
from dopa_rl.protocol import codec
from dopa_rl.protocol import messages as P
from dopa_rl.rig.client import DeviceClient
from dopa_rl.rig.transports import open_link
from dopa_rl.testing import SimulatedDUT


def test_the_first_hello_carries_the_given_limits_and_the_device_arms_with_them():
    dut = SimulatedDUT(speed=1)
    port = open_link(dut.url)
    write, hellos = port.write, []

    def spy(data: bytes) -> int:
        rec = codec.decode(data)
        if isinstance(rec.msg, P.Hello):
            hellos.append(rec.msg)
        return write(data)

    port.write = spy
    c = DeviceClient(port, limits=dict(host_timeout_ms=7000, max_valve_ms=250, budget_valve_ms=900))
    try:
        c.start()
        h = hellos[0]
        assert (h.host_timeout_ms, h.max_valve_ms, h.budget_valve_ms) == (7000, 250, 900)
        assert (h.min_valve_gap_ms, h.debounce_us) == (P.LIMITS["min_valve_gap_ms"].default,
                                                       P.LIMITS["debounce_us"].default)
        assert c.valve_pulse(400).value == 250          # the device clamps to the HELLO's max_valve_ms
    finally:
        c.safe()
        dut.close()


@pytest.mark.parametrize("limits, match", [
    (dict(host_timeout_ms=50), r"DeviceClient: limits: host_timeout_ms must be an integer in 100\.\.10000"),
    (dict(max_valve_ms=1.5), r"DeviceClient: limits: max_valve_ms must be an integer"),
    (dict(timeout=1000), r"DeviceClient: limits: unknown limit 'timeout'"),
])
def test_bad_limits_are_refused_before_anything_is_sent(limits, match):
    with pytest.raises(InputError, match=match):
        DeviceClient(object(), limits=limits)
