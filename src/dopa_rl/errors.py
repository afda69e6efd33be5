"""Error types shared by the whole package.

Every error a user can cause is an :class:`InputError`; the command line turns it into one clear line
on stderr and exit code 2.  Anything else escaping the library is an internal error (exit code 1).
"""
from __future__ import annotations

__all__ = ["DopaRLError", "InputError", "DataWarning", "DeviceError", "collect_problems"]


class DopaRLError(Exception):
    """Base class of every error raised on purpose by dopa_rl."""


class InputError(DopaRLError, ValueError):
    """Bad input from the user: a file, a column, an option or a value.

    The message is one line that names what is at fault and, where possible, what to type instead.
    """


class DataWarning(UserWarning):
    """Data that will fit but probably not as the user meant (a rare option, rewards far from order 1).

    The command line prints each as one ``warning: ...`` line on stderr."""


class DeviceError(DopaRLError):
    """A rig device misbehaved or the link to it failed (timeouts, refused handshakes, lost links)."""


def collect_problems(problems: list[str], what: str) -> None:
    """Raise one :class:`InputError` listing every problem found by a validator, or return quietly.

    Validators gather all problems first and raise once, so the user fixes everything in one go.
    """
    if problems:
        if len(problems) == 1:
            raise InputError(f"{what}: {problems[0]}")
        raise InputError(f"{what}: " + "; ".join(problems))
