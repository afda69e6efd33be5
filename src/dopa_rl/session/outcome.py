"""A trial's outcome from the device's events: the one definition, used by the live session, the NWB export
and ``recover`` (pure functions of device times in microseconds; no I/O, no clock).

A trial's task part starts at ``t0`` (its TRIAL_STARTED).  Its outcome is at ``t0 + outcome_us`` (cue plus
trace).  The trial can be learned from once the device has reported an event stamped after its *learn
point*, ``t0 + outcome_us + settle_us`` (``settle_us`` = the lick debounce plus 1 ms: a lick or valve
opening up to the outcome has been reported by then, since events come in device order).

* **Anticipatory licks**: lick onsets in ``[t0, t0 + outcome_us)``.
* **Delivered reward**: the planned ``reward_ul`` if the valve opened in ``[t0 + cue_us, window end]``,
  where the window ends at the learn point or at the trial's end if that came first; else 0.
* **valve_ms**: the open time the device measured (the first VALVE_CLOSED after that opening), when known.
* **Complete or cut**: a trial that ended normally, or was aborted by the device after its learn point, is
  complete; a trial aborted before that (ALL_OFF on Ctrl-C, a host timeout) or never ended (a reset,
  the end of the journal) is *cut*: its outcome never happened, so it is not learned from and is left out
  of the trials table (it is kept in the journal and written as an interval of its own).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["SETTLE_EXTRA_US", "TrialWindow", "TrialOutcome", "trial_outcome"]

SETTLE_EXTRA_US = 1000     # beyond the lick debounce: an event this late has been reported


@dataclass(frozen=True)
class TrialWindow:
    """Where a trial's outcome is read: device times (us) of its start, cue end, outcome and learn point."""

    t0: int
    cue_end: int
    outcome: int
    learn_point: int

    @classmethod
    def of(cls, t0_us: int, cue_s: float, trace_s: float, debounce_us: int) -> TrialWindow:
        """The window of a trial started at ``t0_us`` with these cue and trace durations (s)."""
        cue_us = int(round(cue_s * 1e6))
        out_us = int(round((cue_s + trace_s) * 1e6))
        return cls(t0_us, t0_us + cue_us, t0_us + out_us, t0_us + out_us + int(debounce_us) + SETTLE_EXTRA_US)

    def complete(self, t_end_us: int | None, aborted: bool) -> bool:
        """True if the trial's outcome happened and was reported: it ended, normally or by an abort after its
        learn point."""
        return t_end_us is not None and (not aborted or t_end_us > self.learn_point)


@dataclass(frozen=True)
class TrialOutcome:
    """One trial's outcome as read from the device's events."""

    licks: int                 # anticipatory lick onsets, cue onset to outcome
    reward_ul: float           # delivered (the planned size when the valve opened), 0 when omitted
    valve_ms: float | None     # open time the device measured; None when its close was not (yet) reported


def trial_outcome(window: TrialWindow, planned_reward_ul: float, licks_us: Iterable[int],
                  valve_opened_us: Iterable[int], valve_closed: Iterable[tuple[int, int]] = (),
                  t_end_us: int | None = None) -> TrialOutcome:
    """The outcome of one trial from device event times (us): ``licks_us`` (LICK_ON), ``valve_opened_us``
    (VALVE_OPENED), ``valve_closed`` as ``(t_us, open_us)`` (VALVE_CLOSED), ``t_end_us`` its TRIAL_ENDED
    (None while it runs)."""
    w = window
    end = w.learn_point if t_end_us is None else min(w.learn_point, t_end_us)
    licks = sum(1 for t in licks_us if w.t0 <= t < w.outcome)
    opened = next((t for t in valve_opened_us if w.cue_end <= t <= end), None)
    delivered = float(planned_reward_ul) if opened is not None else 0.0
    valve_ms = None
    if opened is not None:
        valve_ms = next((open_us / 1000 for t, open_us in valve_closed if t >= opened), None)
    return TrialOutcome(licks, delivered, valve_ms)
