"""The session runner: the thin thread around :class:`dopa_rl.session.machine.SessionMachine`, and the only
part of a live session that does I/O.

It opens the client (HELLO, CONFIGURE), then moves each device event from the client's queue into the
machine with the host time and carries out what the machine returns: journal records, uploads (with the
decision latency measured from the event they answer), single commands, the display.  The journal gets every
device event from the client's listener as it is delivered and every command before it is sent.

An upload whose outcome is unknown (``CommandOutcomeUnknown``: the device reset during it), or refused
because the device disarmed and was re-armed while it was in flight (a host timeout cleared the program
being uploaded), is handed back to the machine, which journals it and restarts the trial; any other device
error stops the session cleanly.  Ctrl-C (SIGINT) only sets a flag while a session runs (:func:`interrupt_guard`):
the loop stops at its next event, the outputs are turned off (``safe()``), the trial it cut is journaled, the
journal is closed and the NWB written; a second Ctrl-C while the NWB is being written stops that, and the
command says how to ``recover`` the complete journal.

``pause`` (a ``threading.Event`` the command sets on SIGUSR1 and clears on SIGUSR2) is read by the loop and
handed to the machine (:meth:`~dopa_rl.session.machine.SessionMachine.set_paused`).  The config record
carries the session's provenance (SHA-256 of the config and rig texts, the package version); the limits sent
with CONFIGURE are a ``param`` record; after each trial the client's link counters are a ``link`` record
(the dashboard reads them).
"""
from __future__ import annotations

import contextlib
import dataclasses
import gc
import math
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dopa_rl.errors import DeviceError
from dopa_rl.protocol import messages as P
from dopa_rl.rig.client import CommandOutcomeUnknown, CommandRefused, DeviceClient
from dopa_rl.session.config import Rig, SessionConfig
from dopa_rl.session.journal import JournalWriter
from dopa_rl.session.machine import SILENCE_S, Command, Done, Rearmed, Record, SessionMachine, Show, Upload

__all__ = ["SWITCH_INTERVAL_S", "SILENCE_S", "SETUP_TRIES", "POLL_S", "RunResult", "Interrupt", "interrupt_guard",
           "Runner", "provenance", "MAX_SPEED", "parse_speed", "sim_ring", "sim_retransmit_ms", "device_url", "open_device",
           "device_tally", "run_session", "export_run"]

SWITCH_INTERVAL_S = 0.0005
SETUP_TRIES = 3    # CONFIGURE / ANALOG_START attempts while their outcome is unknown
POLL_S = 0.1       # longest wait for an event before the loop looks at the clock and the Ctrl-C flag


@dataclass
class RunResult:
    """What a session run gave: its files, why it ended, the trials learned, latencies and link counts."""

    out: Path
    journal: Path
    rawlog: Path
    reason: str
    n_trials: int
    history: list[dict] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)   # TRIAL_ENDED received -> next PROGRAM_BEGIN sent
    client_stats: dict = field(default_factory=dict)
    wall_s: float = 0.0
    tally: dict | None = None      # a simulated device's own counts (valve openings, lick contacts)
    error: str | None = None       # why the session stopped with reason "error"
    nwb_error: str | None = None   # why run_session wrote no NWB (and how to recover it from the journal)
    cut: dict = field(default_factory=dict)   # trial -> why it was cut (not learned from, not in the trials table)
    cut_valve_openings: int = 0               # valve openings reported during the cut trials (in the device's tally)


class Interrupt:
    """Ctrl-C as a flag: ``requested`` is set by SIGINT; a second SIGINT raises KeyboardInterrupt."""

    def __init__(self) -> None:
        self.requested = False
        self.count = 0

    def handler(self, signum: int, frame: Any) -> None:
        self.count += 1
        self.requested = True
        if self.count > 1:
            raise KeyboardInterrupt


_GUARD: Interrupt | None = None


