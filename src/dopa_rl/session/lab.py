"""Several rigs from one host: each session in its own process (``dopa-rl run`` with its own journal and NWB).

A rig's process shares nothing with the others but the machine: a crash, a lost link or a full disk ends that
rig's process only.  The supervisor here starts them, forwards stop (SIGINT: outputs off, NWB still written),
pause (SIGUSR1: no new trial starts) and resume (SIGUSR2) to one rig at a time, and follows every rig through
its journal (:mod:`dopa_rl.session.monitor`), never through the runner.  At the end it reads each rig's
``--json`` summary (trials, rewards, the device's own tally) and names what went wrong.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from dopa_rl.session.monitor import ENDED, STARTING, JournalTail

__all__ = ["RigSpec", "RigProcess", "Lab"]

PAUSE_SIGNAL, RESUME_SIGNAL = signal.SIGUSR1, signal.SIGUSR2


@dataclass
class RigSpec:
    """One rig of the lab: its config, device, rig file (or None) and output NWB path."""

    name: str
    config: Path
    device: str
    out: Path
    rig_file: Path | None = None

    @property
    def journal(self) -> Path:
        return Path(str(self.out) + ".journal")

    @property
    def json(self) -> Path:
        return self.out.with_suffix(".json")

    @property
    def log(self) -> Path:
        return self.out.with_suffix(".log")


@dataclass
class RigProcess:
    """One rig of a lab run: its spec, its process, and the tail of its journal."""

    spec: RigSpec
    proc: subprocess.Popen | None = None
    tail: JournalTail | None = None
    log_fh: object = None
    paused: bool = False
    summary: dict | None = field(default=None)

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()


class Lab:
    """Start, follow, pause, resume and stop several ``dopa-rl run`` processes."""

    def __init__(self, rigs: list[RigSpec], *, speed: str = "realtime", trials: int | None = None,
                 python: str = sys.executable) -> None:
        self.rigs = {r.name: RigProcess(r, tail=JournalTail(r.name, r.journal)) for r in rigs}
        self.speed, self.trials, self.python = speed, trials, python
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ control (one rig at a time)
    def command(self, spec: RigSpec) -> list[str]:
        cmd = [self.python, "-m", "dopa_rl", "run", str(spec.config), "--device", spec.device, "--out", str(spec.out),
               "--json", str(spec.json), "--speed", str(self.speed)]
        if self.trials is not None:
            cmd += ["--trials", str(self.trials)]
        if spec.rig_file is not None:
            cmd += ["--rig-file", str(spec.rig_file)]
        return cmd

    def start(self, name: str) -> None:
        rp = self.rigs[name]
        if rp.proc is not None:
            raise RuntimeError(f"rig {name} was already started")
        rp.log_fh = open(rp.spec.log, "w", encoding="utf-8")
        # a session of its own: a signal meant for one rig (or the supervisor's terminal) reaches no other
        rp.proc = subprocess.Popen(self.command(rp.spec), stdin=subprocess.DEVNULL, stdout=rp.log_fh,
                                   stderr=subprocess.STDOUT, start_new_session=True,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def start_all(self, *, one_by_one: bool = True, timeout_s: float = 60.0) -> None:
        """Start every rig; ``one_by_one``: each once the one before is configured and running its first trial
        (or has ended), so no rig's start-up (imports, HELLO, CONFIGURE) competes for the CPU with another's:
        at 50x a simulated device's default host timeout before CONFIGURE is 20 ms of real time."""
        tick = threading.Event()
        for name in self.rigs:
            self.start(name)
            if not one_by_one:
                continue
            rp, waited = self.rigs[name], 0.0
            while rp.proc.poll() is None and waited < timeout_s:
                with self._lock:
                    if rp.tail.update().state not in STARTING:
                        break
                tick.wait(0.02)
                waited += 0.02

    def _signal(self, name: str, sig: int) -> bool:
        rp = self.rigs.get(name)
        if rp is None or rp.proc is None or rp.proc.poll() is not None:
            return False
        rp.proc.send_signal(sig)
        return True

    def stop(self, name: str) -> bool:
        """Ask one rig to stop now (its outputs go off, its NWB is written, exit 130)."""
        return self._signal(name, signal.SIGINT)

    def _session_started(self, name: str) -> bool:
        """The rig's journal exists: its process has installed the pause/resume handlers (the default action
        of SIGUSR1/2 would end it)."""
        with self._lock:
            return self.rigs[name].tail.update().state != "starting"

    def pause(self, name: str) -> bool:
        """Start no new trial on this rig (the running one and its ITI finish); False if it cannot be asked yet."""
        ok = name in self.rigs and self._session_started(name) and self._signal(name, PAUSE_SIGNAL)
        self.rigs[name].paused |= ok
        return ok

    def resume(self, name: str) -> bool:
        ok = name in self.rigs and self._session_started(name) and self._signal(name, RESUME_SIGNAL)
        if ok:
            self.rigs[name].paused = False
        return ok

    def stop_all(self) -> None:
        for name in self.rigs:
            self.stop(name)

    # ------------------------------------------------------------------ following
    def snapshot(self) -> list[dict]:
        """Every rig's state from its journal (and its process: a rig that died without ending says so)."""
        out = []
        with self._lock:
            for name, rp in self.rigs.items():
                st = rp.tail.update()
                d = st.to_json()
                d["pid"] = None if rp.proc is None else rp.proc.pid
                rc = rp.returncode
                if rc is not None and st.state not in ENDED:
                    d["state"] = f"died ({_exit_text(rc)})"
                elif rc is None and rp.paused and st.state == "running":
                    d["state"] = "pausing"   # asked; the running trial and its ITI finish first
                out.append(d)
        return out

    def running(self) -> bool:
        return any(rp.proc is not None and rp.proc.poll() is None for rp in self.rigs.values())

    def wait(self, on_tick=None, poll_s: float = 0.1) -> None:
        """Until every process has exited; ``on_tick(snapshot)`` after each poll (progress display)."""
        done = threading.Event()
        while self.running():
            if on_tick is not None:
                on_tick(self.snapshot())
            done.wait(poll_s)
        for rp in self.rigs.values():
            if rp.proc is not None:
                rp.proc.wait()
            if rp.log_fh is not None:
                rp.log_fh.close()
                rp.log_fh = None
        if on_tick is not None:
            on_tick(self.snapshot())

    # ------------------------------------------------------------------ the end
    def summary(self) -> list[dict]:
        """Per rig: reason, trials, rewards, the device's tally, problems, files."""
        rows = []
        for st in self.snapshot():
            rp = self.rigs[st["name"]]
            rc = rp.returncode
            js = None
            try:
                js = json.loads(rp.spec.json.read_text())
            except (FileNotFoundError, json.JSONDecodeError):
                pass
            problems = list(st["problems"])
            tally = js.get("device_tally") if js else None
            rewards = js["rewards"] if js else st["rewards"]
            if js is None:
                problems.append(f"the process {_exit_text(rc)} before writing its summary; recover with "
                                f"dopa-rl recover {rp.spec.journal} --out {rp.spec.out.with_suffix('')}-recovered.nwb")
                tail = _last_line(rp.spec.log)
                if tail:
                    problems.append(f"last output: {tail}")
            elif tally is not None and tally.get("valve_openings") != rewards:
                problems.append(f"{rewards} rewarded trials but the device opened the valve {tally['valve_openings']} times")
            rows.append({"name": st["name"], "subject": st["subject"], "state": js["reason"] if js else st["state"],
                         "exit_code": rc, "trials": js["trials"] if js else st["trials_done"], "rewards": rewards,
                         "valve_openings": None if tally is None else tally.get("valve_openings"),
                         "water_ul": st["water_ul"], "nwb": js["nwb"] if js else None, "journal": str(rp.spec.journal),
                         "log": str(rp.spec.log), "problems": problems})
        return rows


def _exit_text(rc: int | None) -> str:
    if rc is None:
        return "still running"
    if rc < 0:
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exited with code {rc}"


def _last_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    except FileNotFoundError:
        return ""
    return lines[-1][-200:] if lines else ""
