"""A running session's state, read from its journal as it grows (for the lab's summary and the dashboard).

The journal is the one record of a session, so whatever watches a rig reads it and never talks to the runner:
:func:`apply_record` is a pure reducer (state + one journal record -> state), :class:`JournalTail` feeds it
the complete lines appended since its last read (a line still being written is left for the next read).
Reading a journal never slows the runner: the runner only appends and flushes.
"""
from __future__ import annotations

import json
import os
import tomllib
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["RigState", "apply_record", "JournalTail"]

LAST_TRIALS = 30    # trials kept for the dashboard (table, lick raster, value/RPE plot)
ENDED = ("complete", "interrupted", "error")
STARTING = ("starting", "connecting", "arming")


@dataclass
class RigState:
    """What the monitor knows of one rig from its journal: state, trials, rewards, link health."""

    name: str
    journal: str
    subject: str = ""
    session_id: str = ""
    state: str = "starting"      # starting, connecting, arming, running, paused, complete, interrupted, error (+ died)
    trials_done: int = 0
    n_trials: int | None = None
    rewards: int = 0
    water_ul: float = 0.0
    budget_ul: float | None = None
    ms_per_ul: float | None = None
    link: dict = field(default_factory=lambda: {"retries": 0, "rearms": 0, "lost_events": 0, "device_resets": 0,
                                                "reconnects": 0, "disconnects": 0})
    problems: list[str] = field(default_factory=list)
    last_trials: deque = field(default_factory=lambda: deque(maxlen=LAST_TRIALS))
    # per trial (by trial number) while it is recent: start device time, lick times, planned value/RPE
    _t0: dict = field(default_factory=dict)
    _licks: list = field(default_factory=list)
    _plans: dict = field(default_factory=dict)
    _rearms: int = 0
    _done: set = field(default_factory=set)

    def to_json(self) -> dict:
        return {"name": self.name, "subject": self.subject, "session_id": self.session_id, "state": self.state,
                "trials_done": self.trials_done, "n_trials": self.n_trials, "rewards": self.rewards,
                "water_ul": round(self.water_ul, 3), "budget_ul": self.budget_ul, "link": dict(self.link),
                "problems": list(self.problems), "journal": self.journal, "last_trials": list(self.last_trials)}


def _budget_ul(rec: dict) -> tuple[float | None, float | None]:
    ms_per_ul = rec.get("ms_per_ul")
    budget_ms = rec.get("budget_valve_ms")
    if budget_ms is None:
        try:
            from dopa_rl.session.config import Safety   # the default budget is the config's, not a copy

            budget_ms = tomllib.loads(rec.get("config_toml") or "").get("safety", {}).get("budget_valve_ms",
                                                                                          Safety.budget_valve_ms)
        except tomllib.TOMLDecodeError:
            budget_ms = None
    if not ms_per_ul or budget_ms is None:
        return None, ms_per_ul
    return budget_ms / ms_per_ul, ms_per_ul


def apply_record(s: RigState, rec: dict) -> RigState:
    """Fold one journal record into the state (mutates and returns ``s``)."""
    kind = rec.get("kind")
    if kind == "header":
        s.state = "connecting"
    elif kind == "config":
        s.subject, s.session_id = rec.get("subject", ""), rec.get("session_id", "")
        s.n_trials = rec.get("n_trials")
        s.budget_ul, s.ms_per_ul = _budget_ul(rec)
    elif kind == "hello":
        s.state = "arming"
    elif kind == "cmd" and rec.get("name") == "PROGRAM" and s.state == "arming":
        s.state = "running"       # configured and the first trial on its way
    elif kind == "ev":
        name, f = rec.get("name"), rec.get("f", {})
        if name == "TRIAL_STARTED" and f.get("trial_id", 1) % 2 == 0:
            k = f["trial_id"] // 2
            s._t0[k] = rec["t_us"]
            for old in [t for t in s._t0 if t < k - LAST_TRIALS]:
                del s._t0[old]
            s._licks = [t for t in s._licks if t >= rec["t_us"] - 120_000_000]
        elif name == "LICK_ON":
            s._licks.append(rec["t_us"])
        elif name == "VALVE_CLOSED" and s.ms_per_ul:
            s.water_ul += f.get("open_us", 0) / 1000.0 / s.ms_per_ul
        elif name == "ERROR" and f.get("code") == 1:     # EVENT_OVERFLOW: value = events the device lost
            s.link["lost_events"] += int(f.get("value", 0))
    elif kind == "plan":
        s._plans[rec["trial"]] = (rec.get("value"), rec.get("predicted_rpe"))
        for old in [t for t in s._plans if t < rec["trial"] - LAST_TRIALS]:
            del s._plans[old]
    elif kind == "result":
        k = rec["trial"]
        if k in s._done:
            return s
        s._done.add(k)
        s.trials_done += 1
        s.rewards += rec.get("reward_ul", 0) > 0
        t0 = s._t0.get(k)
        licks = [] if t0 is None else [round((t - t0) / 1e6, 4) for t in s._licks if t0 - 2_000_000 <= t < t0 + 30_000_000]
        value, predicted = s._plans.get(k, (None, None))
        s.last_trials.append({"trial": k, "trial_type": rec.get("trial_type"), "licks": rec.get("licks"),
                              "reward_ul": rec.get("reward_ul"), "value": rec.get("value"),
                              "rpe_cue": rec.get("rpe_cue"), "rpe_outcome": rec.get("rpe_outcome"),
                              "planned_value": value, "planned_rpe": predicted, "lick_times": licks})
    elif kind == "link":
        for key in ("retries", "rearms", "device_resets", "reconnects", "disconnects"):
            if key in rec:
                s.link[key] = max(s.link[key], rec[key])
    elif kind == "note":
        text = rec.get("text", "")
        if text.startswith("paused"):
            s.state = "paused"
        elif text.startswith("resumed"):
            s.state = "running"
        elif any(w in text for w in ("device reset", "never reported", "safety trip", "lost", "aborted", "failed")):
            s.problems.append(text)
            del s.problems[:-20]
    elif kind == "rearm":
        s._rearms += 1
        s.link["rearms"] = max(s.link["rearms"], s._rearms)
    elif kind == "end":
        s.state = rec.get("reason", "error")
        if s.state != "complete":
            s.problems.append(f"session ended: {s.state}")
    return s


class JournalTail:
    """Follows one journal file: :meth:`update` folds the complete lines appended since the last call."""

    def __init__(self, name: str, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.state = RigState(name=name, journal=str(self.path))
        self._pos = 0
        self._partial = b""

    def update(self) -> RigState:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self._pos)
                chunk = fh.read()
        except FileNotFoundError:
            return self.state
        self._pos += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()          # an incomplete last line waits for the next read
        for line in lines:
            try:
                rec = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
            apply_record(self.state, rec)
        return self.state
