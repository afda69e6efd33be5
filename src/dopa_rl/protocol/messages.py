"""Wire protocol constants, generated from protocol/messages.toml by tools/protocol_codegen.py.

Do not edit: change the toml and re-run ``python tools/protocol_codegen.py``.
"""
# fmt: off
from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

__all__ = ["PROTOCOL_VERSION", "SCHEMA_HASH", "BAUD", "MAX_FRAME", "HEADER_SIZE", "CRC_SIZE", "MAX_BODY",
           "MAX_ENCODED", "REPLY_WINDOW", "EVENT_RING", "RETRANSMIT_MS", "HOST_HEARTBEAT_MS", "DEVICE_HEARTBEAT_MS",
           "MAX_ACTIONS", "ANALOG_BATCH", "FIRMWARE_VERSION", "BUDGET_KEEP", "LIMITS_KEEP", "MINUTE_VALVE_MS",
           "PINS", "TONE_TIMER_HZ", "Limit", "LIMITS", "NackReason", "TripReason", "ResetCause", "Board", "Action",
           "TrialWhen", "CloseCause", "ErrorCode", "DecodeError", "StateBit", "ConfigFlag", "MsgId", "Hello",
           "Ping", "Configure", "ValvePulse", "ValveOpen", "ValveClose", "CueOn", "CueOff", "ToneOn", "ToneOff",
           "TtlPulse", "AnalogStart", "AnalogStop", "AllOff", "Heartbeat", "EventAck", "ProgramBegin",
           "ProgramAction", "ProgramLickWindow", "ProgramCommit", "TrialStart", "SyncStart", "SyncStop", "Ack",
           "Nack", "HelloReply", "Resumed", "LickOn", "LickOff", "ValveOpened", "ValveClosed", "CueOnset",
           "CueOffset", "ToneOnset", "ToneOffset", "TtlSent", "AnalogBatch", "DeviceHeartbeat", "SafetyTrip",
           "TrialStarted", "TrialEnded", "Error", "SyncPulse", "MessageSpec", "MESSAGES", "SPEC_BY_ID",
           "SPEC_BY_NAME", "SPEC_BY_CLASS", "ALLOWED_WHILE_DISARMED", "tone_top", "tone_applied_hz"]

PROTOCOL_VERSION = 3
SCHEMA_HASH = 0x0CC7A273
BAUD = 1000000
MAX_FRAME = 64
HEADER_SIZE = 3
CRC_SIZE = 2
MAX_BODY = 59
MAX_ENCODED = 66
REPLY_WINDOW = 16
EVENT_RING = 32
RETRANSMIT_MS = 50
HOST_HEARTBEAT_MS = 250
DEVICE_HEARTBEAT_MS = 500
MAX_ACTIONS = 16
ANALOG_BATCH = 8
FIRMWARE_VERSION = 256
BUDGET_KEEP = 4294967295
LIMITS_KEEP = 0
MINUTE_VALVE_MS = 10000

# Arduino digital pin numbers (14 = A0), the same on every device of this schema (the schema hash in HELLO_REPLY covers them); the AVR port bits are in firmware rig_avr.cpp.
PINS: dict[str, int] = {"lick": 2, "valve": 8, "cue": 13, "tone": 9, "ttl": 7, "analog": 14}
TONE_TIMER_HZ = 1000000


class Limit(NamedTuple):
    """Default value and hard bounds of a limit or argument."""

    default: int
    min: int
    max: int


LIMITS: dict[str, Limit] = {
    "max_valve_ms": Limit(1000, 1, 5000),
    "min_valve_gap_ms": Limit(50, 10, 60000),
    "budget_valve_ms": Limit(30000, 1, 3600000),
    "host_timeout_ms": Limit(1000, 100, 10000),
    "debounce_us": Limit(2000, 0, 50000),
    "valve_pulse_ms": Limit(0, 1, 65535),
    "tone_hz": Limit(4000, 50, 20000),
    "ttl_ms": Limit(10, 1, 1000),
    "analog_rate_hz": Limit(1000, 1, 1000),
    "sync_interval_ms": Limit(1000, 100, 60000),
}