@contextlib.contextmanager
def interrupt_guard() -> Iterator[Interrupt]:
    """While inside, SIGINT sets a flag instead of raising at an arbitrary point (inside a client call, a
    journal write...); nested guards share the outer one.  Outside the main thread: a flag nobody sets."""
    global _GUARD
    if _GUARD is not None:
        yield _GUARD
        return
    guard = Interrupt()
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        yield guard   # (started with SIGINT ignored, as by nohup: it stays ignored)
        return
    old = signal.signal(signal.SIGINT, guard.handler)
    _GUARD = guard
    try:
        yield guard
    finally:
        _GUARD = None
        signal.signal(signal.SIGINT, old)


class Runner:
    """Run one session on an open link.  ``speed``: the simulated device's clock rate (1 for real rigs);
    the host timeout and heartbeats are scaled so the device stays armed at that speed."""

    def __init__(self, config: SessionConfig, rig: Rig, port: Any, out: str | Path, *, speed: float = 1.0,
                 n_trials: int | None = None, device_name: str = "?", on_trial: Callable[[dict], None] | None = None,
                 client_kw: dict | None = None, pause: threading.Event | None = None) -> None:
        if n_trials is not None:
            config = dataclasses.replace(config, n_trials=n_trials, duration_s=None)
        self.config, self.rig, self.port, self.speed = config, rig, port, float(speed)
        self.out = Path(out)
        self.journal_path = Path(str(self.out) + ".journal")
        self.raw_path = Path(str(self.out) + ".raw")
        self.device_name = device_name
        self.on_trial = on_trial
        self.pause = pause   # set: finish the running trial and its ITI, start no new one until cleared
        self.machine = SessionMachine.of(config, rig, self.speed)
        self.journal = JournalWriter(self.journal_path)
        # heartbeats: a quarter of the device's default host timeout (1000 ms of device time) until CONFIGURE
        # has set the scaled one, then a tenth of that (at most 0.25 s)
        given = "heartbeat_s" in (client_kw or {})
        self._hb_session = None if given else min(0.25, 0.25 / self.speed * 4)
        self.client_kw = {"heartbeat_s": min(0.25, 0.25 / self.speed), **(client_kw or {})}
        self.client: DeviceClient | None = None
        self.latencies: list[float] = []
        self.tally: dict[str, int] | None = None
        self._stopped = False
        self._switch: float | None = None
        self._gc_was_enabled = True
        self._interrupt: Interrupt | None = None

    @property
    def history(self) -> list[dict]:
        return self.machine.history

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        c = self.config
        # the client's worker thread and this one share the GIL: hand it over within 0.5 ms, not 5 ms,
        # so an event read by the worker reaches the decision quickly (restored in safe())
        self._switch = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch, SWITCH_INTERVAL_S))
        # garbage collection pauses (1-7 ms for the young generations, tens of ms for a full one) must not
        # land between a device event and the decision: collect once now, move what exists out of the
        # collector's way, and during the session collect only right after an upload into an ITI
        gc.collect()
        gc.freeze()
        self._gc_was_enabled = gc.isenabled()
        gc.disable()
        self.journal.start(out=str(self.out), rawlog=str(self.raw_path))
        self.journal.write("config", subject=c.subject, session_id=c.session_id, description=c.description,
                           experimenter=list(c.experimenter), institution=c.institution, config_path=c.path,
                           config_toml=c.text, rig_toml=self.rig.text, rig_name=self.rig.name, rig_path=self.rig.path,
                           ms_per_ul=self.rig.ms_per_ul, calibrated=self.rig.calibrated, device=self.device_name,
                           speed=self.speed, n_trials=c.n_trials, duration_s=c.duration_s, model=c.model.name,
                           model_params=c.model.params, model_options=c.model.options,
                           policy=c.policy.kind, max_reward_ul=c.max_reward_ul, lick_debounce_us=c.lick_debounce_us,
                           budget_valve_ms=c.safety.budget_valve_ms, **provenance(c, self.rig))
        sf = c.safety
        host_timeout = int(min(10000, max(sf.host_timeout_ms, sf.host_timeout_ms * self.speed)))
        # the first HELLO carries the limits: the device never runs on the 1 s default host timeout (20 ms of
        # real time at 50x) between HELLO and CONFIGURE
        self.client = self._open_client(dict(max_valve_ms=sf.max_valve_ms, min_valve_gap_ms=sf.min_valve_gap_ms,
                                             budget_valve_ms=sf.budget_valve_ms, host_timeout_ms=host_timeout,
                                             debounce_us=c.lick_debounce_us))
        self.client.add_listener(self.journal.event)
        hello = self.client.start()
        self.journal.write("hello", **{k: v for k, v in hello._asdict().items()})
        self._setup("CONFIGURE", lambda: self.client.configure(
            max_valve_ms=sf.max_valve_ms, min_valve_gap_ms=sf.min_valve_gap_ms, budget_valve_ms=sf.budget_valve_ms,
            host_timeout_ms=host_timeout, debounce_us=c.lick_debounce_us),
            max_valve_ms=sf.max_valve_ms, budget_valve_ms=sf.budget_valve_ms, host_timeout_ms=host_timeout)
        self.journal.write("param", trial=None, source="configure", changes={   # (after: HELLO to CONFIGURE is short)
            "max_valve_ms": sf.max_valve_ms, "min_valve_gap_ms": sf.min_valve_gap_ms,
            "budget_valve_ms": sf.budget_valve_ms, "host_timeout_ms": host_timeout, "debounce_us": c.lick_debounce_us})
        self._carry_out(self.machine.sync_start())
        if self._hb_session is not None:
            self.client.heartbeat_s = self._hb_session
        if c.policy.kind == "on-signal":
            self._setup("ANALOG_START", lambda: self.client.analog_start(c.policy.analog_rate_hz),
                        rate_hz=c.policy.analog_rate_hz)

    # ------------------------------------------------------------------ what a virtual-time runner replaces
    def _open_client(self, limits: dict[str, int]) -> Any:
        """The device client (a worker thread moving bytes, its events on a queue); its first HELLO carries
        ``limits``."""
        return DeviceClient(self.port, rawlog=self.raw_path, limits=limits, **self.client_kw)

    def _now(self) -> float:
        """Host time (s) given to the machine and written in ``cmd`` records."""
        return time.monotonic()

    def _next_event(self) -> Any:
        """The next device event, or None after ``POLL_S`` without one; a client that failed for good (its worker
        died, e.g. on a full disk under the raw log) raises its failure at once, not after a silence."""
        failure = getattr(self.client, "failure", None)
        if failure is not None:
            raise failure
        try:
            return self.client.events.get(timeout=POLL_S)
        except queue.Empty:
            return None

    def _latency(self, up: Upload) -> float:
        """Host seconds from the arrival of the event an upload answers to the upload going out."""
        return time.monotonic() - up.received

    def _setup(self, name: str, send: Callable[[], Any], **fields: Any) -> None:
        """An idempotent set-up command, sent again (up to ``SETUP_TRIES`` times in all) while its outcome is
        unknown (a new device session began while it was in flight: in that session it has not run)."""
        for attempt in range(1, SETUP_TRIES + 1):
            self._command_log(name, **fields)
            try:
                send()
                return
            except CommandOutcomeUnknown as exc:
                if attempt == SETUP_TRIES:
                    raise
                self.journal.write("note", text=f"{name}: outcome unknown ({exc}); sent again")

    def safe(self) -> None:
        """Outputs off (ALL_OFF), client stopped, journal closed.  Idempotent, never raises."""
        if self._stopped:
            return
        self._stopped = True
        if self.client is not None:
            try:
                self.client.safe()
            except Exception:
                pass
        self.journal.safe()
        if self._switch is not None:
            sys.setswitchinterval(self._switch)
            self._switch = None
            gc.unfreeze()
            if self._gc_was_enabled:
                gc.enable()

    stop = safe

    # ------------------------------------------------------------------ the session
    def run(self) -> RunResult:
        t_wall = time.monotonic()
        reason, error = "error", None
        with interrupt_guard() as guard:
            self._interrupt = guard
            try:
                self.start()
                reason = self._loop()
            except KeyboardInterrupt:
                reason = "interrupted"
            except DeviceError as exc:
                error = str(exc)
                self.journal.write("note", text=f"session stopped: {exc}")
            finally:
                if guard.requested and reason == "error" and error is None:
                    reason = "interrupted"
                stats = dict(self.client.stats) if self.client is not None else {}
                self.tally = device_tally(self.port)
                if self.client is not None and not self._stopped:
                    try:
                        self.client.safe()   # outputs off first
                    except Exception:
                        pass
                self._carry_out(self.machine.finish(reason), live=False)
                self.journal.write("end", reason=reason, trials=len(self.history), **({"error": error} if error else {}))
                self.safe()
        return RunResult(self.out, self.journal_path, self.raw_path, reason, len(self.history), self.history,
                         self.latencies, stats, time.monotonic() - t_wall, self.tally, error,
                         cut=dict(self.machine.cut))

    def _loop(self) -> str:
        m = self.machine
        guard = self._interrupt
        if guard is not None and guard.requested:
            return "interrupted"   # Ctrl-C during HELLO or CONFIGURE: no trial was started
        self._carry_out(m.begin(self._now()))
        while m.done is None:
            if guard is not None and guard.requested:
                return "interrupted"
            if self.pause is not None and self.pause.is_set() != m.paused:
                self._carry_out(m.set_paused(self.pause.is_set(), self._now()))
                continue
            ev = self._next_event()
            if ev is None:
                self._carry_out(m.on_tick(self._now()))
                continue
            self._carry_out(m.on_event(ev, self._now()))
        if m.done.error is not None:
            raise DeviceError(m.done.error)
        return m.done.reason

    # ------------------------------------------------------------------ carrying out the machine's outputs
    def _carry_out(self, outputs: list, live: bool = True) -> None:
        for o in outputs:
            if isinstance(o, Record):
                self.journal.write(o.kind, **o.fields)
            elif isinstance(o, Upload):
                if live:
                    self._upload(o)
            elif isinstance(o, Show):
                self.journal.write("link", **self.client.stats)   # link health so far (the dashboard reads it)
                if self.on_trial is not None:
                    self.on_trial(o.row)
            elif isinstance(o, Command):
                if live:
                    self._command(o)
            elif isinstance(o, Rearmed):
                self._journal_rearm()
            elif not isinstance(o, Done):
                raise TypeError(f"unknown session output {o!r}")

    def _command_log(self, name: str, **fields: Any) -> None:
        self.journal.write("cmd", name=name, t=self._now(), **fields)

    def _upload(self, up: Upload) -> None:
        self._command_log("PROGRAM", trial_id=up.trial_id, duration_ms=up.duration_ms, actions=list(up.actions),
                          when=up.when)
        if up.received is not None:
            self.latencies.append(self._latency(up))
        rearms = self.client.stats.get("rearms", 0)
        try:
            self.client.upload_program(up.trial_id, up.duration_ms, list(up.actions))
            try:
                self.client.trial_start(up.when)
            except CommandRefused as exc:
                if exc.reason != P.NackReason.PROGRAM_STATE or up.when != P.TrialWhen.NOW:
                    raise
                self.client.trial_start(P.TrialWhen.AFTER_CURRENT)  # something still runs: queue it
        except CommandOutcomeUnknown as exc:
            self._carry_out(self.machine.on_upload_unknown(up, str(exc), self._now()))
            return
        except CommandRefused as exc:
            if exc.reason != P.NackReason.PROGRAM_STATE or self.client.stats.get("rearms", 0) == rearms:
                raise
            # the device disarmed during the upload (a host timeout) and the client re-armed it: the trip
            # cleared the program being uploaded, so its remaining parts found none begun
            self._carry_out(self.machine.on_upload_unknown(up, str(exc), self._now(), rearmed=True))
            return
        self.machine.on_uploaded(up, self._now())
        if up.idle_after:
            k = up.trial_id // 2 - 1
            gc.collect(2 if k % 50 == 49 else 1)   # now, while the device times the ITI

    def _command(self, cmd: Command) -> None:
        self._command_log(cmd.name, **cmd.fields)
        if cmd.wait:   # (SYNC_START: a refusal or no reply stops the session like any set-up command)
            self.client.command(cmd.msg)
            return
        try:
            self.client.send(cmd.msg)
        except DeviceError as exc:
            self.journal.write("note", text=f"on-signal action failed: {exc}")

    def _journal_rearm(self) -> None:
        """What the client recorded of its latest HELLO episode (why, resumed or new, drops, lost total)."""
        log = getattr(self.client, "rearm_log", None)
        if log:
            self.journal.write("rearm", **{k: v for k, v in dataclasses.asdict(log[-1]).items()})


