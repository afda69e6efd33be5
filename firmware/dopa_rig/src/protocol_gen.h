/* Wire protocol of the dopa_rl rig. GENERATED from protocol/messages.toml by
 * tools/protocol_codegen.py: do not edit. C99 and C++ (avr-gcc 5.4), all fields little-endian. */
#ifndef DOPA_PROTOCOL_GEN_H
#define DOPA_PROTOCOL_GEN_H

#include <stdint.h>

#define DOPA_PROTOCOL_VERSION 3u
#define DOPA_SCHEMA_HASH 0x0CC7A273UL
#define DOPA_BAUD 1000000UL
#define DOPA_MAX_FRAME 64u
#define DOPA_HEADER_SIZE 3u
#define DOPA_CRC_SIZE 2u
#define DOPA_MAX_BODY 59u
#define DOPA_MAX_ENCODED 66u
#define DOPA_REPLY_WINDOW 16u
#define DOPA_EVENT_RING 32u
#define DOPA_RETRANSMIT_MS 50u
#define DOPA_HOST_HEARTBEAT_MS 250u
#define DOPA_DEVICE_HEARTBEAT_MS 500u
#define DOPA_MAX_ACTIONS 16u
#define DOPA_ANALOG_BATCH 8u
#define DOPA_FIRMWARE_VERSION 256u
#define DOPA_BUDGET_KEEP 4294967295u
#define DOPA_LIMITS_KEEP 0u
#define DOPA_MINUTE_VALVE_MS 10000u

/* Arduino digital pin numbers (14 = A0), the same on every device of this schema (the schema hash in HELLO_REPLY covers them); the AVR port bits are in firmware rig_avr.cpp. */
#define DOPA_PIN_LICK 2u
#define DOPA_PIN_VALVE 8u
#define DOPA_PIN_CUE 13u
#define DOPA_PIN_TONE 9u
#define DOPA_PIN_TTL 7u
#define DOPA_PIN_ANALOG 14u

/* Timer1 toggles the tone pin at timer_hz: top = round(timer_hz / f); the applied frequency is round(timer_hz / top) (integer rounding, half up). */
#define DOPA_TONE_TIMER_HZ 1000000UL

/* limits: default and hard bounds */
#define DOPA_LIMIT_MAX_VALVE_MS_DEFAULT 1000UL
#define DOPA_LIMIT_MAX_VALVE_MS_MIN 1UL
#define DOPA_LIMIT_MAX_VALVE_MS_MAX 5000UL
#define DOPA_LIMIT_MIN_VALVE_GAP_MS_DEFAULT 50UL
#define DOPA_LIMIT_MIN_VALVE_GAP_MS_MIN 10UL
#define DOPA_LIMIT_MIN_VALVE_GAP_MS_MAX 60000UL
#define DOPA_LIMIT_BUDGET_VALVE_MS_DEFAULT 30000UL
#define DOPA_LIMIT_BUDGET_VALVE_MS_MIN 1UL
#define DOPA_LIMIT_BUDGET_VALVE_MS_MAX 3600000UL
#define DOPA_LIMIT_HOST_TIMEOUT_MS_DEFAULT 1000UL
#define DOPA_LIMIT_HOST_TIMEOUT_MS_MIN 100UL
#define DOPA_LIMIT_HOST_TIMEOUT_MS_MAX 10000UL
#define DOPA_LIMIT_DEBOUNCE_US_DEFAULT 2000UL
#define DOPA_LIMIT_DEBOUNCE_US_MIN 0UL
#define DOPA_LIMIT_DEBOUNCE_US_MAX 50000UL
#define DOPA_LIMIT_VALVE_PULSE_MS_DEFAULT 0UL
#define DOPA_LIMIT_VALVE_PULSE_MS_MIN 1UL
#define DOPA_LIMIT_VALVE_PULSE_MS_MAX 65535UL
#define DOPA_LIMIT_TONE_HZ_DEFAULT 4000UL
#define DOPA_LIMIT_TONE_HZ_MIN 50UL
#define DOPA_LIMIT_TONE_HZ_MAX 20000UL
#define DOPA_LIMIT_TTL_MS_DEFAULT 10UL
#define DOPA_LIMIT_TTL_MS_MIN 1UL
#define DOPA_LIMIT_TTL_MS_MAX 1000UL
#define DOPA_LIMIT_ANALOG_RATE_HZ_DEFAULT 1000UL
#define DOPA_LIMIT_ANALOG_RATE_HZ_MIN 1UL
#define DOPA_LIMIT_ANALOG_RATE_HZ_MAX 1000UL
#define DOPA_LIMIT_SYNC_INTERVAL_MS_DEFAULT 1000UL
#define DOPA_LIMIT_SYNC_INTERVAL_MS_MIN 100UL
#define DOPA_LIMIT_SYNC_INTERVAL_MS_MAX 60000UL

/* Why a command was refused (NACK.reason). */
#define DOPA_NACK_REASON_BAD_CRC 1u
#define DOPA_NACK_REASON_UNKNOWN_TYPE 2u
#define DOPA_NACK_REASON_BAD_LENGTH 3u
#define DOPA_NACK_REASON_BAD_VALUE 4u
#define DOPA_NACK_REASON_NOT_ARMED 5u
#define DOPA_NACK_REASON_SAFETY 6u
#define DOPA_NACK_REASON_VERSION 7u
#define DOPA_NACK_REASON_PROGRAM_STATE 8u

/* Why the safety kernel acted (SAFETY_TRIP.reason). */
#define DOPA_TRIP_REASON_MAX_OPEN 1u
#define DOPA_TRIP_REASON_MIN_GAP 2u
#define DOPA_TRIP_REASON_BUDGET 3u
#define DOPA_TRIP_REASON_HOST_TIMEOUT 4u

/* Last reset cause (HELLO_REPLY.reset_cause). */
#define DOPA_RESET_CAUSE_UNKNOWN 0u
#define DOPA_RESET_CAUSE_POWER_ON 1u
#define DOPA_RESET_CAUSE_EXTERNAL 2u
#define DOPA_RESET_CAUSE_BROWN_OUT 3u
#define DOPA_RESET_CAUSE_WATCHDOG 4u
#define DOPA_RESET_CAUSE_SOFTWARE 5u

/* Board id (HELLO_REPLY.board). */
#define DOPA_BOARD_UNKNOWN 0u
#define DOPA_BOARD_UNO 1u
#define DOPA_BOARD_NANO 2u
#define DOPA_BOARD_SIMAVR 3u
#define DOPA_BOARD_PYTHON_SIM 4u

/* Trial program actions (PROGRAM_ACTION.action, PROGRAM_LICK_WINDOW.action); arg meaning in brackets. */
#define DOPA_ACTION_NONE 0u
#define DOPA_ACTION_CUE_ON 1u
#define DOPA_ACTION_CUE_OFF 2u
#define DOPA_ACTION_TONE_ON 3u
#define DOPA_ACTION_TONE_OFF 4u
#define DOPA_ACTION_VALVE_PULSE 5u
#define DOPA_ACTION_TTL_PULSE 6u

