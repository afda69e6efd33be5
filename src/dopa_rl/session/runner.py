"""The session runner: the only part of a live session that does I/O.

Each trial is two device programs: the task part (cue, trace, outcome, consumption time; ``trial_id = 2k``)
and the ITI (``2k + 1``, no actions).  While the task part of trial ``k`` runs, its ITI is uploaded to start
the moment it ends (``TRIAL_START AFTER_CURRENT``).  As soon as an event shows that trial ``k``'s
anticipatory window and outcome are over, the runner learns from it (licks counted from the device's
events), asks the schedule and the policy for trial ``k + 1``; when the task part ends it uploads trial
``k + 1`` to start when the ITI ends.  So cue, trace and reward timing are the device's, never the host's; a
host late by more than an ITI only lengthens that ITI.

The runner waits on the client's event queue (no busy waiting).  The journal gets every device event from
the client's listener as it is delivered, every command before it is sent and every decision.  Ctrl-C (or
any error) turns the outputs off first (``safe()``), then the journal is closed and the NWB written.
"""
from __future__ import annotations

import dataclasses
import gc
import math
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dopa_rl.errors import DeviceError
from dopa_rl.protocol import messages as P
from dopa_rl.rig.client import CommandRefused, DeviceClient
from dopa_rl.session import schedule as S
from dopa_rl.session.config import Rig, SessionConfig
from dopa_rl.session.journal import JournalWriter
from dopa_rl.session.policy import DffState, Policy, dff_step, make_learner, reward_units

__all__ = ["SWITCH_INTERVAL_S", "SILENCE_S", "RunResult", "Runner", "MAX_SPEED", "parse_speed", "sim_ring", "sim_retransmit_ms",
           "device_url", "open_device", "device_tally", "run_session"]

SWITCH_INTERVAL_S = 0.0005
SILENCE_S = 15.0   # no device event for this long (real time): the link is declared dead


@dataclass
class RunResult:
    out: Path
    journal: Path
    rawlog: Path
    reason: str
    n_trials: int
    history: list[dict] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)   # TRIAL_ENDED received -> next PROGRAM_BEGIN sent
    client_stats: dict = field(default_factory=dict)
    wall_s: float = 0.0
    tally: dict | None = None      # a simulated device's own counts (valve openings, lick contacts)


