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