/* TRIAL_START.when. */
#define DOPA_TRIAL_WHEN_NOW 0u
#define DOPA_TRIAL_WHEN_AFTER_CURRENT 1u

/* Why the valve closed (VALVE_CLOSED.cause). */
#define DOPA_CLOSE_CAUSE_PULSE_END 0u
#define DOPA_CLOSE_CAUSE_COMMAND 1u
#define DOPA_CLOSE_CAUSE_MAX_OPEN 2u
#define DOPA_CLOSE_CAUSE_BUDGET 3u
#define DOPA_CLOSE_CAUSE_ALL_OFF 4u
#define DOPA_CLOSE_CAUSE_HOST_TIMEOUT 5u

/* ERROR.code. */
#define DOPA_ERROR_CODE_EVENT_OVERFLOW 1u
#define DOPA_ERROR_CODE_RX_OVERFLOW 2u
#define DOPA_ERROR_CODE_ADC_OVERRUN 3u
#define DOPA_ERROR_CODE_INTERNAL 4u
#define DOPA_ERROR_CODE_LICK_OVERFLOW 5u

/* Frame decoder error classes (counted, never raised). */
#define DOPA_DECODE_ERROR_OK 0u
#define DOPA_DECODE_ERROR_BAD_COBS 1u
#define DOPA_DECODE_ERROR_BAD_CRC 2u
#define DOPA_DECODE_ERROR_TOO_LONG 3u
#define DOPA_DECODE_ERROR_UNKNOWN_TYPE 4u
#define DOPA_DECODE_ERROR_BAD_LENGTH 5u

/* Bits of DEVICE_HEARTBEAT.state. */
#define DOPA_STATE_BIT_ARMED 1u
#define DOPA_STATE_BIT_VALVE 2u
#define DOPA_STATE_BIT_CUE 4u
#define DOPA_STATE_BIT_TONE 8u
#define DOPA_STATE_BIT_TTL 16u
#define DOPA_STATE_BIT_ANALOG 32u
#define DOPA_STATE_BIT_TRIAL_RUNNING 64u
#define DOPA_STATE_BIT_TRIAL_PENDING 128u

/* Bits of CONFIGURE.flags / HELLO.flags. */
#define DOPA_CONFIG_FLAG_LICK_ACTIVE_LOW 1u

/* message ids (commands 0x01..0x7F host->device, events 0x80..0xFF device->host) and body sizes */
#define DOPA_MSG_HELLO 0x01u
#define DOPA_MSG_HELLO_SIZE 19u
#define DOPA_MSG_PING 0x02u
#define DOPA_MSG_PING_SIZE 4u
#define DOPA_MSG_CONFIGURE 0x03u
#define DOPA_MSG_CONFIGURE_SIZE 13u
#define DOPA_MSG_VALVE_PULSE 0x10u
#define DOPA_MSG_VALVE_PULSE_SIZE 2u
#define DOPA_MSG_VALVE_OPEN 0x11u
#define DOPA_MSG_VALVE_OPEN_SIZE 0u
#define DOPA_MSG_VALVE_CLOSE 0x12u
#define DOPA_MSG_VALVE_CLOSE_SIZE 0u
#define DOPA_MSG_CUE_ON 0x13u
#define DOPA_MSG_CUE_ON_SIZE 0u
#define DOPA_MSG_CUE_OFF 0x14u
#define DOPA_MSG_CUE_OFF_SIZE 0u
#define DOPA_MSG_TONE_ON 0x15u
#define DOPA_MSG_TONE_ON_SIZE 2u
#define DOPA_MSG_TONE_OFF 0x16u
#define DOPA_MSG_TONE_OFF_SIZE 0u
#define DOPA_MSG_TTL_PULSE 0x17u
#define DOPA_MSG_TTL_PULSE_SIZE 2u
#define DOPA_MSG_ANALOG_START 0x18u
#define DOPA_MSG_ANALOG_START_SIZE 2u
#define DOPA_MSG_ANALOG_STOP 0x19u
#define DOPA_MSG_ANALOG_STOP_SIZE 0u
#define DOPA_MSG_ALL_OFF 0x1Au
#define DOPA_MSG_ALL_OFF_SIZE 0u
#define DOPA_MSG_HEARTBEAT 0x20u
#define DOPA_MSG_HEARTBEAT_SIZE 4u
#define DOPA_MSG_EVENT_ACK 0x21u
#define DOPA_MSG_EVENT_ACK_SIZE 4u
#define DOPA_MSG_PROGRAM_BEGIN 0x30u
#define DOPA_MSG_PROGRAM_BEGIN_SIZE 9u
#define DOPA_MSG_PROGRAM_ACTION 0x31u
#define DOPA_MSG_PROGRAM_ACTION_SIZE 8u
#define DOPA_MSG_PROGRAM_LICK_WINDOW 0x32u
#define DOPA_MSG_PROGRAM_LICK_WINDOW_SIZE 11u
#define DOPA_MSG_PROGRAM_COMMIT 0x33u
#define DOPA_MSG_PROGRAM_COMMIT_SIZE 0u
#define DOPA_MSG_TRIAL_START 0x34u
#define DOPA_MSG_TRIAL_START_SIZE 1u
#define DOPA_MSG_SYNC_START 0x1Bu
#define DOPA_MSG_SYNC_START_SIZE 10u
#define DOPA_MSG_SYNC_STOP 0x1Cu
#define DOPA_MSG_SYNC_STOP_SIZE 0u
#define DOPA_MSG_ACK 0x80u
#define DOPA_MSG_ACK_SIZE 11u
#define DOPA_MSG_NACK 0x81u
#define DOPA_MSG_NACK_SIZE 8u
#define DOPA_MSG_HELLO_REPLY 0x82u
#define DOPA_MSG_HELLO_REPLY_SIZE 34u
#define DOPA_MSG_RESUMED 0x92u
#define DOPA_MSG_RESUMED_SIZE 16u
#define DOPA_MSG_LICK_ON 0x83u
#define DOPA_MSG_LICK_ON_SIZE 4u
#define DOPA_MSG_LICK_OFF 0x84u
#define DOPA_MSG_LICK_OFF_SIZE 4u
#define DOPA_MSG_VALVE_OPENED 0x85u
#define DOPA_MSG_VALVE_OPENED_SIZE 6u
#define DOPA_MSG_VALVE_CLOSED 0x86u
#define DOPA_MSG_VALVE_CLOSED_SIZE 9u
#define DOPA_MSG_CUE_ONSET 0x87u
#define DOPA_MSG_CUE_ONSET_SIZE 4u
#define DOPA_MSG_CUE_OFFSET 0x88u
#define DOPA_MSG_CUE_OFFSET_SIZE 4u
#define DOPA_MSG_TONE_ONSET 0x89u
#define DOPA_MSG_TONE_ONSET_SIZE 6u
#define DOPA_MSG_TONE_OFFSET 0x8Au
#define DOPA_MSG_TONE_OFFSET_SIZE 4u
#define DOPA_MSG_TTL_SENT 0x8Bu
#define DOPA_MSG_TTL_SENT_SIZE 6u
#define DOPA_MSG_ANALOG_BATCH 0x8Cu
#define DOPA_MSG_ANALOG_BATCH_SIZE 23u
#define DOPA_MSG_DEVICE_HEARTBEAT 0x8Du
#define DOPA_MSG_DEVICE_HEARTBEAT_SIZE 14u
#define DOPA_MSG_SAFETY_TRIP 0x8Eu
#define DOPA_MSG_SAFETY_TRIP_SIZE 9u
#define DOPA_MSG_TRIAL_STARTED 0x8Fu
#define DOPA_MSG_TRIAL_STARTED_SIZE 8u
#define DOPA_MSG_TRIAL_ENDED 0x90u
#define DOPA_MSG_TRIAL_ENDED_SIZE 9u
#define DOPA_MSG_ERROR 0x91u
#define DOPA_MSG_ERROR_SIZE 9u
#define DOPA_MSG_SYNC_PULSE 0x93u
#define DOPA_MSG_SYNC_PULSE_SIZE 10u

