"""``dopa-rl run``: a live conditioning session from a TOML config, journaled, written to NWB."""
from __future__ import annotations

import argparse
import contextlib
import sys

NAME = "run"
ANALOG_MAX_SPEED = 10.0   # a 100 Hz analog stream at 50x would be 5,000 samples/s for the host


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = ("Example: dopa-rl run examples/classical_conditioning.toml --device sim --speed max --out s.nwb\n"
                "The journal (s.nwb.journal) and raw byte log (s.nwb.raw) are written beside the NWB file;\n"
                "after a crash: dopa-rl recover s.nwb.journal --out s-recovered.nwb\n"
                "Several rigs, each in its own process: dopa-rl run a.toml b.toml c.toml --device sim --out-dir runs/\n"
                "  [--dashboard] (writes runs/<subject>_<session_id>.nwb, .nwb.journal, .json, .log per rig).\n"
                "Or a lab file listing the rigs (config, device/port, rig_file, subject, out_dir per rig):\n"
                "  dopa-rl run lab.toml --out-dir runs/ (see docs/sessions.md).\n"
                "Pause / resume / stop one session: kill -USR1 / -USR2 / -INT PID (PIDs are printed at start).")
    p.add_argument("config", nargs="+", metavar="CONFIG.toml",
                   help="session config(s), or a lab file listing the rigs (see docs/sessions.md)")
    p.add_argument("--device", action="append", metavar="sim|rig|PORT|URL",
                   help="sim: simulated rig with a simulated animal; rig: the rig file's port or USB serial number; "
                        "or a port path (/dev/ttyACM0) or URL (dopasim://..., faulty://...). With several configs: "
                        "sim or rig for all, or one --device per config (required unless a lab file names each "
                        "rig's device)")
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument("--out", metavar="FILE.nwb", help="NWB file to write (one config)")
    out.add_argument("--out-dir", metavar="DIR", help="folder for each rig's <subject>_<session_id>.nwb and journal")
    p.add_argument("--dashboard", action="store_true",
                   help="serve a live dashboard (prints 'dashboard: URL' with the session token)")
    p.add_argument("--host", default="127.0.0.1", help="dashboard address (default 127.0.0.1, loopback only)")
    p.add_argument("--port", type=int, default=0, help="dashboard port (default: a free one)")
    p.add_argument("--trials", type=int, metavar="N", help="number of trials (overrides the config)")
    p.add_argument("--speed", default="realtime", metavar="max|realtime|X|virtual",
                   help="simulated device: clock rate (max = 50x real time; default realtime); virtual: --device "
                        "sim in virtual time (no real time at all: the same config gives the same session)")
    p.add_argument("--rig-file", metavar="RIG.toml", help="rig file (overrides session.rig_file)")
    p.add_argument("--json", metavar="FILE", help="write a JSON summary of the session")
    p.add_argument("--subject", metavar="ID", help="the animal's id (overrides session.subject; one config)")


def _display():
    """Per-trial output: one updating line on a terminal, plain lines otherwise."""
    tty = sys.stdout.isatty()
    totals = {"rewards": 0, "licks": 0}

    def show(row: dict) -> None:
        totals["rewards"] += row["reward_ul"] > 0
        totals["licks"] += row["licks"]
        text = (f"trial {row['trial'] + 1:4d} {row['trial_type']:>8s}  licks {row['licks']:2d}  "
                f"reward {row['reward_ul']:4.1f} uL  value {row['value']:+.3f}  RPE {row['rpe_outcome']:+.3f}  "
                f"| rewards {totals['rewards']}  anticipatory licks {totals['licks']}")
        if tty:
            sys.stdout.write("\r" + text + "\x1b[K")
            sys.stdout.flush()
        else:
            print(text, flush=True)

    return show, tty


def run(args) -> int:
    from dopa_rl.session.lab import is_lab_file

    if len(args.config) > 1 or args.out_dir or args.dashboard or any(is_lab_file(c) for c in args.config):
        from dopa_rl.commands.run_lab import run_lab

        return run_lab(args)
    if not args.device:
        print("error: --device: give sim, rig, a port or a URL", file=sys.stderr)
        return 2
    args.device = args.device[0] if len(args.device) == 1 else args.device
    return run_one(args, args.config[0])


@contextlib.contextmanager
def _pause_on_signals():
    """SIGUSR1 pauses (no new trial starts), SIGUSR2 resumes: the lab supervisor (or ``kill``) controls the
    session.  Installed for the command's duration (main thread only), then the old handlers are back."""
    import signal
    import threading

    pause = threading.Event()
    if not hasattr(signal, "SIGUSR1") or threading.current_thread() is not threading.main_thread():
        yield pause
        return
    old = {sig: signal.signal(sig, handler) for sig, handler in
           ((signal.SIGUSR1, lambda *_: pause.set()), (signal.SIGUSR2, lambda *_: pause.clear()))}
    try:
        yield pause
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def run_one(args, config_path: str) -> int:
    # first: a supervisor may signal as soon as the journal exists
    with _pause_on_signals() as pause:
        return _run_one(args, config_path, pause)


