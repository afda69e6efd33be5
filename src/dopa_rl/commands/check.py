"""``dopa-rl check``: the hardware test before a session (valve, cue, tone, TTL, lick sensor, TTL loopback)."""
from __future__ import annotations

import argparse

NAME = "check"
#: library parameters this command names otherwise (cli.py merges them into the flag map: _flags_of)
PARAMETER_FLAGS = {"loopback": "--ttl-loopback"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = ("Example: dopa-rl check rig --rig-file rig.toml          (touch the spout when asked)\n"
                "         dopa-rl check /dev/ttyACM0 --ttl-loopback     (TTL out wired to A0)\n"
                "Each part is judged by what the device reports (its events, device-timed); exit 0 when every part\n"
                "passed or was skipped, 1 when one failed.")
    p.add_argument("device", metavar="RIG", help="sim | rig (the rig file's port or USB serial number) | PORT | URL")
    p.add_argument("--rig-file", metavar="RIG.toml", help="rig file (for 'rig')")
    p.add_argument("--lick-wait", type=float, default=10.0, metavar="S",
                   help="seconds to wait for a touch of the lick spout (default 10)")
    p.add_argument("--ttl-loopback", action="store_true", help="the TTL output is wired to the analog input: test it")
    p.add_argument("--speed", default="realtime", help="simulated device only: clock rate")
    p.add_argument("--json", metavar="FILE", help="write each part's result as JSON")


def run(args) -> int:
    import json
    from dataclasses import asdict

    from dopa_rl.commands.common import check_output_paths, speak_flags, speak_flags_in
    from dopa_rl.errors import InputError
    from dopa_rl.io.atomic import atomic_write_text
    from dopa_rl.rig.check import run_checks
    from dopa_rl.rig.client import DeviceClient
    from dopa_rl.session import ConfigError, load_rig
    from dopa_rl.session.config import Rig
    from dopa_rl.session.runner import device_url, open_device, parse_speed

    if not 0 < args.lick_wait <= 600:
        raise InputError(f"--lick-wait {args.lick_wait}: must be in (0, 600] seconds")
    check_output_paths({"--json": args.json}, inputs=[args.rig_file] if args.rig_file else [])
    speed = parse_speed(args.speed)
    try:
        rig = load_rig(args.rig_file) if args.rig_file else Rig()
    except ConfigError as exc:
        raise InputError("; ".join(exc.problems)) from None
    url = device_url(args.device, rig, speed=speed, seed=0)
    print(f"checking {url}")
    flags = getattr(args, "_flags", {})
    with DeviceClient(open_device(url), heartbeat_s=min(0.25, 1.0 / speed)) as dev:
        dev.start()
        results = run_checks(dev, speed=speed, lick_wait_s=args.lick_wait, loopback=args.ttl_loopback,
                             prompt=lambda text: print(text, flush=True), on_result=lambda r: print(speak_flags(r.line(), flags), flush=True))
    failed = [r.part for r in results if r.status == "FAIL"]
    print(f"{len(results) - len(failed)} of {len(results)} parts passed or skipped"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    if args.json:
        atomic_write_text(args.json, json.dumps({"device": url, "parts": speak_flags_in([asdict(r) for r in results], flags)}, indent=1))
    return 1 if failed else 0
