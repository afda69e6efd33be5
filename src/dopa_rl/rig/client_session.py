"""Device sessions for :class:`dopa_rl.rig.client.DeviceClient`: HELLO, resume, re-arm and their records.

docs/rig.md, "Sessions": every HELLO carries this client's session nonce.  The device resumes its
current session when the nonce matches (reply window, event sequence, ring and budget kept) and starts a
new one otherwise (after a reset it has none).  So a retried HELLO is harmless, and the client can
re-arm after a host timeout or a suspected loss of sync without losing or repeating anything.

While a re-arming HELLO is unanswered the client sends no other command (neither new ones nor retries):
a retry reaching a device that has meanwhile started a new session would run again.  When the answer
says *resumed*, everything carries on.  When it says *new session* (the device reset and the client did
not see its banner), commands that were sent in the old session fail with :class:`CommandOutcomeUnknown`
(they may or may not have run; they are never repeated).  Before a new session arms the outputs, the
HELLO re-imposes the session's remaining volume budget (configured budget, or the device's at
:meth:`start`, minus the valve time this client saw delivered or planned).

Every HELLO episode is recorded in :attr:`DeviceClient.rearm_log` as a :class:`RearmRecord`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from dopa_rl.errors import DeviceError
from dopa_rl.protocol import messages as P
from dopa_rl.protocol import codec

__all__ = ["CommandOutcomeUnknown", "RearmRecord", "SessionMixin", "new_nonce"]

# a lost HELLO_REPLY is resent by go-back-N: retry HELLO only after 4 of those (a retry is harmless: it resumes)
_HELLO_RETRY_S = 4 * P.RETRANSMIT_MS / 1000


class CommandOutcomeUnknown(DeviceError):
    """The device session ended (reset) while the command was in flight: it may or may not have run."""


@dataclass
class RearmRecord:
    """One HELLO episode: ``why`` it was sent, when (``t_host``, client ``time_fn``), and what the device
    answered: ``resumed`` (None until answered; a RESUMED answers a resume, a HELLO_REPLY a new session), its
    ``session`` nonce, the unacknowledged events a new session ``dropped``, the device's cumulative ``lost_total`` since its reset, ``budget_ms`` sent,
    ``failed`` commands reported as unknown, and ``t_reply``."""

    why: str
    t_host: float
    budget_ms: int
    resumed: bool | None = None
    session: int = 0
    dropped: int = 0
    lost_total: int = 0
    reset_cause: int = 0
    failed: int = 0
    t_reply: float | None = None


def new_nonce() -> int:
    """A random nonzero u32 session nonce."""
    return int.from_bytes(os.urandom(4), "little") or 1


class SessionMixin:
    """Session handling of DeviceClient (uses its state; see the module docstring)."""

    # set by DeviceClient.__init__
    session_nonce: int
    rearm_log: list[RearmRecord]
    hello: P.HelloReply | None
    auto_rearm: bool
    stats: dict[str, int]

    def _hello_retry_s(self) -> float:
        """HELLO retry interval: a few go-back-N rounds, but well inside the device's host timeout (while a
        HELLO is pending nothing else is sent)."""
        if self.hello is None:
            return self.ack_timeout_s            # the first handshake: nothing is held behind it, retry fast
        t = max(self.ack_timeout_s, _HELLO_RETRY_S)
        return min(t, self._config.host_timeout_ms / 3000)

    def _expire_requeued(self, now: float) -> None:
        """Commands refused NOT_ARMED whose re-arm took longer than ``command_timeout_s``: failed for good."""
        for pc in [p for p in self._requeue if now - p.created > self.command_timeout_s]:
            self._requeue.remove(pc)
            pc._finish(error=DeviceError(f"{type(pc.msg).__name__} refused NOT_ARMED and the device was not "
                                         f"re-armed within {self.command_timeout_s} s; it was not sent again"))
            self._window.notify_all()

    # ------------------------------------------------------------------ budget bookkeeping
    def _session_budget_base(self) -> int:
        return int(self._config.budget_valve_ms)

    def _remaining_budget_ms(self) -> int:
        """What the session may still deliver (ms): its budget minus valve time delivered or planned (at
        least 1 ms: a HELLO budget of 0 is out of bounds and would leave the device disarmed for good)."""
        base = self._session_budget_base()
        used_ms = (self._valve_used_us + self._valve_open_planned_us + 999) // 1000
        # the device's own count covers valve time whose events were lost (ring overflow)
        used_ms = max(used_ms, self._budget_offset_ms + self._device_used_ms)
        return max(1, base - used_ms)

    def _note_valve(self, msg: Any) -> None:
        if isinstance(msg, P.ValveOpened):
            # a close we never saw (lost with the ring, or at a reset): count its planned time
            self._valve_used_us += self._valve_open_planned_us
            self._valve_open_planned_us = msg.planned_ms * 1000
            self._valve_opened_seen = True
        elif isinstance(msg, P.ValveClosed):
            self._valve_used_us += msg.open_us
            self._valve_open_planned_us = 0
        elif isinstance(msg, P.DeviceHeartbeat):
            self._device_used_ms = max(self._device_used_ms, msg.budget_used_ms)

    def _device_configure(self, msg: P.Configure) -> P.Configure:
        """A CONFIGURE from the application: its budget is the session's; the device counts only what it
        gave since its current session started."""
        if not self._budget_offset_ms:
            return msg
        return msg._replace(budget_valve_ms=max(1, msg.budget_valve_ms - self._budget_offset_ms))

    def _note_valve_ack(self, pc: Any, msg: P.Ack) -> None:
        """ACK of our VALVE_PULSE/VALVE_OPEN: the device queues VALVE_OPENED before it, so if none came
        since the last one, it was lost (ring overflow): count the applied time as delivered."""
        if pc.type_id in (P.MsgId.VALVE_PULSE, P.MsgId.VALVE_OPEN):
            if not self._valve_opened_seen:
                self._valve_used_us += max(0, msg.value) * 1000
            self._valve_opened_seen = False

    def _hello_msg(self, budget_ms: int) -> P.Hello:
        """HELLO with the limits this client has confirmed (its last CONFIGURE, else the defaults its first
        HELLO set): a new device session arms with them, never with what a reset left."""
        src = self._config
        return P.Hello(self.protocol_version, self.session_nonce, budget_ms, src.max_valve_ms,
                       src.min_valve_gap_ms, src.host_timeout_ms, src.debounce_us, src.flags)

    # ------------------------------------------------------------------ public
    def rearm(self, timeout_s: float = 3.0) -> Any:
        """Re-arm now (HELLO), e.g. after SAFETY_TRIP HOST_TIMEOUT with ``auto_rearm=False``.

        The device resumes this client's session if it still has it; otherwise (it reset) a new session
        starts with the remaining volume budget and the limits of the last :meth:`configure`, carried by
        the HELLO itself.  Returns the answer: RESUMED for a resume, HELLO_REPLY for a new session.
        """
        hc = self._begin_hello("rearm() called")
        reply = hc.result(timeout_s)
        if isinstance(reply, P.HelloReply):
            self._check_versions(reply)
        return reply

    # ------------------------------------------------------------------ worker side
    def _begin_hello(self, why: str) -> Any:
        """Send a re-arming HELLO (other commands are held until it is answered); returns its PendingCommand."""
        budget = self._remaining_budget_ms()
        self.rearm_log.append(RearmRecord(why, self.time_fn(), budget))
        self._rearming = True
        return self._send(self._hello_msg(budget), internal=True)

    def _rearm(self, why: str = "re-arm") -> None:
        """Re-arm from the worker thread unless a HELLO is already on its way."""
        hc = self._hello_cmd
        if hc is not None and not hc.done():
            return
        self.stats["rearms"] += 1
        self._begin_hello(why)

    def _on_banner(self, rec: codec.Received, now: float) -> None:
        """A boot banner: the device may have rebooted, or this is a stray copy (a replayed frame).  Nothing
        is given up on its word: a HELLO asks (other commands are held).  A RESUMED of our epoch says it was
        stray; a HELLO_REPLY (a new session) confirms the reset (:meth:`_on_hello_reply`)."""
        if self.hello is None:
            return  # boot banner before our first HELLO: nothing to do
        self._banner = (rec, now)
        if self.auto_rearm:
            self._rearm(f"device reset? (boot banner, cause {rec.msg.reset_cause})")

    def _confirm_reset(self, now: float) -> None:
        """A new device session after our first: the device reset (its banner, if seen, is delivered now)."""
        self.stats["device_resets"] += 1
        # a valve open at the reset closed with it, after at most its planned time
        self._valve_used_us += self._valve_open_planned_us
        self._valve_open_planned_us = 0
        banner, self._banner = self._banner, None
        if banner is not None:
            rec, t = banner
            self._deliver(self._make_event("HELLO_REPLY", rec.msg, rec.seq, self._unwrap(rec.msg.t_us, t), None, t))

    def _lose_session(self, why: str) -> None:
        """The device session is gone: fail commands in flight (never repeat them blindly), re-arm if allowed."""
        err = CommandOutcomeUnknown(f"{why} while the command was in flight; unknown whether it ran; "
                                    "it was not repeated")
        with self._window:
            # (commands held while a HELLO is pending were never sent: they wait for its answer)
            lost = [p for p in self._pending.values() if p is not self._hello_cmd and p.attempts > 0]
            lost += [p for p in self._requeue if getattr(p, "maybe_ran", False)]
            self._requeue = [p for p in self._requeue if not getattr(p, "maybe_ran", False)]
            for p in lost:
                self._pending.pop(p.seq, None)
            self._window.notify_all()
        for p in lost:
            p._finish(error=err)
        if self._expected is not None:
            self._lost_expected = self._expected
        self._expected = None
        self._answering = False
        self._ahead.clear()
        self._stale_first = None
        self.clock.reset()
        if self.auto_rearm:
            self._rearm(why)

    def _answers_hello(self, msg: Any, hc: Any) -> bool:
        """``msg`` answers our pending HELLO ``hc`` or an earlier HELLO of ours (same nonce, same effect):
        a HELLO_REPLY of our session (new session) or a RESUMED (resume; whose session it is, its epoch says)."""
        if msg.cmd_seq != hc.seq and msg.cmd_seq not in self._hello_seqs:
            return False
        if isinstance(msg, P.HelloReply):
            return not msg.boot and msg.session == self.session_nonce
        return isinstance(msg, P.Resumed)

    def _renumbered(self, msg: Any, seq: int) -> bool:
        """A reply numbered before the first event we had not yet seen when its command was first sent:
        within one device session impossible (the device numbered it after receiving the command), so the
        device restarted its numbering (a reset whose banner we missed)."""
        if not isinstance(msg, (P.Ack, P.Nack)) or self.hello is None:
            return False
        pc = self._pending.get(msg.cmd_seq)
        first = getattr(pc, "sent_expected", None)
        if pc is None or pc.type_id != msg.cmd_type or first is None:
            return False
        return (seq - first) & 0xFFFF >= 0x8000

    def _suspect_session(self, why: str) -> None:
        """Only unusable frames for a while: ask the device with a HELLO (a resume if it kept our session)."""
        self._stale_first = None
        if self.auto_rearm:
            self._rearm(why)

    def _on_hello_reply(self, pc: Any, msg: Any, now: float) -> None:
        """Our HELLO was answered (in order): RESUMED (of the session we know) or HELLO_REPLY = a new session
        (which the HELLO configured).  Settle what was held or in flight."""
        rec = self.rearm_log[-1] if self.rearm_log and self.rearm_log[-1].resumed is None else None
        resumed = isinstance(msg, P.Resumed)
        first = self.hello is None
        if not resumed:
            self.hello = msg
        self._rearming = False
        failed: list[Any] = []
        if resumed:
            self.stats["resumes"] += 1
            if self._banner is not None:
                self.stats["stray_banners"] += 1   # the device kept our session: the banner was a stray copy
                self._banner = None
        else:
            self.stats["new_sessions"] += 1
            if not first:
                self._confirm_reset(now)
                # commands sent in the old session may have run there: they fail, never repeated
                with self._window:
                    failed = [p for p in self._pending.values()
                              if p is not pc and p.attempts > 0 and p.order < pc.order]
                    failed += [p for p in self._requeue if getattr(p, "maybe_ran", False)]
                    self._requeue = [p for p in self._requeue if not getattr(p, "maybe_ran", False)]
                    for p in failed:
                        self._pending.pop(p.seq, None)
                    self._window.notify_all()
        if rec is not None:
            rec.resumed, rec.failed, rec.t_reply = resumed, len(failed), now
            if resumed:
                rec.session, rec.lost_total = self.session_nonce, msg.lost_total
            else:
                rec.session, rec.dropped, rec.lost_total = msg.session, msg.dropped, msg.lost_total
                rec.reset_cause = msg.reset_cause
        why = f"{rec.why}: " if rec is not None else ""
        err = CommandOutcomeUnknown(f"{why}the device started a new session (it reset) while the command was in "
                                    "flight; unknown whether it ran; it was not repeated")
        for p in failed:
            p._finish(error=err)
        if not first and not resumed:
            self._budget_offset_ms = max(0, self._session_budget_base() - pc.msg.budget_valve_ms)
        if resumed:
            self._device_used_ms = max(self._device_used_ms, msg.budget_used_ms)
        # (a new session got the configured limits and the remaining budget from the HELLO itself: nothing
        # armed without them, no CONFIGURE frame to lose)
        self._release_held()

    def _release_held(self) -> None:
        """Send the commands held while the HELLO was pending, and the NOT_ARMED ones again (new seqs)."""
        self._expire_old(self.time_fn())
        now = self.time_fn()
        with self._window:
            again, self._requeue = self._requeue, []
            for pc in again:
                pc.seq = self._alloc_seq()
                pc.order = self._allocated
                pc.wire = codec.encode(pc.msg, pc.seq)
                pc.attempts = 0
                pc.maybe_ran = False
                self._pending[pc.seq] = pc
            held = sorted((p for p in self._pending.values() if p.attempts == 0), key=lambda p: p.order)
            for pc in held:
                pc.sent_at = now
                pc.attempts = 1
                pc.sent_expected = self._expected
        for pc in held:
            self._write(pc.wire)
