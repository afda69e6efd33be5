"""The session state machine in virtual time (tests/_virtual_rig.py: no threads, no clock, no link):
every trial learned from the device's events, faults (abort, reset, an upload of unknown outcome, lost
events, a stall, silence) handled, and the journal it leaves exported with the same trial outcomes."""
from __future__ import annotations

import numpy as np
import pytest
from _session_support import fast_config
from _virtual_rig import T0_US, VirtualRig

from dopa_rl.protocol import messages as P
from dopa_rl.session import load_config
from dopa_rl.session.export import session_tables
from dopa_rl.session import schedule as S
from dopa_rl.session.machine import SILENCE_S, Done, Record, SessionMachine, sync_seed
from dopa_rl.session.outcome import TrialWindow, trial_outcome

ALPHA = 0.3   # the fast config's model.alpha


def _machine(tmp_path, n=30, **kw):
    cfg, rig = load_config(fast_config(tmp_path, n, **kw))
    return SessionMachine.of(cfg, rig, 1.0), cfg


def _licks(seed=0, span_s=400.0, rate_hz=3.0):
    rng = np.random.default_rng(seed)
    t = T0_US + np.cumsum(rng.exponential(1e6 / rate_hz, int(span_s * rate_hz))).astype(np.int64)
    return sorted(set(int(x) for x in t))


def _config_fields(cfg):
    return {"max_reward_ul": cfg.max_reward_ul, "lick_debounce_us": cfg.lick_debounce_us, "subject": cfg.subject}


