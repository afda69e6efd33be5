"""The ``dopa-rl`` command: thin, it parses arguments and calls the library.

Each sub-command lives in its own module under :mod:`dopa_rl.commands` exposing
``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.  Modules are imported lazily, so
``dopa-rl --help`` stays fast.  Exit codes: 0 success, 2 bad input (one line, no traceback unless
``--debug``), 1 internal error.
"""
from __future__ import annotations

import argparse
import errno
import importlib
import importlib.util
import os
import sys

from dopa_rl import __version__
from dopa_rl.errors import DeviceError, InputError

__all__ = ["COMMANDS", "build_parser", "main"]

# (command name, module under dopa_rl.commands, one-line help).  Keep in the order users meet them.
COMMANDS: list[tuple[str, str, str]] = [
    ("demo", "demo", "run the end-to-end demo (simulated rig session -> NWB -> RW/TD fits -> report)"),
    ("models", "models", "list the models and their parameters"),
    ("simulate", "simulate", "simulate behavior (CSV) or whole sessions (NWB) from a task and model"),
    ("fit", "fit", "fit a model to behavior (CSV/TSV or NWB)"),
    ("photometry", "photometry", "preprocess a photometry recording and summarise it around events"),
    ("regress", "regress", "regress dopamine responses (photometry, units or a table) on a model's RPEs"),
    ("distributional", "distributional", "reversal points, asymmetries and decoded reward distribution of dopamine units"),
    ("kernels", "kernels", "event-kernel (encoding-model) regression of a photometry trace, optionally with RPE regressors"),
    ("flmm", "flmm", "functional linear mixed model of a trial x time signal: coefficients over trial time with joint bands"),
    ("compare", "compare", "compare models on the same behavior or dopamine (BIC, iBIC, CV, random-effects selection)"),
    ("recover-params", "recover_params", "parameter or model recovery on simulated populations"),
    ("inspect", "inspect", "show what an NWB file holds that dopa_rl can use"),
    ("run", "run", "run a live conditioning session from a TOML config (journal + NWB)"),
    ("recover", "recover", "write the NWB file of an interrupted session from its journal"),
    ("sync", "sync", "align another recording system's clock to a session's from sync pulses; re-time its series"),
    ("check", "check", "hardware test before a session: valve, cue, tone, TTL, lick sensor, TTL loopback"),
    ("calibrate", "calibrate", "calibrate the water valve and write the rig file"),
    ("ports", "ports", "list serial ports with their USB serial numbers"),
]


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line with exit code 2."""

    def error(self, message: str) -> None:  # pragma: no cover - exercised through main()
        self.print_usage(sys.stderr)
        raise SystemExit(_fail(f"{self.prog}: {message}", 2))


def _disk_full(exc: BaseException) -> OSError | None:
    """The "no space left" error behind ``exc`` (itself or a cause), or None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _disk_full_text(exc: OSError) -> str:
    """A full output disk in one line: where, and that a live session's journal keeps what it wrote."""
    where = f"{exc.filename}: " if exc.filename else ""
    return (f"output disk full ({where}{exc.strerror}); free space and run again (a live session's journal "
            f"recovers the trials it holds: dopa-rl recover FILE.nwb.journal --out NEW.nwb)")


def _interrupted(exc: BaseException) -> bool:
    """Whether ``exc`` is Ctrl-C in disguise: compiled code (numba's parallel kernels) interrupted by SIGINT
    returns with the KeyboardInterrupt set, and Python reports a SystemError caused by it."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _fail(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _available_commands() -> list[tuple[str, str, str]]:
    out = []
    for name, module, helptext in COMMANDS:
        if importlib.util.find_spec(f"dopa_rl.commands.{module}") is not None:
            out.append((name, module, helptext))
    return out


def build_parser() -> argparse.ArgumentParser:
    """The ``dopa-rl`` argument parser: one sub-command per entry of :data:`COMMANDS`."""
    parser = _Parser(
        prog="dopa-rl",
        description="Reward-prediction-error science: fit RW/TD models to behavior and dopamine, "
        "read and write NWB, run a closed-loop rig.",
        epilog="Example: dopa-rl fit choices.csv --model rw-softmax --json fit.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"dopa-rl {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module, helptext in _available_commands():
        sp = sub.add_parser(name, help=helptext, description=helptext,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show full tracebacks on errors")
        mod = importlib.import_module(f"dopa_rl.commands.{module}")
        mod.add_arguments(sp)
        sp.set_defaults(_module=module, _flags={**getattr(mod, "PARAMETER_FLAGS", {}), **_flags_of(sp)})
    return parser


def _flags_of(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Library parameter name -> this command's flag (``choice_base`` -> ``--choice-base``).  A command whose
    flag is named otherwise than the library's parameter says so in its module's ``PARAMETER_FLAGS``
    (``{"mode": "--fit"}``), which the dispatcher adds under these."""
    out: dict[str, str] = {}
    for action in parser._actions:
        longs = [o for o in action.option_strings if o.startswith("--")]
        if longs and action.dest not in ("help", "debug"):
            out[action.dest] = longs[0]
    # the library's names for counts and quantities with units: n_subjects -> --subjects, resample_hz -> --resample
    for dest, flag in list(out.items()):
        for alias in (f"n_{dest}", f"{dest}_hz", f"{dest}_s"):
            out.setdefault(alias, flag)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run ``dopa-rl`` with ``argv`` (default: the process's arguments); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    debug = bool(getattr(args, "debug", False))
    mod = importlib.import_module(f"dopa_rl.commands.{args._module}")
    try:
        return int(mod.run(args) or 0)
    except InputError as exc:
        if debug:
            raise
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        from dopa_rl.commands.common import speak_flags

        return _fail(speak_flags(text, getattr(args, "_flags", {})), 2)
    except DeviceError as exc:
        if debug:
            raise
        full = _disk_full(exc)   # the raw log's disk filled up under the link's worker
        return _fail(_disk_full_text(full) if full else f"device: {exc}", 1)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except BrokenPipeError:  # stdout closed by the reader (`dopa-rl ... | head`): stop quietly, as `cat` does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 141
    except Exception as exc:  # internal error: one line unless --debug
        if _interrupted(exc):
            return _fail("interrupted", 130)
        if debug:
            raise
        full = _disk_full(exc)
        if full:
            return _fail(_disk_full_text(full), 1)
        return _fail(f"internal error ({type(exc).__name__}: {exc}); rerun with --debug for details", 1)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