def provenance(config: SessionConfig, rig: Rig) -> dict[str, str]:
    """What identifies the session's inputs: SHA-256 of the config and rig file texts, the package version."""
    import hashlib

    from dopa_rl import __version__

    digest = lambda text: hashlib.sha256((text or "").encode("utf-8")).hexdigest()  # noqa: E731
    return {"config_sha256": digest(config.text), "rig_sha256": digest(rig.text) if rig.text else None,
            "dopa_rl_version": __version__}


# ---------------------------------------------------------------------- opening a device, a whole session
MAX_SPEED = 50.0   # --speed max: the simulated clock's rate (host timeout scaled to stay armed, see docs/sessions.md)


def parse_speed(text: str | float) -> float:
    """The virtual-clock speed of ``--speed`` (a number, or ``max``)."""
    from dopa_rl.errors import InputError

    if isinstance(text, (int, float)):
        return float(text)
    t = str(text).strip().lower()
    if t == "max":
        return MAX_SPEED
    if t in ("realtime", "real-time", "1"):
        return 1.0
    try:
        v = float(t)
    except ValueError:
        raise InputError(f"`speed` {text!r}: use max, realtime or a factor such as 10") from None
    if not 0 < v <= 200:
        raise InputError(f"`speed` {text!r}: the factor must be in (0, 200]")
    return v


