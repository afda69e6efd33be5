"""The session as a pure state machine: device events and host time in; uploads, commands, journal records
and the end of the session out.  No I/O, no clock, no threads: :class:`dopa_rl.session.runner.Runner` moves
events from the device client into it and carries out what it returns, and tests drive it in virtual time.

Each trial is two device programs: the task part (``trial_id = 2k``: cue, trace, outcome, consumption time)
and the ITI (``2k + 1``, no actions).  When trial ``k``'s task part starts, its ITI is uploaded to start the
moment it ends (``TRIAL_START AFTER_CURRENT``).  Once an event stamped after trial ``k``'s learn point arrives
(:mod:`dopa_rl.session.outcome`), the machine learns from it and decides trial ``k + 1`` (schedule, then
policy); when the task part ends it uploads trial ``k + 1`` to start when the ITI ends.  So cue, trace and
reward timing are the device's; a host late by more than an ITI only lengthens that ITI.

Faults: a trial aborted by the device before its outcome is *cut* (journaled, not learned from, not in the
trials table) and the next trial starts at once; after a new device session (a reset: HELLO_REPLY after the
first) the running trial is cut and the next one starts; an upload whose outcome is unknown (the device
reset during it) is journaled and the new session's HELLO_REPLY restarts the trial; if the device is idle
in two heartbeats after the last acknowledged upload (events lost), the next trial starts; if no trial starts
or ends for ``stall_s`` while the device talks, or nothing is heard for ``SILENCE_S``, the session fails.

Pause (:meth:`SessionMachine.set_paused`, the lab's SIGUSR1/SIGUSR2): the running trial and its ITI finish,
the next trial is held (a ``note`` "paused after trial k") until the pause is cleared ("resumed; trial k
starts now").  Sync pulses (``[sync]``) are started by :meth:`SessionMachine.sync_start` once the device
is configured and again after every re-arm (a reset or a host timeout stops them), each time with a new
seed.  A trial the policy changed from the schedule's proposal is journaled as a ``param`` record.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from dopa_rl.protocol import messages as P
from dopa_rl.session import schedule as S
from dopa_rl.session.config import Rig, SessionConfig
from dopa_rl.session.outcome import TrialWindow, trial_outcome
from dopa_rl.session.policy import DffState, Policy, dff_step, make_learner, reward_units

__all__ = ["SILENCE_S", "Record", "Upload", "Command", "Show", "Rearmed", "Done", "SessionMachine", "stall_seconds",
           "sync_seed"]

SILENCE_S = 15.0   # no device event for this long (host time): the link is declared dead


# ---------------------------------------------------------------------------------------------- outputs
@dataclass(frozen=True)
class Record:
    """A journal record to write: ``kind`` and its fields."""

    kind: str
    fields: dict


@dataclass(frozen=True)
class Upload:
    """Upload a trial program and start it (``when``; NOW refused because something runs: queue it).
    ``received``: host arrival time of the event it answers (the decision latency is measured from it);
    ``idle_after``: the device now times an ITI (a good moment for the host's housekeeping)."""

    trial_id: int
    duration_ms: int
    actions: tuple
    when: int
    received: float | None = None
    idle_after: bool = False


@dataclass(frozen=True)
class Command:
    """A single device command (on-signal's TTL or reward, SYNC_START): ``name`` and fields for the journal;
    ``wait``: wait for its ACK (else sent without waiting, as on-signal's actions are)."""

    name: str
    msg: Any
    fields: dict
    wait: bool = False


@dataclass(frozen=True)
class Show:
    """A trial was learned: its row, for the display."""

    row: dict


@dataclass(frozen=True)
class Rearmed:
    """The client re-armed the device: journal the client's record of that HELLO episode."""


@dataclass(frozen=True)
class Done:
    """The session is over: ``reason`` (complete) or ``error`` (a one-line message)."""

    reason: str = "complete"
    error: str | None = None


# ---------------------------------------------------------------------------------------------- learner
def _expectation(model: Any, plan: S.TrialPlan, config: SessionConfig) -> tuple[float, float]:
    """(value, RPE at the planned outcome) of the learner for a trial about to run."""
    value = model.predict(plan.cue_key, cue_s=0.0, outcome_s=plan.outcome_s)
    rpe = model.outcome_rpe(plan.cue_key, reward_units(plan.reward_ul, config), cue_s=0.0, outcome_s=plan.outcome_s)
    return value, rpe


def _learn_step(model: Any, plan: S.TrialPlan, delivered_ul: float, config: SessionConfig) -> dict:
    """Update the learner with one trial's outcome: its value and RPEs as the learner saw them."""
    u = model.step(plan.cue_key, reward_units(delivered_ul, config), cue_s=0.0, outcome_s=plan.outcome_s)
    return {"value": u.value, "rpe_cue": u.rpe_cue, "rpe_outcome": u.rpe_outcome, "values": u.values}


def sync_seed(config: SessionConfig, n: int) -> int:
    """The seed of the session's ``n``-th SYNC_START (0 first): a new one after each re-arm, so no stretch of
    the pulse intervals repeats (they are the aligner's fingerprint)."""
    return (config.seed * 1_000_003 + n + 1) & 0xFFFFFFFF


def stall_seconds(config: SessionConfig, speed: float) -> float:
    """Host seconds without a trial starting or ending (while the device talks) before the session fails."""
    longest = max(t.cue_s + t.trace_s + t.post_s for t in config.trial_types) + max(config.iti.max_s, config.iti.mean_s)
    return 10.0 + 3.0 * longest / speed


# ---------------------------------------------------------------------------------------------- machine
@dataclass
class SessionMachine:
    """One session's decisions.  Inputs: :meth:`begin`, :meth:`on_event`, :meth:`on_uploaded`,
    :meth:`on_upload_unknown`, :meth:`on_tick`, :meth:`set_paused`, :meth:`sync_start`, :meth:`finish`; each
    returns the outputs to carry out, in order.  ``now`` is host time in seconds (any monotonic base); events
    need ``name``, ``msg``, ``index``, ``t_device_us`` and ``t_received`` (:class:`dopa_rl.rig.client.Event`).
    :meth:`of` builds one from a config (its learner, policy and stall limit)."""

    config: SessionConfig
    rig: Rig
    model: Any
    policy: Policy
    stall_s: float = 60.0
    history: list[dict] = field(default_factory=list)
    plans: dict[int, S.TrialPlan] = field(default_factory=dict)
    windows: dict[int, TrialWindow] = field(default_factory=dict)
    cut: dict[int, str] = field(default_factory=dict)         # trial -> why it was cut
    done: Done | None = None
    _proposals: dict[int, S.TrialPlan] = field(default_factory=dict)
    _licks: list[int] = field(default_factory=list)
    _valves: list[int] = field(default_factory=list)
    _learned: dict[int, dict] = field(default_factory=dict)   # learned early, reported at the next upload
    _learn_at: tuple[int, int] | None = None                  # (trial, learn point)
    _uploaded: set[int] = field(default_factory=set)
    _ended: set[int] = field(default_factory=set)
    _last_k: int | None = None                                # the session's last trial, once known
    _t_first_us: int | None = None
    _upload_done: float = -math.inf
    _idle_beats: int = 0
    _last_progress: float = 0.0
    _last_event: float = 0.0
    _dff: DffState = field(default_factory=DffState)
    _hellos: set[tuple] = field(default_factory=set)           # the HELLO_REPLYs seen (a copy is no new session)
    paused: bool = False
    _held: int | None = None                                   # the trial waiting for the pause to end
    _sync_starts: int = 0
    _refused: int | None = None                               # a task part refused after a re-arm

    @classmethod
    def of(cls, config: SessionConfig, rig: Rig, speed: float = 1.0) -> SessionMachine:
        """The machine of a session config: the ``[model]``'s online learner, the ``[policy]``, and the stall
        limit for a device clock running ``speed`` times real time."""
        return cls(config, rig, make_learner(config), Policy.from_config(config, rig),
                   stall_s=stall_seconds(config, speed))

    # ------------------------------------------------------------------ inputs
    def begin(self, now: float) -> list:
        """Start the session: decide and upload trial 0 (or end at once if the session has no trial)."""
        self._last_progress = self._last_event = now
        if S.session_over(self.config, 0, 0.0):
            return self._end(Done())
        out = self._decide(0)
        out.append(self._task_upload(0, P.TrialWhen.NOW))
        return out

    def on_uploaded(self, upload: Upload, now: float) -> None:
        """``upload`` was acknowledged by the device at host time ``now``.  After a task part queued into an
        ITI, the schedule's next trial but one is drawn now (ahead of time, off the decision path)."""
        self._upload_done = now
        if upload.idle_after:
            k = upload.trial_id // 2 + 1
            if k not in self.plans and k not in self._proposals:
                self._proposals[k] = S.plan_trial(self.config, k)

    def on_upload_unknown(self, upload: Upload, error: str, now: float, rearmed: bool = False) -> list:
        """``upload`` failed with an unknown outcome (the device session ended during it: it may or may not
        have run): the device's programs are gone with that session, the new session's HELLO_REPLY starts
        the next trial; until then nothing is uploaded.  ``rearmed``: it was refused because the device
        disarmed during it and was re-armed in the same session (a host timeout): it did not run, the
        programs were cleared, and the end of the program the timeout aborted starts the next trial."""
        k, part = divmod(upload.trial_id, 2)
        what = "task part" if part == 0 else "ITI"
        if rearmed and part == 0:
            self._refused = k   # uploaded again when the program before it ends (normally or aborted)
        then = ("it did not run: the device disarmed during it (host timeout) and was re-armed; the trial "
                "restarts when the aborted program's end is reported" if rearmed else
                "the trial restarts when the device's new session is armed")
        return [Record("note", {"text": f"upload of trial {k}'s {what} (program {upload.trial_id}): "
                                        f"{'refused' if rearmed else 'outcome unknown'} ({error}); {then}"})]

    def on_tick(self, now: float) -> list:
        """No event for a while: fail if the link has been silent for ``SILENCE_S``."""
        if self.done is None and now - self._last_event > SILENCE_S:
            return self._end(Done("error", f"no event from the device for {SILENCE_S:g} s; the link is lost"))
        return []

    def set_paused(self, paused: bool, now: float) -> list:
        """Pause (no new trial starts; the running one and its ITI finish) or resume (a held trial starts)."""
        self.paused = bool(paused)
        if self.paused or self._held is None or self.done is not None:
            return []
        k, self._held = self._held, None
        self._last_progress = now
        return [Record("note", {"text": f"resumed; trial {k} starts now"}), self._task_upload(k, P.TrialWhen.NOW)]

    def sync_start(self) -> list:
        """SYNC_START of the config's random-interval sync pulses (nothing if ``[sync]`` is off)."""
        sy = self.config.sync
        if not sy.enabled:
            return []
        seed = sync_seed(self.config, self._sync_starts)
        self._sync_starts += 1
        lo, hi = round(sy.min_s * 1000), round(sy.max_s * 1000)
        return [Command("SYNC_START", P.SyncStart(lo, hi, sy.pulse_ms, seed),
                        {"min_ms": lo, "max_ms": hi, "pulse_ms": sy.pulse_ms, "seed": seed}, wait=True)]

    def finish(self, reason: str) -> list:
        """The session stops (``reason``: complete, interrupted, error): journal the trial it cut, if any."""
        k = self._running()
        if k is None or reason == "complete":
            return []
        self.cut.setdefault(k, reason)
        return [Record("cut", {"trial": k, "reason": self.cut[k]}),
                Record("note", {"text": f"trial {k} was running when the session ended ({reason}): it is cut "
                                        "(kept in the journal, not learned from, not in the trials table)"})]

    def on_event(self, ev: Any, now: float) -> list:
        """One device event (in delivery order), received at host time ``now``."""
        if self.done is not None:
            return []
        self._last_event = now
        t = ev.t_device_us
        if self._t_first_us is None:
            self._t_first_us = t
        name = ev.name
        out: list = []
        ready = self._learn_at
        if ready is not None and t > ready[1] and name != "LICK_ON":
            # trial k's anticipatory window and outcome are over: learn and decide k + 1 now, so only the
            # upload is left for the moment its ITI starts
            k = ready[0]
            self._learn_at = None
            self._learned[k] = self._learn(k, None)
            if k != self._last_k and k + 1 not in self.plans:
                out += self._decide(k + 1)
        handler = _HANDLERS.get(name)
        if handler is not None:
            out += handler(self, ev, now)
        if self.done is None:
            if name in ("TRIAL_STARTED", "TRIAL_ENDED") or self._held is not None:   # (held: paused, not stalled)
                self._last_progress = now
            elif now - self._last_progress > self.stall_s:
                out += self._end(Done("error", f"no trial started or ended for {self.stall_s:.0f} s although the "
                                               "device is talking; stopping the session"))
        return out

    # ------------------------------------------------------------------ event handlers
    def _lick(self, ev: Any, now: float) -> list:
        self._licks.append(ev.t_device_us)
        return []

    def _valve(self, ev: Any, now: float) -> list:
        self._valves.append(ev.t_device_us)
        return []

    def _analog(self, ev: Any, now: float) -> list:
        p = self.config.policy
        if p.kind != "on-signal":
            return []
        m = ev.msg
        self._dff, crossings = dff_step(self._dff, m.samples[:m.n], ev.t_device_us / 1e6, m.rate_hz, p.baseline_s,
                                        p.dff_threshold, p.refractory_s)
        out: list = []
        for t, dff in crossings:
            out.append(Record("note", {"text": f"on-signal: dF/F {dff:.3f} crossed {p.dff_threshold} at device {t:.3f} s"}))
            if p.action == "ttl":
                out.append(Command("TTL_PULSE", P.TtlPulse(p.ttl_ms), {"ms": p.ttl_ms}))
            else:
                ms = S.valve_ms(self.config.max_reward_ul, self.rig)
                out.append(Command("VALVE_PULSE", P.ValvePulse(ms), {"ms": ms}))
        return out

    def _started(self, ev: Any, now: float) -> list:
        k, part = divmod(ev.msg.trial_id, 2)
        if part != 0 or k not in self.plans or k in self.windows:
            return []
        plan = self.plans[k]
        w = TrialWindow.of(ev.t_device_us, plan.cue_s, plan.trace_s, self.config.lick_debounce_us)
        self.windows[k] = w
        self._learn_at = (k, w.learn_point)
        if S.session_over(self.config, k + 1, self._elapsed_s(ev.t_device_us) + plan.duration_s):
            self._last_k = k
            return []
        ms = max(1, int(round(plan.iti_s * 1000)))
        return [Upload(2 * k + 1, ms, (), P.TrialWhen.AFTER_CURRENT)]

    def _ended_event(self, ev: Any, now: float) -> list:
        k, part = divmod(ev.msg.trial_id, 2)
        if k not in self.windows:
            return []
        if part == 0:
            if k in self._ended or k in self.cut:
                return []
            self._ended.add(k)
            return self._task_ended(k, ev)
        if self._refused == k + 1:
            # trial k + 1's upload was refused (the device disarmed during it): its ITI is over, run it now
            self._refused = None
            if self.paused:
                self._held = k + 1
                return [Record("note", {"text": f"paused after trial {k}; trial {k + 1} waits for resume"})]
            return [Record("note", {"text": f"ITI {k} over; trial {k + 1} uploaded again (its upload was refused)"}),
                    self._task_upload(k + 1, P.TrialWhen.NOW)]
        if k + 1 not in self._uploaded and k != self._last_k and k not in self.cut and self._held != k + 1:
            # the task part's TRIAL_ENDED never came (lost by the device: EVENT_OVERFLOW), so trial k + 1 was
            # never uploaded: trial k is not in the trials table (its end is unknown); go on
            out: list = [Record("note", {"text": f"trial {k}: its end was never reported; trial {k + 1} starts now"})]
            row = self._learned.pop(k, None) or self._learn_now(k, None)
            if k + 1 not in self.plans:
                out += self._decide(k + 1)
            out.append(self._task_upload(k + 1, P.TrialWhen.NOW))
            return out + self._report(row)
        if ev.msg.aborted and k + 1 in self.plans and k + 1 not in self.windows:
            # the ITI was cut (ALL_OFF / host timeout): the queued task part is gone too, run it now
            return [Record("note", {"text": f"ITI {k} aborted by the device; trial {k + 1} re-uploaded"}),
                    self._task_upload(k + 1, P.TrialWhen.NOW)]
        return []

    def _task_ended(self, k: int, ev: Any) -> list:
        aborted = bool(ev.msg.aborted)
        out: list = []
        if not self.windows[k].complete(ev.t_device_us, aborted):
            # aborted before its learn point: its outcome did not happen or was not all reported (no fake
            # omission for the model or for fit)
            self._learned.pop(k, None)
            if self._learn_at is not None and self._learn_at[0] == k:
                self._learn_at = None
            self.cut[k] = "aborted by the device before its outcome"
            out.append(Record("cut", {"trial": k, "reason": self.cut[k]}))
            out.append(Record("note", {"text": f"trial {k} aborted by the device before its outcome was reported: it is cut "
                                                "(not learned from, not in the trials table)"}))
            if k == self._last_k:
                return out + self._end(Done())
            if k + 1 not in self.plans:
                out += self._decide(k + 1)
            out.append(self._task_upload(k + 1, P.TrialWhen.NOW))
            return out
        row = self._learned.pop(k, None)
        if row is None:
            row = self._learn_now(k, ev.t_device_us)
            if k != self._last_k and k + 1 not in self.plans:
                out += self._decide(k + 1)
        if k == self._last_k:
            return out + self._report(row) + self._end(Done())
        when = P.TrialWhen.NOW if aborted else P.TrialWhen.AFTER_CURRENT
        if self.paused:
            self._held = k + 1
            out.append(Record("note", {"text": f"paused after trial {k}; trial {k + 1} waits for resume"}))
        else:
            out.append(self._task_upload(k + 1, when, received=ev.t_received, idle_after=True))
        out += self._report(row)
        if aborted:
            out.append(Record("note", {"text": f"trial {k} aborted by the device"}))
        return out

    def _heartbeat(self, ev: Any, now: float) -> list:
        # the device says it runs no trial and has none queued, in a heartbeat received after our last upload
        # was acknowledged (events arrive in order): a trial's events were lost (EVENT_OVERFLOW)
        idle = not ev.msg.state & (P.StateBit.TRIAL_RUNNING | P.StateBit.TRIAL_PENDING)
        self._idle_beats = (self._idle_beats + 1 if idle and ev.t_received > self._upload_done and self._held is None
                            else 0)
        if self._idle_beats < 2 or not self._uploaded:
            return []
        self._idle_beats = 0
        n = max(self._uploaded)
        out: list = []
        row = self._learned.pop(n, None)
        if row is None and n in self.windows and n not in self.cut and all(h["trial"] != n for h in self.history):
            row = self._learn_now(n, None)
        if row is not None:
            out += self._report(row)
        if self._last_k is not None and n >= self._last_k:
            out.append(Record("note", {"text": f"the device went idle after the last trial {n} (its end was lost)"}))
            return out + self._end(Done())
        out.append(Record("note", {"text": f"the device is idle after trial {n} (events lost); trial {n + 1} starts now"}))
        if n + 1 not in self.plans:
            out += self._decide(n + 1)
        out.append(self._task_upload(n + 1, P.TrialWhen.NOW))
        return out

    def _error(self, ev: Any, now: float) -> list:
        return [Record("note", {"text": f"device error {ev.msg.code} (value {ev.msg.value}); 1 = EVENT_OVERFLOW: "
                                        "the device lost that many events"})]

    def _trip(self, ev: Any, now: float) -> list:
        return [Record("note", {"text": f"safety trip {P.TripReason(ev.msg.reason).name} value {ev.msg.value}"})]

    def _hello(self, ev: Any, now: float) -> list:
        if getattr(ev.msg, "boot", 0):
            return [Record("note", {"text": f"device reset (cause {ev.msg.reset_cause}); the client re-arms"})]
        key = tuple(ev.msg)
        if ev.index == 0 or key in self._hellos:
            self._hellos.add(key)
            # the session's own HELLO, or a copy of a reply already seen (a replay, not a new session)
            return [] if ev.index == 0 else [Record("note", {"text": "a copy of the HELLO_REPLY of device time "
                                                                    f"{ev.msg.t_us} us arrived again; ignored"})]
        self._hellos.add(key)
        # a new device session (the device reset, its banner seen or not): its programs are gone
        out: list = [Record("note", {"text": "the client re-armed the device (new device session: its sequence "
                                             "numbers restart; events before it are all in the journal above; "
                                             f"{ev.msg.dropped} unacknowledged events dropped, device lost_total "
                                             f"{ev.msg.lost_total})"}), Rearmed()]
        return out + self.sync_start() + self._after_reset()

    def _resumed(self, ev: Any, now: float) -> list:
        # RESUMED: the device's answer to a HELLO that resumed its session (protocol v3)
        return [Record("note", {"text": "the client re-armed the device (its session resumed: reply window, "
                                        f"event ring and budget kept; device lost_total {ev.msg.lost_total}, "
                                        f"valve time used {ev.msg.budget_used_ms} ms)"}), Rearmed(),
                *self.sync_start()]

    def _after_reset(self) -> list:
        """The device's programs are gone: the trial it was running is cut; the next one starts at once."""
        self._refused = None   # (whatever was refused is gone with the rest)
        out: list = []
        cur = self._running()
        if cur is not None:
            self.cut[cur] = "cut by a device reset"
            self._learned.pop(cur, None)
            if self._learn_at is not None and self._learn_at[0] == cur:
                self._learn_at = None
            out.append(Record("cut", {"trial": cur, "reason": self.cut[cur]}))
            out.append(Record("note", {"text": f"trial {cur} was cut by the device reset; it is not in the trials table"}))
        started = max(self.windows) if self.windows else -1
        nxt = started + 1
        if started == self._last_k or S.session_over(self.config, nxt, 0.0):
            if cur is None:   # the last trial had been learned: nothing was lost
                return out + self._end(Done())
            return out + self._end(Done("error", "the device reset during the last trial"))
        if nxt not in self.plans:
            out += self._decide(nxt)
        out.append(Record("note", {"text": f"re-armed after the reset; trial {nxt} starts now"}))
        out.append(self._task_upload(nxt, P.TrialWhen.NOW))
        return out

    # ------------------------------------------------------------------ helpers
    def _running(self) -> int | None:
        """The trial whose task part started and was neither learned, ended nor cut."""
        if not self.windows:
            return None
        k = max(self.windows)
        if k in self.cut or k in self._ended or k in self._learned or any(h["trial"] == k for h in self.history[-2:]):
            return None
        return k

    def _elapsed_s(self, t_us: int) -> float:
        return 0.0 if self._t_first_us is None else (t_us - self._t_first_us) / 1e6

    def _proposal(self, k: int) -> S.TrialPlan:
        plan = self._proposals.pop(k, None)
        return plan if plan is not None else S.plan_trial(self.config, k)

    def _decide(self, k: int) -> list:
        proposal = self._proposal(k)
        plan = self.policy.decide(proposal, self.model, self.history)
        out: list = []
        if plan != proposal:   # the policy changed the schedule's trial: a parameter change, journaled
            before, after = proposal.to_dict(), plan.to_dict()
            changed = [f for f in after if after[f] != before[f]]
            out.append(Record("param", {"trial": k, "source": f"policy {self.config.policy.kind}",
                                        "changes": {f: after[f] for f in changed},
                                        "was": {f: before[f] for f in changed}}))
        self.plans[k] = plan
        value, rpe = _expectation(self.model, plan, self.config)
        return out + [Record("plan", {"trial": k, "plan": plan.to_dict(), "cue_key": plan.cue_key, "value": value,
                                "predicted_rpe": rpe})]

    def _task_upload(self, k: int, when: int, received: float | None = None, idle_after: bool = False) -> Upload:
        self._uploaded.add(k)
        dur, acts = S.program(self.plans[k], self.rig)
        return Upload(2 * k, dur, tuple(acts), when, received, idle_after)

    def _learn_now(self, k: int, t_end_us: int | None) -> dict:
        if self._learn_at is not None and self._learn_at[0] == k:
            self._learn_at = None
        return self._learn(k, t_end_us)

    def _learn(self, k: int, t_end_us: int | None) -> dict:
        plan, w = self.plans[k], self.windows[k]
        o = trial_outcome(w, plan.reward_ul, self._licks, self._valves, t_end_us=t_end_us)
        row = {"trial": k, "trial_type": plan.trial_type, "licks": o.licks, "reward_ul": o.reward_ul, "stim": plan.stim,
               **_learn_step(self.model, plan, o.reward_ul, self.config)}
        self.history.append(row)
        keep = w.learn_point if t_end_us is None else min(w.learn_point, t_end_us)
        self._licks = [t for t in self._licks if t > keep]
        self._valves = [t for t in self._valves if t > keep]
        return row

    def _report(self, row: dict) -> list:
        """Journal a learned trial and show it (after the next trial is on its way)."""
        return [Record("result", dict(row)), Show(row)]

    def _end(self, done: Done) -> list:
        self.done = done
        return [done]


_HANDLERS = {
    "LICK_ON": SessionMachine._lick, "VALVE_OPENED": SessionMachine._valve, "ANALOG_BATCH": SessionMachine._analog,
    "TRIAL_STARTED": SessionMachine._started, "TRIAL_ENDED": SessionMachine._ended_event,
    "DEVICE_HEARTBEAT": SessionMachine._heartbeat, "ERROR": SessionMachine._error, "SAFETY_TRIP": SessionMachine._trip,
    "HELLO_REPLY": SessionMachine._hello, "RESUMED": SessionMachine._resumed,
}
