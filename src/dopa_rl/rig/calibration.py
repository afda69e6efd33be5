"""Valve calibration, pure: choose the open times to measure from target volumes, fit ms per uL.

Range-finding: a first measurement (a probe at a guessed open time) gives a rough ``ms_per_ul``; the open
times that should deliver each target volume are then measured too, so the calibration is made where the
sessions will use the valve.  The fit is the rig file's model (open time = ``ms_per_ul`` x volume, through
the origin), least squares over every point; each point's error against it shows how far the valve is from
that model (a dead time gives too little water at short openings).
"""
from __future__ import annotations

from dataclasses import dataclass

from dopa_rl.errors import InputError

__all__ = ["Point", "open_times", "fit_ms_per_ul", "point_errors"]


@dataclass(frozen=True)
class Point:
    """One calibration measurement: ``pulses`` valve openings of ``ms`` each collected ``measured_ul`` uL."""

    ms: int              # open time per pulse
    pulses: int
    measured_ul: float   # total collected

    @property
    def ul_per_pulse(self) -> float:
        return self.measured_ul / self.pulses


def open_times(target_ul: list[float], ms_per_ul: float, max_valve_ms: int) -> list[int]:
    """The open time (ms, whole) expected to deliver each target volume; an InputError names a target that
    would need more than ``max_valve_ms`` or less than 1 ms."""
    out, problems = [], []
    for ul in target_ul:
        ms = int(round(ul * ms_per_ul))
        if ms > max_valve_ms:
            problems.append(f"{ul:g} uL needs about {ms} ms, over the valve limit {max_valve_ms} ms")
        elif ms < 1:
            problems.append(f"{ul:g} uL needs under 1 ms of valve time at {ms_per_ul:.3g} ms/uL")
        out.append(min(max(ms, 1), max_valve_ms))
    if problems:
        raise InputError("`target_ul`: " + "; ".join(problems))
    return out


def fit_ms_per_ul(points: list[Point]) -> float:
    """Least-squares ``ms_per_ul`` of ``ms = ms_per_ul * ul_per_pulse`` over ``points``."""
    num = sum(p.ms * p.ul_per_pulse for p in points)
    den = sum(p.ul_per_pulse ** 2 for p in points)
    if not den > 0:
        raise InputError("the measured volumes must be > 0 uL")
    return num / den


def point_errors(points: list[Point], ms_per_ul: float) -> list[float]:
    """Relative error of each point's volume per pulse against the fitted model (measured / predicted - 1)."""
    return [p.ul_per_pulse / (p.ms / ms_per_ul) - 1.0 for p in points]
