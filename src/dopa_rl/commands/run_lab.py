"""``dopa-rl run`` with several configs or a lab file (or ``--out-dir`` / ``--dashboard``): each rig in its own
process."""
from __future__ import annotations

import sys


def _rigs(args, problems: list[str]) -> list:
    """The rigs named on the command line, a lab file's expanded in place: ``LabRig`` entries (with the
    lab file's overrides; None where the command line decides)."""
    from pathlib import Path

    from dopa_rl.session import ConfigError
    from dopa_rl.session.lab import LabRig, is_lab_file, read_lab_file

    rigs = []
    for path in args.config:
        if is_lab_file(path):
            try:
                rigs += read_lab_file(path)
            except ConfigError as exc:
                problems += exc.problems
        else:
            rigs.append(LabRig(config=Path(path)))
    return rigs


def _specs(args) -> tuple[list, list[str]]:
    """The lab's rigs from the command line, and every problem with it (nothing is started when there is one)."""
    from pathlib import Path

    from dopa_rl.session import ConfigError, load_config, load_rig
    from dopa_rl.session.lab import RigSpec

    problems: list[str] = []
    rigs = _rigs(args, problems)
    n = len(rigs)
    devices = list(args.device or [])
    if not devices:
        devices = [None] * n
    elif len(devices) == 1 and (devices[0] in ("sim", "rig") or n == 1):
        devices = devices * n
    elif len(devices) != n:
        problems.append(f"--device given {len(devices)} times for {n} rigs: give sim or rig once, or one per rig")
        devices = ["sim"] * n
    if args.rig_file and n > 1:
        problems.append("--rig-file: with several rigs each names its rig file (session.rig_file, or rig_file in "
                        "the lab file)")
    if args.out and n > 1:
        problems.append("--out names one file; with several configs use --out-dir")
    out_dir = Path(args.out_dir) if args.out_dir else Path(args.out).parent
    if args.out_dir and not out_dir.is_dir():
        problems.append(f"--out-dir {out_dir}: no such folder")
    if args.trials is not None and args.trials < 1:
        problems.append(f"--trials {args.trials}: must be >= 1")
    if getattr(args, "subject", None) and n > 1:
        problems.append("--subject: with several rigs each has its own (session.subject, or subject in the lab file)")
    specs, names = [], {}
    for lab_rig, device in zip(rigs, devices):
        path = lab_rig.config
        device = lab_rig.device or device
        if device is None:
            problems.append(f"{path}: no device: give --device (sim, rig, a port or a URL) or device/port in the "
                            f"lab file")
        rig_file = lab_rig.rig_file or (Path(args.rig_file) if args.rig_file else None)
        subject = lab_rig.subject or getattr(args, "subject", None)
        try:
            rig = load_rig(rig_file) if rig_file else None
            config, rig = load_config(path, rig=rig)
        except ConfigError as exc:
            problems += exc.problems
            continue
        name = f"{subject or config.subject}_{config.session_id}"
        if name in names:
            problems.append(f"{path}: subject/session_id {name} is also {names[name]}'s; each rig needs its own")
            continue
        names[name] = path
        folder = lab_rig.out_dir or out_dir
        if lab_rig.out_dir is not None and not folder.is_dir():
            problems.append(f"{path}: out_dir {folder}: no such folder")
        out = Path(args.out) if args.out else folder / f"{name}.nwb"
        if args.out and out.suffix.lower() != ".nwb":
            problems.append(f"--out {out}: the file name must end in .nwb")
        for p in (out, Path(str(out) + ".journal"), Path(str(out) + ".raw"), out.with_suffix(".json"),
                  out.with_suffix(".log")):
            if p.exists():
                problems.append(f"{path}: {p} exists; choose another folder or session_id")
        specs.append(RigSpec(name=name, config=Path(path), device=device or "sim", out=out, rig_file=rig_file,
                             subject=subject))
    if not specs and not problems:
        problems.append("no rigs to run")
    return specs, problems


