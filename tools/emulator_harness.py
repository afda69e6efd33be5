"""The real dopa_rig firmware running in the simavr emulator, as a device under test.

This module only starts and talks to a separate program, ``emulator/build/dopa_emu`` (GPL-3.0, because it
links simavr; this file links nothing and stays BSD-3-Clause).  The harness loads the firmware ELF as an
ATmega328P at 16 MHz, bridges UART0 to a pseudo-terminal and reports pin changes with the exact CPU cycle
on its stdout; commands on its stdin drive the lick input (see ``emulator/src/dopa_emu.c``).

:class:`EmulatedDUT` offers the same interface as :class:`dopa_rl.testing.SimulatedDUT`:

- ``url``: the pty path; open it with ``serial.serial_for_url(url, baudrate=1_000_000, timeout=0)``,
- ``pin_edges(pin) -> [(device_time_us, level)]`` for pin in {"valve", "cue", "tone", "ttl", "lick"},
- ``set_lick(level)``, ``now_us()``, ``advance(us)``, ``close()``;
- ``reset(cause)``: the board resets now and boots the firmware again (SimulatedDUT has it too);
  and, emulator only: ``set_lick(level, at_us=...)``, ``lick_train(at_us, period_us, count)``, ``set_analog_mv(mv)``,
  ``edge_cycles(pin)``, ``wait_edges``, ``tone_frequencies()``.

Device time: the firmware's clock is Arduino ``micros()``, Timer0 counting from the moment ``init()``
started it (the harness reports that cycle, ``T0``).  Here ``device_time_us = (cycle - T0) / 16``, which is
what ``micros()`` reads at that cycle (``micros()`` itself moves in 4 us steps), so pin edges and the
``t_us`` of events are on one clock.  After a :meth:`EmulatedDUT.reset` the firmware starts Timer0 again:
a cycle is mapped with the ``T0`` of the boot it belongs to (device time restarts near 0, as ``micros()``
does); the harness's cycles keep counting across the reset, so cycles are one timeline.  Raw cycles are kept too (:meth:`EmulatedDUT.edge_cycles`).  Emulated
time is not wall time: the firmware sleeps when idle and simavr then paces it to roughly real time, but
timings must be asserted in device time, never with the wall clock.
"""
from __future__ import annotations

import bisect
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

from dopa_rl.errors import DeviceError

__all__ = ["EmulatedDUT", "PINS", "F_CPU", "default_paths", "toolchain_missing", "build"]

PINS = ("valve", "cue", "tone", "ttl", "lick")
F_CPU = 16_000_000
CYCLES_PER_US = F_CPU // 1_000_000

_REPO = Path(__file__).resolve().parents[1]


def default_paths(root: Path | None = None) -> tuple[Path, Path]:
    """(firmware ELF, harness binary) inside a source checkout at ``root`` (default: this checkout)."""
    root = Path(root) if root is not None else _REPO
    return root / "firmware" / "build" / "dopa_rig.elf", root / "emulator" / "build" / "dopa_emu"


