"""Helpers for the NWB tests: a hand-built session (no model needed), checksums, nwbinspector filtering."""
from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from dopa_rl.io.nwb_types import Photometry, SessionData, SessionMetadata


def hand_session(n_trials: int = 30, *, seed: int = 1, rate: float = 50.0, regular: bool = True,
                 licks_column: bool = True) -> SessionData:
    """A small session with known content: Pavlovian trials, lick/valve/cue/TTL events, photometry, units."""
    rng = np.random.default_rng(seed)
    start = np.arange(n_trials) * 6.0 + 1.0
    cue_t, out_t = start + 0.5, start + 2.0
    reward = np.where(rng.random(n_trials) < 0.7, 2.5, 0.0)
    licks = [np.sort(rng.uniform(c, o, rng.integers(0, 6))) for c, o in zip(cue_t, out_t)]
    trials = pd.DataFrame({
        "trial": np.arange(n_trials), "cue": np.where(np.arange(n_trials) % 3 == 0, "A+X", "A"),
        "reward": reward, "start_time": start, "stop_time": start + 4.0, "cue_time": cue_t, "outcome_time": out_t,
    })
    if licks_column:
        trials["licks"] = np.array([len(x) for x in licks], dtype=np.int64)
    consume = [o + 0.1 + np.arange(4) * 0.15 for o, r in zip(out_t, reward) if r > 0]
    events = {"lick": np.sort(np.concatenate(licks + consume)), "valve": out_t[reward > 0], "cue": cue_t,
              "ttl": start}
    dur = float(start[-1] + 6.0)
    if regular:
        t = np.arange(int(dur * rate)) / rate
    else:
        t = np.cumsum(rng.uniform(0.5, 1.5, int(dur * rate)) / rate) - 2.0  # negative start, jittered clock
    phot = Photometry(timestamps=t, signal=1.5 + 0.01 * rng.normal(size=t.size),
                      control=1.2 + 0.01 * rng.normal(size=t.size), rate=rate if regular else None)
    units = {int(u): np.round(np.sort(rng.uniform(0, dur, 200 + 50 * u)) * 30000) / 30000 for u in (0, 1, 5)}
    props = pd.DataFrame({"gain_hz": [10.0, 20.0, 30.0]}, index=[0, 1, 5])
    md = SessionMetadata(subject_id="m7", session_id="m7-day1",
                         session_start_time=dt.datetime(2026, 2, 3, 9, 30, tzinfo=dt.timezone.utc),
                         identifier="hand-session-m7-day1", experimenter=("Doe, Jane",), lab="Test lab")
    return SessionData(metadata=md, trials=trials, events=events, photometry=[phot], units=units,
                       unit_properties=props, true_parameters={"alpha": 0.25, "model": "rw-pavlovian"})


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def inspector_problems(path: Path) -> list[str]:
    """nwbinspector messages that would block publication: ERROR, PYNWB_VALIDATION, CRITICAL, BEST_PRACTICE_VIOLATION."""
    from nwbinspector import Importance, inspect_nwbfile

    bad = []
    for m in inspect_nwbfile(nwbfile_path=str(path)):
        if m.importance in (Importance.CRITICAL, Importance.BEST_PRACTICE_VIOLATION, Importance.ERROR,
                            Importance.PYNWB_VALIDATION):
            bad.append(f"{m.importance.name} {m.check_function_name} {m.location}: {m.message}")
    return bad