def sim_ring(speed: float) -> int:
    """Event ring of a simulated device at ``speed``: 32 frames like the firmware, times speed / 5, so a host
    pause of x ms costs the ring what a pause of x * 5 ms would on a real board at 1x (without it, 100 ms of
    scheduling delay on a loaded machine at 50x is 5 s of device events: an EVENT_OVERFLOW)."""
    return int(32 * max(1, math.ceil(speed / 5)))


def sim_retransmit_ms(speed: float) -> int:
    """Go-back-N interval of a simulated device at ``speed`` (device ms): RETRANSMIT_MS of real time, as on a
    board at 1x (this host's acks take real time; at 50x the firmware's 50 ms would resend the whole ring
    every real millisecond, a flood of duplicates that starved the host until its host timeout tripped)."""
    return int(P.RETRANSMIT_MS * max(1, math.ceil(speed)))


def device_url(device: str, rig: Rig, *, speed: float, seed: int) -> str:
    """``sim`` -> a new simulated rig with a simulated animal; ``rig`` -> the rig file's port (or serial number);
    anything else is a port path or a pyserial URL."""
    if device == "sim":
        return (f"dopasim://?speed={speed:g}&seed={seed}&animal=rw&ring={sim_ring(speed)}"
                f"&retx_ms={sim_retransmit_ms(speed)}")
    if device == "rig":
        from dopa_rl.errors import InputError

        if rig.serial_number:
            from dopa_rl.rig.ports import find_port_by_serial

            return find_port_by_serial(rig.serial_number)
        if rig.port:
            return rig.port
        raise InputError("`device` rig: the rig file names no port and no serial_number")
    return device


