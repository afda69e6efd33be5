"""The named commands of :class:`dopa_rl.rig.client.DeviceClient` (a mixin: each returns the ACK).

``value`` in the ACK is what the device applied (a clamped pulse length, the tone frequency produced...).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dopa_rl.errors import InputError
from dopa_rl.protocol import messages as P

__all__ = ["check_wire", "limits_message", "DeviceCommands"]

_WIRE = {"u8": (0, 0xFF), "u16": (0, 0xFFFF), "u32": (0, 0xFFFFFFFF), "i32": (-(1 << 31), (1 << 31) - 1)}


def _arg(what: str, value: Any, lo: int, hi: int, note: str = "") -> int:
    """``value`` as an int in ``lo..hi``, else an InputError naming the command, the argument and the range."""
    ok = isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi
    if not ok:
        kind = "an integer" if not isinstance(value, int) or isinstance(value, bool) else "out of range"
        raise InputError(f"{what} must be an integer in {lo}..{hi} (got {value!r}, {kind}){note}")
    return int(value)


def _limit(what: str, name: str, value: Any, note: str = "") -> int:
    lim = P.LIMITS[name]
    return _arg(what, value, lim.min, lim.max, note)


def check_wire(msg: Any) -> None:
    """InputError unless every field of ``msg`` is an integer that fits its wire type (any command)."""
    spec = P.SPEC_BY_CLASS[type(msg)]
    for (fname, ftype, count), v in zip(spec.fields, msg):
        lo, hi = _WIRE[ftype]
        for x in (v if count > 1 else (v,)):
            _arg(f"{spec.name}.{fname}", x, lo, hi)


def limits_message(current: P.Configure, what: str, given: dict[str, Any]) -> P.Configure:
    """``current`` with the values of ``given`` that are not None, each checked against its bounds
    (InputError naming ``what`` and the key; an unknown key is refused too)."""
    cur = dict(current._asdict())
    for k, v in given.items():
        if k not in cur:
            raise InputError(f"{what}: unknown limit {k!r}; use one of {', '.join(cur)}")
        if v is None:
            continue
        if k == "flags":
            bits = sum(int(f) for f in P.ConfigFlag)
            if _arg(f"{what}: flags", v, 0, bits) & ~bits:
                raise InputError(f"{what}: flags must combine ConfigFlag bits {bits:#x} (got {v:#x})")
        else:
            _limit(f"{what}: {k}", k, v)
        cur[k] = int(v)
    return P.Configure(**cur)


class DeviceCommands:
    """Mixin over ``command(msg)`` / ``send(msg)``; needs ``hello``, ``_config`` and ``command_timeout_s``."""

    hello: P.HelloReply | None
    _config: P.Configure
    command_timeout_s: float

    def command(self, msg: Any, timeout: float | None = None, check: bool = True) -> Any:  # pragma: no cover
        raise NotImplementedError

    def send(self, msg: Any, timeout: float | None = None) -> Any:  # pragma: no cover
        raise NotImplementedError

    def ping(self, nonce: int = 0) -> P.Ack:
        return self.command(P.Ping(_arg("ping: nonce", nonce, -(1 << 31), (1 << 31) - 1)))

    def configure(self, *, max_valve_ms: int | None = None, min_valve_gap_ms: int | None = None,
                  budget_valve_ms: int | None = None, host_timeout_ms: int | None = None,
                  debounce_us: int | None = None, flags: int | None = None) -> P.Ack:
        """Set the safety limits, lick debounce and input flags; omitted values keep the current ones.

        "Current" is the last :meth:`configure` of this client, else the defaults (protocol/messages.toml)
        its first HELLO set (``flags`` included: omitting it never flips the lick polarity).  Every later
        HELLO carries them, so a device that reset arms with them again.
        """
        msg = limits_message(self._config, "configure", dict(
            max_valve_ms=max_valve_ms, min_valve_gap_ms=min_valve_gap_ms, budget_valve_ms=budget_valve_ms,
            host_timeout_ms=host_timeout_ms, debounce_us=debounce_us, flags=flags))
        ack = self.command(msg)
        self._config = msg
        return ack

    def valve_pulse(self, ms: int) -> P.Ack:
        note = f"; pulses above max_valve_ms ({self._max_valve_ms()} ms) are clamped by the device"
        return self.command(P.ValvePulse(_limit("valve_pulse: ms", "valve_pulse_ms", ms, note)))

    def valve_open(self) -> P.Ack:
        return self.command(P.ValveOpen())

    def valve_close(self) -> P.Ack:
        return self.command(P.ValveClose())

    def cue_on(self) -> P.Ack:
        return self.command(P.CueOn())

    def cue_off(self) -> P.Ack:
        return self.command(P.CueOff())

    def tone_on(self, freq_hz: int) -> P.Ack:
        return self.command(P.ToneOn(_limit("tone_on: freq_hz", "tone_hz", freq_hz)))

    def tone_off(self) -> P.Ack:
        return self.command(P.ToneOff())

    def ttl_pulse(self, ms: int) -> P.Ack:
        return self.command(P.TtlPulse(_limit("ttl_pulse: ms", "ttl_ms", ms)))

    def analog_start(self, rate_hz: int) -> P.Ack:
        return self.command(P.AnalogStart(_limit("analog_start: rate_hz", "analog_rate_hz", rate_hz)))

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
        _arg("upload_program: trial_id", trial_id, 0, 0xFFFFFFFF)
        _arg("upload_program: duration_ms", duration_ms, 1, 0x7FFFFFFF // 1000)
        acts = [self._check_action(f"upload_program: actions[{i}]", a, duration_ms) for i, a in enumerate(actions)]
        _arg("upload_program: number of actions", len(acts), 0, P.MAX_ACTIONS)
        if lick_window is not None:
            try:
                ws, *rest = lick_window
            except (TypeError, ValueError):
                raise InputError(f"upload_program: lick_window must be (start_us, end_us, action, arg), "
                                 f"got {lick_window!r}") from None
            we, wa, warg = self._check_action("upload_program: lick_window", tuple(rest), duration_ms, True)
            lick_window = (_arg("upload_program: lick_window start_us", ws, 0, we - 1), we, wa, warg)
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

    def _max_valve_ms(self) -> int:
        return self._config.max_valve_ms

    @staticmethod
    def _check_action(what: str, item: Any, duration_ms: int, window_end: bool = False) -> tuple:
        """Check one ``(offset_us, action, arg)`` (or a lick window's ``(end_us, action, arg)``)."""
        try:
            off, action, arg = item
        except (TypeError, ValueError):
            raise InputError(f"{what} must be ({'end_us' if window_end else 'offset_us'}, action, arg), "
                             f"got {item!r}") from None
        dur_us = duration_ms * 1000
        if not window_end:
            off = _arg(f"{what} offset_us", off, 0, min(dur_us - 1, 0xFFFFFFFF), " (before the trial's end)")
        else:
            off = _arg(f"{what} end_us", off, 1, min(dur_us, 0xFFFFFFFF), " (after start_us, at most the duration)")
        names = {int(a): a.name for a in P.Action if a != P.Action.NONE}
        if not isinstance(action, int) or isinstance(action, bool) or action not in names:
            raise InputError(f"{what} action must be an Action ({', '.join(names.values())}), got {action!r}")
        limit = {P.Action.TONE_ON: "tone_hz", P.Action.VALVE_PULSE: "valve_pulse_ms", P.Action.TTL_PULSE: "ttl_ms"}
        if int(action) in limit:
            arg = _limit(f"{what} arg ({names[int(action)]})", limit[P.Action(action)], arg)
        else:
            arg = _arg(f"{what} arg", arg, 0, 0xFFFF)
        return off, P.Action(action), arg

    def trial_start(self, when: int = P.TrialWhen.NOW) -> P.Ack:
        return self.command(P.TrialStart(_arg("trial_start: when (TrialWhen)", when, 0, max(P.TrialWhen))))