class Runner:
    """Run one session on an open link.  ``speed``: the simulated device's clock rate (1 for real rigs);
    the host timeout and heartbeats are scaled so the device stays armed at that speed."""

    def __init__(self, config: SessionConfig, rig: Rig, port: Any, out: str | Path, *, speed: float = 1.0,
                 n_trials: int | None = None, device_name: str = "?", on_trial: Callable[[dict], None] | None = None,
                 client_kw: dict | None = None, pause: threading.Event | None = None) -> None:
        if n_trials is not None:
            config = dataclasses.replace(config, n_trials=n_trials, duration_s=None)
        self.config, self.rig, self.port, self.speed = config, rig, port, float(speed)
        self.out = Path(out)
        self.journal_path = Path(str(self.out) + ".journal")
        self.raw_path = Path(str(self.out) + ".raw")
        self.device_name = device_name
        self.on_trial = on_trial
        self.pause = pause              # set: finish the running trial and its ITI, start no new one until cleared
        self._held: int | None = None   # the trial waiting for the pause to end
        self._sync_starts = 0
        self.model = make_learner(config)
        self.policy = Policy.from_config(config, rig)
        self.journal = JournalWriter(self.journal_path)
        hb = min(0.25, 0.25 / self.speed * 4)
        self.client_kw = {"heartbeat_s": hb, **(client_kw or {})}
        self.client: DeviceClient | None = None
        self.history: list[dict] = []
        self.plans: dict[int, S.TrialPlan] = {}
        self.trial_t0: dict[int, int] = {}
        self.licks: list[int] = []        # LICK_ON device times
        self.valves: list[int] = []       # VALVE_OPENED device times
        self.latencies: list[float] = []
        self.dff = DffState()
        self.t0_us: int | None = None
        self.tally: dict[str, int] | None = None
        self._stopped = False
        self._switch: float | None = None
        self._gc_was_enabled = True
        self._proposals: dict[int, S.TrialPlan] = {}
        self._reset_seen = False
        self._learn_at: tuple[int, int] | None = None    # (trial, device time after which it can be learned)
        self._learned: dict[int, dict] = {}
        self._uploaded: set[int] = set()
        self._upload_done = 0.0            # host time the last upload was acknowledged
        self._idle_beats = 0
        self._last_progress = time.monotonic()
        longest = max(t.cue_s + t.trace_s + t.post_s for t in config.trial_types) + max(config.iti.max_s, config.iti.mean_s)
        self._stall_s = 10.0 + 3.0 * longest / self.speed   # real seconds without a trial event: give up

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        c = self.config
        # the client's worker thread and this one share the GIL: hand it over within 0.5 ms, not 5 ms,
        # so an event read by the worker reaches the decision quickly (restored in safe())
        self._switch = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch, SWITCH_INTERVAL_S))
        # garbage collection pauses (1-7 ms for the young generations, tens of ms for a full one) must not
        # land between a device event and the decision: collect once now, move what exists out of the
        # collector's way, and during the session collect only right after each upload (_collect)
        gc.collect()
        gc.freeze()
        self._gc_was_enabled = gc.isenabled()
        gc.disable()
        self.journal.start(out=str(self.out), rawlog=str(self.raw_path))
        self.journal.write("config", subject=c.subject, session_id=c.session_id, description=c.description,
                           experimenter=list(c.experimenter), institution=c.institution, config_path=c.path,
                           config_toml=c.text, rig_toml=self.rig.text, rig_name=self.rig.name, rig_path=self.rig.path,
                           ms_per_ul=self.rig.ms_per_ul, calibrated=self.rig.calibrated, device=self.device_name,
                           speed=self.speed, n_trials=c.n_trials, duration_s=c.duration_s, model=c.model.name,
                           model_params=c.model.params, model_options=c.model.options,
                           policy=c.policy.kind, max_reward_ul=c.max_reward_ul,
                           budget_valve_ms=c.safety.budget_valve_ms, **provenance(c, self.rig))
        sf = c.safety
        host_timeout = int(min(10000, max(sf.host_timeout_ms, sf.host_timeout_ms * self.speed)))
        # the first HELLO carries the limits: the device never runs on the 1 s default host timeout (20 ms of
        # real time at 50x) between HELLO and CONFIGURE
        limits = dict(max_valve_ms=sf.max_valve_ms, min_valve_gap_ms=sf.min_valve_gap_ms,
                      budget_valve_ms=sf.budget_valve_ms, host_timeout_ms=host_timeout,
                      debounce_us=c.lick_debounce_us)
        self.client = DeviceClient(self.port, rawlog=self.raw_path, limits=limits, **self.client_kw)
        self.client.add_listener(self.journal.event)
        hello = self.client.start()
        self.journal.write("hello", **{k: v for k, v in hello._asdict().items()})
        self._command_log("CONFIGURE", max_valve_ms=sf.max_valve_ms, budget_valve_ms=sf.budget_valve_ms)
        self.client.configure(max_valve_ms=sf.max_valve_ms, min_valve_gap_ms=sf.min_valve_gap_ms,
                              budget_valve_ms=sf.budget_valve_ms, host_timeout_ms=host_timeout,
                              debounce_us=c.lick_debounce_us)
        self.journal.write("param", trial=None, source="configure", changes={   # (after: HELLO to CONFIGURE is short)
            "max_valve_ms": sf.max_valve_ms, "min_valve_gap_ms": sf.min_valve_gap_ms,
            "budget_valve_ms": sf.budget_valve_ms, "host_timeout_ms": host_timeout, "debounce_us": c.lick_debounce_us})
        self._start_sync()
        if c.policy.kind == "on-signal":
            self._command_log("ANALOG_START", rate_hz=c.policy.analog_rate_hz)
            self.client.analog_start(c.policy.analog_rate_hz)

    def _start_sync(self) -> None:
        """Random-interval sync pulses on the TTL output (each a SYNC_PULSE event), if the config asks; again
        after a re-arm (a host timeout or a reset stops them), with a new seed so no stretch of the sequence
        repeats (the intervals are the aligner's fingerprint)."""
        sy = self.config.sync
        if not sy.enabled:
            return
        seed = (self.config.seed * 1_000_003 + self._sync_starts + 1) & 0xFFFFFFFF
        self._sync_starts += 1
        lo, hi = round(sy.min_s * 1000), round(sy.max_s * 1000)
        self._command_log("SYNC_START", min_ms=lo, max_ms=hi, pulse_ms=sy.pulse_ms, seed=seed)
        self.client.command(P.SyncStart(lo, hi, sy.pulse_ms, seed))

    def safe(self) -> None:
        """Outputs off (ALL_OFF), client stopped, journal closed.  Idempotent, never raises."""
        if self._stopped:
            return
        self._stopped = True
        if self.client is not None:
            try:
                self.client.safe()
            except Exception:
                pass
        self.journal.safe()
        if self._switch is not None:
            sys.setswitchinterval(self._switch)
            self._switch = None
            gc.unfreeze()
            if self._gc_was_enabled:
                gc.enable()

    stop = safe

    # ------------------------------------------------------------------ helpers
    def _command_log(self, name: str, **fields: Any) -> None:
        self.journal.write("cmd", name=name, t=time.monotonic(), **fields)

    def _upload(self, trial_id: int, duration_ms: int, actions: list, when: int) -> None:
        self._command_log("PROGRAM", trial_id=trial_id, duration_ms=duration_ms, actions=actions, when=when)
        self.client.upload_program(trial_id, duration_ms, actions)
        try:
            self.client.trial_start(when)
        except CommandRefused as exc:
            if exc.reason != P.NackReason.PROGRAM_STATE or when != P.TrialWhen.NOW:
                raise
            self.client.trial_start(P.TrialWhen.AFTER_CURRENT)  # something still runs: queue it
        self._upload_done = time.monotonic()

    def _proposal(self, k: int) -> S.TrialPlan:
        """The schedule's trial k (pure, so it is drawn ahead of time while the device is busy)."""
        plan = self._proposals.pop(k, None)
        return plan if plan is not None else S.plan_trial(self.config, k)

    def _decide(self, k: int) -> S.TrialPlan:
        proposal = self._proposal(k)
        plan = self.policy.decide(proposal, self.model, self.history)
        if plan != proposal:   # the policy changed the schedule's trial: a parameter change, journaled
            before, after = proposal.to_dict(), plan.to_dict()
            self.journal.write("param", trial=k, source=f"policy {self.config.policy.kind}",
                               changes={f: after[f] for f in after if after[f] != before[f]},
                               was={f: before[f] for f in after if after[f] != before[f]})
        self.plans[k] = plan
        value = self.model.predict(plan.cue_key, cue_s=0.0, outcome_s=plan.outcome_s)
        rpe = self.model.outcome_rpe(plan.cue_key, reward_units(plan.reward_ul, self.config), cue_s=0.0,
                                     outcome_s=plan.outcome_s)
        self.journal.write("plan", trial=k, plan=plan.to_dict(), cue_key=plan.cue_key, value=value, predicted_rpe=rpe)
        return plan

    def _upload_task(self, k: int, when: int) -> None:
        self._uploaded.add(k)
        plan = self.plans[k]
        dur, acts = S.program(plan, self.rig)
        self._upload(2 * k, dur, acts, when)

    def _upload_iti(self, k: int) -> None:
        ms = max(1, int(round(self.plans[k].iti_s * 1000)))
        self._upload(2 * k + 1, ms, [], P.TrialWhen.AFTER_CURRENT)

    def _learn(self, k: int, t_end_us: int) -> dict:
        plan = self.plans[k]
        t0 = self.trial_t0[k]
        t_out = t0 + int(round(plan.outcome_s * 1e6))
        licks = sum(1 for t in self.licks if t0 <= t < t_out)
        delivered = plan.reward_ul if any(t0 + plan.cue_s * 1e6 <= t <= t_end_us for t in self.valves) else 0.0
        u = self.model.step(plan.cue_key, reward_units(delivered, self.config), cue_s=0.0, outcome_s=plan.outcome_s)
        row = {"trial": k, "trial_type": plan.trial_type, "licks": licks, "reward_ul": delivered, "stim": plan.stim,
               "value": u.value, "rpe_cue": u.rpe_cue, "rpe_outcome": u.rpe_outcome, "values": u.values}
        self.history.append(row)
        self.licks = [t for t in self.licks if t >= t_end_us]
        self.valves = [t for t in self.valves if t >= t_end_us]
        return row

    def _report(self, row: dict) -> None:
        """Journal a learned trial and show it (after the next trial is on its way: the result can be rebuilt
        from the journaled events, the next trial's timing cannot wait)."""
        self.journal.write("result", **row)
        self.journal.write("link", **self.client.stats)   # link health so far (the dashboard reads it)
        if self.on_trial is not None:
            self.on_trial(row)

    def _on_analog(self, ev: Any) -> None:
        p = self.config.policy
        m = ev.msg
        t_s = ev.t_device_us / 1e6
        self.dff, crossings = dff_step(self.dff, m.samples[:m.n], t_s, m.rate_hz, p.baseline_s, p.dff_threshold,
                                       p.refractory_s)
        for t, dff in crossings:
            self.journal.write("note", text=f"on-signal: dF/F {dff:.3f} crossed {p.dff_threshold} at device {t:.3f} s")
            try:
                if p.action == "ttl":
                    self._command_log("TTL_PULSE", ms=p.ttl_ms)
                    self.client.send(P.TtlPulse(p.ttl_ms))
                else:
                    ms = S.valve_ms(self.config.max_reward_ul, self.rig)
                    self._command_log("VALVE_PULSE", ms=ms)
                    self.client.send(P.ValvePulse(ms))
            except DeviceError as exc:
                self.journal.write("note", text=f"on-signal action failed: {exc}")

    # ------------------------------------------------------------------ the session
    def run(self) -> RunResult:
        t_wall = time.monotonic()
        reason = "error"
        try:
            self.start()
            reason = self._loop()
        except KeyboardInterrupt:
            reason = "interrupted"
        finally:
            stats = dict(self.client.stats) if self.client is not None else {}
            self.tally = device_tally(self.port)
            if self.client is not None and not self._stopped:
                try:
                    self.client.safe()   # outputs off first
                except Exception:
                    pass
            self.journal.write("end", reason=reason, trials=len(self.history))
            self.safe()
        return RunResult(self.out, self.journal_path, self.raw_path, reason, len(self.history), self.history,
                         self.latencies, stats, time.monotonic() - t_wall, self.tally)

    def _restart_idle(self, last_k: int | None, t_us: int) -> bool:
        """The device is idle although the session is not over; True if the session is in fact complete."""
        n = max(self._uploaded)
        row = self._learned.pop(n, None)
        if row is None and n in self.trial_t0 and all(h["trial"] != n for h in self.history):
            self._learn_at = None
            row = self._learn(n, t_us)
        if row is not None:
            self._report(row)
        if last_k is not None and n >= last_k:
            self.journal.write("note", text=f"the device went idle after the last trial {n} (its end was lost)")
            return True
        self.journal.write("note", text=f"the device is idle after trial {n} (events lost); trial {n + 1} starts now")
        if n + 1 not in self.plans:
            self._decide(n + 1)
        self._upload_task(n + 1, P.TrialWhen.NOW)
        return False

    def _resume_after_reset(self) -> None:
        """The device rebooted and was re-armed (its programs are gone): the trial it was running is lost
        (journaled, never learned from); the next one is started at once."""
        ks = sorted(self.trial_t0)
        cur = ks[-1] if ks else -1
        running = cur >= 0 and all(h["trial"] != cur for h in self.history)
        if running:
            self.journal.write("note", text=f"trial {cur} was cut by the device reset; it is not in the trials table")
        nxt = cur + 1
        if S.session_over(self.config, nxt, 0.0):
            raise DeviceError("the device reset during the last trial")
        self._start_sync()
        if nxt not in self.plans:
            self._decide(nxt)
        self.journal.write("note", text=f"re-armed after the reset; trial {nxt} starts now")
        self._upload_task(nxt, P.TrialWhen.NOW)

    def _elapsed_s(self, t_us: int) -> float:
        return 0.0 if self.t0_us is None else (t_us - self.t0_us) / 1e6

    def _loop(self) -> str:
        c = self.config
        if S.session_over(c, 0, 0.0):
            return "complete"
        self._decide(0)
        self._upload_task(0, P.TrialWhen.NOW)
        self._last_progress = time.monotonic()
        last_k: int | None = None
        events = self.client.events
        while True:
            try:
                ev = events.get(timeout=SILENCE_S)
            except queue.Empty:
                raise DeviceError(f"no event from the device for {SILENCE_S} s; the link is lost") from None
            if self.t0_us is None:
                self.t0_us = ev.t_device_us
            if self._held is not None:
                self._hold_or_resume()
            name = ev.name
            ready = self._learn_at
            if ready is not None and ev.t_device_us >= ready[1] and name != "LICK_ON":
                # trial k's anticipatory window and outcome are over: learn and decide k + 1 now, so only
                # the upload is left for the moment its ITI starts
                self._learn_at = None
                self._learned[ready[0]] = self._learn(ready[0], ev.t_device_us)
                if last_k != ready[0]:
                    self._decide(ready[0] + 1)
            if name == "LICK_ON":
                self.licks.append(ev.t_device_us)
            elif name == "VALVE_OPENED":
                self.valves.append(ev.t_device_us)
            elif name == "ANALOG_BATCH" and c.policy.kind == "on-signal":
                self._on_analog(ev)
            elif name == "TRIAL_STARTED":
                tid = ev.msg.trial_id
                k, part = divmod(tid, 2)
                if part == 0 and k in self.plans:
                    self.trial_t0[k] = ev.t_device_us
                    self._learn_at = (k, ev.t_device_us + int(round(self.plans[k].outcome_s * 1e6))
                                      + c.lick_debounce_us + 1000)
                    if not S.session_over(c, k + 1, self._elapsed_s(ev.t_device_us) + self.plans[k].duration_s):
                        self._upload_iti(k)
                    else:
                        last_k = k
            elif name == "TRIAL_ENDED":
                tid = ev.msg.trial_id
                k, part = divmod(tid, 2)
                if part == 0 and k in self.trial_t0:
                    t_recv = ev.t_received
                    row = self._learned.pop(k, None)
                    if row is None:
                        self._learn_at = None
                        row = self._learn(k, ev.t_device_us)
                        if last_k != k:
                            self._decide(k + 1)
                    if last_k == k:
                        self._report(row)
                        return "complete"
                    when = P.TrialWhen.NOW if ev.msg.aborted else P.TrialWhen.AFTER_CURRENT
                    self.latencies.append(time.monotonic() - t_recv)
                    if self.pause is not None and self.pause.is_set():
                        self._held = k + 1
                        self.journal.write("note", text=f"paused after trial {k}; trial {k + 1} waits for resume")
                    else:
                        self._upload_task(k + 1, when)
                    self._report(row)
                    self._proposals[k + 2] = S.plan_trial(c, k + 2)
                    gc.collect(2 if k % 50 == 49 else 1)   # now, while the device times the ITI
                    if ev.msg.aborted:
                        self.journal.write("note", text=f"trial {k} aborted by the device")
                elif (part == 1 and k in self.trial_t0 and k + 1 not in self._uploaded and last_k != k
                      and self._held != k + 1):   # (not held back by a pause)
                    # the task part's TRIAL_ENDED never came (lost by the device: EVENT_OVERFLOW), so trial
                    # k + 1 was never uploaded: trial k is not in the trials table (its end is unknown); go on
                    self.journal.write("note", text=f"trial {k}: its end was never reported; trial {k + 1} starts now")
                    row = self._learned.pop(k, None)
                    if row is None:
                        self._learn_at = None
                        row = self._learn(k, ev.t_device_us)
                    if k + 1 not in self.plans:
                        self._decide(k + 1)
                    self._upload_task(k + 1, P.TrialWhen.NOW)
                    self._report(row)
                elif part == 1 and ev.msg.aborted and k + 1 in self.plans and k + 1 not in self.trial_t0:
                    # the ITI was cut (ALL_OFF / host timeout): the queued task part is gone too, run it now
                    self.journal.write("note", text=f"ITI {k} aborted by the device; trial {k + 1} re-uploaded")
                    self._upload_task(k + 1, P.TrialWhen.NOW)
            elif name == "DEVICE_HEARTBEAT":
                # the device says it runs no trial and has none queued, in a heartbeat sent after our last
                # upload was acknowledged (events arrive in order): a trial's events were lost (EVENT_OVERFLOW)
                idle = not ev.msg.state & (P.StateBit.TRIAL_RUNNING | P.StateBit.TRIAL_PENDING)
                self._idle_beats = (self._idle_beats + 1 if idle and ev.t_received > self._upload_done
                                    and self._held is None else 0)
                if self._idle_beats >= 2:
                    self._idle_beats = 0
                    if self._restart_idle(last_k, ev.t_device_us):
                        return "complete"
            elif name == "ERROR":
                self.journal.write("note", text=f"device error {ev.msg.code} (value {ev.msg.value}); 1 = EVENT_OVERFLOW: "
                                                "the device lost that many events")
            elif name == "SAFETY_TRIP":
                self.journal.write("note", text=f"safety trip {P.TripReason(ev.msg.reason).name} value {ev.msg.value}")
            elif name == "HELLO_REPLY" and getattr(ev.msg, "boot", 0):
                self._reset_seen = True
                self.journal.write("note", text=f"device reset (cause {ev.msg.reset_cause}); the client re-arms")
            elif name == "HELLO_REPLY" and self._reset_seen:
                self._reset_seen = False
                self._resume_after_reset()
            elif name == "HELLO_REPLY" and ev.index > 0:
                self.journal.write("note", text="the client re-armed the device (new device session: its sequence "
                                                "numbers restart; events before it are all in the journal above; "
                                                f"{ev.msg.dropped} unacknowledged events dropped, device lost_total "
                                                f"{ev.msg.lost_total})")
                self._journal_rearm()
                self._start_sync()
            elif name == "RESUMED":
                self.journal.write("note", text="the client re-armed the device (its session resumed: reply window, "
                                                f"event ring and budget kept; device lost_total {ev.msg.lost_total}, "
                                                f"valve time used {ev.msg.budget_used_ms} ms)")
                self._journal_rearm()
                self._start_sync()
            if name in ("TRIAL_STARTED", "TRIAL_ENDED"):
                self._last_progress = time.monotonic()
            elif time.monotonic() - self._last_progress > self._stall_s:
                raise DeviceError(f"no trial started or ended for {self._stall_s:.0f} s although the device is "
                                  "talking; stopping the session")


    def _hold_or_resume(self) -> None:
        """Paused between trials: the device idles (heartbeats keep it armed); resume when the pause is cleared."""
        if self.pause is not None and self.pause.is_set():
            self._last_progress = time.monotonic()
            return
        k, self._held = self._held, None
        self.journal.write("note", text=f"resumed; trial {k} starts now")
        self._upload_task(k, P.TrialWhen.NOW)

    def _journal_rearm(self) -> None:
        """What the client recorded of its latest HELLO episode (why, resumed or new, drops, lost total)."""
        log = getattr(self.client, "rearm_log", None)
        if log:
            self.journal.write("rearm", **{k: v for k, v in dataclasses.asdict(log[-1]).items()})