def toolchain_missing(root: Path | None = None) -> str | None:
    """Why the firmware and harness cannot be built here (None when everything is installed)."""
    root = Path(root) if root is not None else _REPO
    for tool in ("avr-gcc", "avr-objcopy", "make", "gcc"):
        if shutil.which(tool) is None:
            return f"{tool} not found (run: bash .ci/install-system-packages)"
    if not Path("/usr/share/arduino/hardware/arduino/avr/cores/arduino/Arduino.h").exists():
        return "arduino-core-avr is not installed (run: bash .ci/install-system-packages)"
    if not (root / ".cache" / "simavr-dev" / "usr" / "include" / "simavr" / "sim_avr.h").exists():
        return "simavr headers missing in .cache/simavr-dev (run: bash .ci/install-system-packages)"
    if not any(Path(d, "libsimavr.so.2").exists() for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib")):
        return "libsimavr2 is not installed (run: bash .ci/install-system-packages)"
    return None


def build(root: Path | None = None) -> tuple[Path, Path]:
    """Build the firmware and the harness with make; returns their paths. Raises DeviceError on failure."""
    import fcntl

    root = Path(root) if root is not None else _REPO
    # one make at a time across processes (test workers): two makes linking dopa_emu at once leave a
    # half-written binary that another process then fails to run
    (root / "emulator" / "build").mkdir(parents=True, exist_ok=True)
    with open(root / "emulator" / "build" / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for folder in ("firmware", "emulator"):
            proc = subprocess.run(["make", "-s", "-C", str(root / folder)], capture_output=True, text=True)
            if proc.returncode != 0:
                raise DeviceError(f"make -C {folder} failed: {(proc.stderr or proc.stdout).strip()[-2000:]}")
    return default_paths(root)


class EmulatedDUT:
    """The firmware ELF running in the ``dopa_emu`` harness; see the module docstring.

    ``start_timeout`` bounds the wait for the harness to print its pty path.  The process ends on
    :meth:`close` (SIGTERM, then SIGKILL after 2 s), and by itself if this object's process dies
    (its stdin closes).
    """

    def __init__(self, elf: str | os.PathLike[str] | None = None, harness: str | os.PathLike[str] | None = None,
                 *, start_timeout: float = 10.0) -> None:
        d_elf, d_harness = default_paths()
        self.elf = Path(elf) if elf is not None else d_elf
        self.harness = Path(harness) if harness is not None else d_harness
        for p, what in ((self.elf, "firmware ELF"), (self.harness, "emulator harness")):
            if not p.exists():
                raise DeviceError(f"{what} {p} not found: run `make firmware` and `make -C emulator`")
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._edges: dict[str, list[tuple[int, int]]] = {p: [] for p in PINS}   # (cycle, level)
        self._levels = {p: 0 for p in PINS}
        self._t0_cycle: int | None = None
        self._t0s: list[int] = []                             # Timer0 start cycle of each boot
        self._resets: list[tuple[int, int]] = []              # (cycle, MCUSR bits) of each reset
        self._tone_runs: list[tuple[int, int, int]] = []      # (toggles, first cycle, last cycle)
        self._now_reply: int | None = None
        self._exit: str | None = None
        self._closed = False
        self._proc = subprocess.Popen([str(self.harness), str(self.elf)], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        self.url = self._read_pty_line(start_timeout)
        self._reader = threading.Thread(target=self._read_stdout, name="dopa_emu-stdout", daemon=True)
        self._reader.start()
        self._stderr: list[str] = []
        self._err_reader = threading.Thread(target=self._read_stderr, name="dopa_emu-stderr", daemon=True)
        self._err_reader.start()
        with self._cond:
            if not self._cond.wait_for(lambda: self._t0_cycle is not None or self._exit is not None, start_timeout):
                self.close()
                raise DeviceError("the emulated firmware did not start Timer0 (no T0 line from dopa_emu)")

    # ------------------------------------------------------------------ process I/O
    def _read_pty_line(self, timeout: float) -> str:
        assert self._proc.stdout is not None
        result: list[str] = []

        def first_line() -> None:
            result.append(self._proc.stdout.readline())

        t = threading.Thread(target=first_line, daemon=True)
        t.start()
        t.join(timeout)
        line = result[0].split() if result else []
        if len(line) != 2 or line[0] != "pty":
            self._proc.kill()
            err = self._proc.stderr.read() if self._proc.stderr else ""
            raise DeviceError(f"dopa_emu did not report a pty (got {line!r}): {err.strip()[-500:]}")
        return line[1]

    def _read_stdout(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            parts = line.split()
            if not parts:
                continue
            with self._cond:
                if parts[0] == "E" and len(parts) == 4 and parts[1] in self._edges:
                    pin, level, cycle = parts[1], int(parts[2]), int(parts[3])
                    if level != self._levels[pin]:          # the harness also reports pins set to their level
                        self._levels[pin] = level
                        self._edges[pin].append((cycle, level))
                elif parts[0] == "N" and len(parts) == 2:
                    self._now_reply = int(parts[1])
                elif parts[0] == "F" and len(parts) == 4:
                    self._tone_runs.append((int(parts[1]), int(parts[2]), int(parts[3])))
                elif parts[0] == "T0" and len(parts) == 2:
                    self._t0s.append(int(parts[1]))
                    if self._t0_cycle is None:
                        self._t0_cycle = self._t0s[0]
                elif parts[0] == "R" and len(parts) == 3:
                    self._resets.append((int(parts[2]), int(parts[1])))
                elif parts[0] == "X":
                    self._exit = " ".join(parts[1:])
                self._cond.notify_all()
        with self._cond:
            if self._exit is None:
                self._exit = "stdout closed"
            self._cond.notify_all()

    def _read_stderr(self) -> None:
        assert self._proc.stderr is not None
        for line in self._proc.stderr:
            if len(self._stderr) < 200:
                self._stderr.append(line.rstrip())

    def _command(self, text: str) -> None:
        if self._closed or self._proc.stdin is None:
            raise DeviceError("the emulator is closed")
        try:
            self._proc.stdin.write(text + "\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, ValueError) as exc:
            raise DeviceError(f"the emulator process ended ({self._exit or exc})") from exc

    # ------------------------------------------------------------------ time
    def _t0_of(self, cycle: int) -> int:
        """Timer0 start of the boot that ``cycle`` belongs to (the last one at or before it)."""
        with self._lock:
            i = bisect.bisect_right(self._t0s, cycle)
            return self._t0s[i - 1] if i else (self._t0s[0] if self._t0s else 0)

    def cycle_to_us(self, cycle: int) -> int:
        """Device time (the firmware's micros() clock of that boot, before it wraps) of an emulated CPU cycle."""
        return (cycle - self._t0_of(cycle)) // CYCLES_PER_US

    def us_to_cycle(self, t_us: int) -> int:
        """The cycle of device time ``t_us`` in the current boot."""
        with self._lock:
            t0 = self._t0s[-1] if self._t0s else 0
        return t0 + t_us * CYCLES_PER_US

    def now_cycle(self, timeout: float = 5.0) -> int:
        """The emulated CPU cycle counter right now."""
        with self._cond:
            self._now_reply = None
        self._command("now")
        with self._cond:
            if not self._cond.wait_for(lambda: self._now_reply is not None or self._exit is not None, timeout):
                raise DeviceError("the emulator did not answer 'now'")
            if self._now_reply is None:
                raise DeviceError(f"the emulator process ended ({self._exit})")
            return self._now_reply

    def now_us(self) -> int:
        """Device time in microseconds (the clock of the events' t_us, before wrapping)."""
        return self.cycle_to_us(self.now_cycle())

    def advance(self, us: int, timeout: float | None = None) -> None:
        """Wait until ``us`` of device time have passed (the emulator runs at about real time)."""
        target = self.now_cycle() + us * CYCLES_PER_US
        deadline = time.monotonic() + (timeout if timeout is not None else 5.0 + 3.0 * us / 1e6)
        while self.now_cycle() < target:
            if time.monotonic() > deadline:
                raise DeviceError(f"emulated time did not advance by {us} us in time")
            time.sleep(min(0.01, max(0.001, (target - self._now_reply) / F_CPU)))  # type: ignore[operator]

    # ------------------------------------------------------------------ pins
    def pin_edges(self, pin: str) -> list[tuple[int, int]]:
        """Changes of ``pin`` so far as (device_time_us, level), oldest first (all pins start low)."""
        return [(self.cycle_to_us(c), lv) for c, lv in self.edge_cycles(pin)]

    def edge_cycles(self, pin: str) -> list[tuple[int, int]]:
        """Changes of ``pin`` so far as (cpu_cycle, level): 62.5 ns resolution."""
        if pin not in self._edges:
            raise ValueError(f"unknown pin {pin!r}; use one of {', '.join(PINS)}")
        with self._lock:
            return list(self._edges[pin])

    def wait_edges(self, pin: str, count: int, timeout: float = 5.0) -> list[tuple[int, int]]:
        """Wait until ``pin`` has changed at least ``count`` times; returns pin_edges(pin)."""
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self._edges[pin]) >= count or self._exit is not None, timeout)
        if not ok or len(self._edges[pin]) < count:
            raise DeviceError(f"pin {pin} changed {len(self._edges[pin])} times, expected {count} within {timeout} s")
        return self.pin_edges(pin)

    def tone_frequencies(self) -> list[float]:
        """Frequency (Hz) of each finished tone, measured from the toggles of the OC1A pin (D9)."""
        with self._lock:
            runs = list(self._tone_runs)
        return [(n - 1) / 2 / ((last - first) / F_CPU) for n, first, last in runs if n > 1 and last > first]

    def set_lick(self, level: int, at_us: int | None = None) -> None:
        """Drive the lick input (D2) to ``level`` now, or at device time ``at_us`` if that is still ahead."""
        if at_us is None:
            self._command(f"lick {1 if level else 0}")
        else:
            self._command(f"lick {1 if level else 0} {self.us_to_cycle(at_us)}")

    def lick_train(self, at_us: int, period_us: float, count: int) -> None:
        """A bouncing contact: toggle the lick input ``count`` times, the first at device time ``at_us``, then
        every ``period_us`` (cycle-exact, any number of edges; a new train replaces what is left of the last)."""
        period = round(period_us * CYCLES_PER_US)
        if period <= 0 or count < 0:
            raise ValueError(f"need period_us > 0 and count >= 0, got {period_us}, {count}")
        self._command(f"train {self.us_to_cycle(at_us)} {period} {int(count)}")

    def set_analog_mv(self, millivolts: int) -> None:
        """Set the voltage on A0 (0..5000 mV against the 5 V AVcc reference; 2500 mV at start)."""
        if not 0 <= millivolts <= 5000:
            raise ValueError(f"millivolts must be in 0..5000, got {millivolts}")
        self._command(f"adc {int(millivolts)}")

    def reset(self, cause: str = "ext", timeout: float = 5.0) -> int:
        """Reset the MCU now (``ext``: the reset pin, ``wdt``: the watchdog, ``bod``: brown-out; MCUSR
        says which), as a board reset mid-session: RAM and registers start over, the EEPROM is kept,
        every output drops at once.  Waits until the firmware started Timer0 again; returns the cycle
        of the reset."""
        if cause not in ("ext", "wdt", "bod"):
            raise ValueError(f"cause must be ext, wdt or bod, got {cause!r}")
        with self._cond:
            boots, resets = len(self._t0s), len(self._resets)
        self._command(f"reset {cause}")
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._t0s) > boots and len(self._resets) > resets
                                       or self._exit is not None, timeout):
                raise DeviceError("the emulated firmware did not boot again after the reset")
            if self._exit is not None:
                raise DeviceError(f"the emulator process ended ({self._exit})")
            return self._resets[-1][0]

    def resets(self) -> list[int]:
        """Cycles of the resets so far."""
        with self._lock:
            return [c for c, _ in self._resets]

    # ------------------------------------------------------------------ life cycle
    @property
    def running(self) -> bool:
        return self._proc.poll() is None

    def close(self) -> None:
        """Stop the emulator (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(2.0)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(2.0)
        # the process is gone, so its stdout reaches end-of-file: let the reader thread finish before the
        # stream is closed under it (closing first raised "I/O operation on closed file" in that thread)
        if self._reader is not threading.current_thread():
            self._reader.join(2.0)
        for stream in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass

    safe = close

    def __enter__(self) -> "EmulatedDUT":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # best effort: never leave an emulator running
        try:
            self.close()
        except Exception:
            pass
