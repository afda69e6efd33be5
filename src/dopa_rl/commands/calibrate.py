"""``dopa-rl calibrate``: deliver valve pulses, ask what was collected, write the rig file (ms per uL)."""
from __future__ import annotations

import argparse

NAME = "calibrate"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = ("Example: dopa-rl calibrate --device rig --rig-file rig.toml --pulses 100 --ms 40\n"
                "  (weigh the water collected: 1 mg = 1 uL; give it with --measured-ul or type it when asked)")
    p.add_argument("--device", required=True, metavar="PORT|URL|sim|rig", help="the rig to calibrate")
    p.add_argument("--rig-file", required=True, metavar="RIG.toml", help="rig file to write (port and calibration)")
    p.add_argument("--pulses", type=int, default=100, help="number of valve pulses (default 100)")
    p.add_argument("--ms", type=int, default=40, help="valve open time per pulse, ms (default 40)")
    p.add_argument("--gap-ms", type=int, default=200, help="time between pulses, ms (default 200)")
    p.add_argument("--measured-ul", type=float, metavar="UL", help="total volume collected, uL (else asked)")
    p.add_argument("--name", default="rig", help="rig name stored in the file")
    p.add_argument("--serial-number", help="USB serial number of the board (stored instead of the port)")
    p.add_argument("--speed", default="realtime", help="simulated device only: clock rate")


def run(args) -> int:
    import time

    from dopa_rl.errors import InputError
    from dopa_rl.io.atomic import atomic_write_text
    from dopa_rl.rig.client import DeviceClient
    from dopa_rl.session.config import FIRMWARE_MAX_VALVE_MS, Rig, rig_toml
    from dopa_rl.session.runner import device_url, open_device, parse_speed

    problems = []
    if not 1 <= args.pulses <= 10000:
        problems.append(f"--pulses {args.pulses}: must be in 1..10000")
    if not 1 <= args.ms <= FIRMWARE_MAX_VALVE_MS:
        problems.append(f"--ms {args.ms}: must be in 1..{FIRMWARE_MAX_VALVE_MS}")
    if args.gap_ms < 50:
        problems.append(f"--gap-ms {args.gap_ms}: must be >= 50 (the device's minimum valve gap)")
    if args.measured_ul is not None and args.measured_ul <= 0:
        problems.append(f"--measured-ul {args.measured_ul}: must be > 0")
    if problems:
        raise InputError("; ".join(problems))
    speed = parse_speed(args.speed)
    url = device_url(args.device, Rig(), speed=speed, seed=0)
    total_ms = args.pulses * args.ms
    with DeviceClient(open_device(url), heartbeat_s=min(0.25, 1.0 / speed)) as dev:
        dev.start()
        dev.configure(max_valve_ms=max(args.ms, 1), budget_valve_ms=min(total_ms + 1000, 10**7),
                      host_timeout_ms=int(min(10000, 1000 * speed)))
        delivered = 0
        for _ in range(args.pulses):
            ack = dev.valve_pulse(args.ms)
            delivered += ack.value
            time.sleep((args.ms + args.gap_ms) / 1000 / speed)
    print(f"delivered {args.pulses} pulses of {args.ms} ms ({delivered} ms of valve time) on {url}")
    ul = args.measured_ul
    if ul is None:
        ul = float(input("volume collected (uL; 1 mg of water = 1 uL): "))
        if ul <= 0:
            raise InputError("the volume must be > 0 uL")
    rig = Rig(name=args.name, port=None if args.serial_number else (None if args.device in ("sim", "rig") else url),
              serial_number=args.serial_number, ms_per_ul=delivered / ul,
              calibrated=time.strftime("%Y-%m-%d %H:%M") + f", {args.pulses} x {args.ms} ms -> {ul:g} uL")
    atomic_write_text(args.rig_file, rig_toml(rig))
    print(f"{rig.ms_per_ul:.4g} ms per uL; wrote {args.rig_file}")
    return 0