def provenance(config: SessionConfig, rig: Rig) -> dict[str, str]:
    """What identifies the session's inputs: SHA-256 of the config and rig file texts, the package version."""
    import hashlib

    from dopa_rl import __version__

    digest = lambda text: hashlib.sha256((text or "").encode("utf-8")).hexdigest()  # noqa: E731
    return {"config_sha256": digest(config.text), "rig_sha256": digest(rig.text) if rig.text else None,
            "dopa_rl_version": __version__}


# ---------------------------------------------------------------------- opening a device, a whole session
MAX_SPEED = 50.0   # --speed max: the simulated clock's rate (host timeout scaled to stay armed, see docs/sessions.md)


def parse_speed(text: str | float) -> float:
    """The virtual-clock speed of ``--speed`` (a number, or ``max``)."""

    from dopa_rl.errors import InputError

    if isinstance(text, (int, float)):
        return float(text)
    t = str(text).strip().lower()
    if t == "max":
        return MAX_SPEED
    if t in ("realtime", "real-time", "1"):
        return 1.0
    try:
        v = float(t)
    except ValueError:
        raise InputError(f"--speed {text!r}: use max, realtime or a factor such as 10") from None
    if not 0 < v <= 200:
        raise InputError(f"--speed {text!r}: the factor must be in (0, 200]")
    return v