def _task_starts(rig):
    return [e.msg.trial_id // 2 for e in rig.events if e.name == "TRIAL_STARTED" and e.msg.trial_id % 2 == 0]


def _notes(rig):
    return [o.fields["text"] for o in rig.outputs if isinstance(o, Record) and o.kind == "note"]


def _rw_reference(history, max_ul):
    """Rescorla-Wagner written out per stimulus (compounds not used by the fast config)."""
    v: dict[str, float] = {}
    out = []
    for h in history:
        key = "light" if h["trial_type"] == "CS+" else "tone8000"
        out.append(v.get(key, 0.0))
        v[key] = v.get(key, 0.0) + ALPHA * (h["reward_ul"] / max_ul - v.get(key, 0.0))
    return out


def _expected_outcome(rig, k, plan):
    """Licks and reward of trial k counted straight from the rig's events (independent of outcome.py)."""
    t0 = next(e.t_device_us for e in rig.events if e.name == "TRIAL_STARTED" and e.msg.trial_id == 2 * k)
    t_out = t0 + round((plan.cue_s + plan.trace_s) * 1e6)
    licks = sum(1 for e in rig.events if e.name == "LICK_ON" and t0 <= e.t_device_us < t_out)
    valve = any(e.name == "VALVE_OPENED" and e.t_device_us == t_out for e in rig.events)
    return licks, plan.reward_ul if valve else 0.0


def test_a_session_in_virtual_time_learns_every_trial_from_the_device_events(tmp_path):
    m, cfg = _machine(tmp_path, 40)
    rig = VirtualRig(m, licks_us=_licks())
    rig.begin()
    assert rig.run() == Done()
    assert [h["trial"] for h in m.history] == list(range(40)) == [r["trial"] for r in rig.shown]
    assert _task_starts(rig) == list(range(40))                       # each trial ran once, in order
    for h in m.history:
        licks, reward = _expected_outcome(rig, h["trial"], m.plans[h["trial"]])
        assert (h["licks"], h["reward_ul"]) == (licks, reward)
    assert sum(h["licks"] for h in m.history) > 20 and 0 < sum(h["reward_ul"] > 0 for h in m.history) < 40
    np.testing.assert_allclose([h["value"] for h in m.history], _rw_reference(m.history, cfg.max_reward_ul))
    # each decision came before its trial's upload, from the learner after the previous trial
    plans = [o.fields for o in rig.outputs if isinstance(o, Record) and o.kind == "plan"]
    assert [p["trial"] for p in plans] == list(range(40))
    np.testing.assert_allclose([p["value"] for p in plans], [h["value"] for h in m.history])
    # the export of the journal it leaves computes the same outcomes (one trial_outcome)
    tabs = session_tables(rig.journal_records(_config_fields(cfg)))
    trials = tabs["trials"]
    assert list(trials["trial"]) == list(range(40)) and not len(tabs["cut_trials"])
    assert list(trials["licks"]) == [h["licks"] for h in m.history]
    assert list(trials["reward_ul"]) == [h["reward_ul"] for h in m.history]
    np.testing.assert_allclose(trials["value"], [h["value"] for h in m.history])


def test_a_trial_aborted_before_its_outcome_is_cut_not_an_omission(tmp_path):
    """ALL_OFF (Ctrl-C, a host timeout) before the outcome: the trial is not learned from and not in the
    trials table (it is in cut_trials); fit never sees a fake omission.  The old export gave it reward 0."""
    m, cfg = _machine(tmp_path, 12, p=1.0)
    rig = VirtualRig(m, licks_us=_licks(1))
    rig.begin()
    rig.run_into_trial(5)
    rig.run(until_us=m.windows[5].t0 + 600_000)                       # cue on, outcome 1.0 s after the start
    rig.all_off()
    assert rig.run() == Done()
    assert 5 in m.cut and 5 not in [h["trial"] for h in m.history]
    assert [h["trial"] for h in m.history] == [k for k in range(12) if k != 5]
    assert _task_starts(rig) == list(range(12))
    assert any("trial 5 aborted" in n for n in _notes(rig))
    tabs = session_tables(rig.journal_records(_config_fields(cfg)))
    trials, cut = tabs["trials"], tabs["cut_trials"]
    assert 5 not in set(trials["trial"]) and list(cut["trial"]) == [5]
    planned = trials[trials["planned_reward_ul"] > 0]
    assert (planned["reward_ul"] == planned["planned_reward_ul"]).all()     # no fake omission left
    assert cut["stop_time"].iloc[0] > cut["start_time"].iloc[0]


def test_interrupted_mid_trial_the_cut_trial_is_journaled_and_left_out(tmp_path):
    m, cfg = _machine(tmp_path, 50, p=1.0)
    rig = VirtualRig(m, licks_us=_licks(2))
    rig.begin()
    rig.run_into_trial(7, 300_000)
    notes = m.finish("interrupted")                                    # the runner stops: outputs off
    rig.log.extend(notes)
    rig.all_off()
    rig.journal_only()                                                # ALL_OFF's TRIAL_ENDED, journaled only
    assert rig.events[-1].name == "TRIAL_ENDED" and rig.events[-1].msg.aborted
    assert m.cut == {7: "interrupted"} and notes[0].fields == {"trial": 7, "reason": "interrupted"}
    assert "trial 7 was running" in notes[1].fields["text"]
    tabs = session_tables(rig.journal_records(_config_fields(cfg), end_reason="interrupted"))
    assert list(tabs["trials"]["trial"]) == list(range(7)) and list(tabs["cut_trials"]["trial"]) == [7]


def test_a_device_reset_cuts_the_running_trial_and_the_next_starts(tmp_path):
    m, cfg = _machine(tmp_path, 14)
    rig = VirtualRig(m, licks_us=_licks(3))
    rig.begin()
    rig.run_into_trial(4, 400_000)
    rig.reset()
    assert rig.run() == Done()
    assert m.cut == {4: "cut by a device reset"}
    assert [h["trial"] for h in m.history] == [k for k in range(14) if k != 4]
    assert _task_starts(rig) == list(range(14))                       # none ran twice
    notes = _notes(rig)
    assert any("device reset" in n for n in notes) and any("trial 5 starts now" in n for n in notes)


def test_a_replayed_hello_reply_is_not_taken_for_a_reset(tmp_path):
    m, cfg = _machine(tmp_path, 8)
    rig = VirtualRig(m, licks_us=_licks(8))
    rig.begin()
    rig.run_into_trial(3, 300_000)
    rig.replay_hello()
    assert rig.run() == Done()
    assert not m.cut and [h["trial"] for h in m.history] == list(range(8)) and _task_starts(rig) == list(range(8))
    assert any("arrived again; ignored" in n for n in _notes(rig))


def test_an_upload_of_unknown_outcome_restarts_the_trial_in_the_new_session(tmp_path):
    """CommandOutcomeUnknown from an upload (the device reset during it) used to end ``dopa-rl run``: the
    machine journals it and the new session's HELLO_REPLY starts the trial."""
    m, cfg = _machine(tmp_path, 10)
    hit = []

    def reset_during(rig, up):
        if up.trial_id == 6 and not hit:                              # trial 3's task part, queued in ITI 2
            hit.append(up)
            rig.reset()
            return "unknown"
        return None

    rig = VirtualRig(m, licks_us=_licks(4), on_upload=reset_during)
    rig.begin()
    assert rig.run() == Done()
    assert hit and [h["trial"] for h in m.history] == list(range(10))   # ITI 2 was cut, no trial was
    assert _task_starts(rig) == list(range(10))
    assert any("outcome unknown" in n for n in _notes(rig))


def test_a_lost_task_end_and_a_lost_iti_end_do_not_stall_the_session(tmp_path):
    m, cfg = _machine(tmp_path, 12)
    rig = VirtualRig(m, licks_us=_licks(5))
    rig.begin()
    rig.run_into_trial(3)
    t3 = m.windows[3].t0
    rig.lose_events({"TRIAL_ENDED"}, t3 + 100_000, t3 + 2_500_000)    # trial 3's end (its ITI end comes)
    assert rig.run() == Done()
    assert _task_starts(rig) == list(range(12))
    assert any("trial 3: its end was never reported" in n for n in _notes(rig))
    # both ends lost: the idle device's heartbeats start the next trial
    m2, _ = _machine(tmp_path, 8, name="b.toml")
    rig2 = VirtualRig(m2, licks_us=_licks(6))
    rig2.begin()
    rig2.run_into_trial(2)
    rig2.lose_events({"TRIAL_ENDED"}, m2.windows[2].t0, m2.windows[2].t0 + 9_000_000)
    assert rig2.run() == Done()
    assert _task_starts(rig2) == list(range(8))
    assert any("the device is idle after trial 2" in n for n in _notes(rig2))


def test_a_stall_and_silence_end_the_session_with_an_error(tmp_path):
    m, cfg = _machine(tmp_path, 5)
    rig = VirtualRig(m)
    rig.begin()
    rig.lose_events({"TRIAL_STARTED", "TRIAL_ENDED"}, 0, 10**12)       # the device talks, no trial moves
    done = rig.run()
    assert done.reason == "error" and "no trial started or ended" in done.error
    assert rig.t_us - T0_US >= m.stall_s * 1e6
    m2, _ = _machine(tmp_path, 5, name="c.toml")
    m2.begin(0.0)
    assert m2.on_tick(SILENCE_S - 0.1) == []
    assert m2.on_tick(SILENCE_S + 0.1)[0].error.startswith("no event from the device")


def test_trial_outcome_windows():
    w = TrialWindow.of(1_000_000, cue_s=0.5, trace_s=0.5, debounce_us=1000)
    assert (w.cue_end, w.outcome, w.learn_point) == (1_500_000, 2_000_000, 2_002_000)
    licks = [999_999, 1_000_000, 1_999_999, 2_000_000]
    o = trial_outcome(w, 4.0, licks, [2_000_000], [(2_040_000, 40_000)])
    assert (o.licks, o.reward_ul, o.valve_ms) == (2, 4.0, 40.0)
    assert trial_outcome(w, 4.0, [], [1_499_999]).reward_ul == 0.0            # before the cue ended
    assert trial_outcome(w, 4.0, [], [2_002_001]).reward_ul == 0.0            # after the learn point
    assert trial_outcome(w, 4.0, [], [2_000_100], t_end_us=2_000_050).reward_ul == 0.0   # after the trial's end
    assert trial_outcome(w, 4.0, [], [2_000_000]).valve_ms is None           # its close not yet reported
    assert w.complete(3_000_000, aborted=False) and w.complete(2_002_001, aborted=True)
    assert not w.complete(1_800_000, aborted=True) and not w.complete(2_001_000, aborted=True)
    assert not w.complete(None, aborted=False)


@pytest.mark.parametrize("policy", ['kind = "stim-on-rpe"\nthreshold = 0.4\n', 'kind = "rpe-target"\ntarget_rpe = 0.2\n'])
def test_closed_loop_policies_decide_from_the_learner_the_trial_will_see(tmp_path, policy):
    m, cfg = _machine(tmp_path, 30, p=0.6, extra="[policy]\n" + policy)
    rig = VirtualRig(m, licks_us=_licks(7))
    rig.begin()
    assert rig.run() == Done()
    plans = {o.fields["trial"]: o.fields for o in rig.outputs if isinstance(o, Record) and o.kind == "plan"}
    for h in m.history:
        # the RPE predicted at decision time is the one the learner logged for the trial (same state)
        if h["reward_ul"] == m.plans[h["trial"]].reward_ul:
            assert plans[h["trial"]]["predicted_rpe"] == pytest.approx(h["rpe_outcome"])
    if "stim" in policy:
        stim = [h["trial"] for h in m.history if h["stim"]]
        assert stim == [h["trial"] for h in m.history if plans[h["trial"]]["predicted_rpe"] >= 0.4]
        ttl = [u for u in rig.uploads if any(a[1] == P.Action.TTL_PULSE for a in u.actions)]
        assert len(ttl) == len(stim) > 2
    # every trial the policy changed from the schedule's proposal is a param record naming what changed
    params = [o.fields for o in rig.outputs if isinstance(o, Record) and o.kind == "param"]
    changed = [k for k, p in plans.items() if m.plans[k] != S.plan_trial(cfg, k)]
    assert [p["trial"] for p in params] == changed and changed
    for p in params:
        was, now = S.plan_trial(cfg, p["trial"]).to_dict(), m.plans[p["trial"]].to_dict()
        assert p["changes"] == {f: now[f] for f in now if now[f] != was[f]}
        assert p["was"] == {f: was[f] for f in p["changes"]}


def test_a_pause_holds_the_next_trial_until_resumed(tmp_path):
    """SIGUSR1 (the lab's pause): the running trial and its ITI finish, no new trial starts, the session does
    not count as stalled however long the pause; SIGUSR2 starts the held trial at once."""
    m, cfg = _machine(tmp_path, 10)
    rig = VirtualRig(m, licks_us=_licks(9))
    rig.begin()
    rig.run_into_trial(3, 200_000)
    assert m.set_paused(True, rig.host_now()) == []
    t_pause = rig.t_us
    rig.run(until_us=t_pause + int((m.stall_s + 30) * 1e6))           # longer than the stall limit
    assert m.done is None and max(m.windows) == 3 and 3 in [h["trial"] for h in m.history]
    assert "paused after trial 3; trial 4 waits for resume" in _notes(rig)
    out = m.set_paused(False, rig.host_now())
    rig.carry_out(out)
    assert out[0].fields["text"] == "resumed; trial 4 starts now" and out[1].trial_id == 8
    assert rig.run() == Done()
    assert [h["trial"] for h in m.history] == list(range(10)) and _task_starts(rig) == list(range(10))
    assert m.windows[4].t0 - t_pause > m.stall_s * 1e6


def test_sync_pulses_restart_with_a_new_seed_after_every_rearm(tmp_path):
    m, cfg = _machine(tmp_path, 8, extra="[sync]\nenabled = true\nmin_s = 1.0\nmax_s = 3.0\npulse_ms = 20\n")
    first = m.sync_start()                                             # the runner: after CONFIGURE
    assert [c.name for c in first] == ["SYNC_START"] and first[0].msg == P.SyncStart(1000, 3000, 20, first[0].msg.seed)
    rig = VirtualRig(m, licks_us=_licks(10))
    rig.begin()
    rig.run_into_trial(2, 300_000)
    rig.reset()
    rig.run_into_trial(5, 300_000)
    rig.reset()
    assert rig.run() == Done()
    seeds = [first[0].msg.seed] + [o.msg.seed for o in rig.outputs if getattr(o, "name", None) == "SYNC_START"]
    assert len(seeds) == 3 and len(set(seeds)) == 3                    # one per device session, all different
    assert seeds == [sync_seed(cfg, i) for i in range(3)]
    m0, _ = _machine(tmp_path, 4, name="nosync.toml")
    assert m0.sync_start() == []                                      # [sync] off: nothing sent


def test_water_given_in_a_cut_trial_is_counted_against_the_device_tally(tmp_path):
    """A stop between a trial's valve opening and its learn point cuts a trial whose water was given: the
    trial stays out of the trials table (even when its end is journaled after the stop), but its opening is
    counted in the NWB's cut_trials, so that the
    rewarded trials and the cut trials' openings together equal the device's own openings."""
    m, cfg = _machine(tmp_path, 50, p=1.0)
    rig = VirtualRig(m, licks_us=_licks(2))
    rig.begin()
    rig.run_into_trial(7)
    w = m.windows[7]
    rig.run(until_us=w.outcome + 200)                                  # the valve opened at the outcome
    assert 7 not in [h["trial"] for h in m.history]
    notes = m.finish("interrupted")
    rig.log.extend(notes)
    assert m.cut == {7: "interrupted"}
    # the device goes on to end the trial; its end reaches the journal after the session stopped reading
    rig.t_us = w.t0 + 10_000_000
    rig.journal_only()
    assert any(e.name == "TRIAL_ENDED" and e.msg.trial_id == 14 and not e.msg.aborted for e in rig.events)
    opened = sum(1 for e in rig.events if e.name == "VALVE_OPENED")
    rewarded = sum(1 for h in m.history if h["reward_ul"] > 0)
    tabs = session_tables(rig.journal_records(_config_fields(cfg), end_reason="interrupted"))
    cut = tabs["cut_trials"]
    assert list(cut["trial"]) == [7] and list(cut["valve_openings"]) == [1] and list(cut["reason"]) == ["interrupted"]
    assert int((tabs["trials"]["reward_ul"] > 0).sum()) == rewarded == 7
    assert rewarded + int(cut["valve_openings"].sum()) == opened == 8