class NackReason(IntEnum):
    """Why a command was refused (NACK.reason)."""

    BAD_CRC = 1
    UNKNOWN_TYPE = 2
    BAD_LENGTH = 3
    BAD_VALUE = 4
    NOT_ARMED = 5
    SAFETY = 6
    VERSION = 7
    PROGRAM_STATE = 8


class TripReason(IntEnum):
    """Why the safety kernel acted (SAFETY_TRIP.reason)."""

    MAX_OPEN = 1
    MIN_GAP = 2
    BUDGET = 3
    HOST_TIMEOUT = 4


class ResetCause(IntEnum):
    """Last reset cause (HELLO_REPLY.reset_cause)."""

    UNKNOWN = 0
    POWER_ON = 1
    EXTERNAL = 2
    BROWN_OUT = 3
    WATCHDOG = 4
    SOFTWARE = 5


class Board(IntEnum):
    """Board id (HELLO_REPLY.board)."""

    UNKNOWN = 0
    UNO = 1
    NANO = 2
    SIMAVR = 3
    PYTHON_SIM = 4


class Action(IntEnum):
    """Trial program actions (PROGRAM_ACTION.action, PROGRAM_LICK_WINDOW.action); arg meaning in brackets."""

    NONE = 0
    CUE_ON = 1
    CUE_OFF = 2
    TONE_ON = 3
    TONE_OFF = 4
    VALVE_PULSE = 5
    TTL_PULSE = 6


class TrialWhen(IntEnum):
    """TRIAL_START.when."""

    NOW = 0
    AFTER_CURRENT = 1


class CloseCause(IntEnum):
    """Why the valve closed (VALVE_CLOSED.cause)."""

    PULSE_END = 0
    COMMAND = 1
    MAX_OPEN = 2
    BUDGET = 3
    ALL_OFF = 4
    HOST_TIMEOUT = 5


class ErrorCode(IntEnum):
    """ERROR.code."""

    EVENT_OVERFLOW = 1
    RX_OVERFLOW = 2
    ADC_OVERRUN = 3
    INTERNAL = 4
    LICK_OVERFLOW = 5


class DecodeError(IntEnum):
    """Frame decoder error classes (counted, never raised)."""

    OK = 0
    BAD_COBS = 1
    BAD_CRC = 2
    TOO_LONG = 3
    UNKNOWN_TYPE = 4
    BAD_LENGTH = 5


class StateBit(IntEnum):
    """Bits of DEVICE_HEARTBEAT.state."""

    ARMED = 1
    VALVE = 2
    CUE = 4
    TONE = 8
    TTL = 16
    ANALOG = 32
    TRIAL_RUNNING = 64
    TRIAL_PENDING = 128


class ConfigFlag(IntEnum):
    """Bits of CONFIGURE.flags / HELLO.flags."""

    LICK_ACTIVE_LOW = 1


class MsgId(IntEnum):
    """Message type byte of every command and event."""

    HELLO = 0x01
    PING = 0x02
    CONFIGURE = 0x03
    VALVE_PULSE = 0x10
    VALVE_OPEN = 0x11
    VALVE_CLOSE = 0x12
    CUE_ON = 0x13
    CUE_OFF = 0x14
    TONE_ON = 0x15
    TONE_OFF = 0x16
    TTL_PULSE = 0x17
    ANALOG_START = 0x18
    ANALOG_STOP = 0x19
    ALL_OFF = 0x1A
    HEARTBEAT = 0x20
    EVENT_ACK = 0x21
    PROGRAM_BEGIN = 0x30
    PROGRAM_ACTION = 0x31
    PROGRAM_LICK_WINDOW = 0x32
    PROGRAM_COMMIT = 0x33
    TRIAL_START = 0x34
    SYNC_START = 0x1B
    SYNC_STOP = 0x1C
    ACK = 0x80
    NACK = 0x81
    HELLO_REPLY = 0x82
    RESUMED = 0x92
    LICK_ON = 0x83
    LICK_OFF = 0x84
    VALVE_OPENED = 0x85
    VALVE_CLOSED = 0x86
    CUE_ONSET = 0x87
    CUE_OFFSET = 0x88
    TONE_ONSET = 0x89
    TONE_OFFSET = 0x8A
    TTL_SENT = 0x8B
    ANALOG_BATCH = 0x8C
    DEVICE_HEARTBEAT = 0x8D
    SAFETY_TRIP = 0x8E
    TRIAL_STARTED = 0x8F
    TRIAL_ENDED = 0x90
    ERROR = 0x91
    SYNC_PULSE = 0x93


