"""``dopasim://``: an in-process simulated rig device (:class:`dopa_rl.sim.device.SimDevice`) as a pyserial port.

``dopasim://?speed=10&seed=1&animal=rw`` creates a new device and runs its clock at 10x real time until the
port is closed; ``dopasim://?attach=<name>`` talks to a device created and owned elsewhere (for example
:class:`dopa_rl.testing.SimulatedDUT`), which keeps running when the port closes.  Options are those of
:func:`dopa_rl.sim.device.device_from_options`.  The device object is ``port.device``.
"""
from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import serial

from dopa_rl.sim.links import VirtualPort

__all__ = ["Serial"]


class Serial(VirtualPort):
    """pyserial handler for ``dopasim://``."""

    device = None
    _owned = False

    def open(self) -> None:
        from dopa_rl.sim import device as simdevice

        if self._port is None:
            raise serial.SerialException("dopasim://: port must be set before open()")
        if self.is_open:
            raise serial.SerialException("dopasim://: port already open")
        if self.device is None:
            parts = urlsplit(self.portstr)
            if parts.scheme.lower() != "dopasim":
                raise serial.SerialException(f"not a dopasim:// URL: {self.portstr!r}")
            options = dict(parse_qsl(parts.query, keep_blank_values=True))
            try:
                self.device, self._owned = simdevice.device_from_options(options)
            except KeyError:
                raise serial.SerialException(
                    f"dopasim://: no simulated device registered as {options.get('attach')!r}") from None
            except ValueError as exc:
                raise serial.SerialException(str(exc)) from None
            if self._owned:
                self.device.start()
        self.is_open = True

    def close(self) -> None:
        """Close the port; a device this port created is stopped and made safe."""
        self.is_open = False
        if self.device is not None and self._owned:
            self.device.close()
            self.device = None

    @property
    def in_waiting(self) -> int:
        self._check()
        return self.device.in_waiting

    def read(self, size: int = 1) -> bytes:
        self._check()
        if size <= 0:
            return b""
        if self._timeout == 0:
            return self.device.read(size)
        return self.device.read_blocking(size, self._timeout)

    def write(self, data: bytes) -> int:
        self._check()
        return self.device.write(bytes(data))

    def reset_input_buffer(self) -> None:
        self._check()
        self.device.read(-1)
