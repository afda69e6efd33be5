"""Several rigs from one host: each session in its own process (``dopa-rl run`` with its own journal and NWB).

A rig's process shares nothing with the others but the machine: a crash, a lost link or a full disk ends that
rig's process only.  The supervisor here starts them, forwards stop (SIGINT: outputs off, NWB still written),
pause (SIGUSR1: no new trial starts) and resume (SIGUSR2) to one rig at a time, and follows every rig through
its journal (:mod:`dopa_rl.session.monitor`), never through the runner.  At the end it reads each rig's
``--json`` summary (trials, rewards, the device's own tally) and names what went wrong.

A lab file (:func:`read_lab_file`) lists the rigs instead of the command line: each rig's session config and,
per rig, the device (or port), rig file, subject and output folder it overrides.  A rig whose output disk fills
ends alone; the summary says so, and that its journal recovers the trials it holds (:func:`disk_full`).
"""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from dopa_rl.session.monitor import ENDED, STARTING, JournalTail

__all__ = ["RigSpec", "RigProcess", "Lab", "LabRig", "is_lab_file", "read_lab_file", "disk_full"]

PAUSE_SIGNAL, RESUME_SIGNAL = signal.SIGUSR1, signal.SIGUSR2


@dataclass
class RigSpec:
    """One rig of the lab: its config, device, rig file (or None) and output NWB path."""

    name: str
    config: Path
    device: str
    out: Path
    rig_file: Path | None = None
    subject: str | None = None

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
        if spec.subject is not None:
            cmd += ["--subject", spec.subject]
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
            cut_open = js.get("cut_valve_openings", 0) if js else 0   # water given in trials cut from the table
            full = disk_full(rp.spec.out.parent) if js is None else None
            if js is None and full:
                problems.append(f"output disk full: {full}; the session stopped there (its outputs off) and its "
                                f"journal holds every trial written before: free space (or copy "
                                f"{rp.spec.journal} to another disk), then dopa-rl recover {rp.spec.journal} "
                                f"--out FILE.nwb on a disk with space")
            elif js is None:
                problems.append(f"the process {_exit_text(rc)} before writing its summary; recover with "
                                f"dopa-rl recover {rp.spec.journal} --out {rp.spec.out.with_suffix('')}-recovered.nwb")
            if js is None:
                tail = _last_line(rp.spec.log)
                if tail:
                    problems.append(f"last output: {tail}")
            elif tally is not None and tally.get("valve_openings") != rewards + cut_open:
                also = f" and {cut_open} opening(s) in cut trials" if cut_open else ""
                problems.append(f"{rewards} rewarded trials{also} but the device opened the valve "
                                f"{tally['valve_openings']} times")
            rows.append({"name": st["name"], "subject": st["subject"], "state": js["reason"] if js else st["state"],
                         "exit_code": rc, "trials": js["trials"] if js else st["trials_done"], "rewards": rewards,
                         "cut_valve_openings": cut_open, "valve_openings": None if tally is None else tally.get("valve_openings"),
                         "water_ul": st["water_ul"], "nwb": js["nwb"] if js else None, "journal": str(rp.spec.journal),
                         "log": str(rp.spec.log), "problems": problems})
        return rows


def disk_full(folder: Path) -> str | None:
    """Why nothing more can be written in ``folder`` because its file system is full (None when it is not):
    a small file is written and synced for real (the free-space figure alone says nothing of reserved blocks,
    quotas or a file system that lies)."""
    import tempfile

    try:
        fd, name = tempfile.mkstemp(prefix=".dopa_rl_space.", dir=folder)
    except OSError as exc:
        return f"{folder}: {exc.strerror}" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else None
    try:
        left = memoryview(b"\0" * 65536)
        while left:   # a write into a nearly full file system is short before it fails
            left = left[os.write(fd, left):]
        os.fsync(fd)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            st = os.statvfs(folder)
            return f"{folder}: {exc.strerror} ({st.f_bavail * st.f_frsize} bytes free)"
    finally:
        os.close(fd)
        os.unlink(name)
    return None