class Hello(NamedTuple):
    """Command 0x01: Open or resume a session (docs/rig.md, Sessions): checks the protocol version and arms the outputs. session = the host's nonzero session nonce: the device's current session resumes (re-armed; reply window, device seq, event ring, budget and limits kept, the limits in this HELLO ignored; reply: RESUMED); another nonce (or 0, or the first HELLO after a reset) starts a new session whose limits are this HELLO's (max_valve_ms = limits_keep: the configured ones) with budget_valve_ms as its volume budget (budget_keep: the configured one), applied before the outputs arm (reply: HELLO_REPLY; a limit outside its bounds: NACK BAD_VALUE, nothing changed)."""

    protocol_version: int
    session: int
    budget_valve_ms: int
    max_valve_ms: int
    min_valve_gap_ms: int
    host_timeout_ms: int
    debounce_us: int
    flags: int


class Ping(NamedTuple):
    """Command 0x02: Round trip. ACK value = nonce."""

    nonce: int


class Configure(NamedTuple):
    """Command 0x03: Set safety limits, lick debounce and input flags (config_flag). ACK value = 0."""

    max_valve_ms: int
    min_valve_gap_ms: int
    budget_valve_ms: int
    host_timeout_ms: int
    debounce_us: int
    flags: int


class ValvePulse(NamedTuple):
    """Command 0x10: Open the valve for ms (device-timed). ACK value = ms applied (clamped to max_valve_ms; a pulse beyond the remaining budget is refused). A pulse while the valve is open re-times the close."""

    ms: int


class ValveOpen(NamedTuple):
    """Command 0x11: Open the valve until VALVE_CLOSE (closed anyway after max_valve_ms). ACK value = ms until the automatic close."""

    pass


class ValveClose(NamedTuple):
    """Command 0x12: Close the valve. ACK value = 0."""

    pass


class CueOn(NamedTuple):
    """Command 0x13: Cue LED on. ACK value = 1."""

    pass


class CueOff(NamedTuple):
    """Command 0x14: Cue LED off. ACK value = 0."""

    pass


class ToneOn(NamedTuple):
    """Command 0x15: Tone on at freq_hz. ACK value = frequency actually produced (Hz)."""

    freq_hz: int


class ToneOff(NamedTuple):
    """Command 0x16: Tone off. ACK value = 0."""

    pass


class TtlPulse(NamedTuple):
    """Command 0x17: TTL high for ms. ACK value = ms."""

    ms: int


class AnalogStart(NamedTuple):
    """Command 0x18: Start sampling A0 at rate_hz, batched in ANALOG_BATCH events. ACK value = rate applied."""

    rate_hz: int


class AnalogStop(NamedTuple):
    """Command 0x19: Stop sampling (a partial batch is flushed). ACK value = 0."""

    pass


class AllOff(NamedTuple):
    """Command 0x1A: Every output off, analog stopped, trial programs cleared; stays armed. ACK value = 0."""

    pass


class Heartbeat(NamedTuple):
    """Command 0x20: Host is alive; also acknowledges events up to next_expected_seq (like EVENT_ACK, under the same epoch rule). ACK value = number of unacknowledged events in the device ring."""

    next_expected_seq: int
    epoch: int


class EventAck(NamedTuple):
    """Command 0x21: Cumulative acknowledgement: every device seq before next_expected_seq was received. Never answered. Applied only when epoch is the device session's (HELLO_REPLY.epoch): an acknowledgement meant for another device session (before a reset) never removes this one's events."""

    next_expected_seq: int
    epoch: int


class ProgramBegin(NamedTuple):
    """Command 0x30: Start uploading a trial program (replaces any upload in progress). ACK value = n_actions."""

    trial_id: int
    duration_ms: int
    n_actions: int