def sim_ring(speed: float) -> int:
    """Event ring of a simulated device at ``speed``: 32 frames like the firmware, times speed / 5, so a host
    pause of x ms costs the ring what a pause of x * 5 ms would on a real board at 1x (without it, 100 ms of
    scheduling delay on a loaded machine at 50x is 5 s of device events: an EVENT_OVERFLOW)."""
    return int(32 * max(1, math.ceil(speed / 5)))


def sim_retransmit_ms(speed: float) -> int:
    """Go-back-N interval of a simulated device at ``speed`` (device ms): RETRANSMIT_MS of real time, as on a
    board at 1x (this host's acks take real time; at 50x the firmware's 50 ms would resend the whole ring
    every real millisecond, a flood of duplicates that starved the host until its host timeout tripped)."""
    return int(P.RETRANSMIT_MS * max(1, math.ceil(speed)))


def device_url(device: str, rig: Rig, *, speed: float, seed: int) -> str:
    """``sim`` -> a new simulated rig with a simulated animal; ``rig`` -> the rig file's port (or serial number);
    anything else is a port path or a pyserial URL."""
    if device == "sim":
        return (f"dopasim://?speed={speed:g}&seed={seed}&animal=rw&ring={sim_ring(speed)}"
                f"&retx_ms={sim_retransmit_ms(speed)}")
    if device == "rig":
        from dopa_rl.errors import InputError

        if rig.serial_number:
            from dopa_rl.rig.ports import find_port_by_serial

            return find_port_by_serial(rig.serial_number)
        if rig.port:
            return rig.port
        raise InputError("--device rig: the rig file names no port and no serial_number")
    return device


