"""``dopa-rl recover``: the NWB file of an interrupted session, from its journal (marked incomplete)."""
from __future__ import annotations

import argparse

NAME = "recover"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = "Example: dopa-rl recover s.nwb.journal --out s-recovered.nwb"
    p.add_argument("journal", metavar="FILE.nwb.journal", help="journal written by dopa-rl run")
    p.add_argument("--out", required=True, metavar="RECOVERED.nwb", help="NWB file to write")


def run(args) -> int:
    import sys
    from pathlib import Path

    from dopa_rl.commands.common import check_output_paths
    from dopa_rl.errors import InputError
    from dopa_rl.session.export import recover, session_tables
    from dopa_rl.session.journal import damage_text, read_journal

    if not Path(args.journal).is_file():
        raise InputError(f"{args.journal}: no such journal file")
    check_output_paths({"--out": args.out}, inputs=[args.journal])
    damaged: list[int] = []
    try:
        records = read_journal(args.journal, damaged=damaged)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(str(exc)) from None
    if damaged:
        print(f"warning: {damage_text(args.journal, damaged)}", file=sys.stderr)
    tabs = session_tables(records)
    path = recover(args.journal, args.out)
    n_ev = sum(1 for r in records if r["kind"] == "ev")
    end = tabs["end"]["reason"] if tabs["end"] else "none (the host stopped without ending the session)"
    cut = f", {len(tabs['cut_trials'])} cut (in the NWB's cut_trials intervals)" if len(tabs["cut_trials"]) else ""
    print(f"{args.journal}: {n_ev} device events, {len(tabs['trials'])} complete trials{cut}, session end: {end}")
    print(f"wrote {path} (marked incomplete)")
    return 0
