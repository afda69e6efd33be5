"""A session in virtual time: a :class:`~dopa_rl.session.machine.SessionMachine` driven by a small model of
how the device runs trial programs (docs/rig.md, Trial programs), written for the tests, independent of the
simulated device: no threads, no clock, no link.

The rig keeps a device clock in microseconds and a queue of events it will report.  It carries out the
machine's uploads at the moment they are made (a host with no latency): ``NOW`` starts a program at once,
``AFTER_CURRENT`` queues it to start when the running one ends; cue, valve and TTL actions become events at
their offsets; ``all_off()`` aborts the running trial and drops the queued one, as ALL_OFF does; ``reset()``
loses everything and answers with a boot banner and then a new session's HELLO_REPLY.  Licks come from a
list of device times.  Every event and every machine output is kept, so a test can write them as a journal
and export it like a real session.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

from dopa_rl.protocol import messages as P
from dopa_rl.session.machine import Command, Done, Record, Show, Upload

T0_US = 5_000_000          # device time of the session's HELLO_REPLY
HEARTBEAT_US = 500_000     # the device's heartbeat period


def hello_reply(t_us: int, boot: int = 0) -> P.HelloReply:
    fields = {f: 0 for f in P.HelloReply._fields}
    fields.update(t_us=t_us, boot=boot, protocol_version=P.PROTOCOL_VERSION, session=0 if boot else 7)
    return P.HelloReply(**fields)


@dataclass(frozen=True)
class Ev:
    """What the machine reads of a client event."""

    name: str
    msg: Any
    index: int
    t_device_us: int
    t_received: float
    seq: int = 0


@dataclass
class VirtualRig:
    machine: Any
    licks_us: list[int] = field(default_factory=list)
    speed: float = 1.0
    t_us: int = T0_US
    events: list[Ev] = field(default_factory=list)      # delivered, in order
    outputs: list[Any] = field(default_factory=list)    # everything the machine returned, in order
    log: list[Any] = field(default_factory=list)        # events and outputs, in the order they happened
    uploads: list[Upload] = field(default_factory=list)
    shown: list[dict] = field(default_factory=list)
    # hooks: called with the rig before an upload is carried out; return "unknown" to fail it that way
    on_upload: Any = None
    _queue: list = field(default_factory=list)           # (t_us, order, name, msg)
    _order: int = 0
    _running: tuple | None = None                        # (trial_id, t_start, t_end)
    _queued: tuple | None = None                         # (trial_id, duration_ms, actions)
    _next_beat: int = T0_US + HEARTBEAT_US
    _lick_i: int = 0

    # ------------------------------------------------------------------ host side
    def host_now(self) -> float:
        return self.t_us / 1e6 / self.speed

    def begin(self) -> None:
        self._emit(self.t_us, "HELLO_REPLY", hello_reply(self.t_us))
        self._deliver_due(self.t_us)
        self.carry_out(self.machine.begin(self.host_now()))

    def run(self, until_us: int | None = None, max_events: int = 1_000_000) -> Done | None:
        """Deliver events in device order until the machine is done (or ``until_us``)."""
        for _ in range(max_events):
            if self.machine.done is not None:
                return self.machine.done
            t_next = self._next_time()
            if until_us is not None and t_next > until_us:
                self.t_us = until_us
                return None
            self._step(t_next)
        raise AssertionError("the session did not end")

    def run_into_trial(self, k: int, after_us: int = 0) -> None:
        """Run until trial ``k``'s task part has started and ``after_us`` of it have passed."""
        while k not in self.machine.windows:
            self.run(until_us=self.t_us + 10_000)
        self.run(until_us=self.machine.windows[k].t0 + after_us)

    def carry_out(self, outs: list) -> None:
        """Carry out the machine's outputs as the runner would (uploads reach the device at once)."""
        for o in outs:
            self.outputs.append(o)
            self.log.append(o)
            if isinstance(o, Upload):
                self.uploads.append(o)
                verdict = self.on_upload(self, o) if self.on_upload is not None else None
                if verdict == "unknown":
                    self.carry_out(self.machine.on_upload_unknown(o, "test: reset during the upload",
                                                                   self.host_now()))
                    continue
                self._program(o)
                self.machine.on_uploaded(o, self.host_now())
            elif isinstance(o, Show):
                self.shown.append(o.row)
            elif isinstance(o, Command):
                pass

    # ------------------------------------------------------------------ device side
    def all_off(self) -> None:
        """ALL_OFF: the running trial ends aborted now, the queued one is dropped."""
        self._queue = [q for q in self._queue if q[2] not in ("CUE_ONSET", "VALVE_OPENED", "TTL_SENT", "TRIAL_ENDED",
                                                               "VALVE_CLOSED", "TRIAL_STARTED")]
        heapq.heapify(self._queue)
        if self._running is not None:
            self._emit(self.t_us, "TRIAL_ENDED", P.TrialEnded(self.t_us & 0xFFFFFFFF, self._running[0], 1))
        self._running, self._queued = None, None

    def reset(self) -> None:
        """A reboot: programs and pending events are gone; a boot banner, then the re-armed new session."""
        self._queue.clear()
        self._running, self._queued = None, None
        self._emit(self.t_us, "HELLO_REPLY", hello_reply(self.t_us, boot=1))
        self._emit(self.t_us + 50_000, "HELLO_REPLY", hello_reply(self.t_us + 50_000))

    _lost: tuple | None = None

    def replay_hello(self) -> None:
        """A copy of the session's first HELLO_REPLY arrives again (a stray or replayed frame)."""
        first = next(e for e in self.events if e.name == "HELLO_REPLY")
        self._emit(self.t_us, "HELLO_REPLY", first.msg)

    def lose_events(self, names: set[str], start_us: int, end_us: int) -> None:
        """Events of these names due in [start_us, end_us) are lost (EVENT_OVERFLOW)."""
        self._lost = (names, start_us, end_us)

    def _program(self, up: Upload) -> None:
        if up.when == P.TrialWhen.NOW and self._running is None:
            self._start(up.trial_id, up.duration_ms, up.actions, self.t_us)
        elif up.when == P.TrialWhen.NOW:
            raise AssertionError(f"program {up.trial_id} started NOW while {self._running[0]} runs")
        elif self._running is None:
            self._start(up.trial_id, up.duration_ms, up.actions, self.t_us)
        else:
            assert self._queued is None, "two programs queued"
            self._queued = (up.trial_id, up.duration_ms, up.actions)

    def _start(self, trial_id: int, duration_ms: int, actions: tuple, t: int) -> None:
        end = t + duration_ms * 1000
        self._running = (trial_id, t, end)
        self._emit(t, "TRIAL_STARTED", P.TrialStarted(t & 0xFFFFFFFF, trial_id))
        for off, action, arg in actions:
            ta = t + off
            if action == P.Action.CUE_ON:
                self._emit(ta, "CUE_ONSET", P.CueOnset(ta & 0xFFFFFFFF))
            elif action == P.Action.VALVE_PULSE:
                self._emit(ta, "VALVE_OPENED", P.ValveOpened(ta & 0xFFFFFFFF, arg))
                self._emit(ta + arg * 1000, "VALVE_CLOSED", P.ValveClosed((ta + arg * 1000) & 0xFFFFFFFF, arg * 1000, 0))
            elif action == P.Action.TTL_PULSE:
                self._emit(ta, "TTL_SENT", P.TtlSent(ta & 0xFFFFFFFF, arg))
        self._emit(end, "TRIAL_ENDED", P.TrialEnded(end & 0xFFFFFFFF, trial_id, 0))

    def _emit(self, t: int, name: str, msg: Any) -> None:
        self._order += 1
        heapq.heappush(self._queue, (t, self._order, name, msg))

    def _next_time(self) -> int:
        cands = [self._next_beat]
        if self._queue:
            cands.append(self._queue[0][0])
        if self._lick_i < len(self.licks_us):
            cands.append(self.licks_us[self._lick_i])
        return min(cands)

    def _step(self, t: int) -> None:
        self.t_us = max(self.t_us, t)
        if self._lick_i < len(self.licks_us) and self.licks_us[self._lick_i] == t:
            self._lick_i += 1
            self._emit(t, "LICK_ON", P.LickOn(t & 0xFFFFFFFF))
        if self._next_beat == t:
            self._next_beat += HEARTBEAT_US
            state = P.StateBit.ARMED
            if self._running is not None:
                state |= P.StateBit.TRIAL_RUNNING
            if self._queued is not None:
                state |= P.StateBit.TRIAL_PENDING
            self._emit(t, "DEVICE_HEARTBEAT", P.DeviceHeartbeat(t & 0xFFFFFFFF, 0, 0, 0, int(state), 0))
        self._deliver_due(t)

    def _deliver_due(self, t: int) -> None:
        while self._queue and self._queue[0][0] <= t and self.machine.done is None:
            te, _, name, msg = heapq.heappop(self._queue)
            if name == "TRIAL_ENDED" and self._running is not None and msg.trial_id == self._running[0]:
                self._running = None
                if self._queued is not None:
                    q, self._queued = self._queued, None
                    self._start(q[0], q[1], q[2], te)
            lost = self._lost
            if lost is not None and name in lost[0] and lost[1] <= te < lost[2]:
                continue
            ev = Ev(name, msg, len(self.events), te, te / 1e6 / self.speed)
            self.events.append(ev)
            self.log.append(ev)
            self.carry_out(self.machine.on_event(ev, ev.t_received))

    def journal_only(self) -> None:
        """Events now due reach the journal but not the machine (the runner has stopped its loop: what the
        client's listener still delivers, e.g. ALL_OFF's TRIAL_ENDED, is journaled)."""
        while self._queue and self._queue[0][0] <= self.t_us:
            te, _, name, msg = heapq.heappop(self._queue)
            ev = Ev(name, msg, len(self.events), te, te / 1e6 / self.speed)
            self.events.append(ev)
            self.log.append(ev)

    # ------------------------------------------------------------------ the journal it amounts to
    def journal_records(self, config_fields: dict, end_reason: str | None = "complete") -> list[dict]:
        """The session as journal records (header, config, events and the machine's records in the order
        they happened), as the runner would have written them."""
        recs: list[dict] = [{"kind": "header", "format": "dopa_rl.session.journal", "version": 1,
                             "created": "2026-12-07T10:00:00+0000"}, {"kind": "config", **config_fields}]
        for item in self.log:
            if isinstance(item, Ev):
                f = {k: (list(v) if isinstance(v, tuple) else v) for k, v in item.msg._asdict().items()}
                recs.append({"kind": "ev", "i": item.index, "seq": item.index, "name": item.name,
                             "t_us": item.t_device_us, "rx": item.t_received, "f": f})
            elif isinstance(item, Record):
                recs.append({"kind": item.kind, **item.fields})
        if end_reason is not None:
            recs.append({"kind": "end", "reason": end_reason})
        return recs

