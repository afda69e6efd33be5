"""Atomic file output: write to a temporary file in the destination folder, then ``os.replace``.

A run that fails half-way leaves no half-written output behind, and readers never see a partial file:
either the old file (if any) or the complete new one is at the destination.

>>> with atomic_path("out/session.nwb") as tmp:   # doctest: +SKIP
...     write_something(tmp)                       # the file appears at out/session.nwb only on success

Links and special files:

- a symbolic link is written through: its target gets the new contents, the link stays a link;
- a device or FIFO (``/dev/stdout``, ``/dev/full``, a named pipe) is never replaced by a file: text and bytes
  are streamed into it (:func:`atomic_open`, :func:`atomic_write_text`, :func:`atomic_write_bytes`), and
  writers that need a file name (:func:`atomic_path`: h5py, pynwb) refuse it with an InputError;
- a write that fails (no space, no permission) is an InputError naming the path.
"""
from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from dopa_rl.errors import InputError

__all__ = ["atomic_path", "atomic_open", "atomic_write_text", "atomic_write_bytes", "special_file", "destination"]


def destination(dest: str | os.PathLike[str]) -> Path:
    """Where a write to ``dest`` lands: the target of a symbolic link (followed to the end), else ``dest``."""
    dest = Path(dest)
    return Path(os.path.realpath(dest)) if dest.is_symlink() else dest


def special_file(dest: str | os.PathLike[str]) -> str | None:
    """What ``dest`` is when it exists and is not a regular file or folder ("a character device", "a FIFO"...);
    None for a regular file, a folder or a path that does not exist yet."""
    try:
        mode = os.stat(dest).st_mode
    except OSError:
        return None
    for test, what in ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return what
    return None


def _streamed(dest: str | os.PathLike[str]) -> str | None:
    """Why ``dest`` is written in place rather than replaced: a device or FIFO, or a name under /dev or /proc
    (``/dev/stdout`` redirected to a file is still the shell's stream, not a file to replace)."""
    what = special_file(dest)
    if what:
        return what
    if str(dest).startswith("/dev/") or os.path.realpath(dest).startswith("/proc/"):
        return "a stream (/dev or /proc)"
    return None


def _cannot_write(dest: Path, exc: OSError) -> InputError:
    return InputError(f"{dest}: cannot write there ({exc.strerror or exc})")


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a fresh temporary path beside ``dest``; on a clean exit move it onto ``dest``.

    Use this for writers that want a file name (h5py, pynwb).  The parent folder is created when missing.
    On any exception the temporary file is removed and ``dest`` is left as it was.  A link is written
    through (its target is replaced); a device or FIFO is refused (an InputError), never replaced.
    """
    shown = Path(dest)
    what = _streamed(shown)
    if what:
        raise InputError(f"{shown}: is {what}; this output needs a regular file")
    dest = destination(shown)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        # the name ends in ".tmp", not in dest's suffix, so folder scans for "*.nwb" / "*.csv" never pick up a
        # write in progress (or the leftover of a killed one) as an input
        fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    except OSError as exc:
        raise _cannot_write(shown, exc) from exc
    os.close(fd)
    tmp = Path(name)
    tmp.unlink()  # the writer creates it; some writers (h5py mode "w-") refuse an existing file
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"writer produced no file at {tmp}")
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_open(dest: str | os.PathLike[str], mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open a temporary file beside ``dest`` for writing (``"w"`` or ``"wb"``); rename onto ``dest`` on success.

    The data are flushed and fsync'ed before the rename, so a crash never leaves a truncated ``dest``.  A
    device or FIFO (``/dev/stdout``) is opened and written directly (it has no contents to protect and must
    not be replaced); an error writing it (``/dev/full``: no space) is an InputError.
    """
    if mode not in {"w", "wb", "wt"}:
        raise ValueError(f"atomic_open mode must be 'w', 'wt' or 'wb', not {mode!r}")
    if _streamed(dest):
        try:
            with open(dest, mode, **kwargs) as fh:
                yield fh
                fh.flush()
        except OSError as exc:
            raise _cannot_write(Path(dest), exc) from exc
        return
    with atomic_path(dest) as tmp:
        try:
            with open(tmp, mode, **kwargs) as fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:  # full disk, quota
            raise _cannot_write(Path(dest), exc) from exc


def atomic_write_text(dest: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``dest`` atomically (streamed into a device or FIFO) and return the path."""
    with atomic_open(dest, "w", encoding=encoding) as fh:
        fh.write(text)
    return Path(dest)


def atomic_write_bytes(dest: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``dest`` atomically (streamed into a device or FIFO) and return the path."""
    with atomic_open(dest, "wb") as fh:
        fh.write(data)
    return Path(dest)
