"""The session journal: an append-only, line-oriented, versioned, self-describing text file.

``FILE.nwb.journal`` sits next to ``--out FILE.nwb`` and the raw byte log ``FILE.nwb.raw`` beside it.
Each line is one JSON object whose ``kind`` says what it is; the first line says what the file is and what every kind of line means
(:data:`KINDS`), so a person (or a later version) can read it without this code.  Every line is written and
flushed to the operating system as it happens (device events from the client's listener, as they are
delivered), so ``kill -9`` of the host loses nothing the device had reported.  A line that is not a
complete record (a last line cut short by a crash, or a line damaged anywhere) is skipped on reading and
counted (:func:`read_journal`'s ``damaged``); ``recover`` warns about each.
"""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["FORMAT", "VERSION", "KINDS", "JournalWriter", "read_journal"]

FORMAT = "dopa_rl.session.journal"
VERSION = 1
KINDS = {
    "header": "this line: format, version, what each kind means, when the journal was created",
    "config": "the session config (TOML text), the rig file (TOML text), their SHA-256 (config_sha256, "
              "rig_sha256), the dopa_rl version and the valve calibration used",
    "param": "a parameter change: trial (None before the first), source (configure: limits sent to the device; "
             "policy KIND: the policy changed the schedule's trial), changes {name: new value}, was {name: old}",
    "hello": "the device's HELLO reply: firmware/protocol versions, schema hash, board, limits, reset cause",
    "ev": "a device event, in device order: i = delivery index, seq = device sequence number, name, "
          "t_us = device time (us, 64-bit), rx = host arrival time (s), f = the message fields",
    "cmd": "a command the runner sent: name, fields, t = host time (s)",
    "plan": "a trial decided by the schedule and the policy, before upload: trial (0-based), plan fields, value and predicted RPE",
    "result": "a trial learned from: trial, licks, reward, the online model's value, rpe_cue, rpe_outcome",
    "cut": "a trial the live session cut (trial, reason): not learned from and not in the trials table, even if "
           "its end reached the journal after the session stopped",
    "note": "something the runner noticed (re-arm, refused command, Ctrl-C...): text",
    "rearm": "the device client's record of a HELLO episode: why, t_host, budget_ms, resumed (session kept) or "
             "new, session, dropped (unacknowledged events a new session discarded), lost_total (events the "
             "device lost since its reset), reset_cause, failed (commands reported as unknown), t_reply",
    "link": "the device client's link counters after each learned trial (retries, rearms, device_resets, "
            "reconnects, ...), for live monitoring",
    "end": "the session ended: reason (complete, interrupted, error), trials",
}


def _jsonable(v: Any) -> Any:
    if isinstance(v, tuple):
        return list(v)
    if hasattr(v, "item"):
        return v.item()
    return v


class JournalWriter:
    """Appends records to a journal; thread-safe; ``start``/``stop``/``safe`` (idempotent)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fh = None
        self._lock = threading.Lock()
        self.lines = 0

    def start(self, **header: Any) -> JournalWriter:
        if self._fh is None:
            self._fh = open(self.path, "x", encoding="utf-8", buffering=1)
            self.write("header", format=FORMAT, version=VERSION, kinds=KINDS,
                       created=time.strftime("%Y-%m-%dT%H:%M:%S%z"), **header)
        return self

    def write(self, kind: str, **fields: Any) -> None:
        line = json.dumps({"kind": kind, **fields}, default=_jsonable, separators=(",", ":")) + "\n"
        with self._lock:
            if self._fh is None:
                return
            self._fh.write(line)
            self._fh.flush()
            self.lines += 1

    def event(self, ev: Any) -> None:
        """A client :class:`~dopa_rl.rig.client.Event` (call from the client's listener)."""
        f = {k: _jsonable(v) for k, v in ev.msg._asdict().items()}
        self.write("ev", i=ev.index, seq=ev.seq, name=ev.name, t_us=ev.t_device_us, rx=ev.t_received, f=f)

    def stop(self) -> None:
        with self._lock:
            fh, self._fh = self._fh, None
        if fh is not None:
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()

    safe = stop


def read_journal(path: str | os.PathLike[str], *, damaged: list[int] | None = None) -> list[dict]:
    """Every complete record; raises ValueError if the file is not a journal of a version we read.

    A line that is not a complete JSON record (cut short by a crash, or damaged anywhere in the file) is
    skipped; with ``damaged`` given, the 1-based number of each such line is appended to it."""
    out: list[dict] = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh):
            try:
                rec = json.loads(line) if line.endswith("\n") else None
            except json.JSONDecodeError:
                rec = None
            if not isinstance(rec, dict) or not isinstance(rec.get("kind"), str):
                if n == 0:
                    raise ValueError(f"{path}: not a dopa_rl session journal (first line is not a JSON record)")
                if damaged is not None:
                    damaged.append(n + 1)
                continue
            if n == 0 and (rec.get("format") != FORMAT or rec.get("version", 0) > VERSION):
                raise ValueError(f"{path}: not a dopa_rl session journal of version <= {VERSION} "
                                 f"(format {rec.get('format')!r}, version {rec.get('version')!r})")
            out.append(rec)
    if not out:
        raise ValueError(f"{path}: empty journal")
    return out


def damage_text(path: str | os.PathLike[str], damaged: list[int]) -> str:
    """One line saying which lines of a journal were skipped."""
    shown = ", ".join(str(n) for n in damaged[:10]) + (", ..." if len(damaged) > 10 else "")
    return (f"{path}: {len(damaged)} corrupt line{'s' if len(damaged) != 1 else ''} skipped (line "
            f"{shown}); everything else was read")