class ProgramAction(NamedTuple):
    """Command 0x31: Action index of the program being uploaded, at offset_us from trial start. ACK value = index."""

    index: int
    offset_us: int
    action: int
    arg: int


class ProgramLickWindow(NamedTuple):
    """Command 0x32: Optional lick-contingent action: the first lick onset in [start_us, end_us) triggers it. ACK value = action."""

    start_us: int
    end_us: int
    action: int
    arg: int


class ProgramCommit(NamedTuple):
    """Command 0x33: The uploaded program becomes the pending one (replacing a previous pending). ACK value = trial_id (as i32)."""

    pass


class TrialStart(NamedTuple):
    """Command 0x34: Start the pending program now (when=NOW) or when the running trial ends (when=AFTER_CURRENT). ACK value = trial_id."""

    when: int


class SyncStart(NamedTuple):
    """Command 0x1B: Send a TTL pulse of pulse_ms (ttl_ms limits) now and then after each random interval in [min_ms, max_ms] (sync_interval_ms limits, min_ms <= max_ms), each reported as SYNC_PULSE; ALL_OFF and host timeouts stop them. ACK value = pulse_ms."""

    min_ms: int
    max_ms: int
    pulse_ms: int
    seed: int


class SyncStop(NamedTuple):
    """Command 0x1C: Stop the sync pulses. ACK value = pulses sent since SYNC_START."""

    pass


class Ack(NamedTuple):
    """Event 0x80: Command cmd_seq of type cmd_type was executed; value = value applied."""

    t_us: int
    cmd_seq: int
    cmd_type: int
    value: int


class Nack(NamedTuple):
    """Event 0x81: Command cmd_seq of type cmd_type was refused (nack_reason)."""

    t_us: int
    cmd_seq: int
    cmd_type: int
    reason: int


class HelloReply(NamedTuple):
    """Event 0x82: Answer to HELLO (boot = 0, cmd_seq = the HELLO's seq) or sent unsolicited after reset (boot = 1, cmd_seq = 0, session = 0). Short on purpose (it must get through a bad line): the pins, limits and sizes are not in it; the pins and max_actions are fixed by the schema hash (messages.toml), the limits are the HELLO's (or, for limits_keep, the configured ones). event_ring = frames the device's event ring holds; session = the new session's nonce; dropped = unacknowledged events the new session discarded; lost_total = events lost since reset (ring overflow and dropped; survives HELLO). epoch = this device session's tag (high byte: boots counted in the device's non-volatile memory; low byte: sessions since boot, 1..255): nonzero, different after every reset and every new session; 0 in the boot banner. budget_used_ms = valve time the session this HELLO ended had used (ms, rounded up; 0 at boot and after a reset)."""

    t_us: int
    cmd_seq: int
    boot: int
    protocol_version: int
    firmware_version: int
    schema_hash: int
    board: int
    reset_cause: int
    event_ring: int
    session: int
    dropped: int
    lost_total: int
    epoch: int
    budget_used_ms: int


class Resumed(NamedTuple):
    """Event 0x92: Answer to a HELLO that resumed the device's current session (cmd_seq = the HELLO's seq): epoch = that session's tag (the host takes the resume only when it is the epoch of the HELLO_REPLY it took; another epoch means a new session whose HELLO_REPLY it missed), lost_total as in HELLO_REPLY, budget_used_ms = valve time the session has used (ms, rounded up)."""

    t_us: int
    cmd_seq: int
    epoch: int
    lost_total: int
    budget_used_ms: int


class LickOn(NamedTuple):
    """Event 0x83: Debounced lick onset; t_us = time of the first edge of the change."""

    t_us: int


class LickOff(NamedTuple):
    """Event 0x84: Debounced lick offset; t_us = time of the first edge of the change."""

    t_us: int


class ValveOpened(NamedTuple):
    """Event 0x85: Valve opened; planned_ms = planned open time (max_valve_ms for VALVE_OPEN)."""

    t_us: int
    planned_ms: int


class ValveClosed(NamedTuple):
    """Event 0x86: Valve closed; open_us = time it was open; cause = close_cause."""

    t_us: int
    open_us: int
    cause: int