/* little-endian field access */
static inline void dopa_put_u8(uint8_t *b, uint8_t v) { b[0] = v; }
static inline void dopa_put_u16(uint8_t *b, uint16_t v) { b[0] = (uint8_t)v; b[1] = (uint8_t)(v >> 8); }
static inline void dopa_put_u32(uint8_t *b, uint32_t v) {
    b[0] = (uint8_t)v; b[1] = (uint8_t)(v >> 8); b[2] = (uint8_t)(v >> 16); b[3] = (uint8_t)(v >> 24); }
static inline void dopa_put_i32(uint8_t *b, int32_t v) { dopa_put_u32(b, (uint32_t)v); }
static inline uint8_t dopa_get_u8(const uint8_t *b) { return b[0]; }
static inline uint16_t dopa_get_u16(const uint8_t *b) { return (uint16_t)(b[0] | ((uint16_t)b[1] << 8)); }
static inline uint32_t dopa_get_u32(const uint8_t *b) {
    return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24); }
static inline int32_t dopa_get_i32(const uint8_t *b) { return (int32_t)dopa_get_u32(b); }

/* body size of a message type, or -1 for an unknown type */
static inline int16_t dopa_body_size(uint8_t type) {
    switch (type) {
    case DOPA_MSG_HELLO: return 19;
    case DOPA_MSG_PING: return 4;
    case DOPA_MSG_CONFIGURE: return 13;
    case DOPA_MSG_VALVE_PULSE: return 2;
    case DOPA_MSG_VALVE_OPEN: return 0;
    case DOPA_MSG_VALVE_CLOSE: return 0;
    case DOPA_MSG_CUE_ON: return 0;
    case DOPA_MSG_CUE_OFF: return 0;
    case DOPA_MSG_TONE_ON: return 2;
    case DOPA_MSG_TONE_OFF: return 0;
    case DOPA_MSG_TTL_PULSE: return 2;
    case DOPA_MSG_ANALOG_START: return 2;
    case DOPA_MSG_ANALOG_STOP: return 0;
    case DOPA_MSG_ALL_OFF: return 0;
    case DOPA_MSG_HEARTBEAT: return 4;
    case DOPA_MSG_EVENT_ACK: return 4;
    case DOPA_MSG_PROGRAM_BEGIN: return 9;
    case DOPA_MSG_PROGRAM_ACTION: return 8;
    case DOPA_MSG_PROGRAM_LICK_WINDOW: return 11;
    case DOPA_MSG_PROGRAM_COMMIT: return 0;
    case DOPA_MSG_TRIAL_START: return 1;
    case DOPA_MSG_SYNC_START: return 10;
    case DOPA_MSG_SYNC_STOP: return 0;
    case DOPA_MSG_ACK: return 11;
    case DOPA_MSG_NACK: return 8;
    case DOPA_MSG_HELLO_REPLY: return 34;
    case DOPA_MSG_RESUMED: return 16;
    case DOPA_MSG_LICK_ON: return 4;
    case DOPA_MSG_LICK_OFF: return 4;
    case DOPA_MSG_VALVE_OPENED: return 6;
    case DOPA_MSG_VALVE_CLOSED: return 9;
    case DOPA_MSG_CUE_ONSET: return 4;
    case DOPA_MSG_CUE_OFFSET: return 4;
    case DOPA_MSG_TONE_ONSET: return 6;
    case DOPA_MSG_TONE_OFFSET: return 4;
    case DOPA_MSG_TTL_SENT: return 6;
    case DOPA_MSG_ANALOG_BATCH: return 23;
    case DOPA_MSG_DEVICE_HEARTBEAT: return 14;
    case DOPA_MSG_SAFETY_TRIP: return 9;
    case DOPA_MSG_TRIAL_STARTED: return 8;
    case DOPA_MSG_TRIAL_ENDED: return 9;
    case DOPA_MSG_ERROR: return 9;
    case DOPA_MSG_SYNC_PULSE: return 10;
    default: return -1;
    }
}

/* Commands a disarmed device executes; every other command is refused with NACK NOT_ARMED. */
static inline uint8_t dopa_allowed_while_disarmed(uint8_t type) {
    return type == DOPA_MSG_HELLO || type == DOPA_MSG_PING || type == DOPA_MSG_CONFIGURE || type == DOPA_MSG_HEARTBEAT || type == DOPA_MSG_EVENT_ACK || type == DOPA_MSG_ALL_OFF;
}

/* tone timer top for a requested frequency, and the frequency it really makes */
static inline uint16_t dopa_tone_top(uint16_t freq_hz) {
    return (uint16_t)((DOPA_TONE_TIMER_HZ + freq_hz / 2u) / freq_hz); }
static inline uint16_t dopa_tone_applied_hz(uint16_t freq_hz) {
    uint16_t top = dopa_tone_top(freq_hz);
    return (uint16_t)((DOPA_TONE_TIMER_HZ + top / 2u) / top); }

