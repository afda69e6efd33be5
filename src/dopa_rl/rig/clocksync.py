"""Device clock to host clock: 32-bit timestamp unwrapping and a continuously refitted linear map.

The device stamps every event with ``t_us``, a 32-bit microsecond counter that wraps every ~71.6 min.
:func:`unwrap_u32` / :class:`Unwrapper` turn it into a 64-bit count (:class:`Unwrapper` with the host's
help, so that silences longer than half a wrap do not unwrap 71.6 min wrong).  Each received frame also gives a
pair ``(device_us, host_s)`` where ``host_s`` is the host's clock when the frame was read.  The host time is
always *later* than the true mapped device time by a non-negative transport delay, so the best line is the
**lower envelope** of the points: :func:`fit_lower_envelope` finds the line below every point that
minimises the total vertical distance to them (a small linear programme whose optimum is the edge of the
lower convex hull that spans the mean device time).  :class:`ClockMap` keeps, over a sliding window, the
minimum-delay point of each short bucket of device time and refits as points arrive, so both the offset and
the drift (crystal error, typically tens of ppm) are tracked continuously.

Two things a line fitted to arrival times cannot absorb, and :class:`ClockMap` handles instead:

* **A host clock that stopped** (the host suspended while the device ran on: ``time.monotonic`` does not count
  a suspend).  Frames then arrive *earlier* on the host clock than the line allows, which no transport delay
  can explain (delays are never negative): a point more than ``jump_s`` below the line re-anchors the map on
  the new points (counted in :attr:`ClockMap.reanchors`).  The 32-bit unwrap across such a silence needs a
  clock that counts the suspend: pass :class:`Unwrapper` the host's boot-time clock (``CLOCK_BOOTTIME``).
* **A frame read late** (the host stalled between the frame's arrival and its read): more than ``late_s``
  above a settled line it is not kept, so it cannot move the map.  Late points that persist (every point for
  ``persist_s`` of device time, e.g. a device clock that paused) are a new regime and re-anchor the map too.

Everything here is pure or a small stateful class with no I/O, and is tested on synthetic data.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["WRAP", "HALF_WRAP", "unwrap_u32", "Unwrapper", "ClockFit", "fit_lower_envelope", "ClockMap"]

WRAP = 1 << 32
HALF_WRAP = 1 << 31


def unwrap_u32(previous: int | None, raw: int) -> int:
    """Unwrap a 32-bit counter value ``raw`` given the previous unwrapped value.

    The result is the 64-bit value congruent to ``raw`` modulo 2**32 closest to ``previous`` (so small
    steps backwards, e.g. an event stamped just before the previous one, stay backwards).  With no
    previous value the raw value is returned as is.
    """
    raw &= WRAP - 1
    if previous is None:
        return raw
    delta = (raw - previous) % WRAP
    if delta >= HALF_WRAP:
        delta -= WRAP
    return previous + delta


class Unwrapper:
    """Stateful :func:`unwrap_u32`: feed raw 32-bit stamps in arrival order, get 64-bit stamps.

    Pass the host time each stamp arrived (``host_s``, seconds) and silences of any length unwrap right:
    the stamp is taken as the value congruent to ``raw`` closest to where the device clock should be by
    now (the last stamp plus the host time elapsed since it arrived).  Without host times, as
    :func:`unwrap_u32`: closest to the last stamp, which is wrong after more than 2**31 us (~35.8 min)
    without any frame.  Host and device clocks differ by a crystal error (ppm) and a transport delay
    (ms), far below the half wrap.
    """

    def __init__(self) -> None:
        self.last: int | None = None
        self.last_host: float | None = None

    def __call__(self, raw: int, host_s: float | None = None) -> int:
        ref = self.last
        if ref is not None and host_s is not None and self.last_host is not None:
            ref += int(round((host_s - self.last_host) * 1e6))
        value = unwrap_u32(ref, raw)
        # Only move the reference forward: a late (older) stamp must not drag it back across a wrap.
        if self.last is None or value > self.last:
            self.last = value
            self.last_host = host_s
        return value

    def reset(self) -> None:
        """Forget the reference (a device reset restarts its clock)."""
        self.last = None
        self.last_host = None


@dataclass(frozen=True)
class ClockFit:
    """``host_s = host0 + (device_us - device0) * 1e-6 * (1 + drift)``.

    ``drift`` is dimensionless (host seconds per device second minus one; 1e-5 = 10 ppm).  ``n`` is the
    number of points the fit used and ``span_s`` the device-time span they cover.
    """

    device0: int
    host0: float
    drift: float
    n: int
    span_s: float

    def to_host(self, device_us: float) -> float:
        """Host time (seconds, host clock) of a device time in microseconds."""
        return self.host0 + (device_us - self.device0) * 1e-6 * (1.0 + self.drift)

    def to_device(self, host_s: float) -> float:
        """Device time (microseconds) of a host time in seconds."""
        return self.device0 + (host_s - self.host0) / (1.0 + self.drift) * 1e6


def _lower_hull(xs: list[float], ys: list[float]) -> list[int]:
    """Indices of the lower convex hull of points sorted by x (Andrew's monotone chain)."""
    hull: list[int] = []
    for i in range(len(xs)):
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            cross = (xs[b] - xs[a]) * (ys[i] - ys[a]) - (ys[b] - ys[a]) * (xs[i] - xs[a])
            if cross <= 0:
                hull.pop()
            else:
                break
        hull.append(i)
    return hull


def fit_lower_envelope(device_us: list[int] | list[float], host_s: list[float],
                       max_drift: float = 1e-3) -> ClockFit:
    """Fit the lower-envelope line through ``(device_us, host_s)`` points.

    Minimises ``sum(host_i - line(device_i))`` subject to ``host_i >= line(device_i)`` for every point:
    the optimum is the lower-convex-hull edge whose device-time interval contains the mean device time.
    Points need not be sorted; duplicate device times keep their smallest host time.  The drift is
    clipped to ``+-max_drift`` (a real crystal is far inside 1e-3) so a short or degenerate window cannot
    produce an absurd slope.  Raises ``ValueError`` on no points.
    """
    if len(device_us) != len(host_s):
        raise ValueError("device_us and host_s must have the same length")
    if not device_us:
        raise ValueError("cannot fit a clock map to no points")
    best: dict[float, float] = {}
    for d, h in zip(device_us, host_s):
        if d not in best or h < best[d]:
            best[d] = h
    order = sorted(best)
    d0 = order[0]
    # Work in (device seconds since d0, host - device seconds) so the numbers stay small and the slope
    # we fit is the drift itself.
    xs = [(d - d0) * 1e-6 for d in order]
    ys = [best[d] - x for d, x in zip(order, xs)]
    if len(xs) == 1:
        return ClockFit(int(d0), ys[0] + 0.0, 0.0, 1, 0.0)
    hull = _lower_hull(xs, ys)
    xmean = math.fsum(xs) / len(xs)
    slope = 0.0
    intercept = ys[hull[0]]
    for a, b in zip(hull, hull[1:]):
        if xs[a] <= xmean <= xs[b]:
            slope = (ys[b] - ys[a]) / (xs[b] - xs[a])
            intercept = ys[a] - slope * xs[a]
            break
    if abs(slope) > max_drift:
        slope = math.copysign(max_drift, slope)
        # Keep the clipped line below every point.
        intercept = min(y - slope * x for x, y in zip(xs, ys))
    # Map back: host = d0_host + x * (1 + slope), with x in device seconds since d0.
    return ClockFit(int(d0), intercept, slope, len(xs), xs[-1])


class ClockMap:
    """Continuously fitted device-to-host clock map over a sliding window.

    ``add(device_us, host_s)`` records an observation (a frame stamped ``device_us`` read at ``host_s``).
    Only the minimum-delay observation of each ``bucket_s`` of device time is kept, for the last
    ``window_s`` seconds, and the line is refitted at most every ``refit_every`` new buckets, so the cost
    stays small at thousands of events per second.  ``to_host`` uses the latest fit (before any fit exists it
    returns ``None``).

    Once the fit is settled (``settle_n`` buckets over ``settle_s`` of device time), a point more than
    ``late_s`` above the line is not kept (a frame read late), unless late points are all that arrive for
    ``persist_s`` of device time; a point more than ``jump_s`` below it (the host clock stopped or stepped
    back) re-anchors the map: the old points are dropped and the map starts again from this one.  Both
    margins grow by ``drift_slack`` (100 ppm) times the device time since the newest kept point, what a
    line's drift error can be worth after a long silence.  Both re-anchorings are counted in
    :attr:`reanchors`, the points not kept in :attr:`late_points`.
    """

    def __init__(self, window_s: float = 120.0, bucket_s: float = 0.1, refit_every: int = 5, *,
                 late_s: float = 0.02, jump_s: float = 0.25, persist_s: float = 2.0, settle_n: int = 8,
                 settle_s: float = 1.0, drift_slack: float = 1e-4) -> None:
        self.window_us = int(window_s * 1e6)
        self.bucket_us = max(1, int(bucket_s * 1e6))
        self.refit_every = max(1, refit_every)
        self.late_s = late_s
        self.jump_s = jump_s
        self.persist_us = int(persist_s * 1e6)
        self.settle_n = settle_n
        self.settle_s = settle_s
        self.drift_slack = drift_slack
        self._buckets: OrderedDict[int, tuple[int, float]] = OrderedDict()
        self._since_fit = 0
        self._late: list[tuple[int, float]] = []
        self.fit: ClockFit | None = None
        #: times the map was started again on a clock discontinuity (host clock stopped, device clock paused)
        self.reanchors = 0
        #: points not kept because they were read more than ``late_s`` late
        self.late_points = 0

    def _settled(self) -> bool:
        f = self.fit
        return f is not None and f.n >= self.settle_n and f.span_s >= self.settle_s

    def add(self, device_us: int, host_s: float) -> str:
        """Record that a frame stamped ``device_us`` (64-bit, unwrapped) was read at ``host_s``.

        Returns what became of the point: ``"kept"``, ``"late"`` (not kept: read late against a settled
        line) or ``"reanchored"`` (the map started again from it, or from the late points it completes).
        """
        if self._settled():
            residual = host_s - self.fit.to_host(device_us)
            newest = next(reversed(self._buckets.values()))[0]
            slack = self.drift_slack * max(0, device_us - newest) * 1e-6
            if residual < -(self.jump_s + slack):
                self._reanchor([(device_us, host_s)])
                return "reanchored"
            if residual > self.late_s + slack:
                self._late.append((device_us, host_s))
                if device_us - self._late[0][0] >= self.persist_us:
                    self._reanchor(self._late)
                    return "reanchored"
                self.late_points += 1
                return "late"
            self._late.clear()
        self._keep(device_us, host_s)
        return "kept"

    def _reanchor(self, points: list[tuple[int, float]]) -> None:
        points = list(points)
        self.reset()
        self.reanchors += 1
        for d, h in points:
            self._keep(d, h)

    def _keep(self, device_us: int, host_s: float) -> None:
        key = device_us // self.bucket_us
        cur = self._buckets.get(key)
        # Compare delays (host - device) so the bucket keeps its minimum-delay point.
        if cur is None:
            self._buckets[key] = (device_us, host_s)
            self._since_fit += 1
            if len(self._buckets) > 1 and next(reversed(self._buckets)) != key:
                self._buckets = OrderedDict(sorted(self._buckets.items()))
            self._trim(device_us)
        elif host_s - device_us * 1e-6 < cur[1] - cur[0] * 1e-6:
            self._buckets[key] = (device_us, host_s)
        if self.fit is None or self._since_fit >= self.refit_every or len(self._buckets) <= 3:
            self.refit()

    def _trim(self, newest_us: int) -> None:
        limit = newest_us - self.window_us
        while self._buckets:
            first = next(iter(self._buckets))
            if self._buckets[first][0] < limit:
                self._buckets.popitem(last=False)
            else:
                break

    def refit(self) -> ClockFit | None:
        """Refit the line now from the kept points; returns the fit (``None`` with no points)."""
        self._since_fit = 0
        if not self._buckets:
            self.fit = None
            return None
        pts = list(self._buckets.values())
        self.fit = fit_lower_envelope([p[0] for p in pts], [p[1] for p in pts])
        return self.fit

    def to_host(self, device_us: float) -> float | None:
        """Host time (seconds) of a device time (unwrapped microseconds), or ``None`` before any point."""
        return None if self.fit is None else self.fit.to_host(device_us)

    def reset(self) -> None:
        """Drop every point (the device clock restarted); the counters are kept."""
        self._buckets.clear()
        self._late.clear()
        self._since_fit = 0
        self.fit = None
