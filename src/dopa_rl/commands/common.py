"""Helpers shared by the command modules (the dispatcher imports the commands, never the other way round)."""
from __future__ import annotations

import os
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from dopa_rl.errors import InputError


def parse_model_params(text: str | None, model, flag: str) -> dict[str, float] | None:
    """``NAME=NUMBER,...`` for parameters of ``model`` (None when ``text`` is empty); an unknown name or a value
    that is no number is an InputError naming ``flag``."""
    if not text:
        return None
    out = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or name.strip() not in model.param_names:
            raise InputError(f"{flag} {item!r}: give NAME=NUMBER with NAME one of {', '.join(model.param_names)}")
    return out


def speak_flags(message: str, flags: dict[str, str]) -> str:
    """A library message in the command's terms.

    Library errors name parameters as `` `name` ``; each becomes the command's flag for it (``choice_base`` ->
    ``--choice-base``, from ``args._flags``, which the dispatcher fills from the command's own parser).  A
    parameter the command has no flag for is shown as its plain name, so a message never suggests a flag
    the command lacks.
    """
    import re

    return re.sub(r"(?<!`)`([A-Za-z_][A-Za-z0-9_]*)`(?!`)", lambda m: flags.get(m.group(1), m.group(1)), message)


def speak_flags_in(obj, flags: dict[str, str]):
    """:func:`speak_flags` applied to every string in ``obj`` (nested dicts, lists and tuples; other values as
    they are): a library report (``inspect``'s summary, ``check``'s parts) in the command's terms."""
    if isinstance(obj, str):
        return speak_flags(obj, flags)
    if isinstance(obj, dict):
        return {k: speak_flags_in(v, flags) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(speak_flags_in(v, flags) for v in obj)
    return obj


def refuse_existing(option: str, paths: Iterable[str | Path], overwrite: bool) -> None:
    """Unless ``overwrite``: an InputError naming the first of ``paths`` that exists (and how many more)."""
    if overwrite:
        return
    taken = [Path(p) for p in paths if Path(p).exists()]
    if taken:
        more = f" and {len(taken) - 1} more" if len(taken) > 1 else ""
        raise InputError(f"{option}: {taken[0]}{more} exist(s); choose another name or pass --overwrite")


#: output options whose data may be streamed into a device or FIFO (``--json /dev/stdout``)
STREAMABLE = ("--json", "--csv", "--prediction-errors")


def _unwritable(folder: Path) -> str | None:
    """Why no file can be created in ``folder`` (None when one can): tried for real, since permission bits
    say nothing to root and nothing about read-only file systems."""
    import tempfile

    try:
        fd, name = tempfile.mkstemp(prefix=".dopa_rl_probe.", dir=folder)
    except OSError as exc:
        return exc.strerror or str(exc)
    os.close(fd)
    os.unlink(name)
    return None


def check_output_paths(options: dict[str, str | None], inputs=(), *, folders: dict[str, str | None] | None = None,
                       stream: Iterable[str] = STREAMABLE) -> None:
    """Before any work, so a bad path fails fast and nothing is computed or written: one InputError lists
    every problem.

    ``options`` (``{"--json": path or None}``) name files: each must be in a folder that exists and takes
    new files, be neither one of the ``inputs`` (never overwritten) nor another option's file; a device or
    FIFO is accepted only for the ``stream`` options (written in place, never replaced).  ``folders``
    (``{"--plots": path}``) name output folders: each is created when missing if its parent exists (the
    same rule for every command), must not be a file, and must take new files.
    """
    from dopa_rl.io.atomic import destination, special_file

    problems = []
    taken = {Path(p).resolve(): "an input file" for p in inputs}
    for option, value in options.items():
        if not value:
            continue
        path = Path(value)
        what = special_file(path)
        if what:
            if option not in stream:
                problems.append(f"{option} {value} is {what}; give a regular file name")
            continue
        if str(path).startswith("/dev/"):
            continue  # /dev/stdout redirected to a file: written in place
        target = destination(path)
        if path.is_dir():
            problems.append(f"{option} {value} is a folder; give a file name")
        elif target.parent.exists() and not target.parent.is_dir():
            problems.append(f"{option} {value}: cannot write there: {target.parent} is a file, not a folder")
        elif not target.parent.is_dir():
            problems.append(f"{option} {value}: folder {target.parent} does not exist")
        elif path.resolve() in taken:
            problems.append(f"{option} {value} is {taken[path.resolve()]}; choose another file name")
        else:
            why = _unwritable(target.parent)
            if why:
                problems.append(f"{option} {value}: cannot write in folder {target.parent} ({why})")
        taken.setdefault(path.resolve(), f"also the {option} file")
    for option, value in (folders or {}).items():
        if not value:
            continue
        path = Path(value)
        what = special_file(path)
        if what:
            problems.append(f"{option} {value} is {what}; give a folder")
        elif path.exists() and not path.is_dir():
            problems.append(f"{option} {value} is a file; give a folder")
        elif not path.exists() and not path.parent.is_dir():
            problems.append(f"{option} {value}: folder {path.parent} does not exist (the last folder is "
                            f"created when missing, not its parents)")
        else:
            why = _unwritable(path if path.exists() else path.parent)
            if why:
                problems.append(f"{option} {value}: cannot write in folder {path if path.exists() else path.parent} ({why})")
    if problems:
        raise InputError("; ".join(problems))


def make_output_folder(path: str | Path) -> Path:
    """Create an output folder checked by :func:`check_output_paths` (its parent exists) and return it."""
    path = Path(path)
    path.mkdir(exist_ok=True)
    return path


@contextmanager
def warnings_to_stderr(flags: dict[str, str] | None = None) -> Iterator[None]:
    """Warnings printed as ``warning: ...`` lines on stderr, each once however often it was raised (a
    numerical warning of every model of a comparison is one line, not one traceback-like block per model),
    with parameters named as the command's flags (``flags``: ``args._flags``; see :func:`speak_flags`).
    Library :class:`~dopa_rl.errors.DataWarning` lines are as written; others say their category."""
    from dopa_rl.errors import DataWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            seen = set()
            for w in caught:
                text = speak_flags(str(w.message).splitlines()[0], flags or {})
                if not issubclass(w.category, DataWarning):
                    text = f"{text} ({w.category.__name__})"
                if text not in seen:
                    seen.add(text)
                    print(f"warning: {text}", file=sys.stderr)


# --------------------------------------------------------------------- where the trials are (every command reading them)
def add_trials_arguments(p, *, choices: bool = True, columns_example: str = "subject=mouse_id,reward=water") -> None:
    """The one set of options saying how to read a behaviour table: ``--columns``, ``--trials-table`` and, for
    commands whose models read choices, ``--choice-base`` and ``--n-options``.  Read them back with
    :func:`trials_options` (the keyword arguments of :func:`dopa_rl.io.behavior.load_behavior`)."""
    p.add_argument("--columns", default=None, metavar="STD=YOURS,...",
                   help=f"map standard columns to yours, e.g. {columns_example}")
    p.add_argument("--trials-table", default=None, metavar="NAME",
                   help="NWB TimeIntervals table holding the trials (default: trials)")
    if choices:
        p.add_argument("--choice-base", type=int, choices=(0, 1), default=0,
                       help="first option number in your data (0 or 1)")
        p.add_argument("--n-options", type=int, default=None, metavar="K",
                       help="number of options in a choice task (default: highest choice + 1)")


def trials_options(args, extra_columns=()) -> dict:
    """``columns``, ``trials_table``, ``choice_base`` and ``n_options`` from the options of
    :func:`add_trials_arguments` (``extra_columns``: non-standard names ``--columns`` may map too)."""
    from dopa_rl.io.behavior import parse_column_map

    return {"columns": parse_column_map(args.columns, extra_columns) or None, "trials_table": args.trials_table,
            "choice_base": getattr(args, "choice_base", 0), "n_options": getattr(args, "n_options", None)}


def models_for_trials(specs, n_options: int | None = None) -> list:
    """The models named by ``specs`` (names, FILE.py:NAME...), each choice model built for ``n_options``
    options when given (``--n-options``; other kinds refuse it)."""
    from dopa_rl.models import get_model

    if n_options is not None and n_options < 2:
        raise InputError(f"--n-options {n_options}: a choice task has at least 2 options")
    out = []
    for spec in specs:
        model = get_model(spec)
        if n_options is not None:
            if model.kind != "choice":
                raise InputError(f"--n-options applies to choice models; {model.name} is {model.kind}")
            model = get_model(spec, n_options=n_options)
        out.append(model)
    return out


# --------------------------------------------------------------------- dopamine signal options (regress, compare)
def add_signal_arguments(p, *, required: bool) -> None:
    """The options that say where the dopamine is and how a per-trial response is taken from it (``--signal``,
    ``--series``, ``--matrix``/``--rate``/``--event-at``, ``--window``, ``--baseline``, ``--units``); read
    them back with :func:`load_signal`.  The trials options come from :func:`add_trials_arguments`."""
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
    """The :class:`dopa_rl.neural.dataset.DopamineData` that the options of :func:`add_signal_arguments` and
    :func:`add_trials_arguments` describe, read from ``args.data``."""
    from dopa_rl.neural.dataset import DOPAMINE_COLUMNS, load_responses

    return load_responses(args.data, args.signal, **trials_options(args, DOPAMINE_COLUMNS), series=args.series, window=tuple(args.window),
                          baseline=tuple(args.baseline), matrix=args.matrix, rate=args.rate, event_at=args.event_at,
                          units=parse_units(args.units))
