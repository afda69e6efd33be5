"""Output, safety and trial-program logic of the simulated device (the "safety kernel").

:class:`SimKernel` is the half of :class:`dopa_rl.sim.device.SimDevice` that owns the outputs: the
command handlers (``_cmd_<name>`` return the ACK value or raise :class:`_Refused`), the valve limits
(maximum open time, minimum gap, volume budget), tone, TTL, the analog stream, the synthetic stress
stream and the trial programs.  It relies on the device for ``clock``, ``config``, ``_send``, ``_trip``,
``_edge``, ``_observe``, ``_lick_input``, ``armed``, ``_host_deadline`` and ``_schedule_host_check``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from dopa_rl.protocol import messages as P
from dopa_rl.protocol.messages import Action, CloseCause, NackReason, TripReason, tone_applied_hz
from dopa_rl.sim.vclock import Timer

_FOREVER = 1 << 62
_WIN_BUCKETS = 7              # the last minute's valve time: 7 buckets of 10 s (at least 60 s, at most 70 s)
_WIN_BUCKET_US = 10_000_000

__all__ = ["SimKernel", "Program", "tone_applied_hz", "default_analog", "CloseCause"]


def default_analog(t_us: int) -> int:
    """Analog input used when none is given: 1 Hz sine around mid-scale, 10-bit."""
    return 512 + int(round(300 * math.sin(2 * math.pi * t_us / 1e6)))


def _i32(u: int) -> int:
    """A u32 as the i32 carried by ACK.value."""
    return u - (1 << 32) if u >= 1 << 31 else u


class _Refused(Exception):
    def __init__(self, reason: NackReason) -> None:
        super().__init__(reason.name)
        self.reason = reason


@dataclass
class Program:
    """A trial program (being uploaded, pending or running)."""

    trial_id: int
    duration_us: int
    actions: list[tuple[int, int, int] | None]  # (offset_us, action, arg) by index
    window: tuple[int, int, int, int] | None = None  # (start_us, end_us, action, arg)
    start_us: int = 0
    timers: list[Timer] = field(default_factory=list)
    window_used: bool = False



class SimKernel:
    """Outputs, safety limits and trial programs (mixed into SimDevice)."""

    @staticmethod
    def _check(name: str, value: int) -> int:
        lim = P.LIMITS[name]
        if not lim.min <= value <= lim.max:
            raise _Refused(NackReason.BAD_VALUE)
        return value

    # ------------------------------------------------------------------ commands (return the ACK value)
    def _cmd_ping(self, m: P.Ping) -> int:
        return m.nonce

    def _cmd_configure(self, m: P.Configure) -> int:
        new = m._asdict()
        for k, v in new.items():
            if k != "flags":
                self._check(k, v)
        if new["flags"] & ~int(P.ConfigFlag.LICK_ACTIVE_LOW):
            raise _Refused(NackReason.BAD_VALUE)
        flipped = (self.config["flags"] ^ new["flags"]) & P.ConfigFlag.LICK_ACTIVE_LOW
        self.config.update(new)
        if flipped:
            self._lick_input()  # a polarity flip changes the logical lick level now, as an edge would
        self._host_deadline = self.clock.now_us + self.config["host_timeout_ms"] * 1000
        if self.armed:
            self._schedule_host_check()
        if self.valve:
            self._plan_close(self._valve_req_end)
        return 0

    def _cmd_heartbeat(self, m: P.Heartbeat) -> int:
        self._ack_events(m.next_expected_seq, m.epoch)
        return len(self._ring)

    def _cmd_valve_pulse(self, m: P.ValvePulse) -> int:
        self._check("valve_pulse_ms", m.ms)
        return self._valve_request(m.ms, command=True)

    def _cmd_valve_open(self, m: P.ValveOpen) -> int:
        return self._valve_request(None, command=True)

    def _cmd_valve_close(self, m: P.ValveClose) -> int:
        self._close_valve(CloseCause.COMMAND)
        return 0

    def _cmd_cue_on(self, m: Any) -> int:
        self._set_cue(True)
        return 1

    def _cmd_cue_off(self, m: Any) -> int:
        self._set_cue(False)
        return 0

    def _cmd_tone_on(self, m: P.ToneOn) -> int:
        return self._set_tone(self._check("tone_hz", m.freq_hz))

    def _cmd_tone_off(self, m: Any) -> int:
        return self._set_tone(0)

    def _cmd_ttl_pulse(self, m: P.TtlPulse) -> int:
        return self._ttl_pulse(self._check("ttl_ms", m.ms))

    def _cmd_sync_start(self, m: P.SyncStart) -> int:
        lo, hi = self._check("sync_interval_ms", m.min_ms), self._check("sync_interval_ms", m.max_ms)
        ms = self._check("ttl_ms", m.pulse_ms)
        if hi < lo or ms >= lo:
            raise _Refused(NackReason.BAD_VALUE)
        self._sp_stop()
        self._sp_cfg, self._sp_x, self._sp_n = (lo, hi - lo + 1, ms), m.seed or 1, 0
        now = self.clock.now_us
        self._sp_timer = self.clock.schedule(now, self._sp_pulse, now)   # the first pulse at once
        return ms

    def _cmd_sync_stop(self, m: Any) -> int:
        n = self._sp_n
        self._sp_stop()
        return n

    def _sp_stop(self) -> None:
        if self._sp_timer is not None:
            self._sp_timer.cancel()
        self._sp_timer, self._sp_cfg = None, None

    def _sp_interval_ms(self) -> int:
        """The next interval of the sequence (xorshift32, protocol/messages.toml), as the firmware draws it."""
        x = self._sp_x
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self._sp_x = x
        return self._sp_cfg[0] + x % self._sp_cfg[1]

    def _sp_pulse(self, due_us: int) -> None:
        self._sp_timer = None
        if self._sp_cfg is None:
            return
        ms = self._sp_cfg[2]
        self._ttl_high(ms)
        self._send(P.SyncPulse(self._t(), self._sp_n, ms))
        self._sp_n += 1
        now = self.clock.now_us
        nxt = due_us + self._sp_interval_ms() * 1000    # from the time planned, as the firmware
        if now >= nxt:
            nxt = now + self._sp_interval_ms() * 1000
        self._sp_timer = self.clock.schedule(nxt, self._sp_pulse, nxt)

    def _cmd_analog_start(self, m: P.AnalogStart) -> int:
        rate = self._check("analog_rate_hz", m.rate_hz)
        self._analog_stop()
        self._analog_rate = rate
        self._analog_t0 = self.clock.now_us
        self._analog_timer = self.clock.schedule(self._analog_sample_t(P.ANALOG_BATCH - 1), self._analog_batch)
        return self._analog_rate

    def _cmd_analog_stop(self, m: Any) -> int:
        self._analog_stop()
        return 0

    def _cmd_all_off(self, m: Any) -> int:
        self._all_off(CloseCause.ALL_OFF)
        return 0

    def _cmd_program_begin(self, m: P.ProgramBegin) -> int:
        # the firmware compares trial times on its wrapping u32 clock: at most 2**31 - 1 us (~35.8 min)
        if m.n_actions > P.MAX_ACTIONS or not 0 < m.duration_ms <= 0x7FFFFFFF // 1000:
            raise _Refused(NackReason.BAD_VALUE)
        self._upload = Program(m.trial_id, m.duration_ms * 1000, [None] * m.n_actions)
        if not self.pending_queued:
            self.pending = None  # the firmware uploads into the pending slot: a program not yet started is gone
        return m.n_actions

    def _check_action(self, action: int, arg: int) -> None:
        checks = {Action.TONE_ON: "tone_hz", Action.VALVE_PULSE: "valve_pulse_ms", Action.TTL_PULSE: "ttl_ms"}
        if action not in (Action.CUE_ON, Action.CUE_OFF, Action.TONE_OFF, *checks):
            raise _Refused(NackReason.BAD_VALUE)
        if action in checks:
            self._check(checks[action], arg)

    def _cmd_program_action(self, m: P.ProgramAction) -> int:
        up = self._upload
        if up is None:
            raise _Refused(NackReason.PROGRAM_STATE)
        if m.index >= len(up.actions) or m.offset_us >= up.duration_us:
            raise _Refused(NackReason.BAD_VALUE)
        self._check_action(m.action, m.arg)
        up.actions[m.index] = (m.offset_us, m.action, m.arg)
        return m.index

    def _cmd_program_lick_window(self, m: P.ProgramLickWindow) -> int:
        up = self._upload
        if up is None:
            raise _Refused(NackReason.PROGRAM_STATE)
        if not m.start_us < m.end_us <= up.duration_us:
            raise _Refused(NackReason.BAD_VALUE)
        self._check_action(m.action, m.arg)
        up.window = (m.start_us, m.end_us, m.action, m.arg)
        return m.action

    def _cmd_program_commit(self, m: Any) -> int:
        up = self._upload
        if up is None or any(a is None for a in up.actions) or self.pending_queued:
            raise _Refused(NackReason.PROGRAM_STATE)
        self.pending, self._upload = up, None
        return _i32(up.trial_id)

    def _cmd_trial_start(self, m: P.TrialStart) -> int:
        if m.when not in (P.TrialWhen.NOW, P.TrialWhen.AFTER_CURRENT):
            raise _Refused(NackReason.BAD_VALUE)
        prog = self.pending
        if prog is None or self.pending_queued or (m.when == P.TrialWhen.NOW and self.running is not None):
            raise _Refused(NackReason.PROGRAM_STATE)
        if self.running is None:
            self.pending = None
            self._start_trial(prog)
        else:
            self.pending_queued = True
        return _i32(prog.trial_id)

    # ------------------------------------------------------------------ outputs
    def _set_cue(self, on: bool) -> None:
        if on == self.cue:
            return
        self.cue = on
        self._edge("cue", int(on))
        self._send((P.CueOnset if on else P.CueOffset)(self._t()))
        if on:
            self._observe("cue_on")

    def _set_tone(self, freq_hz: int) -> int:
        applied = tone_applied_hz(freq_hz) if freq_hz else 0
        if applied == self.tone_hz:
            return applied
        if bool(applied) != bool(self.tone_hz):
            self._edge("tone", int(bool(applied)))
        self.tone_hz = applied
        self._send(P.ToneOnset(self._t(), applied) if applied else P.ToneOffset(self._t()))
        if applied:
            self._observe("tone_on", applied)
        return applied

    def _ttl_high(self, ms: int) -> None:
        """TTL high now, low after ``ms``."""
        if not self.ttl:
            self.ttl = True
            self._edge("ttl", 1)
        if self._ttl_timer is not None:
            self._ttl_timer.cancel()
        self._ttl_timer = self.clock.after(ms * 1000, self._ttl_low)

    def _ttl_pulse(self, ms: int) -> int:
        self._ttl_high(ms)
        self._send(P.TtlSent(self._t(), ms))
        return ms

    def _ttl_low(self) -> None:
        self._ttl_timer = None
        if self.ttl:
            self.ttl = False
            self._edge("ttl", 0)

    def _valve_request(self, ms: int | None, command: bool) -> int:
        """Open (or re-time) the valve; returns ms until the planned close. Refusals trip (and NACK)."""
        now = self.clock.now_us
        c = self.config
        remaining = self._valve_room_us() - (now - self._valve_open_us if self.valve else 0)
        start = self._valve_open_us if self.valve else now
        req_end = _FOREVER if ms is None else now + ms * 1000
        capped = min(req_end, start + c["max_valve_ms"] * 1000)
        reason, value = None, 0
        if not self.valve and self._last_close_us is not None and now - self._last_close_us < c["min_valve_gap_ms"] * 1000:
            reason, value = TripReason.MIN_GAP, (now - self._last_close_us) // 1000
        elif (ms is None and remaining < 1000) or (ms is not None and capped - now > remaining):
            reason, value = TripReason.BUDGET, self.budget_used_us // 1000
        if reason is not None:
            self._trip(reason, value)
            if command:
                raise _Refused(NackReason.SAFETY)
            return 0
        fresh = not self.valve
        if fresh:
            self.valve = True
            self._valve_open_us = now
            self._edge("valve", 1)
        planned = self._plan_close(req_end)
        if fresh:
            self._send(P.ValveOpened(self._t(), min(planned // 1000, 0xFFFF)))
            self._observe("valve_open", planned // 1000)
        return planned // 1000

    def _plan_close(self, req_end: int) -> int:
        """(Re)schedule the valve close at the earliest of request, max open time and budget; returns us left."""
        c = self.config
        now = self.clock.now_us
        self._valve_req_end = req_end
        end, cause = req_end, CloseCause.PULSE_END
        max_end = self._valve_open_us + c["max_valve_ms"] * 1000
        budget_end = self._valve_open_us + self._valve_room_us()
        if max_end < end:
            end, cause = max_end, CloseCause.MAX_OPEN
        if budget_end < end:
            end, cause = budget_end, CloseCause.BUDGET
        if self._valve_close_timer is not None:
            self._valve_close_timer.cancel()
        self._valve_close_timer = self.clock.schedule(end, self._close_valve, cause)
        return max(end - now, 0)

    def _close_valve(self, cause: int) -> None:
        if self._valve_close_timer is not None:
            self._valve_close_timer.cancel()
            self._valve_close_timer = None
        if not self.valve:
            return
        now = self.clock.now_us
        self.valve = False
        self._edge("valve", 0)
        open_us = now - self._valve_open_us
        self.budget_used_us += open_us
        self._window_add(open_us)
        self._last_close_us = now
        self._send(P.ValveClosed(self._t(), open_us, cause))
        if cause == CloseCause.MAX_OPEN:
            self._trip(TripReason.MAX_OPEN, self.config["max_valve_ms"])
        elif cause == CloseCause.BUDGET:
            self._trip(TripReason.BUDGET, self.config["budget_valve_ms"])

    # ------------------------------------------------------------------ the minute ceiling (firmware window.c)
    # Every sliding minute, across sessions, holds at most min(budget_valve_ms, MINUTE_VALVE_MS) of valve time:
    # a new session (HELLO) restarts the session's budget, never this count, and no HELLO raises the ceiling
    # above the device-held MINUTE_VALVE_MS.  Same buckets as the firmware, so both give the same answers.
    def _window_init(self) -> None:
        self._win = [0] * _WIN_BUCKETS
        self._win_head = 0
        self._win_start = self.clock.now_us

    def _window_roll(self) -> None:
        now, n = self.clock.now_us, 0
        while now >= self._win_start + _WIN_BUCKET_US:
            n += 1
            if n > _WIN_BUCKETS:           # more than a minute since the last use: start over at now
                self._win_start = now
                return
            self._win_start += _WIN_BUCKET_US
            self._win_head = (self._win_head + 1) % _WIN_BUCKETS
            self._win[self._win_head] = 0

    def _valve_room_us(self) -> int:
        """Valve time still allowed, a valve open now not counted: by the session's budget and by the
        minute's ceiling, whichever allows less."""
        self._window_roll()
        budget = self.config["budget_valve_ms"] * 1000
        ceiling = min(budget, P.MINUTE_VALVE_MS * 1000)
        return max(0, min(budget - self.budget_used_us, ceiling - sum(self._win)))

    def _window_add(self, open_us: int) -> None:
        self._window_roll()
        self._win[self._win_head] += open_us

    def _analog_sample_t(self, k: int) -> int:
        return self._analog_t0 + (k * 1_000_000 + self._analog_rate // 2) // self._analog_rate

    def _analog_emit(self, n: int) -> None:
        ts = [self._analog_sample_t(k) for k in range(n)]
        samples = tuple(max(0, min(1023, int(self.analog_source(t)))) for t in ts) + (0,) * (P.ANALOG_BATCH - n)
        if self.armed:
            self._send(P.AnalogBatch(ts[0] & 0xFFFFFFFF, self._analog_rate, n, samples))

    def _analog_batch(self) -> None:
        self._analog_emit(P.ANALOG_BATCH)
        self._analog_t0 = self._analog_sample_t(P.ANALOG_BATCH)
        self._analog_timer = self.clock.schedule(self._analog_sample_t(P.ANALOG_BATCH - 1), self._analog_batch)

    def _analog_stop(self) -> None:
        if not self._analog_rate:
            return
        if self._analog_timer is not None:
            self._analog_timer.cancel()
            self._analog_timer = None
        n = sum(1 for k in range(P.ANALOG_BATCH) if self._analog_sample_t(k) <= self.clock.now_us)
        if n:
            self._analog_emit(n)
        self._analog_rate = 0

    def stress(self, rate_hz: float) -> None:
        """Simulator only: emit synthetic ANALOG_BATCH events at ``rate_hz`` while armed (0 stops)."""
        with self._lock:
            self._sync()
            if self._stress_timer is not None:
                self._stress_timer.cancel()
                self._stress_timer = None
            if rate_hz > 0:
                self._stress_timer = self.clock.after(0, self._stress_tick, 1e6 / rate_hz, float(self.clock.now_us))

    def _stress_tick(self, period_us: float, t_float: float) -> None:
        if self.armed:
            base = self._stress_count
            self._stress_count = (base + P.ANALOG_BATCH) & 0xFFFF
            self._send(P.AnalogBatch(self._t(), 0, P.ANALOG_BATCH,
                                     tuple((base + i) & 0xFFFF for i in range(P.ANALOG_BATCH))))
        t_next = t_float + period_us
        self._stress_timer = self.clock.schedule(int(t_next), self._stress_tick, period_us, t_next)

    def _all_off(self, cause: int) -> None:
        self._abort_trials()
        self._close_valve(cause)
        self._set_cue(False)
        self._set_tone(0)
        if self._ttl_timer is not None:
            self._ttl_timer.cancel()
        self._ttl_low()
        self._sp_stop()
        self._analog_stop()

    # ------------------------------------------------------------------ trial programs
    def _start_trial(self, prog: Program) -> None:
        now = self.clock.now_us
        prog.start_us, prog.window_used, prog.timers = now, False, []
        self.running = prog
        self._send(P.TrialStarted(self._t(), prog.trial_id))
        order = sorted(range(len(prog.actions)), key=lambda i: (prog.actions[i][0], i))
        for i in order:
            off, action, arg = prog.actions[i]
            prog.timers.append(self.clock.schedule(now + off, self._do_action, action, arg))
        prog.timers.append(self.clock.schedule(now + prog.duration_us, self._end_trial, prog))

    def _do_action(self, action: int, arg: int) -> None:
        if action == Action.CUE_ON:
            self._set_cue(True)
        elif action == Action.CUE_OFF:
            self._set_cue(False)
        elif action == Action.TONE_ON:
            self._set_tone(arg)
        elif action == Action.TONE_OFF:
            self._set_tone(0)
        elif action == Action.VALVE_PULSE:
            self._valve_request(arg, command=False)
        elif action == Action.TTL_PULSE:
            self._ttl_pulse(arg)

    def _end_trial(self, prog: Program) -> None:
        if self.running is not prog:
            return
        self.running = None
        self._send(P.TrialEnded(self._t(), prog.trial_id, 0))
        if self.pending is not None and self.pending_queued:
            nxt, self.pending, self.pending_queued = self.pending, None, False
            self._start_trial(nxt)

    def _abort_trials(self) -> None:
        run = self.running
        if run is not None:
            for t in run.timers:
                t.cancel()
            self.running = None
            self._send(P.TrialEnded(self._t(), run.trial_id, 1))
        self.pending, self.pending_queued, self._upload = None, False, None
