"""``dopa-rl inspect``: what an NWB file holds that dopa_rl can use, and what each analysis still needs."""
from __future__ import annotations

import argparse
import json

from dopa_rl.commands.common import add_trials_arguments, speak_flags_in

NAME = "inspect"
HELP = "show what an NWB file holds that dopa_rl can use"
_CHECKS = ("behavior", "photometry", "units", "events")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE.nwb", help="NWB file(s) to inspect (opened read-only)")
    parser.add_argument("--json", metavar="OUT", help="also write the summary as JSON to OUT")
    add_trials_arguments(parser, choices=False, columns_example="cue=stimulus,reward=volume_ul")
    parser.add_argument("--photometry", dest="series", metavar="NAME", help="photometry series name or path (with --require)")
    parser.add_argument("--require", metavar="WHAT", default="",
                        help="comma list of behavior,photometry,units,events: read them fully and exit 2 with the "
                             "reason when one cannot be read")
    parser.epilog = ("Examples:\n  dopa-rl inspect session.nwb\n"
                     "  dopa-rl inspect session.nwb --json summary.json\n"
                     "  dopa-rl inspect lab.nwb --trials-table task_trials --columns cue=stimulus,reward=water "
                     "--require behavior,photometry")


def run(args: argparse.Namespace) -> int:
    from dopa_rl.errors import InputError
    from dopa_rl.io import nwb
    from dopa_rl.io.atomic import atomic_write_text
    from dopa_rl.io.behavior import parse_column_map

    require = [w.strip() for w in args.require.split(",") if w.strip()]
    unknown = [w for w in require if w not in _CHECKS]
    if unknown:
        raise InputError(f"--require {args.require!r}: unknown {', '.join(unknown)}; choose from {', '.join(_CHECKS)}")
    columns = parse_column_map(args.columns) or None
    summaries = []
    for path in args.files:
        summary = speak_flags_in(nwb.inspect_nwb(path, trials_table=args.trials_table, columns=columns),
                                 getattr(args, "_flags", {}))
        print(nwb.format_inspection(summary))
        for what in require:  # the readers raise one InputError line naming the file and the problem
            if what == "behavior":
                nwb.read_behavior(path, columns=columns, trials_table=args.trials_table)
            elif what == "photometry":
                nwb.read_photometry(path, args.series)
            elif what == "units":
                nwb.read_units(path)
            elif what == "events" and not nwb.read_events(path):
                raise InputError(f"{path}: no event tables (EventsTable, ndx-events or BehavioralEvents)")
        summaries.append(summary)
    if args.json:
        payload = summaries[0] if len(summaries) == 1 else summaries
        try:
            atomic_write_text(args.json, json.dumps(_finite(payload), indent=2, default=str, allow_nan=False) + "\n")
        except InputError as exc:   # the atomic writer names the path and the reason
            raise InputError(f"--json {exc}") from None
        except OSError as exc:
            raise InputError(f"--json {args.json}: cannot write there ({exc.strerror or exc})") from exc
    return 0


def _finite(obj):
    """The summary with NaN/inf numbers (an empty series' start and duration) as JSON null."""
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj
