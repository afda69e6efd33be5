"""The named commands of :class:`dopa_rl.rig.client.DeviceClient` (a mixin: each returns the ACK).

``value`` in the ACK is what the device applied (a clamped pulse length, the tone frequency produced...).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dopa_rl.rig import _protocol as P


class DeviceCommands:
    """Mixin over ``command(msg)`` / ``send(msg)``; needs ``hello``, ``_config`` and ``command_timeout_s``."""

    hello: P.HelloReply | None
    _config: P.Configure | None
    command_timeout_s: float

    def command(self, msg: Any, timeout: float | None = None, check: bool = True) -> Any:  # pragma: no cover
        raise NotImplementedError

    def send(self, msg: Any, timeout: float | None = None) -> Any:  # pragma: no cover
        raise NotImplementedError

    def ping(self, nonce: int = 0) -> P.Ack:
        return self.command(P.Ping(nonce))

    def configure(self, *, max_valve_ms: int | None = None, min_valve_gap_ms: int | None = None,
                  budget_valve_ms: int | None = None, host_timeout_ms: int | None = None,
                  debounce_us: int | None = None, flags: int | None = None) -> P.Ack:
        """Set the safety limits, lick debounce and input flags; omitted values keep the device's current ones.

        "Current" is the last :meth:`configure` of this client, else what the device reported in its
        HELLO_REPLY (``flags`` included: omitting it never flips the lick polarity).
        """
        h = self.hello
        cur = {k: (getattr(h, k) if h is not None else (P.LIMITS[k].default if k != "flags" else 0))
               for k in ("max_valve_ms", "min_valve_gap_ms", "budget_valve_ms", "host_timeout_ms", "debounce_us",
                         "flags")}
        if self._config is not None:
            cur.update(self._config._asdict())
        given = dict(max_valve_ms=max_valve_ms, min_valve_gap_ms=min_valve_gap_ms, budget_valve_ms=budget_valve_ms,
                     host_timeout_ms=host_timeout_ms, debounce_us=debounce_us, flags=flags)
        cur.update({k: v for k, v in given.items() if v is not None})
        msg = P.Configure(cur["max_valve_ms"], cur["min_valve_gap_ms"], cur["budget_valve_ms"],
                          cur["host_timeout_ms"], cur["debounce_us"], cur["flags"])
        ack = self.command(msg)
        self._config = msg
        return ack

    def valve_pulse(self, ms: int) -> P.Ack:
        return self.command(P.ValvePulse(ms))

    def valve_open(self) -> P.Ack:
        return self.command(P.ValveOpen())

    def valve_close(self) -> P.Ack:
        return self.command(P.ValveClose())

    def cue_on(self) -> P.Ack:
        return self.command(P.CueOn())

    def cue_off(self) -> P.Ack:
        return self.command(P.CueOff())

    def tone_on(self, freq_hz: int) -> P.Ack:
        return self.command(P.ToneOn(freq_hz))

    def tone_off(self) -> P.Ack:
        return self.command(P.ToneOff())

    def ttl_pulse(self, ms: int) -> P.Ack:
        return self.command(P.TtlPulse(ms))

    def analog_start(self, rate_hz: int) -> P.Ack:
        return self.command(P.AnalogStart(rate_hz))

    def analog_stop(self) -> P.Ack:
        return self.command(P.AnalogStop())

    def all_off(self) -> P.Ack:
        return self.command(P.AllOff())

    def upload_program(self, trial_id: int, duration_ms: int, actions: Iterable[tuple[int, int, int]],
                       lick_window: tuple[int, int, int, int] | None = None) -> P.Ack:
        """Upload and commit the next trial's program; returns the PROGRAM_COMMIT ACK.

        ``actions`` are ``(offset_us, action, arg)`` with ``action`` an :class:`Action`; ``lick_window`` is
        ``(start_us, end_us, action, arg)``.  Start it with :meth:`trial_start`.
        """
        acts = list(actions)
        # BEGIN first and COMMIT last, each confirmed; the indexed parts in between may be pipelined
        # (under loss, pipelined commands can execute out of order, which does not matter for them)
        self.command(P.ProgramBegin(trial_id, duration_ms, len(acts)))
        pend = [self.send(P.ProgramAction(i, off, int(a), arg)) for i, (off, a, arg) in enumerate(acts)]
        if lick_window is not None:
            s, e, a, arg = lick_window
            pend.append(self.send(P.ProgramLickWindow(s, e, int(a), arg)))
        for p in pend:
            p.result(self.command_timeout_s + 1.0)
        return self.command(P.ProgramCommit())

    def trial_start(self, when: int = P.TrialWhen.NOW) -> P.Ack:
        return self.command(P.TrialStart(int(when)))
