/* The rig core: command dispatch, safety kernel, trial programs, reliable event ring, lick debounce.
 * Plain C99 driven by a microsecond clock passed in by the caller (micros() on the AVR, a fake clock in
 * the host tests).  Behaviour contract: docs/rig.md.  BSD-3-Clause. */
#ifndef DOPA_RIG_H
#define DOPA_RIG_H

#include <stdint.h>
#include "protocol_gen.h"
#include "link.h"

#ifdef __cplusplus
extern "C" {
#endif

/* wrap-safe "a is at or after b" on the 32-bit microsecond clock */
#define DOPA_AFTER(a, b) ((int32_t)((uint32_t)(a) - (uint32_t)(b)) >= 0)

enum { RIG_PROG_EMPTY = 0, RIG_PROG_UPLOADING = 1, RIG_PROG_READY = 2 };

/* Bytes of the event ring: entries are [type][len][body] back to back.  576 bytes hold 32 frames of
 * every event type except ANALOG_BATCH (23 of those) and HELLO_REPLY; the entry count is capped at
 * DOPA_EVENT_RING either way. */
#define RIG_RING_BYTES 576u

/* Timing (docs/firmware.md, "Timing on the device"):
 * - a valve close at its own deadline whose pin moved at most this long after it counts as on time (the
 *   pin moves within a step of the 4 us clock of its time, ~10 us later when an interrupt falls between the
 *   clock reading and the pin): the event and the budget carry the planned length;
 * - a lick change is a timed change (the link waits for it) until it has kept bouncing this long past the
 *   moment it could first have been accepted (first edge + debounce_us);
 * - a trial started NOW begins this long after its TRIAL_START is handled, and a trial started back to
 *   back is switched to this long before the last one ends (as of that end), so that actions at offset 0
 *   run on time like any other (the loop is back in its wait for timed changes by then). */
#define RIG_ON_TIME_US 16u
/* a device heartbeat is not built while a timed change is due within this (rig_poll) */
#define RIG_HB_GUARD_US 1000u
#define RIG_LICK_SETTLE_US 1000u
#define RIG_START_LEAD_US 500u
/* A valve close is run this long before its time: how long the AVR loop takes from the clock reading
 * that ends its wait to the valve pin moving (micros() computes ~4 us after it samples Timer0; measured in
 * the emulator's pin trace), so the pin moves on time and a pulse lasts exactly its length.  0 on the host
 * (the fake clock does not move by itself). */
#if defined(__AVR__)
#define RIG_VALVE_LEAD_US 6u
#else
#define RIG_VALVE_LEAD_US 0u
#endif

typedef struct {
    uint16_t seq;          /* host seq answered */
    uint8_t cmd_type;
    uint8_t reason;        /* 0 = ACK, else NACK reason; cmd_type 0 = unused entry */
    int32_t value;
    uint32_t t_us;
} rig_reply_t;

typedef struct {
    uint32_t offset_us;
    uint8_t action;
    uint16_t arg;
} rig_action_t;

typedef struct {
    uint32_t trial_id;
    uint32_t duration_ms;
    uint8_t n_actions;
    uint16_t have;         /* bit i: action i uploaded */
    uint16_t valve_bits;   /* bit i: action i is a VALVE_PULSE */
    uint8_t has_window;
    uint8_t valid;         /* RIG_PROG_EMPTY, RIG_PROG_UPLOADING or RIG_PROG_READY */
    uint32_t win_start_us, win_end_us;
    uint8_t win_action;
    uint16_t win_arg;
    rig_action_t actions[DOPA_MAX_ACTIONS];
} rig_program_t;

typedef struct {
    /* limits */
    uint16_t max_valve_ms, min_valve_gap_ms, host_timeout_ms, debounce_us;
    uint32_t budget_valve_ms;
    uint8_t flags;
    /* session */
    uint8_t armed;
    uint8_t reset_cause;
    uint32_t session;      /* the host's nonce of the current session (0: none since reset) */
    uint16_t epoch;        /* the current session's tag: boot count << 8 | sessions since boot (0: none) */
    uint8_t boot_count;    /* hal_boot_count() at boot */
    uint8_t sessions;      /* sessions started since boot, 1..255 wrapping to 1 */
    uint32_t lost_total;   /* events lost since reset (ring overflow, dropped by a new session) */
    uint32_t last_rx_us;
    uint32_t last_hb_us;
    uint16_t rx_frames, rx_errors;
    rig_reply_t replies[DOPA_REPLY_WINDOW];
    uint8_t reply_next;
    /* event ring (go-back-N) */
    uint8_t ring[RIG_RING_BYTES];
    uint16_t ring_head;    /* byte offset of the oldest unacknowledged entry */
    uint16_t ring_used;    /* bytes in use */
    uint16_t ring_sent_at; /* byte offset of the next entry to send */
    uint8_t ring_count;    /* entries */
    uint8_t ring_sent;     /* entries from the head already handed to the UART */
    uint8_t ring_hi;       /* entries from the head handed to the UART at least once (acks up to here count) */
    uint16_t ring_seq;     /* seq of the oldest entry */
    uint32_t ring_progress_us;
    uint16_t lost;
    /* SAFETY_TRIPs that found the ring full: one latched per reason (bit reason-1), queued as soon as
     * there is room, before anything else */
    uint8_t trip_latched;
    uint32_t trip_t[4];
    int32_t trip_value[4];
    uint8_t tx_buf[DOPA_MAX_ENCODED + 1];
    uint8_t tx_len;
    dopa_decoder_t dec;
    /* valve */
    uint8_t valve_open;
    uint8_t valve_cause;   /* close cause if the deadline is reached: PULSE_END, MAX_OPEN or BUDGET */
    uint32_t valve_open_us, valve_close_us, valve_last_close_us;
    uint8_t valve_ever_closed;   /* a close within the last 60 s (the largest min gap): the gap applies */
    uint8_t valve_req_open;      /* VALVE_OPEN: no requested close time (limits only) */
    uint32_t valve_req_end_us;   /* requested close time of the pulse, before the limits */
    uint32_t budget_used_us;
    /* valve time of the last minute across sessions (window.c): 7 buckets of 10 s and their sum */
    uint32_t win_us[7];
    uint32_t win_sum_us;
    uint32_t win_room_us;    /* what the minute allowed at the last move (or budget change): never more */
    uint8_t win_head;
    uint32_t win_start_us;   /* start of the current bucket */
    /* other outputs */
    uint8_t cue_on;
    uint16_t tone_hz;
    uint8_t ttl_on;
    uint32_t ttl_off_us;
    /* sync pulses on the TTL output (SYNC_START): random intervals from a xorshift32 sequence */
    uint8_t sync_on;
    uint16_t sync_min_ms, sync_span_ms, sync_pulse_ms;   /* span = max - min + 1 */
    uint32_t sync_x, sync_n, sync_next_us;
    /* analog */
    uint16_t analog_rate;
    uint32_t analog_next_us, analog_period_us;
    uint32_t analog_pending_t;   /* time of the conversion in flight */
    uint8_t analog_busy;
    uint8_t analog_n;
    uint32_t analog_t0;
    uint16_t analog_samples[DOPA_ANALOG_BATCH];
    /* lick debounce */
    uint8_t lick_raw, lick_state, lick_pending;
    uint32_t lick_first_us, lick_last_edge_us;
    /* trial programs */
    rig_program_t prog[2];   /* prog[run_idx] runs; the other is uploaded into, then pending once valid */
    uint8_t run_idx;
    uint8_t trial_running, start_after_current;
    uint32_t trial_start_us;
    uint16_t done;           /* bit i: action i of the running program executed */
    uint8_t held;            /* due actions wait for the valve close (rig_program_poll) */
    uint32_t next_off_us;    /* earliest offset of an action not run yet (else the duration): one compare a pass */
    /* cache of "a pending VALVE_PULSE re-times the pulse end": valid for this close, done set and trial */
    uint32_t ext_close_us, ext_start_us;
    uint16_t ext_done;
    uint8_t ext_result;
    uint8_t window_open;
} rig_t;

extern rig_t g_rig;

/* Reset the core (all outputs off, disarmed) and queue the unsolicited boot HELLO_REPLY. */
void rig_init(uint8_t reset_cause, uint32_t now);
/* One byte from the link; returns 1 when it ended a frame (handled, or dropped as bad). */
uint8_t rig_rx_byte(uint8_t byte, uint32_t now);
/* A raw edge of the lick input at time t (level as read on the pin). */
void rig_lick_edge(uint8_t level, uint32_t t);
/* The ADC conversion started by hal_adc_start() finished with value. */
void rig_analog_sample(uint16_t value);
/* Run timers: valve/TTL deadlines, safety, trial programs, debounce, heartbeat, retransmission. */
void rig_poll(uint32_t now);
/* Microseconds from now until rig_poll has something to do (capped at 0x7FFFFFFF). */
uint32_t rig_idle_us(uint32_t now);
/* Microseconds until the next timed output change (valve, TTL, trial action, ADC, a lick change still
 * settling): the AVR loop stops reading and answering the link shortly before it, so it lands on time. */
uint32_t rig_deadline_us(uint32_t now);
/* Encoded bytes of the next event frame to send (0: nothing); call rig_tx_sent once they are queued. */
uint8_t rig_tx_next(const uint8_t **bytes);
void rig_tx_sent(uint32_t now);
/* Report an ERROR event (error_code, value), e.g. RX_OVERFLOW with the bytes the UART lost. */
void rig_error(uint32_t now, uint8_t code, int32_t value);

/* internal, shared between the core's files */
void rig_event(uint8_t type, const uint8_t *body, uint8_t len);
void rig_trip(uint32_t now, uint8_t reason, int32_t value);
/* queue a SAFETY_TRIP, or latch it when the ring is full (it is never lost) */
void rig_event_trip(uint32_t t, uint8_t reason, int32_t value);
/* outputs.c: the valve's close time has come by `now` (RIG_VALVE_LEAD_US ahead; rig_program_valve_first
 * closes it then, before anything else) */
uint8_t rig_valve_close_due(uint32_t now);
void rig_events_reset(void);
/* A new session: count the unacknowledged events (HELLO_REPLYs aside) as lost, empty the ring; returns the count. */
uint16_t rig_events_drop(void);
/* EVENT_ACK / HEARTBEAT acknowledgement; applied only under the current session's epoch */
void rig_events_ack(uint16_t next_expected, uint16_t epoch, uint32_t now);
void rig_events_poll(uint32_t now);
uint32_t rig_events_idle_us(uint32_t now);
/* outputs.c: safety kernel and outputs; valve functions return 0 or a NACK reason (SAFETY).
 * An opening is timed from the moment its pin moves (so a pulse lasts exactly its length); a pulse
 * re-timing an open valve counts from `now` (trial programs pass the scheduled time).  *applied (the
 * ACK value, ms) is set unless applied is NULL. */
uint8_t rig_valve_open_for(uint32_t now, uint32_t ms, uint8_t is_pulse, int32_t *applied);
void rig_valve_close(uint32_t now, uint8_t cause);
/* The caller (the AVR loop, after rig_valve_closes_at) moved the valve pin low; t = micros() right after:
 * record that close with its planned cause. */
void rig_valve_cut(uint32_t t);
/* Re-plan the close of an open valve under the limits now in force (after CONFIGURE). */
void rig_valve_replan(uint32_t now);
void rig_cue(uint32_t now, uint8_t on);
uint16_t rig_tone(uint32_t now, uint16_t freq_hz);
void rig_ttl_pulse(uint32_t now, uint16_t ms);
/* SYNC_START / SYNC_STOP (arguments already checked); stop returns the pulses sent */
void rig_sync_start(uint32_t now, uint16_t min_ms, uint16_t max_ms, uint16_t pulse_ms, uint32_t seed);
uint32_t rig_sync_stop(void);
void rig_analog_set(uint32_t now, uint16_t rate_hz);
void rig_outputs_off(uint32_t now, uint8_t cause);
void rig_outputs_poll(uint32_t now);
uint32_t rig_outputs_idle_us(uint32_t now);
/* until the lick debounce expires (0x7FFFFFFF: nothing pending); settling_only: only while the change
 * could still be accepted on time (not once it has kept bouncing RIG_LICK_SETTLE_US past that) */
uint32_t rig_lick_idle_us(uint32_t now, uint8_t settling_only);
void rig_lick_poll(uint32_t now);
/* window.c: the valve time of every sliding minute, across sessions, is capped at min(budget_valve_ms,
 * DOPA_MINUTE_VALVE_MS) (no HELLO refreshes it): the valve time the minute still allows (7 buckets of 10 s:
 * at least the last 60 s counted), and a close's open time (at its close time t) */
uint32_t rig_window_room_us(uint32_t now);
void rig_window_add(uint32_t t, uint32_t open_us);
void rig_window_init(uint32_t now);
/* program.c */
uint8_t rig_program_command(uint8_t type, const uint8_t *body, uint32_t now, int32_t *value);
void rig_program_action(uint32_t now, uint8_t action, uint16_t arg);
void rig_program_lick(uint32_t onset_us, uint32_t now);
void rig_programs_clear(uint32_t now);
/* Run the due actions; returns 1 when some wait for the valve close (the poll should end there) */
uint8_t rig_program_poll(uint32_t now);
/* Close the valve if its close time has come by `now`, unless a trial action due by then re-times the
 * pulse end it would cut (rig_poll calls this first of all: the close goes before everything else). */
void rig_program_valve_first(uint32_t now);
/* 1: rig_poll(t) closes the valve first of all (open, due by t, nothing re-times it first).  The AVR loop
 * asks before it waits for t, so it can move the pin the instant t comes and then let rig_poll record it. */
uint8_t rig_valve_closes_at(uint32_t t);
uint32_t rig_program_idle_us(uint32_t now);

#ifdef __cplusplus
}
#endif
#endif