def open_device(url: str) -> Any:
    """Open the link to the device at ``url`` (a DeviceError naming it when that fails)."""

    from dopa_rl.rig.transports import open_link

    try:
        return open_link(url)
    except Exception as exc:  # pyserial raises SerialException / ValueError / OSError
        raise DeviceError(f"cannot open {url!r}: {exc}") from None


def device_tally(port: Any) -> dict[str, int] | None:
    """The simulated device's own count of valve openings and lick contacts (pin trace), if it is one."""
    dev = getattr(port, "device", None) or getattr(getattr(port, "inner", None), "device", None)
    if dev is None or not hasattr(dev, "pin_edges"):
        return None
    return {"valve_openings": sum(1 for _, lv in dev.pin_edges("valve") if lv),
            "lick_contacts": sum(1 for _, lv in dev.pin_edges("lick") if lv),
            "ttl_pulses": sum(1 for _, lv in dev.pin_edges("ttl") if lv)}


def run_session(config: SessionConfig, rig: Rig, port: Any, out: str | Path, *, speed: float = 1.0,
                n_trials: int | None = None, device_name: str = "?", on_trial: Callable[[dict], None] | None = None,
                client_kw: dict | None = None, write_nwb: bool = True,
                pause: threading.Event | None = None) -> tuple[RunResult, Path | None]:
    """Run a session on an open link, then write the NWB from its journal (also after Ctrl-C).  ``pause``: while
    set, no new trial starts (the running one and its ITI finish)."""
    from dopa_rl.session.export import export_journal

    runner = Runner(config, rig, port, out, speed=speed, n_trials=n_trials, device_name=device_name,
                    on_trial=on_trial, client_kw=client_kw, pause=pause)
    try:
        result = runner.run()
    finally:
        runner.safe()
    path = export_journal(result.journal, out) if write_nwb and result.journal.exists() else None
    return result, path