def open_device(url: str) -> Any:
    """Open the link to the device at ``url`` (a DeviceError naming it when that fails)."""
    from dopa_rl.rig.transports import open_link

    try:
        return open_link(url)
    except Exception as exc:  # pyserial raises SerialException / ValueError / OSError
        raise DeviceError(f"cannot open {url!r}: {exc}") from None


def device_tally(port: Any) -> dict[str, int] | None:
    """The simulated device's own count of valve openings and lick contacts (pin trace), if it is one
    (``port``: a link to it, or the device itself)."""
    dev = port if hasattr(port, "pin_edges") else (
        getattr(port, "device", None) or getattr(getattr(port, "inner", None), "device", None))
    if dev is None or not hasattr(dev, "pin_edges"):
        return None
    return {"valve_openings": sum(1 for _, lv in dev.pin_edges("valve") if lv),
            "lick_contacts": sum(1 for _, lv in dev.pin_edges("lick") if lv),
            "ttl_pulses": sum(1 for _, lv in dev.pin_edges("ttl") if lv)}


def run_session(config: SessionConfig, rig: Rig, port: Any, out: str | Path, *, speed: float = 1.0,
                n_trials: int | None = None, device_name: str = "?", on_trial: Callable[[dict], None] | None = None,
                client_kw: dict | None = None, write_nwb: bool = True,
                pause: threading.Event | None = None) -> tuple[RunResult, Path | None]:
    """Run a session on an open link, then write the NWB from its journal, also after Ctrl-C or a device
    error (``result.reason``, ``result.error``).  With no NWB, ``result.nwb_error`` says why and how to
    recover it.  ``pause``: while set, no new trial starts (the running one and its ITI finish)."""
    runner = Runner(config, rig, port, out, speed=speed, n_trials=n_trials, device_name=device_name,
                    on_trial=on_trial, client_kw=client_kw, pause=pause)
    return export_run(runner, out, write_nwb=write_nwb)