def _run_one(args, config_path: str, pause) -> int:
    import json
    from pathlib import Path

    from dopa_rl.commands.common import check_output_paths
    from dopa_rl.errors import InputError
    from dopa_rl.io.atomic import atomic_write_text
    from dopa_rl.session import ConfigError, load_config, load_rig
    from dopa_rl.session.runner import device_url, interrupt_guard, open_device, parse_speed, run_session

    problems: list[str] = []
    virtual = str(args.speed).strip().lower() == "virtual"   # (--device sim only: dopa_rl.session.virtual)
    rig = None
    if args.rig_file:
        try:
            rig = load_rig(args.rig_file)
        except ConfigError as exc:
            problems += exc.problems
    try:
        config, rig = load_config(config_path, rig=rig)
        if getattr(args, "subject", None):   # the lab file's per-rig subject (journaled as the session's)
            import dataclasses

            config = dataclasses.replace(config, subject=args.subject)
    except ConfigError as exc:
        problems += exc.problems
    if isinstance(args.device, list):
        problems.append(f"--device: one config takes one device, not {len(args.device)}")
    if args.trials is not None and args.trials < 1:
        problems.append(f"--trials {args.trials}: must be >= 1")
    out = Path(args.out)
    if out.suffix.lower() != ".nwb":
        problems.append(f"--out {out}: the file name must end in .nwb")
    for p in (out, Path(str(out) + ".journal"), Path(str(out) + ".raw")):
        if p.exists():
            problems.append(f"--out {out}: {p} exists; choose another name or remove it")
    try:
        check_output_paths({"--out": args.out, "--json": args.json}, inputs=[config_path])
        speed = 1.0 if virtual else parse_speed(args.speed)
    except InputError as exc:
        problems.append(str(exc))
        speed = 1.0
    if virtual and args.device != "sim":
        problems.append(f"--speed virtual: only with --device sim (got --device {args.device}); a rig runs in real time")
    if problems:   # nothing has been sent to any device
        for line in problems:
            print(f"error: {line}", file=sys.stderr)
        return 2
    if config.policy.kind == "on-signal" and speed > ANALOG_MAX_SPEED and args.device == "sim":
        print(f"note: on-signal streams the analog input; the simulated rig runs at {ANALOG_MAX_SPEED:g}x real time")
        speed = ANALOG_MAX_SPEED
    url = (f"dopasim://?seed={config.seed}&animal=rw (virtual time)" if virtual
           else device_url(args.device, rig, speed=speed, seed=config.seed))
    show, tty = _display()
    journal = f"{out}.journal"
    try:
        with interrupt_guard():   # from here on Ctrl-C stops the session cleanly (docs/sessions.md)
            port = None if virtual else open_device(url)
            print(f"session {config.subject}/{config.session_id}: {args.trials or config.n_trials or '-'} trials "
                  f"on {url} ({config.policy.kind} policy, online {config.model.name}); journal {journal}", flush=True)
            if virtual:
                from dopa_rl.session.virtual import run_virtual_session
                from dopa_rl.sim.device import device_from_options

                dev, _ = device_from_options({"seed": str(config.seed), "animal": "rw"})
                result, path = run_virtual_session(config, rig, dev, out, n_trials=args.trials, device_name=url,
                                                   on_trial=show, pause=pause)
            else:
                result, path = run_session(config, rig, port, out, speed=speed, n_trials=args.trials,
                                           device_name=url, on_trial=show, pause=pause)
    except KeyboardInterrupt:   # a second Ctrl-C while stopping: the outputs were turned off first
        if tty:
            print()
        print(f"error: interrupted; {out} was not written; the journal is complete: dopa-rl recover {journal} "
              "--out RECOVERED.nwb", file=sys.stderr)
        return 130
    if tty:
        print()
    if result.error:
        print(f"error: device: {result.error}", file=sys.stderr)
    if result.nwb_error:
        print(f"error: {result.nwb_error}", file=sys.stderr)
    rewards = sum(1 for h in result.history if h["reward_ul"] > 0)
    licks = sum(h["licks"] for h in result.history)
    cut = ""
    if result.cut:
        water = f", {result.cut_valve_openings} valve opening(s) in them" if result.cut_valve_openings else ""
        cut = f", {len(result.cut)} cut (not in the trials table{water})"
    print(f"{result.reason}: {result.n_trials} trials{cut}, {rewards} rewarded, {licks} anticipatory licks, "
          f"{result.wall_s:.1f} s; " + (f"wrote {path}" if path else "no NWB written"))
    if result.tally is not None:
        print(f"device tally: {result.tally['valve_openings']} valve openings, {result.tally['lick_contacts']} lick contacts")
    if args.json:
        atomic_write_text(args.json, json.dumps({
            "reason": result.reason, "trials": result.n_trials, "rewards": rewards, "anticipatory_licks": licks,
            "wall_s": result.wall_s, "nwb": str(path) if path else None, "journal": str(result.journal),
            "device_tally": result.tally, "client_stats": result.client_stats, "error": result.error,
            "cut_trials": {str(k): v for k, v in result.cut.items()},
            "cut_valve_openings": result.cut_valve_openings}, indent=1))
    return 0 if result.reason == "complete" else (130 if result.reason == "interrupted" else 1)