/* 0x01 HELLO (command): Open or resume a session (docs/rig.md, Sessions): checks the protocol version and arms the outputs. session = the host's nonzero session nonce: the device's current session resumes (re-armed; reply window, device seq, event ring, budget and limits kept, the limits in this HELLO ignored; reply: RESUMED); another nonce (or 0, or the first HELLO after a reset) starts a new session whose limits are this HELLO's (max_valve_ms = limits_keep: the configured ones) with budget_valve_ms as its volume budget (budget_keep: the configured one), applied before the outputs arm (reply: HELLO_REPLY; a limit outside its bounds: NACK BAD_VALUE, nothing changed). */
typedef struct {
    uint16_t protocol_version;
    uint32_t session;
    uint32_t budget_valve_ms;
    uint16_t max_valve_ms;
    uint16_t min_valve_gap_ms;
    uint16_t host_timeout_ms;
    uint16_t debounce_us;
    uint8_t flags;
} dopa_hello_t;
static inline uint8_t dopa_pack_hello(uint8_t *b, const dopa_hello_t *m) {
    dopa_put_u16(b + 0, m->protocol_version);
    dopa_put_u32(b + 2, m->session);
    dopa_put_u32(b + 6, m->budget_valve_ms);
    dopa_put_u16(b + 10, m->max_valve_ms);
    dopa_put_u16(b + 12, m->min_valve_gap_ms);
    dopa_put_u16(b + 14, m->host_timeout_ms);
    dopa_put_u16(b + 16, m->debounce_us);
    dopa_put_u8(b + 18, m->flags);
    return 19;
}
static inline void dopa_unpack_hello(const uint8_t *b, dopa_hello_t *m) {
    m->protocol_version = dopa_get_u16(b + 0);
    m->session = dopa_get_u32(b + 2);
    m->budget_valve_ms = dopa_get_u32(b + 6);
    m->max_valve_ms = dopa_get_u16(b + 10);
    m->min_valve_gap_ms = dopa_get_u16(b + 12);
    m->host_timeout_ms = dopa_get_u16(b + 14);
    m->debounce_us = dopa_get_u16(b + 16);
    m->flags = dopa_get_u8(b + 18);
}

/* 0x02 PING (command): Round trip. ACK value = nonce. */
typedef struct {
    int32_t nonce;
} dopa_ping_t;
static inline uint8_t dopa_pack_ping(uint8_t *b, const dopa_ping_t *m) {
    dopa_put_i32(b + 0, m->nonce);
    return 4;
}
static inline void dopa_unpack_ping(const uint8_t *b, dopa_ping_t *m) {
    m->nonce = dopa_get_i32(b + 0);
}

/* 0x03 CONFIGURE (command): Set safety limits, lick debounce and input flags (config_flag). ACK value = 0. */
typedef struct {
    uint16_t max_valve_ms;
    uint16_t min_valve_gap_ms;
    uint32_t budget_valve_ms;
    uint16_t host_timeout_ms;
    uint16_t debounce_us;
    uint8_t flags;
} dopa_configure_t;
static inline uint8_t dopa_pack_configure(uint8_t *b, const dopa_configure_t *m) {
    dopa_put_u16(b + 0, m->max_valve_ms);
    dopa_put_u16(b + 2, m->min_valve_gap_ms);
    dopa_put_u32(b + 4, m->budget_valve_ms);
    dopa_put_u16(b + 8, m->host_timeout_ms);
    dopa_put_u16(b + 10, m->debounce_us);
    dopa_put_u8(b + 12, m->flags);
    return 13;
}
static inline void dopa_unpack_configure(const uint8_t *b, dopa_configure_t *m) {
    m->max_valve_ms = dopa_get_u16(b + 0);
    m->min_valve_gap_ms = dopa_get_u16(b + 2);
    m->budget_valve_ms = dopa_get_u32(b + 4);
    m->host_timeout_ms = dopa_get_u16(b + 8);
    m->debounce_us = dopa_get_u16(b + 10);
    m->flags = dopa_get_u8(b + 12);
}

/* 0x10 VALVE_PULSE (command): Open the valve for ms (device-timed). ACK value = ms applied (clamped to max_valve_ms; a pulse beyond the remaining budget is refused). A pulse while the valve is open re-times the close. */
typedef struct {
    uint16_t ms;
} dopa_valve_pulse_t;
static inline uint8_t dopa_pack_valve_pulse(uint8_t *b, const dopa_valve_pulse_t *m) {
    dopa_put_u16(b + 0, m->ms);
    return 2;
}
static inline void dopa_unpack_valve_pulse(const uint8_t *b, dopa_valve_pulse_t *m) {
    m->ms = dopa_get_u16(b + 0);
}

/* 0x11 VALVE_OPEN (command): Open the valve until VALVE_CLOSE (closed anyway after max_valve_ms). ACK value = ms until the automatic close. */
typedef struct {
    uint8_t unused_;
} dopa_valve_open_t;
static inline uint8_t dopa_pack_valve_open(uint8_t *b, const dopa_valve_open_t *m) {
    (void)b; (void)m;
    return 0;
}
static inline void dopa_unpack_valve_open(const uint8_t *b, dopa_valve_open_t *m) {
    (void)b; m->unused_ = 0;
}

/* 0x12 VALVE_CLOSE (command): Close the valve. ACK value = 0. */
typedef struct {
    uint8_t unused_;
} dopa_valve_close_t;
static inline uint8_t dopa_pack_valve_close(uint8_t *b, const dopa_valve_close_t *m) {
    (void)b; (void)m;
    return 0;
}
static inline void dopa_unpack_valve_close(const uint8_t *b, dopa_valve_close_t *m) {
    (void)b; m->unused_ = 0;
}

/* 0x13 CUE_ON (command): Cue LED on. ACK value = 1. */
typedef struct {
    uint8_t unused_;
} dopa_cue_on_t;
static inline uint8_t dopa_pack_cue_on(uint8_t *b, const dopa_cue_on_t *m) {
    (void)b; (void)m;
    return 0;
}
static inline void dopa_unpack_cue_on(const uint8_t *b, dopa_cue_on_t *m) {
    (void)b; m->unused_ = 0;
}

/* 0x14 CUE_OFF (command): Cue LED off. ACK value = 0. */
typedef struct {
    uint8_t unused_;
} dopa_cue_off_t;
static inline uint8_t dopa_pack_cue_off(uint8_t *b, const dopa_cue_off_t *m) {
    (void)b; (void)m;
    return 0;
}
static inline void dopa_unpack_cue_off(const uint8_t *b, dopa_cue_off_t *m) {
    (void)b; m->unused_ = 0;
}

/* 0x15 TONE_ON (command): Tone on at freq_hz. ACK value = frequency actually produced (Hz). */
typedef struct {
    uint16_t freq_hz;
} dopa_tone_on_t;
static inline uint8_t dopa_pack_tone_on(uint8_t *b, const dopa_tone_on_t *m) {
    dopa_put_u16(b + 0, m->freq_hz);
    return 2;
}
static inline void dopa_unpack_tone_on(const uint8_t *b, dopa_tone_on_t *m) {
    m->freq_hz = dopa_get_u16(b + 0);
}

/* 0x16 TONE_OFF (command): Tone off. ACK value = 0. */
typedef struct {
    uint8_t unused_;
} dopa_tone_off_t;
static inline uint8_t dopa_pack_tone_off(uint8_t *b, const dopa_tone_off_t *m) {
    (void)b; (void)m;
    return 0;
}
static inline void dopa_unpack_tone_off(const uint8_t *b, dopa_tone_off_t *m) {
    (void)b; m->unused_ = 0;
}