def _progress(tty: bool):
    seen: dict[str, tuple] = {}

    def tick(snapshot: list[dict]) -> None:
        if tty:
            text = "  ".join(f"{r['name']} {r['state']} {r['trials_done']}/{r['n_trials'] or '-'}" for r in snapshot)
            sys.stdout.write("\r" + text + "\x1b[K")
            sys.stdout.flush()
            return
        for r in snapshot:
            key = (r["state"], r["trials_done"])
            if seen.get(r["name"]) != key:
                seen[r["name"]] = key
                print(f"{r['name']}: {r['state']}, trial {r['trials_done']}/{r['n_trials'] or '-'}, "
                      f"rewards {r['rewards']}, water {r['water_ul']:.1f} uL", flush=True)

    return tick


def run_lab(args) -> int:
    import json

    from dopa_rl.commands.common import check_output_paths
    from dopa_rl.errors import InputError
    from dopa_rl.io.atomic import atomic_write_text
    from dopa_rl.session.lab import Lab
    from dopa_rl.session.runner import parse_speed

    specs, problems = _specs(args)
    try:
        parse_speed(args.speed)
        check_output_paths({"--json": args.json}, inputs=args.config)
    except InputError as exc:
        problems.append(str(exc))
    if args.dashboard:
        from dopa_rl.session.dashboard import check_address

        problems += check_address(args.host, args.port)
    if problems:   # nothing started
        from dopa_rl.commands.common import speak_flags

        for line in problems:   # the library's parameters (`port`) as this command's flags (--port)
            print(f"error: {speak_flags(line, getattr(args, '_flags', {}))}", file=sys.stderr)
        return 2
    lab = Lab(specs, speed=args.speed, trials=args.trials)
    server = None
    if args.dashboard:
        from dopa_rl.session.dashboard import Dashboard

        from dopa_rl.session.dashboard import is_loopback

        server = Dashboard(lab, host=args.host, port=args.port).start()
        print(f"dashboard: {server.url}", flush=True)
        if not is_loopback(args.host):
            print(f"note: the dashboard listens on {args.host}, not only this machine: whoever can reach it and "
                  "has the URL (its token) can stop the rigs", flush=True)
    interrupted = False
    try:
        lab.start_all()
        for r in specs:
            rp = lab.rigs[r.name]
            print(f"rig {r.name}: pid {rp.proc.pid}, {r.config} on {r.device}, journal {r.journal}, log {r.log}", flush=True)
        tty = sys.stdout.isatty()
        try:
            lab.wait(_progress(tty))
        except KeyboardInterrupt:
            interrupted = True
            print("\ninterrupted: stopping every rig (outputs off, NWB written)", flush=True)
            lab.stop_all()
            lab.wait()
        if tty:
            print()
    finally:
        if server is not None:
            server.stop()
    rows = lab.summary()
    # rewards: rewarded trials in the trials table (+N: valve openings in trials cut from it); valve: the
    # device's own count of openings, which the two together equal
    print(f"{'rig':<20s} {'state':<12s} {'trials':>6s} {'rewards':>9s} {'valve':>6s} {'water uL':>8s}  problems")
    for r in rows:
        valve = "-" if r["valve_openings"] is None else str(r["valve_openings"])
        rewards = f"{r['rewards']}+{r['cut_valve_openings']}" if r["cut_valve_openings"] else str(r["rewards"])
        print(f"{r['name']:<20s} {r['state']:<12s} {r['trials']:>6d} {rewards:>9s} {valve:>6s} "
              f"{r['water_ul']:>8.1f}  {'; '.join(r['problems']) or 'none'}")
    if args.json:
        atomic_write_text(args.json, json.dumps({"rigs": rows}, indent=1))
    if interrupted:
        return 130
    return 0 if all(r["state"] == "complete" for r in rows) else 1