class CueOnset(NamedTuple):
    """Event 0x87: Cue LED turned on."""

    t_us: int


class CueOffset(NamedTuple):
    """Event 0x88: Cue LED turned off."""

    t_us: int


class ToneOnset(NamedTuple):
    """Event 0x89: Tone turned on at freq_hz."""

    t_us: int
    freq_hz: int


class ToneOffset(NamedTuple):
    """Event 0x8A: Tone turned off."""

    t_us: int


class TtlSent(NamedTuple):
    """Event 0x8B: TTL pulse rising edge at t_us, high for ms."""

    t_us: int
    ms: int


class AnalogBatch(NamedTuple):
    """Event 0x8C: n analog samples (n <= 8, unused slots 0); t_us = time of the first sample."""

    t_us: int
    rate_hz: int
    n: int
    samples: tuple[int, ...]


class DeviceHeartbeat(NamedTuple):
    """Event 0x8D: Device is alive (every device_heartbeat_ms while armed); counters wrap; budget_used_ms = valve time the session has used (ms, rounded up; a valve open now counts up to now)."""

    t_us: int
    rx_frames: int
    rx_errors: int
    unacked: int
    state: int
    budget_used_ms: int


class SafetyTrip(NamedTuple):
    """Event 0x8E: The safety kernel acted (trip_reason); value = the offending quantity (ms)."""

    t_us: int
    reason: int
    value: int


class TrialStarted(NamedTuple):
    """Event 0x8F: A trial program started."""

    t_us: int
    trial_id: int


class TrialEnded(NamedTuple):
    """Event 0x90: A trial program ended (duration elapsed, or cleared by ALL_OFF / host timeout: aborted = 1)."""

    t_us: int
    trial_id: int
    aborted: int


class Error(NamedTuple):
    """Event 0x91: Something went wrong on the device (error_code); value = count or detail."""

    t_us: int
    code: int
    value: int


class SyncPulse(NamedTuple):
    """Event 0x93: A sync pulse's rising edge on the TTL output at t_us; n = its number since SYNC_START (0-based), high for ms."""

    t_us: int
    n: int
    ms: int


@dataclass(frozen=True)
class MessageSpec:
    """Layout of one message: id, name, direction, NamedTuple class, fields, struct."""

    id: int
    name: str
    direction: str
    cls: type
    fields: tuple[tuple[str, str, int], ...]  # (name, type, count)
    struct: struct.Struct

    @property
    def size(self) -> int:
        """Body size in bytes."""
        return self.struct.size