/* 0x17 TTL_PULSE (command): TTL high for ms. ACK value = ms. */
typedef struct {
    uint16_t ms;
} dopa_ttl_pulse_t;
static inline uint8_t dopa_pack_ttl_pulse(uint8_t *b, const dopa_ttl_pulse_t *m) {
    dopa_put_u16(b + 0, m->ms);
    return 2;
}
static inline void dopa_unpack_ttl_pulse(const uint8_t *b, dopa_ttl_pulse_t *m) {
    m->ms = dopa_get_u16(b + 0);
}

/* 0x18 ANALOG_START (command): Start sampling A0 at rate_hz, batched in ANALOG_BATCH events. ACK value = rate applied. */
typedef struct {
    uint16_t rate_hz;
} dopa_analog_start_t;
static inline uint8_t dopa_pack_analog_start(uint8_t *b, const dopa_analog_start_t *m) {
    dopa_put_u16(b + 0, m->rate_hz);
    return 2;
}
static inline void dopa_unpack_analog_start(const uint8_t *b, dopa_analog_start_t *m) {
    m->rate_hz = dopa_get_u16(b + 0);
}

/* 0x19 ANALOG_STOP (command): Stop sampling (a partial batch is flushed). ACK value = 0. */
typedef struct {
    uint8_t unused_;
} dopa_analog_stop_t;
static inline uint8_t dopa_pack_analog_stop(uint8_t *b, const dopa_analog_stop_t *m) {
    (void)b; (void)m;
    return 0;
}
static inline void dopa_unpack_analog_stop(const uint8_t *b, dopa_analog_stop_t *m) {
    (void)b; m->unused_ = 0;
}

/* 0x1A ALL_OFF (command): Every output off, analog stopped, trial programs cleared; stays armed. ACK value = 0. */
typedef struct {
    uint8_t unused_;
} dopa_all_off_t;
static inline uint8_t dopa_pack_all_off(uint8_t *b, const dopa_all_off_t *m) {
    (void)b; (void)m;
    return 0;
}
static inline void dopa_unpack_all_off(const uint8_t *b, dopa_all_off_t *m) {
    (void)b; m->unused_ = 0;
}

/* 0x20 HEARTBEAT (command): Host is alive; also acknowledges events up to next_expected_seq (like EVENT_ACK, under the same epoch rule). ACK value = number of unacknowledged events in the device ring. */
typedef struct {
    uint16_t next_expected_seq;
    uint16_t epoch;
} dopa_heartbeat_t;
static inline uint8_t dopa_pack_heartbeat(uint8_t *b, const dopa_heartbeat_t *m) {
    dopa_put_u16(b + 0, m->next_expected_seq);
    dopa_put_u16(b + 2, m->epoch);
    return 4;
}
static inline void dopa_unpack_heartbeat(const uint8_t *b, dopa_heartbeat_t *m) {
    m->next_expected_seq = dopa_get_u16(b + 0);
    m->epoch = dopa_get_u16(b + 2);
}

/* 0x21 EVENT_ACK (command): Cumulative acknowledgement: every device seq before next_expected_seq was received. Never answered. Applied only when epoch is the device session's (HELLO_REPLY.epoch): an acknowledgement meant for another device session (before a reset) never removes this one's events. */
typedef struct {
    uint16_t next_expected_seq;
    uint16_t epoch;
} dopa_event_ack_t;
static inline uint8_t dopa_pack_event_ack(uint8_t *b, const dopa_event_ack_t *m) {
    dopa_put_u16(b + 0, m->next_expected_seq);
    dopa_put_u16(b + 2, m->epoch);
    return 4;
}
static inline void dopa_unpack_event_ack(const uint8_t *b, dopa_event_ack_t *m) {
    m->next_expected_seq = dopa_get_u16(b + 0);
    m->epoch = dopa_get_u16(b + 2);
}

/* 0x30 PROGRAM_BEGIN (command): Start uploading a trial program (replaces any upload in progress). ACK value = n_actions. */
typedef struct {
    uint32_t trial_id;
    uint32_t duration_ms;
    uint8_t n_actions;
} dopa_program_begin_t;
static inline uint8_t dopa_pack_program_begin(uint8_t *b, const dopa_program_begin_t *m) {
    dopa_put_u32(b + 0, m->trial_id);
    dopa_put_u32(b + 4, m->duration_ms);
    dopa_put_u8(b + 8, m->n_actions);
    return 9;
}
static inline void dopa_unpack_program_begin(const uint8_t *b, dopa_program_begin_t *m) {
    m->trial_id = dopa_get_u32(b + 0);
    m->duration_ms = dopa_get_u32(b + 4);
    m->n_actions = dopa_get_u8(b + 8);
}

/* 0x31 PROGRAM_ACTION (command): Action index of the program being uploaded, at offset_us from trial start. ACK value = index. */
typedef struct {
    uint8_t index;
    uint32_t offset_us;
    uint8_t action;
    uint16_t arg;
} dopa_program_action_t;
static inline uint8_t dopa_pack_program_action(uint8_t *b, const dopa_program_action_t *m) {
    dopa_put_u8(b + 0, m->index);
    dopa_put_u32(b + 1, m->offset_us);
    dopa_put_u8(b + 5, m->action);
    dopa_put_u16(b + 6, m->arg);
    return 8;
}
static inline void dopa_unpack_program_action(const uint8_t *b, dopa_program_action_t *m) {
    m->index = dopa_get_u8(b + 0);
    m->offset_us = dopa_get_u32(b + 1);
    m->action = dopa_get_u8(b + 5);
    m->arg = dopa_get_u16(b + 6);
}

/* 0x32 PROGRAM_LICK_WINDOW (command): Optional lick-contingent action: the first lick onset in [start_us, end_us) triggers it. ACK value = action. */
typedef struct {
    uint32_t start_us;
    uint32_t end_us;
    uint8_t action;
    uint16_t arg;
} dopa_program_lick_window_t;
static inline uint8_t dopa_pack_program_lick_window(uint8_t *b, const dopa_program_lick_window_t *m) {
    dopa_put_u32(b + 0, m->start_us);
    dopa_put_u32(b + 4, m->end_us);
    dopa_put_u8(b + 8, m->action);
    dopa_put_u16(b + 9, m->arg);
    return 11;
}
static inline void dopa_unpack_program_lick_window(const uint8_t *b, dopa_program_lick_window_t *m) {
    m->start_us = dopa_get_u32(b + 0);
    m->end_us = dopa_get_u32(b + 4);
    m->action = dopa_get_u8(b + 8);
    m->arg = dopa_get_u16(b + 9);
}

/* 0x33 PROGRAM_COMMIT (command): The uploaded program becomes the pending one (replacing a previous pending). ACK value = trial_id (as i32). */
typedef struct {
    uint8_t unused_;
} dopa_program_commit_t;
static inline uint8_t dopa_pack_program_commit(uint8_t *b, const dopa_program_commit_t *m) {
    (void)b; (void)m;
    return 0;
}
static inline void dopa_unpack_program_commit(const uint8_t *b, dopa_program_commit_t *m) {
    (void)b; m->unused_ = 0;
}

