"""``dopa-rl ports``: list serial ports with their USB vendor/product ids and serial numbers.

The listing and the serial-number lookup live in :mod:`dopa_rl.rig.ports`.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from dopa_rl.rig.ports import find_port_by_serial, format_table, list_ports


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", metavar="FILE", help="also write the ports as JSON to FILE")
    parser.add_argument("--serial", metavar="SN",
                        help="print only the device path of the port with this USB serial number")
    parser.epilog = ("Example: dopa-rl ports --json ports.json\n"
                     "         dopa-rl ports --serial 95736323632351F0B0A1   # -> /dev/ttyACM0")


def run(args: argparse.Namespace) -> int:
    ports = list_ports()
    if args.serial:
        print(find_port_by_serial(args.serial, ports))
    else:
        print(format_table(ports))
    if args.json:
        from dopa_rl.io.atomic import atomic_write_text

        doc = {"ports": [dict(asdict(p), usb_id=p.usb_id) for p in ports]}
        atomic_write_text(args.json, json.dumps(doc, indent=2) + "\n")
    return 0
