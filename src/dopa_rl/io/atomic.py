"""Atomic file output: write to a temporary file in the destination folder, then ``os.replace``.

A run that fails half-way leaves no half-written output behind, and readers never see a partial file:
either the old file (if any) or the complete new one is at the destination.

>>> with atomic_path("out/session.nwb") as tmp:   # doctest: +SKIP
...     write_something(tmp)                       # the file appears at out/session.nwb only on success
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["atomic_path", "atomic_open", "atomic_write_text", "atomic_write_bytes"]


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a fresh temporary path beside ``dest``; on a clean exit move it onto ``dest``.

    Use this for writers that want a file name (h5py, pynwb).  The parent folder is created when missing.
    On any exception the temporary file is removed and ``dest`` is left as it was.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # the name ends in ".tmp", not in dest's suffix, so folder scans for "*.nwb" / "*.csv" never pick up a
    # write in progress (or the leftover of a killed one) as an input
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
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

    The data are flushed and fsync'ed before the rename, so a crash never leaves a truncated ``dest``.
    """
    if mode not in {"w", "wb", "wt"}:
        raise ValueError(f"atomic_open mode must be 'w', 'wt' or 'wb', not {mode!r}")
    with atomic_path(dest) as tmp:
        with open(tmp, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())


def atomic_write_text(dest: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``dest`` atomically and return the path."""
    with atomic_open(dest, "w", encoding=encoding) as fh:
        fh.write(text)
    return Path(dest)


def atomic_write_bytes(dest: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``dest`` atomically and return the path."""
    with atomic_open(dest, "wb") as fh:
        fh.write(data)
    return Path(dest)