/* 0x34 TRIAL_START (command): Start the pending program now (when=NOW) or when the running trial ends (when=AFTER_CURRENT). ACK value = trial_id. */
typedef struct {
    uint8_t when;
} dopa_trial_start_t;
static inline uint8_t dopa_pack_trial_start(uint8_t *b, const dopa_trial_start_t *m) {
    dopa_put_u8(b + 0, m->when);
    return 1;
}
static inline void dopa_unpack_trial_start(const uint8_t *b, dopa_trial_start_t *m) {
    m->when = dopa_get_u8(b + 0);
}

/* 0x1B SYNC_START (command): Send a TTL pulse of pulse_ms (ttl_ms limits) now and then after each random interval in [min_ms, max_ms] (sync_interval_ms limits, min_ms <= max_ms), each reported as SYNC_PULSE; ALL_OFF and host timeouts stop them. ACK value = pulse_ms. */
typedef struct {
    uint16_t min_ms;
    uint16_t max_ms;
    uint16_t pulse_ms;
    uint32_t seed;
} dopa_sync_start_t;
static inline uint8_t dopa_pack_sync_start(uint8_t *b, const dopa_sync_start_t *m) {
    dopa_put_u16(b + 0, m->min_ms);
    dopa_put_u16(b + 2, m->max_ms);
    dopa_put_u16(b + 4, m->pulse_ms);
    dopa_put_u32(b + 6, m->seed);
    return 10;
}
static inline void dopa_unpack_sync_start(const uint8_t *b, dopa_sync_start_t *m) {
    m->min_ms = dopa_get_u16(b + 0);
    m->max_ms = dopa_get_u16(b + 2);
    m->pulse_ms = dopa_get_u16(b + 4);
    m->seed = dopa_get_u32(b + 6);
}

/* 0x1C SYNC_STOP (command): Stop the sync pulses. ACK value = pulses sent since SYNC_START. */
typedef struct {
    uint8_t unused_;
} dopa_sync_stop_t;
static inline uint8_t dopa_pack_sync_stop(uint8_t *b, const dopa_sync_stop_t *m) {
    (void)b; (void)m;
    return 0;
}
static inline void dopa_unpack_sync_stop(const uint8_t *b, dopa_sync_stop_t *m) {
    (void)b; m->unused_ = 0;
}

/* 0x80 ACK (event): Command cmd_seq of type cmd_type was executed; value = value applied. */
typedef struct {
    uint32_t t_us;
    uint16_t cmd_seq;
    uint8_t cmd_type;
    int32_t value;
} dopa_ack_t;
static inline uint8_t dopa_pack_ack(uint8_t *b, const dopa_ack_t *m) {
    dopa_put_u32(b + 0, m->t_us);
    dopa_put_u16(b + 4, m->cmd_seq);
    dopa_put_u8(b + 6, m->cmd_type);
    dopa_put_i32(b + 7, m->value);
    return 11;
}
static inline void dopa_unpack_ack(const uint8_t *b, dopa_ack_t *m) {
    m->t_us = dopa_get_u32(b + 0);
    m->cmd_seq = dopa_get_u16(b + 4);
    m->cmd_type = dopa_get_u8(b + 6);
    m->value = dopa_get_i32(b + 7);
}

/* 0x81 NACK (event): Command cmd_seq of type cmd_type was refused (nack_reason). */
typedef struct {
    uint32_t t_us;
    uint16_t cmd_seq;
    uint8_t cmd_type;
    uint8_t reason;
} dopa_nack_t;
static inline uint8_t dopa_pack_nack(uint8_t *b, const dopa_nack_t *m) {
    dopa_put_u32(b + 0, m->t_us);
    dopa_put_u16(b + 4, m->cmd_seq);
    dopa_put_u8(b + 6, m->cmd_type);
    dopa_put_u8(b + 7, m->reason);
    return 8;
}
static inline void dopa_unpack_nack(const uint8_t *b, dopa_nack_t *m) {
    m->t_us = dopa_get_u32(b + 0);
    m->cmd_seq = dopa_get_u16(b + 4);
    m->cmd_type = dopa_get_u8(b + 6);
    m->reason = dopa_get_u8(b + 7);
}

/* 0x82 HELLO_REPLY (event): Answer to HELLO (boot = 0, cmd_seq = the HELLO's seq) or sent unsolicited after reset (boot = 1, cmd_seq = 0, session = 0). Short on purpose (it must get through a bad line): the pins, limits and sizes are not in it; the pins and max_actions are fixed by the schema hash (messages.toml), the limits are the HELLO's (or, for limits_keep, the configured ones). event_ring = frames the device's event ring holds; session = the new session's nonce; dropped = unacknowledged events the new session discarded; lost_total = events lost since reset (ring overflow and dropped; survives HELLO). epoch = this device session's tag (high byte: boots counted in the device's non-volatile memory; low byte: sessions since boot, 1..255): nonzero, different after every reset and every new session; 0 in the boot banner. budget_used_ms = valve time the session this HELLO ended had used (ms, rounded up; 0 at boot and after a reset). */
typedef struct {
    uint32_t t_us;
    uint16_t cmd_seq;
    uint8_t boot;
    uint16_t protocol_version;
    uint16_t firmware_version;
    uint32_t schema_hash;
    uint8_t board;
    uint8_t reset_cause;
    uint8_t event_ring;
    uint32_t session;
    uint16_t dropped;
    uint32_t lost_total;
    uint16_t epoch;
    uint32_t budget_used_ms;
} dopa_hello_reply_t;
static inline uint8_t dopa_pack_hello_reply(uint8_t *b, const dopa_hello_reply_t *m) {
    dopa_put_u32(b + 0, m->t_us);
    dopa_put_u16(b + 4, m->cmd_seq);
    dopa_put_u8(b + 6, m->boot);
    dopa_put_u16(b + 7, m->protocol_version);
    dopa_put_u16(b + 9, m->firmware_version);
    dopa_put_u32(b + 11, m->schema_hash);
    dopa_put_u8(b + 15, m->board);
    dopa_put_u8(b + 16, m->reset_cause);
    dopa_put_u8(b + 17, m->event_ring);
    dopa_put_u32(b + 18, m->session);
    dopa_put_u16(b + 22, m->dropped);
    dopa_put_u32(b + 24, m->lost_total);
    dopa_put_u16(b + 28, m->epoch);
    dopa_put_u32(b + 30, m->budget_used_ms);
    return 34;
}
static inline void dopa_unpack_hello_reply(const uint8_t *b, dopa_hello_reply_t *m) {
    m->t_us = dopa_get_u32(b + 0);
    m->cmd_seq = dopa_get_u16(b + 4);
    m->boot = dopa_get_u8(b + 6);
    m->protocol_version = dopa_get_u16(b + 7);
    m->firmware_version = dopa_get_u16(b + 9);
    m->schema_hash = dopa_get_u32(b + 11);
    m->board = dopa_get_u8(b + 15);
    m->reset_cause = dopa_get_u8(b + 16);
    m->event_ring = dopa_get_u8(b + 17);
    m->session = dopa_get_u32(b + 18);
    m->dropped = dopa_get_u16(b + 22);
    m->lost_total = dopa_get_u32(b + 24);
    m->epoch = dopa_get_u16(b + 28);
    m->budget_used_ms = dopa_get_u32(b + 30);
}

