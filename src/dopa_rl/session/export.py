"""Journal -> NWB: the one path from what a session recorded to its NWB file (also used by ``recover``).

The journal is the session's record; :func:`session_data` rebuilds everything from it: the trials table
(task columns, licks counted from the device's lick events, what the valve delivered, the online model's value
and RPEs), lick/valve/cue/tone/TTL events in session time (device microseconds since the first event of
the session), the analog input, and the config, rig file, calibration and firmware/protocol versions in
the metadata.  A session that did not end cleanly is marked incomplete (description, keywords, notes).
"""
from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from dopa_rl.io.nwb_types import AnalogSeries, Intervals, SessionData, SessionMetadata, Table
from dopa_rl.session.journal import damage_text, read_journal
from dopa_rl.session.outcome import TrialWindow, trial_outcome

__all__ = ["EVENT_NAMES", "EVENT_DOCS", "COLUMN_DOCS", "session_tables", "session_data", "journal_data",
           "cut_valve_openings", "export_journal",
           "recover"]

TASK, ITI = 0, 1   # trial_id = 2 * k + part
DEFAULT_DEBOUNCE_US = 1000   # the config's default lick_debounce_us
CUT_DOCS = {"trial": "0-based trial number in the session", "trial_type": "trial type name from the session config",
            "planned_reward_ul": "reward the trial was planned to give, uL",
            "valve_openings": "valve openings the device reported during the trial (water given before the cut; "
                              "the device's tally counts them)",
            "reason": "why the trial was cut (its outcome did not happen or was not reported)"}

EVENT_NAMES = {"LICK_ON": "lick", "VALVE_OPENED": "valve", "CUE_ONSET": "cue", "TONE_ONSET": "tone",
               "TTL_SENT": "ttl", "SYNC_PULSE": "sync"}
EVENT_DOCS = {"lick": "lick onsets (debounced on the device), session time",
              "valve": "water valve openings, session time", "cue": "cue LED onsets, session time",
              "tone": "tone onsets, session time", "ttl": "TTL pulses sent by the rig (rising edge), session time",
              "sync": "random-interval sync pulses on the TTL output (rising edge), session time (dopa-rl sync)"}
COLUMN_DOCS = {
    "trial": "0-based trial number in the session",
    "trial_type": "trial type name from the session config",
    "cue": "stimulus as the online model sees it (light, tone<Hz>, light+tone<Hz>)",
    "block": "block index of the schedule (blocks repeat: reversals)",
    "cue_time": "cue onset (device-timed), seconds from session start",
    "outcome_time": "programmed outcome time (reward delivery or omission), seconds from session start",
    "reward": "reward delivered, in model units (1 = the config's largest reward_ul); 0 when omitted",
    "reward_ul": "reward delivered, uL (planned size when the valve opened, else 0)",
    "valve_ms": "valve open time measured by the device, ms",
    "planned_reward_ul": "reward the trial was planned to give, uL (0 for planned omissions)",
    "licks": "anticipatory lick count between cue onset and outcome",
    "stim": "1 if a TTL pulse was programmed at the outcome (closed-loop stimulation)",
    "iti": "inter-trial interval programmed after the trial, seconds",
    "value": "online model value at cue onset, before learning on this trial",
    "rpe_cue": "online model prediction error at cue onset",
    "rpe_outcome": "online model prediction error at the outcome",
    "aborted": "1 if the device aborted the trial after its outcome (ALL_OFF or host timeout); trials aborted "
               "before it are in the cut_trials intervals, not here",
}