# ---------------------------------------------------------------------------------------------- lab file
#: keys of a ``[[rigs]]`` entry of a lab file
RIG_KEYS = ("config", "device", "port", "rig_file", "subject", "out_dir")


@dataclass(frozen=True)
class LabRig:
    """One ``[[rigs]]`` entry of a lab file: a session config and what this rig overrides (None: as the config
    or the command line says).  Paths are absolute (a lab file's relative paths are from its folder)."""

    config: Path
    device: str | None = None
    rig_file: Path | None = None
    subject: str | None = None
    out_dir: Path | None = None


def is_lab_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a lab file (a TOML file with ``[[rigs]]`` and no ``[session]``), not a session config.

    Parameters
    ----------
    path : str or path-like
        The file.

    Returns
    -------
    bool
        False for a missing or unreadable file or one that is not TOML (the config reader names the problem).
    """
    import tomllib

    try:
        doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return "rigs" in doc and "session" not in doc


def read_lab_file(path: str | os.PathLike[str]) -> list[LabRig]:
    """The rigs a lab file lists.

    The file is TOML with one ``[[rigs]]`` table per rig::

        [[rigs]]
        config = "a.toml"            # the rig's session config (required)
        device = "sim"               # sim, rig, a port path or a URL (default: --device)
        [[rigs]]
        config = "b.toml"
        port = "/dev/ttyACM1"        # the same as device = "/dev/ttyACM1"
        rig_file = "rig2.toml"       # overrides the config's session.rig_file
        subject = "m12"              # overrides the config's session.subject
        out_dir = "/mnt/usb/runs"    # this rig's files go there instead of --out-dir

    Parameters
    ----------
    path : str or path-like
        The lab file; its relative paths are from its folder.

    Returns
    -------
    list of LabRig
        One per ``[[rigs]]`` entry, in the file's order.

    Raises
    ------
    ConfigError
        One line per problem: not TOML, no rigs, an unknown key, a missing or mistyped value, ``device`` and
        ``port`` both given, a subject that is not a plain name.
    """
    import re
    import tomllib

    from dopa_rl.session.config import ConfigError

    p = Path(path)
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), ["file does not exist"]) from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(str(path), [f"not a TOML lab file ({exc})"]) from None
    problems = [f"{k}: unknown key (a lab file has [[rigs]] tables only)" for k in doc if k != "rigs"]
    rigs = doc.get("rigs")
    if not isinstance(rigs, list) or not rigs or not all(isinstance(r, dict) for r in rigs):
        raise ConfigError(str(path), problems + ["rigs: give one [[rigs]] table per rig, each with config = FILE"])
    base = p.parent.resolve()
    out = []
    for i, r in enumerate(rigs):
        where = f"rigs[{i}]."
        problems += [f"{where}{k}: unknown key; a rig takes {', '.join(RIG_KEYS)}" for k in r if k not in RIG_KEYS]
        bad = [k for k in RIG_KEYS if k in r and (not isinstance(r[k], str) or not r[k].strip())]
        problems += [f"{where}{k} = {r[k]!r}: give a non-empty string" for k in bad]
        if "config" not in r:
            problems.append(f"{where}config: missing; name the rig's session config, e.g. config = \"a.toml\"")
        if "device" in r and "port" in r:
            problems.append(f"{where}device and port: give one (port = P is device = P)")
        if isinstance(r.get("subject"), str) and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", r["subject"]):
            problems.append(f"{where}subject = {r['subject']!r}: letters, digits, '_', '.' and '-' only (it names files)")
        if bad or "config" not in r:
            continue

        def path_of(key):
            return None if key not in r else (base / Path(r[key]).expanduser())

        out.append(LabRig(config=path_of("config"), device=r.get("device") or r.get("port"),
                          rig_file=path_of("rig_file"), subject=r.get("subject"), out_dir=path_of("out_dir")))
    if problems:
        raise ConfigError(str(path), problems)
    return out


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