/* 0x92 RESUMED (event): Answer to a HELLO that resumed the device's current session (cmd_seq = the HELLO's seq): epoch = that session's tag (the host takes the resume only when it is the epoch of the HELLO_REPLY it took; another epoch means a new session whose HELLO_REPLY it missed), lost_total as in HELLO_REPLY, budget_used_ms = valve time the session has used (ms, rounded up). */
typedef struct {
    uint32_t t_us;
    uint16_t cmd_seq;
    uint16_t epoch;
    uint32_t lost_total;
    uint32_t budget_used_ms;
} dopa_resumed_t;
static inline uint8_t dopa_pack_resumed(uint8_t *b, const dopa_resumed_t *m) {
    dopa_put_u32(b + 0, m->t_us);
    dopa_put_u16(b + 4, m->cmd_seq);
    dopa_put_u16(b + 6, m->epoch);
    dopa_put_u32(b + 8, m->lost_total);
    dopa_put_u32(b + 12, m->budget_used_ms);
    return 16;
}
static inline void dopa_unpack_resumed(const uint8_t *b, dopa_resumed_t *m) {
    m->t_us = dopa_get_u32(b + 0);
    m->cmd_seq = dopa_get_u16(b + 4);
    m->epoch = dopa_get_u16(b + 6);
    m->lost_total = dopa_get_u32(b + 8);
    m->budget_used_ms = dopa_get_u32(b + 12);
}

/* 0x83 LICK_ON (event): Debounced lick onset; t_us = time of the first edge of the change. */
typedef struct {
    uint32_t t_us;
} dopa_lick_on_t;
static inline uint8_t dopa_pack_lick_on(uint8_t *b, const dopa_lick_on_t *m) {
    dopa_put_u32(b + 0, m->t_us);
    return 4;
}
static inline void dopa_unpack_lick_on(const uint8_t *b, dopa_lick_on_t *m) {
    m->t_us = dopa_get_u32(b + 0);
}

/* 0x84 LICK_OFF (event): Debounced lick offset; t_us = time of the first edge of the change. */
typedef struct {
    uint32_t t_us;
} dopa_lick_off_t;
static inline uint8_t dopa_pack_lick_off(uint8_t *b, const dopa_lick_off_t *m) {
    dopa_put_u32(b + 0, m->t_us);
    return 4;
}
static inline void dopa_unpack_lick_off(const uint8_t *b, dopa_lick_off_t *m) {
    m->t_us = dopa_get_u32(b + 0);
}

/* 0x85 VALVE_OPENED (event): Valve opened; planned_ms = planned open time (max_valve_ms for VALVE_OPEN). */
typedef struct {
    uint32_t t_us;
    uint16_t planned_ms;
} dopa_valve_opened_t;
static inline uint8_t dopa_pack_valve_opened(uint8_t *b, const dopa_valve_opened_t *m) {
    dopa_put_u32(b + 0, m->t_us);
    dopa_put_u16(b + 4, m->planned_ms);
    return 6;
}
static inline void dopa_unpack_valve_opened(const uint8_t *b, dopa_valve_opened_t *m) {
    m->t_us = dopa_get_u32(b + 0);
    m->planned_ms = dopa_get_u16(b + 4);
}

/* 0x86 VALVE_CLOSED (event): Valve closed; open_us = time it was open; cause = close_cause. */
typedef struct {
    uint32_t t_us;
    uint32_t open_us;
    uint8_t cause;
} dopa_valve_closed_t;
static inline uint8_t dopa_pack_valve_closed(uint8_t *b, const dopa_valve_closed_t *m) {
    dopa_put_u32(b + 0, m->t_us);
    dopa_put_u32(b + 4, m->open_us);
    dopa_put_u8(b + 8, m->cause);
    return 9;
}
static inline void dopa_unpack_valve_closed(const uint8_t *b, dopa_valve_closed_t *m) {
    m->t_us = dopa_get_u32(b + 0);
    m->open_us = dopa_get_u32(b + 4);
    m->cause = dopa_get_u8(b + 8);
}

/* 0x87 CUE_ONSET (event): Cue LED turned on. */
typedef struct {
    uint32_t t_us;
} dopa_cue_onset_t;
static inline uint8_t dopa_pack_cue_onset(uint8_t *b, const dopa_cue_onset_t *m) {
    dopa_put_u32(b + 0, m->t_us);
    return 4;
}
static inline void dopa_unpack_cue_onset(const uint8_t *b, dopa_cue_onset_t *m) {
    m->t_us = dopa_get_u32(b + 0);
}

/* 0x88 CUE_OFFSET (event): Cue LED turned off. */
typedef struct {
    uint32_t t_us;
} dopa_cue_offset_t;
static inline uint8_t dopa_pack_cue_offset(uint8_t *b, const dopa_cue_offset_t *m) {
    dopa_put_u32(b + 0, m->t_us);
    return 4;
}
static inline void dopa_unpack_cue_offset(const uint8_t *b, dopa_cue_offset_t *m) {
    m->t_us = dopa_get_u32(b + 0);
}

/* 0x89 TONE_ONSET (event): Tone turned on at freq_hz. */
typedef struct {
    uint32_t t_us;
    uint16_t freq_hz;
} dopa_tone_onset_t;
static inline uint8_t dopa_pack_tone_onset(uint8_t *b, const dopa_tone_onset_t *m) {
    dopa_put_u32(b + 0, m->t_us);
    dopa_put_u16(b + 4, m->freq_hz);
    return 6;
}
static inline void dopa_unpack_tone_onset(const uint8_t *b, dopa_tone_onset_t *m) {
    m->t_us = dopa_get_u32(b + 0);
    m->freq_hz = dopa_get_u16(b + 4);
}

/* 0x8A TONE_OFFSET (event): Tone turned off. */
typedef struct {
    uint32_t t_us;
} dopa_tone_offset_t;
static inline uint8_t dopa_pack_tone_offset(uint8_t *b, const dopa_tone_offset_t *m) {
    dopa_put_u32(b + 0, m->t_us);
    return 4;
}
static inline void dopa_unpack_tone_offset(const uint8_t *b, dopa_tone_offset_t *m) {
    m->t_us = dopa_get_u32(b + 0);
}

