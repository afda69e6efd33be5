"""A deliberately tiny host for the HIL tests (not dopa_rl.rig.client), so they check the firmware against
the protocol itself."""
from __future__ import annotations

import time
from typing import Any, Callable

import serial

from dopa_rl.protocol import messages as P
from dopa_rl.protocol import codec


class Link:
    """Send commands with sequence numbers, collect device events once each (in seq order), ack them."""

    def __init__(self, url: str) -> None:
        self.port = serial.serial_for_url(url, baudrate=P.BAUD, timeout=0)
        self.decoder = codec.FrameDecoder()
        self.events: list[Any] = []
        self.expect = 0          # next device seq
        self.seq = 0
        self.quiet = False       # True: send nothing on our own (no EVENT_ACK), to test host silence
        self.session = 1         # HELLO session nonce (the same one resumes the session)
        self.epoch = 0           # the device session's tag (HELLO_REPLY.epoch), carried by every acknowledgement

    def send_raw(self, wire: bytes) -> None:
        self.port.write(wire)

    def send(self, name: str, seq: int | None = None, **fields: Any) -> int:
        if seq is None:
            self.seq = (self.seq + 1) & 0xFFFF
            seq = self.seq
        self.port.write(codec.encode(codec.message(name, **fields), seq))
        return seq

    def pump(self) -> None:
        got = False
        for rec in self.decoder.feed(self.port.read(4096)):
            if isinstance(rec.msg, P.HelloReply) and rec.seq == 0:
                self.expect = 0                      # a new session restarts the device sequence
                if not rec.msg.boot:
                    self.epoch = rec.msg.epoch
            if rec.seq == self.expect:
                self.events.append(rec.msg)
                self.expect = (self.expect + 1) & 0xFFFF
                got = True
        if got and not self.quiet:
            self.send("EVENT_ACK", next_expected_seq=self.expect, epoch=self.epoch)

    def wait(self, pred, timeout: float = 3.0, what: str = "event") -> Any:
        """First event (from the start of the session) satisfying pred."""
        end = time.monotonic() + timeout
        while True:
            self.pump()
            for e in self.events:
                if pred(e):
                    return e
            if time.monotonic() > end:
                raise AssertionError(f"no {what} within {timeout} s; got {[type(e).__name__ for e in self.events]}")
            time.sleep(0.002)

    def reply(self, seq: int, timeout: float = 3.0) -> Any:
        """The ACK or NACK answering command ``seq``."""
        return self.wait(lambda e: isinstance(e, (P.Ack, P.Nack)) and e.cmd_seq == seq, timeout, f"reply to seq {seq}")

    def command(self, name: str, **fields: Any) -> Any:
        return self.reply(self.send(name, **fields))

    def of(self, cls: type) -> list[Any]:
        self.pump()
        return [e for e in self.events if isinstance(e, cls)]

    def hello(self) -> P.HelloReply:
        """Open a session: HELLO until the reply (the first bytes may arrive before the UART is up)."""
        end = time.monotonic() + 5.0
        while time.monotonic() < end:
            seq = self.send("HELLO", protocol_version=P.PROTOCOL_VERSION, session=self.session,
                            budget_valve_ms=P.BUDGET_KEEP)
            try:
                return self.wait(lambda e: isinstance(e, P.HelloReply) and e.boot == 0 and e.cmd_seq == seq, 0.5)
            except AssertionError:
                continue
        raise AssertionError("no HELLO_REPLY")

    def keepalive(self, seconds: float) -> None:
        """Heartbeats every 100 ms for ``seconds`` of wall time, pumping events."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.send("HEARTBEAT", next_expected_seq=self.expect, epoch=self.epoch)
            stop = min(end, time.monotonic() + 0.1)
            while time.monotonic() < stop:
                self.pump()
                time.sleep(0.002)

    def keepalive_device(self, now_us: Callable[[], int], us: int, timeout: float = 30.0) -> None:
        """Heartbeats every 100 ms of wall time, pumping events, until ``us`` of device time (read by
        ``now_us``) have passed: the same device time however slowly a loaded machine runs the emulator."""
        target = now_us() + us
        end = time.monotonic() + timeout
        while now_us() < target:
            if time.monotonic() > end:
                raise TimeoutError(f"device time did not advance by {us} us within {timeout} s")
            self.keepalive(0.02)

    def close(self) -> None:
        self.port.close()
