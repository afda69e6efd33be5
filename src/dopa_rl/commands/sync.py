"""``dopa-rl sync``: align another recording system's clock to a session's from sync pulses; re-time a series."""
from __future__ import annotations

import argparse

NAME = "sync"
UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = ("Example: dopa-rl sync s.nwb --pulses fp_ttl.csv --column t --photometry fp.csv "
                "--photometry-signal dff --out s-synced.nwb\n"
                "The rig's pulses are the session's 'sync' events (random-interval sync pulses), else its 'ttl' events.\n"
                "The mapping t_other = offset_s + (1 + drift_ppm 1e-6) t_rig goes into processing/sync; the input is\n"
                "never modified unless --in-place (then it is replaced only once the new file is complete).")
    p.add_argument("session", metavar="SESSION.nwb", help="session written by dopa-rl run (or any NWB with the rig's pulses)")
    p.add_argument("--pulses", required=True, metavar="OTHER.csv", help="the other system's pulse times (CSV/TSV)")
    p.add_argument("--column", default="t", metavar="NAME", help="column of --pulses holding the times (default t)")
    p.add_argument("--unit", default="s", choices=sorted(UNITS), help="unit of the other system's times (default s)")
    p.add_argument("--clock", metavar="NAME", help="name of the other clock in the NWB (default: the --pulses file's stem)")
    p.add_argument("--rig-events", metavar="NAME", help="events table holding the rig's pulses (default sync, else ttl)")
    p.add_argument("--tolerance-ms", type=float, default=5.0, metavar="MS",
                   help="largest interval mismatch of matched pulses (default 5)")
    p.add_argument("--photometry", metavar="FILE.csv", help="a series recorded on the other clock, re-timed onto the session's")
    p.add_argument("--photometry-time", default="t", metavar="NAME", help="time column of --photometry (default t)")
    p.add_argument("--photometry-signal", metavar="NAME", help="value column of --photometry (default: its only other column)")
    p.add_argument("--photometry-unit", default="a.u.", metavar="UNIT", help="unit of the values (default a.u.)")
    p.add_argument("--name", default="photometry_synced", help="name of the re-timed series in acquisition")
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument("--out", metavar="FILE.nwb", help="the aligned copy to write")
    out.add_argument("--in-place", action="store_true", help="replace SESSION.nwb by the aligned copy (atomic)")
    p.add_argument("--json", metavar="FILE", help="write the mapping as JSON")


def _read_table(path: str, option: str):
    import pandas as pd

    from dopa_rl.errors import InputError

    try:
        return pd.read_csv(path, sep="\t" if path.lower().endswith((".tsv", ".tab")) else ",")
    except FileNotFoundError:
        raise InputError(f"{option} {path}: no such file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{option} {path}: not a readable CSV/TSV table ({str(exc).splitlines()[0]})") from None


def _numeric(df, column: str, path: str, option: str):
    import numpy as np
    import pandas as pd

    from dopa_rl.errors import InputError

    if column not in df.columns:
        raise InputError(f"{option} {path}: no column {column!r} (columns: {', '.join(map(str, df.columns))})")
    v = pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=float)
    if not np.all(np.isfinite(v)):
        bad = int(np.flatnonzero(~np.isfinite(v))[0])
        raise InputError(f"{option} {path}: column {column!r} row {bad + 1} is not a number ({df[column].iloc[bad]!r})")
    return v


def run(args) -> int:
    import json
    from pathlib import Path

    from dopa_rl.commands.common import check_output_paths
    from dopa_rl.errors import InputError
    from dopa_rl.io.atomic import atomic_write_text
    from dopa_rl.io.nwb_read import read_events
    from dopa_rl.io.nwb_sync import write_alignment
    from dopa_rl.io.nwb_types import AnalogSeries
    from dopa_rl.sync import align_pulses

    dest = args.session if args.in_place else args.out
    if Path(dest).suffix.lower() != ".nwb":
        raise InputError(f"--out {dest}: the file name must end in .nwb")
    if not args.in_place and Path(dest).exists():
        raise InputError(f"--out {dest}: file exists; choose another name or remove it")
    if not args.tolerance_ms > 0:
        raise InputError(f"--tolerance-ms {args.tolerance_ms}: must be > 0")
    inputs = [args.pulses] + ([args.photometry] if args.photometry else [])
    check_output_paths({"--out": None if args.in_place else args.out, "--json": args.json},
                       inputs=inputs + ([] if args.in_place else [args.session]))
    events = read_events(args.session)
    name = args.rig_events or ("sync" if len(events.get("sync", ())) else "ttl")
    rig = events.get(name)
    if rig is None or not len(rig):
        raise InputError(f"{args.session}: no {name!r} events (the rig's sync pulses); "
                         f"events in the file: {', '.join(sorted(events)) or 'none'}")
    other = _numeric(_read_table(args.pulses, "--pulses"), args.column, args.pulses, "--pulses") * UNITS[args.unit]
    series = None
    if args.photometry:
        df = _read_table(args.photometry, "--photometry")
        t = _numeric(df, args.photometry_time, args.photometry, "--photometry") * UNITS[args.unit]
        sig = args.photometry_signal
        if sig is None:
            rest = [c for c in df.columns if c != args.photometry_time]
            if len(rest) != 1:
                raise InputError(f"--photometry {args.photometry}: {len(rest)} value columns; name one with --photometry-signal")
            sig = rest[0]
        x = _numeric(df, sig, args.photometry, "--photometry")
    mapping = align_pulses(rig, other, tolerance_s=args.tolerance_ms / 1e3)
    clock = args.clock or Path(args.pulses).stem
    if args.photometry:
        tr = mapping.to_rig(t)
        rate = (len(tr) - 1) / (tr[-1] - tr[0]) if len(tr) > 1 and tr[-1] > tr[0] else None
        series = (args.name, AnalogSeries(
            timestamps=tr, data=x, unit=args.photometry_unit, rate=rate,
            description=f"{sig} of {args.photometry}, recorded on clock {clock!r}, re-timed onto the "
                        f"session's clock (offset {mapping.offset_s:.6f} s, drift {mapping.drift_ppm:.3f} ppm)"))
    summary = mapping.summary()
    write_alignment(args.session, dest, clock=clock, summary=summary, rig_times=mapping.rig_matched,
                    other_times=mapping.other_matched, pulses_file=str(args.pulses), column=args.column,
                    rig_events=name, series=series)
    print(f"{clock}: offset {mapping.offset_s:.6f} s, drift {mapping.drift_ppm:+.3f} ppm, residual "
          f"{mapping.residual_ms:.3f} ms, {mapping.n_matched} of {mapping.n_rig} rig / {mapping.n_other} other pulses matched")
    if series is not None:
        print(f"re-timed {len(x)} samples of {sig} onto the session's clock as acquisition/{args.name}")
    print(f"wrote {dest}")
    if args.json:
        atomic_write_text(args.json, json.dumps({"clock": clock, "rig_events": name, **summary,
                                                 "nwb": str(dest)}, indent=1))
    return 0
