"""Virtual clock with a timer queue, and a thread that drives it at a multiple of real time.

:class:`VirtualClock` holds the simulated device time in integer microseconds (64-bit, never wraps; the
device puts ``now_us & 0xFFFFFFFF`` on the wire). Timers run in time order; while a timer runs,
``now_us`` equals its deadline exactly, so device-timed outputs land on exact virtual times however late
the host or the driving thread is.  Nothing here is thread-safe by itself: the owner (the simulated
device) holds its lock around every call.

:class:`RealtimeDriver` advances a clock in a background thread so that virtual time follows
``speed`` x real time, sleeping until the next timer (at most ``max_sleep_s``).
"""
from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Timer", "VirtualClock", "RealtimeDriver"]


class Timer:
    """Handle of a scheduled callback; ``cancel()`` it to stop it from running."""

    __slots__ = ("t_us", "fn", "args", "alive")

    def __init__(self, t_us: int, fn: Callable[..., Any], args: tuple) -> None:
        self.t_us = t_us
        self.fn = fn
        self.args = args
        self.alive = True

    def cancel(self) -> None:
        self.alive = False


class VirtualClock:
    """Integer-microsecond virtual time plus a queue of timers run in (time, scheduling order)."""

    def __init__(self, start_us: int = 0) -> None:
        self.now_us = int(start_us)
        self._heap: list[tuple[int, int, Timer]] = []
        self._counter = itertools.count()

    def schedule(self, t_us: int, fn: Callable[..., Any], *args: Any) -> Timer:
        """Run ``fn(*args)`` at virtual time ``t_us`` (at once on the next run if already past)."""
        timer = Timer(max(int(t_us), self.now_us), fn, args)
        heapq.heappush(self._heap, (timer.t_us, next(self._counter), timer))
        return timer

    def after(self, delay_us: int, fn: Callable[..., Any], *args: Any) -> Timer:
        return self.schedule(self.now_us + int(delay_us), fn, *args)

    def next_deadline(self) -> int | None:
        """Time of the earliest live timer, or None."""
        heap = self._heap
        while heap and not heap[0][2].alive:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def run_until(self, t_us: int) -> int:
        """Run every timer due up to and including ``t_us`` in order, then set ``now_us = t_us``.

        Returns the number of timers run.  Time never goes backwards.
        """
        t_us = int(t_us)
        n = 0
        heap = self._heap
        while heap and heap[0][0] <= t_us:
            _t, _c, timer = heapq.heappop(heap)
            if not timer.alive:
                continue
            timer.alive = False
            self.now_us = max(self.now_us, timer.t_us)
            timer.fn(*timer.args)
            n += 1
        self.now_us = max(self.now_us, t_us)
        return n

    def clear(self) -> None:
        """Drop every timer (used by a simulated reset)."""
        for _t, _c, timer in self._heap:
            timer.alive = False
        self._heap.clear()


class RealtimeDriver:
    """Background thread calling ``advance_to(virtual_us)`` so virtual time runs at ``speed`` x real time.

    ``advance_to`` and ``next_deadline`` are provided by the owner and must take its lock themselves.
    ``virtual_now()`` gives the virtual time that corresponds to this instant (for use by the owner when a
    host write arrives between two wake-ups).  ``start``/``stop`` are idempotent.

    Virtual time does not run while the process does not: the thread reads the clock at least every
    ``max_sleep_s``, so when more than ``max_stall_s`` of real time passed between two reads (by this
    thread or the owner) nothing in the process ran, and the excess is not simulated (counted in
    ``stalled_s``).  A real device runs on while its host is descheduled, but the simulated one shares the
    host's process: at ``speed`` 50 a 200 ms scheduling pause of a loaded machine would be 10 s of device
    time in which the host could not have sent a byte (a host timeout no real host would ever cause).
    """

    def __init__(self, advance_to: Callable[[int], None], next_deadline: Callable[[], int | None],
                 start_virtual_us: Callable[[], int], speed: float = 1.0, max_sleep_s: float = 0.005,
                 max_stall_s: float = 0.05, time_fn: Callable[[], float] = time.perf_counter) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0 (got {speed})")
        if not max_stall_s > max_sleep_s:
            raise ValueError(f"max_stall_s must exceed max_sleep_s ({max_sleep_s}), got {max_stall_s}")
        self.speed = float(speed)
        self.max_sleep_s = max_sleep_s
        self.max_stall_s = float(max_stall_s)
        self.stalled_s = 0.0
        self._time = time_fn
        self._last_real = 0.0
        self._tlock = threading.Lock()
        self._advance_to = advance_to
        self._next_deadline = next_deadline
        self._start_virtual_us = start_virtual_us
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._t0_real = 0.0
        self._t0_virtual = 0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def virtual_now(self) -> int:
        with self._tlock:
            real = self._time()
            gap = real - self._last_real
            if gap > self.max_stall_s:       # the process did not run: that time is not simulated
                self._t0_real += gap - self.max_stall_s
                self.stalled_s += gap - self.max_stall_s
            self._last_real = real
            return self._t0_virtual + int((real - self._t0_real) * self.speed * 1e6)

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self._t0_virtual = self._start_virtual_us()
        self._t0_real = self._last_real = self._time()
        self._thread = threading.Thread(target=self._run, name="dopa-sim-clock", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Ask the thread to re-check its next deadline now (after a new timer was scheduled)."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            now_v = self.virtual_now()
            self._advance_to(now_v)
            nd = self._next_deadline()
            sleep = self.max_sleep_s if nd is None else min(self.max_sleep_s, max(0.0, (nd - now_v) / 1e6 / self.speed))
            self._wake.wait(sleep)
            self._wake.clear()