MESSAGES: tuple[MessageSpec, ...] = (
    MessageSpec(0x01, "HELLO", "command", Hello, (("protocol_version", "u16", 1), ("session", "u32", 1), ("budget_valve_ms", "u32", 1), ("max_valve_ms", "u16", 1), ("min_valve_gap_ms", "u16", 1), ("host_timeout_ms", "u16", 1), ("debounce_us", "u16", 1), ("flags", "u8", 1)), struct.Struct("<HIIHHHHB")),
    MessageSpec(0x02, "PING", "command", Ping, (("nonce", "i32", 1),), struct.Struct("<i")),
    MessageSpec(0x03, "CONFIGURE", "command", Configure, (("max_valve_ms", "u16", 1), ("min_valve_gap_ms", "u16", 1), ("budget_valve_ms", "u32", 1), ("host_timeout_ms", "u16", 1), ("debounce_us", "u16", 1), ("flags", "u8", 1)), struct.Struct("<HHIHHB")),
    MessageSpec(0x10, "VALVE_PULSE", "command", ValvePulse, (("ms", "u16", 1),), struct.Struct("<H")),
    MessageSpec(0x11, "VALVE_OPEN", "command", ValveOpen, (), struct.Struct("<")),
    MessageSpec(0x12, "VALVE_CLOSE", "command", ValveClose, (), struct.Struct("<")),
    MessageSpec(0x13, "CUE_ON", "command", CueOn, (), struct.Struct("<")),
    MessageSpec(0x14, "CUE_OFF", "command", CueOff, (), struct.Struct("<")),
    MessageSpec(0x15, "TONE_ON", "command", ToneOn, (("freq_hz", "u16", 1),), struct.Struct("<H")),
    MessageSpec(0x16, "TONE_OFF", "command", ToneOff, (), struct.Struct("<")),
    MessageSpec(0x17, "TTL_PULSE", "command", TtlPulse, (("ms", "u16", 1),), struct.Struct("<H")),
    MessageSpec(0x18, "ANALOG_START", "command", AnalogStart, (("rate_hz", "u16", 1),), struct.Struct("<H")),
    MessageSpec(0x19, "ANALOG_STOP", "command", AnalogStop, (), struct.Struct("<")),
    MessageSpec(0x1A, "ALL_OFF", "command", AllOff, (), struct.Struct("<")),
    MessageSpec(0x20, "HEARTBEAT", "command", Heartbeat, (("next_expected_seq", "u16", 1), ("epoch", "u16", 1)), struct.Struct("<HH")),
    MessageSpec(0x21, "EVENT_ACK", "command", EventAck, (("next_expected_seq", "u16", 1), ("epoch", "u16", 1)), struct.Struct("<HH")),
    MessageSpec(0x30, "PROGRAM_BEGIN", "command", ProgramBegin, (("trial_id", "u32", 1), ("duration_ms", "u32", 1), ("n_actions", "u8", 1)), struct.Struct("<IIB")),
    MessageSpec(0x31, "PROGRAM_ACTION", "command", ProgramAction, (("index", "u8", 1), ("offset_us", "u32", 1), ("action", "u8", 1), ("arg", "u16", 1)), struct.Struct("<BIBH")),
    MessageSpec(0x32, "PROGRAM_LICK_WINDOW", "command", ProgramLickWindow, (("start_us", "u32", 1), ("end_us", "u32", 1), ("action", "u8", 1), ("arg", "u16", 1)), struct.Struct("<IIBH")),
    MessageSpec(0x33, "PROGRAM_COMMIT", "command", ProgramCommit, (), struct.Struct("<")),
    MessageSpec(0x34, "TRIAL_START", "command", TrialStart, (("when", "u8", 1),), struct.Struct("<B")),
    MessageSpec(0x1B, "SYNC_START", "command", SyncStart, (("min_ms", "u16", 1), ("max_ms", "u16", 1), ("pulse_ms", "u16", 1), ("seed", "u32", 1)), struct.Struct("<HHHI")),
    MessageSpec(0x1C, "SYNC_STOP", "command", SyncStop, (), struct.Struct("<")),
    MessageSpec(0x80, "ACK", "event", Ack, (("t_us", "u32", 1), ("cmd_seq", "u16", 1), ("cmd_type", "u8", 1), ("value", "i32", 1)), struct.Struct("<IHBi")),
    MessageSpec(0x81, "NACK", "event", Nack, (("t_us", "u32", 1), ("cmd_seq", "u16", 1), ("cmd_type", "u8", 1), ("reason", "u8", 1)), struct.Struct("<IHBB")),
    MessageSpec(0x82, "HELLO_REPLY", "event", HelloReply, (("t_us", "u32", 1), ("cmd_seq", "u16", 1), ("boot", "u8", 1), ("protocol_version", "u16", 1), ("firmware_version", "u16", 1), ("schema_hash", "u32", 1), ("board", "u8", 1), ("reset_cause", "u8", 1), ("event_ring", "u8", 1), ("session", "u32", 1), ("dropped", "u16", 1), ("lost_total", "u32", 1), ("epoch", "u16", 1), ("budget_used_ms", "u32", 1)), struct.Struct("<IHBHHIBBBIHIHI")),
    MessageSpec(0x92, "RESUMED", "event", Resumed, (("t_us", "u32", 1), ("cmd_seq", "u16", 1), ("epoch", "u16", 1), ("lost_total", "u32", 1), ("budget_used_ms", "u32", 1)), struct.Struct("<IHHII")),
    MessageSpec(0x83, "LICK_ON", "event", LickOn, (("t_us", "u32", 1),), struct.Struct("<I")),
    MessageSpec(0x84, "LICK_OFF", "event", LickOff, (("t_us", "u32", 1),), struct.Struct("<I")),
    MessageSpec(0x85, "VALVE_OPENED", "event", ValveOpened, (("t_us", "u32", 1), ("planned_ms", "u16", 1)), struct.Struct("<IH")),
    MessageSpec(0x86, "VALVE_CLOSED", "event", ValveClosed, (("t_us", "u32", 1), ("open_us", "u32", 1), ("cause", "u8", 1)), struct.Struct("<IIB")),
    MessageSpec(0x87, "CUE_ONSET", "event", CueOnset, (("t_us", "u32", 1),), struct.Struct("<I")),
    MessageSpec(0x88, "CUE_OFFSET", "event", CueOffset, (("t_us", "u32", 1),), struct.Struct("<I")),
    MessageSpec(0x89, "TONE_ONSET", "event", ToneOnset, (("t_us", "u32", 1), ("freq_hz", "u16", 1)), struct.Struct("<IH")),
    MessageSpec(0x8A, "TONE_OFFSET", "event", ToneOffset, (("t_us", "u32", 1),), struct.Struct("<I")),
    MessageSpec(0x8B, "TTL_SENT", "event", TtlSent, (("t_us", "u32", 1), ("ms", "u16", 1)), struct.Struct("<IH")),
    MessageSpec(0x8C, "ANALOG_BATCH", "event", AnalogBatch, (("t_us", "u32", 1), ("rate_hz", "u16", 1), ("n", "u8", 1), ("samples", "u16", 8)), struct.Struct("<IHB8H")),
    MessageSpec(0x8D, "DEVICE_HEARTBEAT", "event", DeviceHeartbeat, (("t_us", "u32", 1), ("rx_frames", "u16", 1), ("rx_errors", "u16", 1), ("unacked", "u8", 1), ("state", "u8", 1), ("budget_used_ms", "u32", 1)), struct.Struct("<IHHBBI")),
    MessageSpec(0x8E, "SAFETY_TRIP", "event", SafetyTrip, (("t_us", "u32", 1), ("reason", "u8", 1), ("value", "i32", 1)), struct.Struct("<IBi")),
    MessageSpec(0x8F, "TRIAL_STARTED", "event", TrialStarted, (("t_us", "u32", 1), ("trial_id", "u32", 1)), struct.Struct("<II")),
    MessageSpec(0x90, "TRIAL_ENDED", "event", TrialEnded, (("t_us", "u32", 1), ("trial_id", "u32", 1), ("aborted", "u8", 1)), struct.Struct("<IIB")),
    MessageSpec(0x91, "ERROR", "event", Error, (("t_us", "u32", 1), ("code", "u8", 1), ("value", "i32", 1)), struct.Struct("<IBi")),
    MessageSpec(0x93, "SYNC_PULSE", "event", SyncPulse, (("t_us", "u32", 1), ("n", "u32", 1), ("ms", "u16", 1)), struct.Struct("<IIH")),
)
SPEC_BY_ID: dict[int, MessageSpec] = {s.id: s for s in MESSAGES}
SPEC_BY_NAME: dict[str, MessageSpec] = {s.name: s for s in MESSAGES}
SPEC_BY_CLASS: dict[type, MessageSpec] = {s.cls: s for s in MESSAGES}

# Commands a disarmed device executes; every other command is refused with NACK NOT_ARMED.
ALLOWED_WHILE_DISARMED: frozenset[int] = frozenset({MsgId.HELLO, MsgId.PING, MsgId.CONFIGURE, MsgId.HEARTBEAT, MsgId.EVENT_ACK, MsgId.ALL_OFF})


def tone_top(freq_hz: int) -> int:
    """Timer1 toggles the tone pin at timer_hz: top = round(timer_hz / f); the applied frequency is round(timer_hz / top) (integer rounding, half up)."""
    return (TONE_TIMER_HZ + freq_hz // 2) // freq_hz


def tone_applied_hz(freq_hz: int) -> int:
    """The frequency the tone timer really makes for a requested ``freq_hz`` (what ACKs report)."""
    top = tone_top(freq_hz)
    return (TONE_TIMER_HZ + top // 2) // top
