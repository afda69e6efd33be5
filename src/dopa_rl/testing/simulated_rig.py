"""Test doubles users can import: a simulated rig device with the "device under test" interface.

The shared rig scenario tests (tests/test_rig_scenarios.py) run one test body against two devices: the
real firmware in the simavr emulator and :class:`SimulatedDUT`.  Both offer:

- ``url``: a link ``serial.serial_for_url`` can open (after ``dopa_rl.rig.transports.register_url_handlers``),
- ``pin_edges(pin) -> list[(device_time_us, level)]`` for pin in {"valve", "cue", "tone", "ttl", "lick"},
- ``set_lick(level)``: drive the lick input now,
- ``now_us()``: device time in microseconds (the same clock as the ``t_us`` of events, before wrapping),
- ``advance(us)``: let ``us`` of device time pass (sleeps in real-time mode, steps the clock otherwise),
- ``reset(cause)``: the board resets now (``ext``, ``wdt`` or ``bod``) and boots again,
- ``close()``.
"""
from __future__ import annotations

import time
from typing import Any

from dopa_rl.protocol import messages as P
from dopa_rl.sim import device as simdevice
from dopa_rl.sim.device import SimDevice

__all__ = ["SimulatedDUT", "SimDevice"]


class SimulatedDUT:
    """A :class:`~dopa_rl.sim.device.SimDevice` reachable at ``dopasim://?attach=<name>``.

    ``realtime=True`` (default) runs the device clock in a thread at ``speed`` x real time, as a host
    client with real timeouts needs (after ``settle_us`` of device time since its boot: past the minimum
    valve gap that boot starts); ``realtime=False`` leaves it to ``advance`` (deterministic tests
    that talk to ``device.write/read`` directly).
    """

    def __init__(self, *, realtime: bool = True, speed: float = 1.0, animal: Any = None,
                 settle_us: int = simdevice.BOOT_SETTLE_US,
                 **device_kw: Any) -> None:
        self.device = SimDevice(animal=animal, speed=speed, **device_kw)
        if realtime and settle_us:
            # a board is powered a moment before a host reaches it; boot counts as a valve close, so the
            # minimum gap after it is over (realtime=False leaves the clock at its start)
            self.device.advance(settle_us)
        self.name = simdevice.register(self.device)
        self.url = f"dopasim://?attach={self.name}"
        self.realtime = realtime
        self.speed = speed
        if realtime:
            self.device.start(speed)

    def pin_edges(self, pin: str) -> list[tuple[int, int]]:
        if pin not in ("valve", "cue", "tone", "ttl", "lick"):
            raise ValueError(f"unknown pin {pin!r}; use valve, cue, tone, ttl or lick")
        return self.device.pin_edges(pin)

    def set_lick(self, level: int) -> None:
        self.device.set_lick(level)

    def now_us(self) -> int:
        return self.device.now_us()

    def advance(self, us: int) -> None:
        if self.realtime:
            time.sleep(us / 1e6 / self.speed)
        else:
            self.device.advance(us)

    def reset(self, cause: str = "ext") -> None:
        """Reset the device now, as :meth:`emulator_harness.EmulatedDUT.reset`: outputs drop, RAM state and
        the link are lost, the boot counter is kept, the boot banner follows."""
        causes = {"ext": P.ResetCause.EXTERNAL, "wdt": P.ResetCause.WATCHDOG, "bod": P.ResetCause.BROWN_OUT}
        if cause not in causes:
            raise ValueError(f"cause must be ext, wdt or bod, got {cause!r}")
        self.device.reboot(causes[cause])

    def close(self) -> None:
        self.device.close()
        simdevice.unregister(self.name)

    def __enter__(self) -> "SimulatedDUT":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
