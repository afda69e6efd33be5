"""Lifecycle and delivery helpers of :class:`dopa_rl.rig.client.DeviceClient` (a mixin).

Stopping and closing, delivering an event to the queue and the listeners, and what happens when the
worker thread itself fails: the client is then dead, the link reads down and every call raises.
"""
from __future__ import annotations

import queue
import threading
from typing import Any

from dopa_rl.errors import DeviceError
from dopa_rl.protocol import messages as P
from dopa_rl.rig.client_types import Event

__all__ = ["ClientLifecycle"]


class ClientLifecycle:
    """Mixin for DeviceClient: stop/safe/close, event delivery, worker failure."""

    _thread: threading.Thread | None
    _dead: DeviceError | None
    _link_up: bool
    stats: dict[str, int]
    events: queue.Queue[Event]
    _listeners: list[Any]
    _last_trip: tuple[Any, int | None] | None
    _expected: int | None
    _config: Any
    hello: Any

    def add_listener(self, fn: Any) -> None:
        """Call ``fn(event)`` for every event, in order, from the worker thread (it must not block)."""
        self._listeners.append(fn)

    def _deliver(self, ev: Event) -> None:
        """Queue an event for the application and call the listeners.

        A bounded queue (``event_queue_size``) that the application does not drain never blocks the
        worker: an event that finds it full is left out of the queue and counted in
        ``stats["events_dropped"]`` (the listeners still get it).
        """
        try:
            self.events.put_nowait(ev)
        except queue.Full:
            self.stats["events_dropped"] += 1
        for fn in self._listeners:
            try:
                fn(ev)
            except Exception:  # a faulty listener must not kill the link
                pass

    def _explain(self, pc: Any) -> None:
        """Attach to a NACKed command the SAFETY_TRIP sent just before its NACK, and the limits in force."""
        trip = self._last_trip
        if trip is not None and trip[1] is not None and self._expected is not None \
                and (self._expected - trip[1]) & 0xFFFF == 1:
            pc.trip = trip[0]
        pc.limits = {k: getattr(self._config, k) for k in ("max_valve_ms", "min_valve_gap_ms", "budget_valve_ms",
                                                           "host_timeout_ms")}

    @property
    def failure(self) -> DeviceError | None:
        """Why the client is down for good (its worker thread failed), or None while it works."""
        return self._dead

    def _die(self, exc: BaseException) -> None:
        """The worker thread failed: the link is down for good and every call (pending or new) raises."""
        self._dead = DeviceError(f"device client worker failed ({type(exc).__name__}: {exc}); the link is "
                                 "down, nothing more is sent: make a new client")
        self._dead.__cause__ = exc   # what failed (a full disk under the raw log is not the device's fault)
        self._link_up = False
        self._fail_all(self._dead)

    def stop(self) -> None:
        """Stop the worker thread (the port stays open); pending commands fail.  Idempotent."""
        self._stop.set()
        t, self._thread = self._thread, None
        if t is not None and t is not threading.current_thread():
            t.join(timeout=2.0)
        self._fail_all(DeviceError("client stopped"))
        if self.rawlog is not None:
            self.rawlog.close()

    def safe(self) -> None:
        """Best effort: every output off (ALL_OFF), then stop and close the port.  Idempotent, never raises."""
        if self._safe_done:
            return
        self._safe_done = True
        try:
            if self._thread is not None and self._dead is None and self.hello is not None:
                self.muted = False
                self._send(P.AllOff(), internal=True).result(0.5, check=False)
        except Exception:
            pass
        try:
            self.stop()
        finally:
            try:
                self.port.close()
            except Exception:
                pass

    close = safe

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.safe()

    def _fail_all(self, err: DeviceError) -> None:
        with self._window:
            pend = list(self._pending.values()) + self._requeue
            self._pending.clear()
            self._requeue.clear()
            self._window.notify_all()
        for pc in pend:
            if not pc.done():
                pc._finish(error=err)