def _by_kind(records: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        out[r["kind"]].append(r)
    return out


def _debounce_of(cfg: dict) -> int:
    """The lick debounce of a journal whose config record predates its ``lick_debounce_us`` field."""
    import tomllib

    try:
        return int(tomllib.loads(cfg.get("config_toml", "")).get("session", {}).get("lick_debounce_us",
                                                                                   DEFAULT_DEBOUNCE_US))
    except (tomllib.TOMLDecodeError, TypeError, ValueError):
        return DEFAULT_DEBOUNCE_US


def session_tables(records: list[dict]) -> dict:
    """Trials (DataFrame), cut trials (DataFrame), events (name -> session-time array), analog samples and
    context from a journal.  Each trial's outcome comes from :func:`dopa_rl.session.outcome.trial_outcome`,
    the definition the live session learned from."""
    rec = _by_kind(records)
    evs = rec["ev"]
    t0 = evs[0]["t_us"] if evs else 0
    st = lambda t_us: (t_us - t0) / 1e6  # noqa: E731
    events: dict[str, list[float]] = {v: [] for v in EVENT_NAMES.values()}
    starts, ends, last_of = {}, {}, {}
    analog_t, analog_x, rates = [], [], set()
    # each trial's licks and valve events: those between its task part's start and the next one's (journal
    # order is device order, also where device time restarts after a reset)
    seg: dict[int, dict[str, list]] = defaultdict(lambda: {"lick": [], "opened": [], "closed": []})
    current = None   # the task part started last
    for e in evs:
        name = e["name"]
        if name in EVENT_NAMES:
            events[EVENT_NAMES[name]].append(st(e["t_us"]))
        if name == "LICK_ON":
            seg[current]["lick"].append(e["t_us"])
        elif name == "VALVE_OPENED":
            seg[current]["opened"].append(e["t_us"])
        elif name == "VALVE_CLOSED":
            seg[current]["closed"].append((e["t_us"], e["f"]["open_us"]))
        elif name == "TRIAL_STARTED":
            starts[e["f"]["trial_id"]] = e
            if e["f"]["trial_id"] % 2 == TASK:
                current = e["f"]["trial_id"]
        elif name == "TRIAL_ENDED":
            ends[e["f"]["trial_id"]] = e
        elif name == "ANALOG_BATCH":
            f = e["f"]
            rates.add(f["rate_hz"])
            for i in range(f["n"]):
                analog_t.append(st(e["t_us"]) + i / f["rate_hz"])
                analog_x.append(f["samples"][i])
        if current is not None:
            last_of[current] = e["t_us"]
    plans = {r["trial"]: r for r in rec["plan"]}
    results = {r["trial"]: r for r in rec["result"]}
    cfg = rec["config"][0] if rec["config"] else {}
    max_ul = cfg.get("max_reward_ul", 1.0) or 1.0
    debounce = cfg.get("lick_debounce_us", _debounce_of(cfg))
    forced = {r["trial"]: r["reason"] for r in rec["cut"]}   # trials the live session cut
    rows, cut = [], []
    for k in sorted(plans):
        tid = 2 * k + TASK
        if tid not in starts:
            continue  # never ran
        p = plans[k]["plan"]
        w = TrialWindow.of(starts[tid]["t_us"], p["cue_s"], p["trace_s"], debounce)
        end = ends.get(tid)
        t_end = end["t_us"] if end is not None else None
        aborted = bool(end["f"]["aborted"]) if end is not None else False
        if k in forced or not w.complete(t_end, aborted):
            # the live session's own cut wins: a trial it stopped in (Ctrl-C) may end in the journal after
            # the stop, but it was not learned from
            why = forced.get(k) or ("aborted by the device before its outcome was reported" if end is not None
                                    else "its end was never reported (interrupted, device reset or events lost)")
            stop = t_end if t_end is not None else last_of.get(tid, w.t0)
            cut.append({"trial": k, "trial_type": p["trial_type"], "start_time": st(w.t0),
                        "stop_time": max(st(w.t0), st(stop)), "planned_reward_ul": p["reward_ul"],
                        "valve_openings": len(seg[tid]["opened"]) if tid in seg else 0, "reason": why})
            continue
        ev = seg[tid]
        o = trial_outcome(w, p["reward_ul"], ev["lick"], ev["opened"], ev["closed"], t_end_us=t_end)
        r = results.get(k, {})
        rows.append({
            "trial": k, "trial_type": p["trial_type"], "cue": plans[k].get("cue_key", p["cue"]), "block": p["block"],
            "start_time": st(w.t0), "stop_time": st(t_end), "cue_time": st(w.t0), "outcome_time": st(w.outcome),
            "reward": o.reward_ul / max_ul, "reward_ul": o.reward_ul,
            "valve_ms": o.valve_ms if o.valve_ms is not None else 0.0,
            "planned_reward_ul": p["reward_ul"], "licks": o.licks, "stim": int(bool(p.get("stim"))),
            "iti": p["iti_s"], "value": r.get("value", np.nan), "rpe_cue": r.get("rpe_cue", np.nan),
            "rpe_outcome": r.get("rpe_outcome", np.nan), "aborted": int(aborted)})
    trials = pd.DataFrame(rows)
    return {"trials": trials, "cut_trials": pd.DataFrame(cut), "events": {k: np.array(v) for k, v in events.items()},
            "analog": (np.array(analog_t), np.array(analog_x, dtype=np.uint16)),
            "analog_rate": rates.pop() if len(rates) == 1 else None, "config": cfg,
            "hello": rec["hello"][0] if rec["hello"] else {}, "header": records[0],
            "end": rec["end"][-1] if rec["end"] else None, "notes": [n["text"] for n in rec["note"]]}


PROVENANCE_KEYS = ("config_path", "config_sha256", "rig_path", "rig_sha256", "rig_name", "ms_per_ul", "calibrated",
                   "device", "speed", "dopa_rl_version")
HELLO_KEYS = ("firmware_version", "protocol_version", "schema_hash", "board", "reset_cause")


def provenance_table(records: list[dict]) -> Table:
    """What the session ran with: config and rig file (paths, SHA-256), calibration, device, firmware."""
    rec = _by_kind(records)
    cfg = rec["config"][0] if rec["config"] else {}
    hello = rec["hello"][0] if rec["hello"] else {}
    rows = [(k, cfg.get(k)) for k in PROVENANCE_KEYS] + [(k, hello.get(k)) for k in HELLO_KEYS]
    rows.append(("journal_version", records[0].get("version")))
    frame = pd.DataFrame({"key": [k for k, _ in rows], "value": ["" if v is None else str(v) for _, v in rows]})
    return Table(frame, "provenance of the session: config and rig file (path, SHA-256 of the text, both texts in "
                        "the file's notes), valve calibration, device, firmware and protocol versions, schema hash",
                 {"key": "what", "value": "its value (text)"})


def parameter_changes_table(records: list[dict]) -> Table:
    """Every parameter change journaled (limits sent to the device, trials the policy changed), one row per
    parameter, in session time: the device time of the last event before it (NaN before the first)."""
    t0 = last = None
    rows = []
    for r in records:
        if r["kind"] == "ev":
            t0 = r["t_us"] if t0 is None else t0
            last = r["t_us"]
        elif r["kind"] == "param":
            t = np.nan if last is None else (last - t0) / 1e6
            trial = -1 if r.get("trial") is None else int(r["trial"])
            for name, value in r.get("changes", {}).items():
                was = r.get("was", {}).get(name)
                rows.append({"time": t, "trial": trial, "source": r.get("source", ""), "parameter": name,
                             "value": json.dumps(value), "previous": "" if was is None else json.dumps(was)})
    frame = pd.DataFrame(rows, columns=["time", "trial", "source", "parameter", "value", "previous"])
    return Table(frame, "every parameter change during the session, in the order made",
                 {"time": "session time (s, device clock) of the last device event before the change; NaN before the first",
                  "trial": "trial it applies to (-1: the whole session)",
                  "source": "configure (limits sent to the device) or policy KIND (it changed the schedule's trial)",
                  "parameter": "parameter name", "value": "new value (JSON)",
                  "previous": "the schedule's value it replaced (JSON; empty for limits)"})


def session_data(records: list[dict], *, recovered: bool = False, damage: str | None = None) -> SessionData:
    """The NWB contents of a journal's records; ``damage``: a line about skipped corrupt journal lines."""
    tabs = session_tables(records)
    cfg, hello, header, end = tabs["config"], tabs["hello"], tabs["header"], tabs["end"]
    complete = end is not None and end.get("reason") == "complete" and not recovered
    status = "complete" if complete else ("INCOMPLETE (recovered from the journal)" if end is None or recovered
                                          else f"INCOMPLETE ({end.get('reason')})")
    try:
        start = dt.datetime.fromisoformat(header["created"])
    except (KeyError, ValueError):
        start = dt.datetime.now(dt.timezone.utc)
    keywords = ["dopamine", "reward prediction error", "classical conditioning", "closed loop"]
    if not complete:
        keywords.append("incomplete")
    md = SessionMetadata(
        subject_id=cfg.get("subject", "unknown"), session_id=cfg.get("session_id", "session"), session_start_time=start,
        session_description=f"{cfg.get('description', 'conditioning session')} [{status}]",
        experiment_description="Live conditioning session run by dopa_rl (dopa-rl run) with an online "
                               f"{cfg.get('model', 'rw-pavlovian')} model and the {cfg.get('policy', 'fixed')} policy.",
        institution=cfg.get("institution", "unspecified institution"), experimenter=tuple(cfg.get("experimenter", ())),
        keywords=tuple(keywords))
    fw = (f"firmware 0x{hello.get('firmware_version', 0):04X}, protocol v{hello.get('protocol_version', '?')}, "
          f"schema 0x{hello.get('schema_hash', 0):08X}, board {hello.get('board', '?')}, "
          f"reset cause {hello.get('reset_cause', '?')}")
    devices = {"rig": f"{cfg.get('rig_name', 'rig')} on {cfg.get('device', '?')}; {fw}",
               "valve": f"water valve, calibration {cfg.get('ms_per_ul', 0):g} ms per uL ({cfg.get('calibrated', '?')})"}
    notes = "\n".join([
        f"dopa_rl live session: {status}; journal version {header.get('version')}; end: {json.dumps(end)}",
        f"config sha256 {cfg.get('config_sha256')}; rig file sha256 {cfg.get('rig_sha256')}; "
        f"dopa_rl {cfg.get('dopa_rl_version')}",
        f"valve calibration: {cfg.get('ms_per_ul')} ms per uL ({cfg.get('calibrated')})",
        f"device HELLO: {json.dumps(hello)}", "runner notes: " + json.dumps(tabs["notes"]),
        *([f"journal: {damage}"] if damage else []),
        f"----- session config ({cfg.get('config_path')}) -----", cfg.get("config_toml", ""),
        f"----- rig file ({cfg.get('rig_path') or 'none: default simulated rig'}) -----", cfg.get("rig_toml", "")])
    events = {k: v for k, v in tabs["events"].items() if len(v)}
    analog = {}
    t, x = tabs["analog"]
    if len(t):
        analog["analog_input"] = AnalogSeries(timestamps=t, data=x, unit="ADC counts (10-bit)", rate=tabs["analog_rate"],
                                              description="rig analog input A0 (e.g. photometry system output)")
    trials, cut = tabs["trials"], tabs["cut_trials"]
    intervals = {}
    if len(cut):
        intervals["cut_trials"] = Intervals(cut, "trials cut before their outcome was reported (Ctrl-C, a device "
                                                 "reset, a host timeout, the end of the journal): kept out of the "
                                                 "trials table, so a fit never takes them for omissions", CUT_DOCS)
    return SessionData(metadata=md, trials=trials if len(trials) else None, events=events, event_descriptions=EVENT_DOCS,
                       analog=analog, devices=devices, notes=notes, intervals=intervals,
                       trial_column_descriptions={c: COLUMN_DOCS[c] for c in trials.columns if c in COLUMN_DOCS},
                       tables={"provenance": provenance_table(records),
                               "parameter_changes": parameter_changes_table(records)})


def journal_data(journal: str | Path, *, recovered: bool = False, damaged: list[int] | None = None) -> SessionData:
    """The NWB contents of a journal file (``recovered=True``: marked incomplete).  The line numbers of
    corrupt journal lines (skipped) are appended to ``damaged`` and named in the contents' notes."""
    bad: list[int] = []
    records = read_journal(journal, damaged=bad)
    if damaged is not None:
        damaged.extend(bad)
    damage = damage_text(journal, bad) if bad else None
    return session_data(records, recovered=recovered, damage=damage)


def cut_valve_openings(data: SessionData) -> int:
    """Valve openings the device reported during the trials cut from the trials table (water given): with
    the rewarded trials they make the device's own count of openings."""
    cut = data.intervals.get("cut_trials")
    return int(cut.table["valve_openings"].sum()) if cut is not None else 0


def export_journal(journal: str | Path, out: str | Path, *, recovered: bool = False, overwrite: bool = False,
                   damaged: list[int] | None = None) -> Path:
    """Write the NWB file of a journal (``recovered=True``: marked incomplete); returns the path.  The line
    numbers of corrupt journal lines (skipped) are appended to ``damaged`` and named in the file's notes."""
    from dopa_rl.io.nwb import write_session

    return write_session(out, journal_data(journal, recovered=recovered, damaged=damaged), overwrite=overwrite)


def recover(journal: str | Path, out: str | Path, *, damaged: list[int] | None = None) -> Path:
    """NWB of an interrupted session from its journal, marked incomplete."""
    return export_journal(journal, out, recovered=True, damaged=damaged)
