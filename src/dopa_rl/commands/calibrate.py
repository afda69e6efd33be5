"""``dopa-rl calibrate``: deliver valve pulses, ask what was collected, write the rig file (ms per uL)."""
from __future__ import annotations

import argparse

NAME = "calibrate"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = ("Example: dopa-rl calibrate --device rig --rig-file rig.toml --pulses 100 --ms 40\n"
                "  (weigh the water collected: 1 mg = 1 uL; give it with --measured-ul or type it when asked)\n"
                "Range-finding: dopa-rl calibrate --device rig --rig-file rig.toml --target-ul 2,4,8\n"
                "  measures a probe at --ms (or at the rig file's calibration), then the open times that should give\n"
                "  each target volume, and fits ms per uL over all of them (--measured-ul: probe,target1,...)")
    p.add_argument("--device", required=True, metavar="PORT|URL|sim|rig", help="the rig to calibrate")
    p.add_argument("--rig-file", required=True, metavar="RIG.toml", help="rig file to write (port and calibration)")
    p.add_argument("--pulses", type=int, default=100, help="number of valve pulses (default 100)")
    p.add_argument("--ms", type=int, default=40, help="valve open time per pulse, ms (default 40)")
    p.add_argument("--gap-ms", type=int, default=200, help="time between pulses, ms (default 200)")
    p.add_argument("--measured-ul", metavar="UL[,UL...]",
                   help="total volume collected, uL (else asked); with --target-ul one per measurement: probe first")
    p.add_argument("--target-ul", metavar="UL,UL,...", help="range-finding: the reward sizes the sessions will use")
    p.add_argument("--max-valve-ms", type=int, default=200, help="longest open time range-finding may choose (default 200)")
    p.add_argument("--name", default="rig", help="rig name stored in the file")
    p.add_argument("--serial-number", help="USB serial number of the board (stored instead of the port)")
    p.add_argument("--speed", default="realtime", help="simulated device only: clock rate")


def _volumes(text: str | None, n: int) -> list[float] | None:
    from dopa_rl.errors import InputError

    if text is None:
        return None
    try:
        vals = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"--measured-ul {text!r}: give numbers (uL), comma-separated") from None
    if len(vals) != n:
        raise InputError(f"--measured-ul {text!r}: {n} volume(s) expected (one per measurement), got {len(vals)}")
    if any(not v > 0 for v in vals):
        raise InputError(f"--measured-ul {text!r}: every volume must be > 0")
    return vals


def _ask(what: str) -> float:
    from dopa_rl.errors import InputError

    try:
        ul = float(input(f"volume collected {what} (uL; 1 mg of water = 1 uL): "))
    except ValueError:
        raise InputError("give the volume as a number of uL") from None
    if not ul > 0:
        raise InputError("the volume must be > 0 uL")
    return ul


def run(args) -> int:
    import os
    import time

    from dopa_rl.errors import InputError
    from dopa_rl.io.atomic import atomic_write_text
    from dopa_rl.rig.calibration import Point, fit_ms_per_ul, open_times, point_errors
    from dopa_rl.rig.client import DeviceClient
    from dopa_rl.session import ConfigError, load_rig
    from dopa_rl.session.config import FIRMWARE_MAX_VALVE_MS, Rig, rig_toml
    from dopa_rl.session.runner import device_url, open_device, parse_speed

    problems = []
    if not 1 <= args.pulses <= 10000:
        problems.append(f"--pulses {args.pulses}: must be in 1..10000")
    if not 1 <= args.ms <= FIRMWARE_MAX_VALVE_MS:
        problems.append(f"--ms {args.ms}: must be in 1..{FIRMWARE_MAX_VALVE_MS}")
    if args.gap_ms < 50:
        problems.append(f"--gap-ms {args.gap_ms}: must be >= 50 (the device's minimum valve gap)")
    if not 1 <= args.max_valve_ms <= FIRMWARE_MAX_VALVE_MS:
        problems.append(f"--max-valve-ms {args.max_valve_ms}: must be in 1..{FIRMWARE_MAX_VALVE_MS}")
    targets: list[float] = []
    if args.target_ul:
        try:
            targets = [float(v) for v in args.target_ul.split(",") if v.strip()]
        except ValueError:
            problems.append(f"--target-ul {args.target_ul!r}: give volumes in uL, comma-separated")
        if not targets or any(not t > 0 for t in targets):
            problems.append(f"--target-ul {args.target_ul!r}: every target must be > 0 uL")
    if problems:
        raise InputError("; ".join(problems))
    measured = _volumes(args.measured_ul, 1 + len(targets))
    probe_ms = args.ms
    old = None
    if targets and os.path.isfile(args.rig_file):
        try:
            old = load_rig(args.rig_file)
        except ConfigError:
            old = None   # an unreadable rig file is replaced; the probe uses --ms
    if old is not None:   # the last calibration guesses the probe: the middle target's open time
        probe_ms = open_times([sorted(targets)[len(targets) // 2]], old.ms_per_ul, args.max_valve_ms)[0]
    speed = parse_speed(args.speed)
    url = device_url(args.device, Rig(), speed=speed, seed=0)
    plan = [probe_ms]
    points: list[Point] = []
    with DeviceClient(open_device(url), heartbeat_s=min(0.25, 1.0 / speed)) as dev:
        dev.start()
        dev.configure(max_valve_ms=max(args.max_valve_ms, args.ms, probe_ms),
                      budget_valve_ms=min(args.pulses * args.max_valve_ms * (2 + len(targets)) + 1000, 10**7),
                      host_timeout_ms=int(min(10000, 1000 * speed)))
        i = 0
        while i < len(plan):
            ms = plan[i]
            delivered = 0
            for _ in range(args.pulses):
                delivered += dev.valve_pulse(ms).value
                time.sleep((ms + args.gap_ms) / 1000 / speed)
            what = "from the probe" if i == 0 else f"for {targets[i - 1]:g} uL"
            print(f"delivered {args.pulses} pulses of {ms} ms ({delivered} ms of valve time) on {url}", flush=True)
            ul = measured[i] if measured is not None else _ask(what)
            points.append(Point(ms, args.pulses, ul))
            if i == 0 and targets:   # range-finding: the open times for the targets, from the probe
                plan += open_times(targets, fit_ms_per_ul(points), args.max_valve_ms)
                print(f"range-finding: {', '.join(f'{t:g} uL -> {m} ms' for t, m in zip(targets, plan[1:]))}")
            i += 1
    ms_per_ul = fit_ms_per_ul(points)
    errs = point_errors(points, ms_per_ul)
    for p, e in zip(points, errs):
        print(f"  {p.ms:4d} ms: {p.ul_per_pulse:.3f} uL per pulse ({e:+.1%} against {ms_per_ul:.4g} ms/uL)")
    text = ", ".join(f"{p.pulses} x {p.ms} ms -> {p.measured_ul:g} uL" for p in points)
    rig = Rig(name=args.name, port=None if args.serial_number else (None if args.device in ("sim", "rig") else url),
              serial_number=args.serial_number, ms_per_ul=ms_per_ul, calibrated=time.strftime("%Y-%m-%d %H:%M") + f", {text}")
    atomic_write_text(args.rig_file, rig_toml(rig))
    print(f"{rig.ms_per_ul:.4g} ms per uL; wrote {args.rig_file}")
    return 0
