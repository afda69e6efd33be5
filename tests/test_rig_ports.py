"""`dopa-rl ports` and find_port_by_serial with a monkeypatched list_ports (no USB hardware here)."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from serial.tools import list_ports as lp

from dopa_rl.cli import main
from dopa_rl.rig.ports import find_port_by_serial, list_ports
from dopa_rl.errors import InputError


def _fake(device, vid=None, pid=None, sn=None, desc="n/a"):
    return SimpleNamespace(device=device, description=desc, hwid=f"USB VID:PID={vid}:{pid}" if vid else "n/a",
                           vid=vid, pid=pid, serial_number=sn, manufacturer="Arduino" if vid else None,
                           product=None, location=None)


@pytest.fixture
def fake_ports(monkeypatch):
    ports = [_fake("/dev/ttyACM1", 0x2341, 0x0043, "AAA111", "Arduino Uno"),
             _fake("/dev/ttyS0"),
             _fake("/dev/ttyUSB0", 0x1A86, 0x7523, "BBB222", "USB2.0-Serial")]
    monkeypatch.setattr(lp, "comports", lambda *a, **k: list(ports))
    return ports


def test_list_and_find(fake_ports):
    ports = list_ports()
    assert [p.device for p in ports] == ["/dev/ttyACM1", "/dev/ttyS0", "/dev/ttyUSB0"]
    assert ports[0].usb_id == "2341:0043" and ports[1].usb_id == ""
    assert find_port_by_serial("BBB222") == "/dev/ttyUSB0"
    with pytest.raises(InputError) as e:
        find_port_by_serial("ZZZ")
    assert "ZZZ" in str(e.value) and "/dev/ttyACM1 (serial AAA111)" in str(e.value)


def test_duplicate_serial_is_refused(fake_ports):
    fake_ports.append(_fake("/dev/ttyACM2", 0x2341, 0x0043, "AAA111"))
    with pytest.raises(InputError, match="2 serial ports"):
        find_port_by_serial("AAA111")


def test_cli_table_json_and_errors(fake_ports, tmp_path, capsys):
    out = tmp_path / "ports.json"
    assert main(["ports", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "AAA111" in text and "1a86:7523" in text
    doc = json.loads(out.read_text())
    assert [p["serial_number"] for p in doc["ports"]] == ["AAA111", None, "BBB222"]
    assert main(["ports", "--serial", "AAA111"]) == 0
    assert capsys.readouterr().out.strip() == "/dev/ttyACM1"
    assert main(["ports", "--serial", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
