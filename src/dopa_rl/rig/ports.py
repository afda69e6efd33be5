"""Serial ports with their USB vendor/product ids and serial numbers (used by ``dopa-rl ports``).

A rig file names its board by USB serial number, never by tty name (``/dev/ttyACM0`` changes between
plugs and reboots); :func:`find_port_by_serial` turns the serial number into today's device path.
Ports come from ``serial.tools.list_ports`` (pyserial).  The tests monkeypatch ``list_ports.comports``
because the build machine has no USB hardware.
"""
from __future__ import annotations

from dataclasses import dataclass

from dopa_rl.errors import InputError

__all__ = ["PortInfo", "list_ports", "find_port_by_serial", "format_table"]

@dataclass(frozen=True)
class PortInfo:
    """One serial port as reported by the operating system (USB fields are ``None`` for non-USB ports)."""

    device: str
    description: str
    hwid: str
    vid: int | None
    pid: int | None
    serial_number: str | None
    manufacturer: str | None
    product: str | None
    location: str | None

    @property
    def usb_id(self) -> str:
        """``VVVV:PPPP`` in hex, or ``""`` for a port without USB ids."""
        if self.vid is None or self.pid is None:
            return ""
        return f"{self.vid:04x}:{self.pid:04x}"


def list_ports() -> list[PortInfo]:
    """Every serial port the system knows, sorted by device path."""
    from serial.tools import list_ports as lp

    out = []
    for p in lp.comports():
        out.append(PortInfo(
            device=str(p.device), description=str(p.description or ""), hwid=str(p.hwid or ""),
            vid=p.vid, pid=p.pid, serial_number=p.serial_number, manufacturer=p.manufacturer,
            product=p.product, location=p.location,
        ))
    return sorted(out, key=lambda p: p.device)


def find_port_by_serial(serial_number: str, ports: list[PortInfo] | None = None) -> str:
    """Device path (e.g. ``/dev/ttyACM0``) of the USB serial port whose serial number is ``serial_number``.

    Raises :class:`InputError` naming what is present when no port (or more than one) matches.
    """
    ports = list_ports() if ports is None else ports
    want = serial_number.strip()
    hits = [p for p in ports if p.serial_number is not None and p.serial_number.strip() == want]
    if len(hits) == 1:
        return hits[0].device
    present = ", ".join(f"{p.device} (serial {p.serial_number or 'none'})" for p in ports) or "no serial ports"
    if not hits:
        raise InputError(f"no serial port with USB serial number {want!r}; present: {present}; "
                         "check the cable and the rig file's serial number (`dopa-rl ports` lists them)")
    raise InputError(f"{len(hits)} serial ports report USB serial number {want!r} ({present}); "
                     "unplug the duplicate board")


def format_table(ports: list[PortInfo]) -> str:
    """Human-readable table of ports."""
    if not ports:
        return "no serial ports found"
    rows = [("DEVICE", "USB ID", "SERIAL NUMBER", "DESCRIPTION")]
    rows += [(p.device, p.usb_id or "-", p.serial_number or "-", p.description) for p in ports]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip()
                     for r in rows)