def export_run(runner: Runner, out: str | Path, *, write_nwb: bool = True) -> tuple[RunResult, Path | None]:
    """Run ``runner``'s session, then write the NWB ``out`` from its journal (see :func:`run_session`)."""
    from dopa_rl.io.nwb import write_session
    from dopa_rl.session.export import cut_valve_openings, journal_data

    with interrupt_guard() as guard:
        try:
            result = runner.run()
        finally:
            runner.safe()
        if result.error is not None and not runner.machine.plans:
            raise DeviceError(result.error)   # the session never got going (no HELLO, no CONFIGURE): no NWB
        if not result.journal.exists():
            return result, None
        how = f"the journal is complete: dopa-rl recover {result.journal} --out RECOVERED.nwb"
        try:
            # the journal is read once: its contents give the NWB and the water given in cut trials, counted
            # from every event journaled (also those that came in after the session stopped reading), which
            # with the rewarded trials makes the device's own count of valve openings
            data = journal_data(result.journal)
            result.cut_valve_openings = cut_valve_openings(data)
            if not write_nwb:
                return result, None
            return result, write_session(out, data)
        except KeyboardInterrupt:
            result.nwb_error = f"interrupted while writing {out}; {how}"
        except Exception as exc:   # noqa: BLE001 - the session is over; say how to get its NWB
            result.nwb_error = f"{out} was not written ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); {how}"
        if guard.count:
            result.reason = "interrupted"
    return result, None