/* 0x8B TTL_SENT (event): TTL pulse rising edge at t_us, high for ms. */
typedef struct {
    uint32_t t_us;
    uint16_t ms;
} dopa_ttl_sent_t;
static inline uint8_t dopa_pack_ttl_sent(uint8_t *b, const dopa_ttl_sent_t *m) {
    dopa_put_u32(b + 0, m->t_us);
    dopa_put_u16(b + 4, m->ms);
    return 6;
}
static inline void dopa_unpack_ttl_sent(const uint8_t *b, dopa_ttl_sent_t *m) {
    m->t_us = dopa_get_u32(b + 0);
    m->ms = dopa_get_u16(b + 4);
}

/* 0x8C ANALOG_BATCH (event): n analog samples (n <= 8, unused slots 0); t_us = time of the first sample. */
typedef struct {
    uint32_t t_us;
    uint16_t rate_hz;
    uint8_t n;
    uint16_t samples[8];
} dopa_analog_batch_t;
static inline uint8_t dopa_pack_analog_batch(uint8_t *b, const dopa_analog_batch_t *m) {
    dopa_put_u32(b + 0, m->t_us);
    dopa_put_u16(b + 4, m->rate_hz);
    dopa_put_u8(b + 6, m->n);
    { uint8_t i; for (i = 0; i < 8; i++) dopa_put_u16(b + 7 + 2 * i, m->samples[i]); }
    return 23;
}
static inline void dopa_unpack_analog_batch(const uint8_t *b, dopa_analog_batch_t *m) {
    m->t_us = dopa_get_u32(b + 0);
    m->rate_hz = dopa_get_u16(b + 4);
    m->n = dopa_get_u8(b + 6);
    { uint8_t i; for (i = 0; i < 8; i++) m->samples[i] = dopa_get_u16(b + 7 + 2 * i); }
}

/* 0x8D DEVICE_HEARTBEAT (event): Device is alive (every device_heartbeat_ms while armed); counters wrap; budget_used_ms = valve time the session has used (ms, rounded up; a valve open now counts up to now). */
typedef struct {
    uint32_t t_us;
    uint16_t rx_frames;
    uint16_t rx_errors;
    uint8_t unacked;
    uint8_t state;
    uint32_t budget_used_ms;
} dopa_device_heartbeat_t;
static inline uint8_t dopa_pack_device_heartbeat(uint8_t *b, const dopa_device_heartbeat_t *m) {
    dopa_put_u32(b + 0, m->t_us);
    dopa_put_u16(b + 4, m->rx_frames);
    dopa_put_u16(b + 6, m->rx_errors);
    dopa_put_u8(b + 8, m->unacked);
    dopa_put_u8(b + 9, m->state);
    dopa_put_u32(b + 10, m->budget_used_ms);
    return 14;
}
static inline void dopa_unpack_device_heartbeat(const uint8_t *b, dopa_device_heartbeat_t *m) {
    m->t_us = dopa_get_u32(b + 0);
    m->rx_frames = dopa_get_u16(b + 4);
    m->rx_errors = dopa_get_u16(b + 6);
    m->unacked = dopa_get_u8(b + 8);
    m->state = dopa_get_u8(b + 9);
    m->budget_used_ms = dopa_get_u32(b + 10);
}

/* 0x8E SAFETY_TRIP (event): The safety kernel acted (trip_reason); value = the offending quantity (ms). */
typedef struct {
    uint32_t t_us;
    uint8_t reason;
    int32_t value;
} dopa_safety_trip_t;
static inline uint8_t dopa_pack_safety_trip(uint8_t *b, const dopa_safety_trip_t *m) {
    dopa_put_u32(b + 0, m->t_us);
    dopa_put_u8(b + 4, m->reason);
    dopa_put_i32(b + 5, m->value);
    return 9;
}
static inline void dopa_unpack_safety_trip(const uint8_t *b, dopa_safety_trip_t *m) {
    m->t_us = dopa_get_u32(b + 0);
    m->reason = dopa_get_u8(b + 4);
    m->value = dopa_get_i32(b + 5);
}

/* 0x8F TRIAL_STARTED (event): A trial program started. */
typedef struct {
    uint32_t t_us;
    uint32_t trial_id;
} dopa_trial_started_t;
static inline uint8_t dopa_pack_trial_started(uint8_t *b, const dopa_trial_started_t *m) {
    dopa_put_u32(b + 0, m->t_us);
    dopa_put_u32(b + 4, m->trial_id);
    return 8;
}
static inline void dopa_unpack_trial_started(const uint8_t *b, dopa_trial_started_t *m) {
    m->t_us = dopa_get_u32(b + 0);
    m->trial_id = dopa_get_u32(b + 4);
}

/* 0x90 TRIAL_ENDED (event): A trial program ended (duration elapsed, or cleared by ALL_OFF / host timeout: aborted = 1). */
typedef struct {
    uint32_t t_us;
    uint32_t trial_id;
    uint8_t aborted;
} dopa_trial_ended_t;
static inline uint8_t dopa_pack_trial_ended(uint8_t *b, const dopa_trial_ended_t *m) {
    dopa_put_u32(b + 0, m->t_us);
    dopa_put_u32(b + 4, m->trial_id);
    dopa_put_u8(b + 8, m->aborted);
    return 9;
}
static inline void dopa_unpack_trial_ended(const uint8_t *b, dopa_trial_ended_t *m) {
    m->t_us = dopa_get_u32(b + 0);
    m->trial_id = dopa_get_u32(b + 4);
    m->aborted = dopa_get_u8(b + 8);
}

/* 0x91 ERROR (event): Something went wrong on the device (error_code); value = count or detail. */
typedef struct {
    uint32_t t_us;
    uint8_t code;
    int32_t value;
} dopa_error_t;
static inline uint8_t dopa_pack_error(uint8_t *b, const dopa_error_t *m) {
    dopa_put_u32(b + 0, m->t_us);
    dopa_put_u8(b + 4, m->code);
    dopa_put_i32(b + 5, m->value);
    return 9;
}
static inline void dopa_unpack_error(const uint8_t *b, dopa_error_t *m) {
    m->t_us = dopa_get_u32(b + 0);
    m->code = dopa_get_u8(b + 4);
    m->value = dopa_get_i32(b + 5);
}

/* 0x93 SYNC_PULSE (event): A sync pulse's rising edge on the TTL output at t_us; n = its number since SYNC_START (0-based), high for ms. */
typedef struct {
    uint32_t t_us;
    uint32_t n;
    uint16_t ms;
} dopa_sync_pulse_t;
static inline uint8_t dopa_pack_sync_pulse(uint8_t *b, const dopa_sync_pulse_t *m) {
    dopa_put_u32(b + 0, m->t_us);
    dopa_put_u32(b + 4, m->n);
    dopa_put_u16(b + 8, m->ms);
    return 10;
}
static inline void dopa_unpack_sync_pulse(const uint8_t *b, dopa_sync_pulse_t *m) {
    m->t_us = dopa_get_u32(b + 0);
    m->n = dopa_get_u32(b + 4);
    m->ms = dopa_get_u16(b + 8);
}

#endif /* DOPA_PROTOCOL_GEN_H */
