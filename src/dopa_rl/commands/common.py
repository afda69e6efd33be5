"""Helpers shared by the command modules (the dispatcher imports the commands, never the other way round)."""
from __future__ import annotations

import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from dopa_rl.errors import InputError


def refuse_existing(option: str, paths: Iterable[str | Path], overwrite: bool) -> None:
    """Unless ``overwrite``: an InputError naming the first of ``paths`` that exists (and how many more)."""
    if overwrite:
        return
    taken = [Path(p) for p in paths if Path(p).exists()]
    if taken:
        more = f" and {len(taken) - 1} more" if len(taken) > 1 else ""
        raise InputError(f"{option}: {taken[0]}{more} exist(s); choose another name or pass --overwrite")


def check_output_paths(options: dict[str, str | None], inputs=()) -> None:
    """Before any work: every output option (``{"--json": path or None}``) must name a file in a folder that
    exists, neither one of the ``inputs`` (never overwritten) nor another option's file; one InputError lists
    every problem, so a bad path fails fast and nothing is written."""
    problems = []
    taken = {Path(p).resolve(): "an input file" for p in inputs}
    for option, value in options.items():
        if not value:
            continue
        path = Path(value)
        if path.is_dir():
            problems.append(f"{option} {value} is a folder; give a file name")
        elif not path.parent.is_dir():
            problems.append(f"{option} {value}: folder {path.parent} does not exist")
        elif path.resolve() in taken:
            problems.append(f"{option} {value} is {taken[path.resolve()]}; choose another file name")
        taken.setdefault(path.resolve(), f"also the {option} file")
    if problems:
        raise InputError("; ".join(problems))


@contextmanager
def warnings_to_stderr() -> Iterator[None]:
    """Library warnings (:class:`dopa_rl.errors.DataWarning`) printed as ``warning: ...`` lines on stderr."""
    from dopa_rl.errors import DataWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        try:
            yield
        finally:
            seen = set()
            for w in caught:
                if issubclass(w.category, DataWarning):
                    text = str(w.message).splitlines()[0]
                    if text not in seen:
                        seen.add(text)
                        print(f"warning: {text}", file=sys.stderr)
                else:
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


# --------------------------------------------------------------------- dopamine signal options (regress, compare)
def add_signal_arguments(p, *, required: bool) -> None:
    """The options that say where the dopamine is and how a per-trial response is taken from it (``--signal``,
    ``--series``, ``--matrix``/``--rate``/``--event-at``, ``--window``, ``--baseline``, ``--units``); read
    them back with :func:`load_signal`.  The command defines ``--columns`` and ``--trials-table`` itself."""
    p.add_argument("--signal", required=required, default=None, choices=("photometry", "units", "table"),
                   help="where the dopamine is: NWB photometry, NWB units, or a table's dopamine_cue/dopamine_outcome")
    p.add_argument("--series", metavar="NAME", help="photometry series (default: the only one)")
    p.add_argument("--matrix", metavar="PREFIX", help="table columns PREFIX.1 ... PREFIX.N hold a peri-cue trace")
    p.add_argument("--rate", type=float, metavar="HZ", help="sampling rate of the --matrix columns")
    p.add_argument("--event-at", type=float, metavar="S", help="time of the cue in the --matrix trace (s from its start)")
    p.add_argument("--window", nargs=2, type=float, default=(0.0, 0.5), metavar=("START", "STOP"),
                   help="response window after each event (default 0 0.5)")
    p.add_argument("--baseline", nargs=2, type=float, default=(-0.5, 0.0), metavar=("START", "STOP"),
                   help="baseline window subtracted (default -0.5 0)")
    p.add_argument("--units", metavar="ID,...", help="units to use (default: all); 'auto' selects reward-responsive ones")


def parse_units(text: str | None):
    """``--units``: None (all), ``"auto"``, or a list of unit ids."""
    if not text:
        return None
    if text == "auto":
        return "auto"
    return [u.strip() for u in text.split(",") if u.strip()]


def load_signal(args):
    """The :class:`dopa_rl.neural.dataset.DopamineData` that the options of :func:`add_signal_arguments` (and
    ``--columns``, ``--trials-table``) describe, read from ``args.data``."""
    from dopa_rl.io.behavior import parse_column_map
    from dopa_rl.neural.dataset import DOPAMINE_COLUMNS, load_responses

    return load_responses(args.data, args.signal,
                          columns=parse_column_map(args.columns, DOPAMINE_COLUMNS) or None,
                          trials_table=args.trials_table, series=args.series, window=tuple(args.window),
                          baseline=tuple(args.baseline), matrix=args.matrix, rate=args.rate, event_at=args.event_at,
                          units=parse_units(args.units))
