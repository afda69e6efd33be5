/* The rig core: session (HELLO, arming), command dispatch with idempotent retries, host-silence
 * watchdog and device heartbeat (docs/rig.md).  Outputs and the safety kernel are in outputs.c,
 * trial programs in program.c, the event ring in evring.c.  BSD-3-Clause. */
#if defined(__AVR__) && defined(__GNUC__)
/* keep dopa_body_size()'s switch out of RAM (as a 145-byte lookup table it would be copied into SRAM) */
#pragma GCC optimize("no-tree-switch-conversion")
#endif
#include <string.h>
#include "rig.h"
#include "rig_hal.h"
#include "rig_board.h"

rig_t g_rig;

/* valve time the session has used, in ms rounded up (a valve open now counts up to now) */
static uint32_t used_ms(uint32_t now)
{
    uint32_t us = g_rig.budget_used_us;
    if (g_rig.valve_open && DOPA_AFTER(now, g_rig.valve_open_us)) us += now - g_rig.valve_open_us;
    return us / 1000UL + (us % 1000UL != 0);
}

static void send_hello_reply(uint32_t now, uint16_t cmd_seq, uint8_t boot, uint16_t dropped, uint32_t used)
{
    dopa_hello_reply_t h;
    uint8_t b[DOPA_MSG_HELLO_REPLY_SIZE];
    h.t_us = now;
    h.cmd_seq = cmd_seq;
    h.boot = boot;
    h.protocol_version = DOPA_PROTOCOL_VERSION;
    h.firmware_version = DOPA_FIRMWARE_VERSION;
    h.schema_hash = DOPA_SCHEMA_HASH;
    h.board = RIG_BOARD_ID;
    h.reset_cause = g_rig.reset_cause;
    h.event_ring = DOPA_EVENT_RING;
    h.session = g_rig.session;
    h.dropped = dropped;
    h.lost_total = g_rig.lost_total;
    h.epoch = g_rig.epoch;
    h.budget_used_ms = used;
    dopa_pack_hello_reply(b, &h);
    rig_event(DOPA_MSG_HELLO_REPLY, b, sizeof b);
}

static void send_reply(const rig_reply_t *r)
{
    if (r->reason == 0) {
        dopa_ack_t a;
        uint8_t b[DOPA_MSG_ACK_SIZE];
        a.t_us = r->t_us; a.cmd_seq = r->seq; a.cmd_type = r->cmd_type; a.value = r->value;
        dopa_pack_ack(b, &a);
        rig_event(DOPA_MSG_ACK, b, sizeof b);
    } else {
        dopa_nack_t n;
        uint8_t b[DOPA_MSG_NACK_SIZE];
        n.t_us = r->t_us; n.cmd_seq = r->seq; n.cmd_type = r->cmd_type; n.reason = r->reason;
        dopa_pack_nack(b, &n);
        rig_event(DOPA_MSG_NACK, b, sizeof b);
    }
}

/* Answer a command; remembered for idempotent retries unless remember == 0. */
static void reply(uint32_t now, uint16_t seq, uint8_t type, uint8_t reason, int32_t value, uint8_t remember)
{
    rig_reply_t tmp, *r = &tmp;
    if (remember) {
        r = &g_rig.replies[g_rig.reply_next];
        g_rig.reply_next = (uint8_t)((g_rig.reply_next + 1) % DOPA_REPLY_WINDOW);
    }
    r->seq = seq; r->cmd_type = type; r->reason = reason; r->value = reason ? 0 : value; r->t_us = now;
    send_reply(r);
}

void rig_trip(uint32_t now, uint8_t reason, int32_t value)
{
    rig_event_trip(now, reason, value);
}

void rig_error(uint32_t now, uint8_t code, int32_t value)
{
    dopa_error_t e;
    uint8_t b[DOPA_MSG_ERROR_SIZE];
    e.t_us = now; e.code = code; e.value = value;
    dopa_pack_error(b, &e);
    rig_event(DOPA_MSG_ERROR, b, sizeof b);
}

static void defaults(void)
{
    g_rig.max_valve_ms = DOPA_LIMIT_MAX_VALVE_MS_DEFAULT;
    g_rig.min_valve_gap_ms = DOPA_LIMIT_MIN_VALVE_GAP_MS_DEFAULT;
    g_rig.budget_valve_ms = DOPA_LIMIT_BUDGET_VALVE_MS_DEFAULT;
    g_rig.host_timeout_ms = DOPA_LIMIT_HOST_TIMEOUT_MS_DEFAULT;
    g_rig.debounce_us = DOPA_LIMIT_DEBOUNCE_US_DEFAULT;
    g_rig.flags = 0;
}

void rig_init(uint8_t reset_cause, uint32_t now)
{
    memset(&g_rig, 0, sizeof g_rig);
    hal_valve(0); hal_cue(0); hal_tone(0); hal_ttl(0);
    defaults();
    g_rig.reset_cause = reset_cause;
    g_rig.boot_count = hal_boot_count();
    rig_window_init(now);
    dopa_decoder_init(&g_rig.dec);
    rig_events_reset();
    g_rig.last_rx_us = now;
    g_rig.valve_last_close_us = now;          /* boot counts as a close: the minimum gap holds across a reset */
    g_rig.valve_ever_closed = 1;
    send_hello_reply(now, 0, 1, 0, 0);
}

static uint8_t in_range(uint32_t v, uint32_t lo, uint32_t hi) { return v >= lo && v <= hi; }

/* Check the limits of a CONFIGURE (or of a new-session HELLO): 0 or NACK BAD_VALUE */
static uint8_t check_limits(const dopa_configure_t *p)
{
    dopa_configure_t c = *p;
    if (!in_range(c.max_valve_ms, DOPA_LIMIT_MAX_VALVE_MS_MIN, DOPA_LIMIT_MAX_VALVE_MS_MAX) ||
        !in_range(c.min_valve_gap_ms, DOPA_LIMIT_MIN_VALVE_GAP_MS_MIN, DOPA_LIMIT_MIN_VALVE_GAP_MS_MAX) ||
        !in_range(c.budget_valve_ms, DOPA_LIMIT_BUDGET_VALVE_MS_MIN, DOPA_LIMIT_BUDGET_VALVE_MS_MAX) ||
        !in_range(c.host_timeout_ms, DOPA_LIMIT_HOST_TIMEOUT_MS_MIN, DOPA_LIMIT_HOST_TIMEOUT_MS_MAX) ||
        !in_range(c.debounce_us, DOPA_LIMIT_DEBOUNCE_US_MIN, DOPA_LIMIT_DEBOUNCE_US_MAX) ||
        (c.flags & (uint8_t)~DOPA_CONFIG_FLAG_LICK_ACTIVE_LOW))
        return DOPA_NACK_REASON_BAD_VALUE;
    return 0;
}

/* Apply checked limits */
static void apply_limits(const dopa_configure_t *p, uint32_t now)
{
    dopa_configure_t c = *p;
    g_rig.max_valve_ms = c.max_valve_ms;
    g_rig.min_valve_gap_ms = c.min_valve_gap_ms;
    g_rig.budget_valve_ms = c.budget_valve_ms;
    g_rig.host_timeout_ms = c.host_timeout_ms;
    g_rig.debounce_us = c.debounce_us;
    uint8_t flipped = (uint8_t)((g_rig.flags ^ c.flags) & DOPA_CONFIG_FLAG_LICK_ACTIVE_LOW);
    g_rig.flags = c.flags;
    rig_window_room_us(now);                  /* the minute's ceiling follows the budget */
    rig_valve_replan(now);                    /* the new limits hold for a valve already open too */
    if (flipped) rig_lick_edge(g_rig.lick_raw, now);   /* a polarity flip is a lick-input change now */
}

static uint8_t configure(const uint8_t *body, uint32_t now)
{
    dopa_configure_t c;
    dopa_unpack_configure(body, &c);
    uint8_t r = check_limits(&c);
    if (!r) apply_limits(&c, now);
    return r;
}

/* Execute one command with a well-formed body; returns 0 (ACK with *value) or a NACK reason. */
static uint8_t execute(uint8_t type, const uint8_t *body, uint32_t now, int32_t *value)
{
    uint16_t u;
    *value = 0;
    if (!dopa_allowed_while_disarmed(type) && !g_rig.armed) return DOPA_NACK_REASON_NOT_ARMED;
    switch (type) {
    case DOPA_MSG_PING:
        *value = dopa_get_i32(body);
        return 0;
    case DOPA_MSG_CONFIGURE:
        return configure(body, now);
    case DOPA_MSG_VALVE_PULSE:
        u = dopa_get_u16(body);
        if (u < DOPA_LIMIT_VALVE_PULSE_MS_MIN) return DOPA_NACK_REASON_BAD_VALUE;
        return rig_valve_open_for(now, u, 1, value);
    case DOPA_MSG_VALVE_OPEN:
        return rig_valve_open_for(now, g_rig.max_valve_ms, 0, value);
    case DOPA_MSG_VALVE_CLOSE:
        rig_valve_close(now, DOPA_CLOSE_CAUSE_COMMAND);
        return 0;
    case DOPA_MSG_CUE_ON:
    case DOPA_MSG_CUE_OFF:
        rig_cue(now, type == DOPA_MSG_CUE_ON);
        *value = type == DOPA_MSG_CUE_ON;
        return 0;
    case DOPA_MSG_TONE_ON:
        u = dopa_get_u16(body);
        if (!in_range(u, DOPA_LIMIT_TONE_HZ_MIN, DOPA_LIMIT_TONE_HZ_MAX)) return DOPA_NACK_REASON_BAD_VALUE;
        *value = rig_tone(now, u);
        return 0;
    case DOPA_MSG_TONE_OFF:
        *value = rig_tone(now, 0);
        return 0;
    case DOPA_MSG_TTL_PULSE:
        u = dopa_get_u16(body);
        if (!in_range(u, DOPA_LIMIT_TTL_MS_MIN, DOPA_LIMIT_TTL_MS_MAX)) return DOPA_NACK_REASON_BAD_VALUE;
        rig_ttl_pulse(now, u);
        *value = u;
        return 0;
    case DOPA_MSG_SYNC_START: {
        uint16_t lo = dopa_get_u16(body), hi = dopa_get_u16(body + 2), ms = dopa_get_u16(body + 4);
        if (!in_range(lo, DOPA_LIMIT_SYNC_INTERVAL_MS_MIN, DOPA_LIMIT_SYNC_INTERVAL_MS_MAX) ||
            !in_range(hi, lo, DOPA_LIMIT_SYNC_INTERVAL_MS_MAX) ||
            !in_range(ms, DOPA_LIMIT_TTL_MS_MIN, DOPA_LIMIT_TTL_MS_MAX) || ms >= lo)
            return DOPA_NACK_REASON_BAD_VALUE;
        rig_sync_start(now, lo, hi, ms, dopa_get_u32(body + 6));
        *value = ms;
        return 0;
    }
    case DOPA_MSG_SYNC_STOP:
        *value = (int32_t)rig_sync_stop();
        return 0;
    case DOPA_MSG_ANALOG_START:
        u = dopa_get_u16(body);
        if (!in_range(u, DOPA_LIMIT_ANALOG_RATE_HZ_MIN, DOPA_LIMIT_ANALOG_RATE_HZ_MAX)) return DOPA_NACK_REASON_BAD_VALUE;
        rig_analog_set(now, u);
        *value = u;
        return 0;
    case DOPA_MSG_ANALOG_STOP:
        rig_analog_set(now, 0);
        return 0;
    case DOPA_MSG_ALL_OFF:
        rig_programs_clear(now);
        rig_outputs_off(now, DOPA_CLOSE_CAUSE_ALL_OFF);
        return 0;
    case DOPA_MSG_HEARTBEAT:
        *value = g_rig.ring_count;
        return 0;
    default:
        return rig_program_command(type, body, now, value);
    }
}

/* HELLO (docs/rig.md, "Sessions"): the nonce of the current session resumes it (re-armed; reply window,
 * device seq, event ring, budget and limits kept; answered by RESUMED with the session's epoch); any other
 * nonce starts a new session with the HELLO's limits, applied before the outputs arm (answered by
 * HELLO_REPLY). */
static void hello(uint32_t now, uint16_t seq, const uint8_t *body)
{
    dopa_hello_t h;
    dopa_configure_t c;
    dopa_unpack_hello(body, &h);
    if (h.protocol_version != DOPA_PROTOCOL_VERSION) {
        reply(now, seq, DOPA_MSG_HELLO, DOPA_NACK_REASON_VERSION, 0, 0);
        return;
    }
    if (h.session != 0 && h.session == g_rig.session) {
        dopa_resumed_t r;
        uint8_t b[DOPA_MSG_RESUMED_SIZE];
        if (!g_rig.armed) g_rig.last_hb_us = now;
        g_rig.armed = 1;
        r.t_us = now; r.cmd_seq = seq; r.epoch = g_rig.epoch; r.lost_total = g_rig.lost_total;
        r.budget_used_ms = used_ms(now);
        dopa_pack_resumed(b, &r);
        rig_event(DOPA_MSG_RESUMED, b, sizeof b);   /* a small answer, with the proof of the session */
        return;
    }
    c.max_valve_ms = g_rig.max_valve_ms; c.min_valve_gap_ms = g_rig.min_valve_gap_ms;
    c.budget_valve_ms = g_rig.budget_valve_ms; c.host_timeout_ms = g_rig.host_timeout_ms;
    c.debounce_us = g_rig.debounce_us; c.flags = g_rig.flags;
    if (h.max_valve_ms != DOPA_LIMITS_KEEP) {
        c.max_valve_ms = h.max_valve_ms; c.min_valve_gap_ms = h.min_valve_gap_ms;
        c.host_timeout_ms = h.host_timeout_ms; c.debounce_us = h.debounce_us; c.flags = h.flags;
    }
    if (h.budget_valve_ms != DOPA_BUDGET_KEEP) c.budget_valve_ms = h.budget_valve_ms;
    if (check_limits(&c)) {
        reply(now, seq, DOPA_MSG_HELLO, DOPA_NACK_REASON_BAD_VALUE, 0, 0);
        return;
    }
    uint32_t used = g_rig.session ? used_ms(now) : 0;   /* what the session this HELLO ends had used */
    uint16_t dropped = rig_events_drop();     /* unacknowledged events of the old session: counted, not sent; */
                                              /* the device seq restarts at 0 with the HELLO_REPLY */
    memset(g_rig.replies, 0, sizeof g_rig.replies);
    g_rig.reply_next = 0;
    g_rig.session = h.session;
    g_rig.sessions = (uint8_t)(g_rig.sessions == 255u ? 1u : g_rig.sessions + 1u);
    g_rig.epoch = (uint16_t)((uint16_t)g_rig.boot_count << 8 | g_rig.sessions);
    g_rig.budget_used_us = 0;                 /* a valve still open counts against the new budget */
    apply_limits(&c, now);                    /* the session's limits hold before anything is armed */
    send_hello_reply(now, seq, 0, dropped, used);
    rig_programs_clear(now);                  /* a new session starts from a clean state; the events this */
    rig_outputs_off(now, DOPA_CLOSE_CAUSE_ALL_OFF);   /* causes are sent in the new session */
    g_rig.armed = 1;
    g_rig.last_hb_us = now;
}

static void handle_frame(const dopa_frame_t *f, uint32_t now)
{
    int16_t size = dopa_body_size(f->type);
    g_rig.rx_frames++;
    if (f->type >= 0x80) return;              /* a device type (an echo): never answered (it would echo again) */
    if (f->type == DOPA_MSG_EVENT_ACK) {
        if (f->body_len == DOPA_MSG_EVENT_ACK_SIZE) {
            g_rig.last_rx_us = now;
            rig_events_ack(dopa_get_u16(f->body), dopa_get_u16(f->body + 2), now);
        } else {
            g_rig.rx_errors++;
        }
        return;
    }
    if (size < 0) {
        reply(now, f->seq, f->type, DOPA_NACK_REASON_UNKNOWN_TYPE, 0, 0);
        return;
    }
    if (f->body_len != (uint8_t)size) {
        reply(now, f->seq, f->type, DOPA_NACK_REASON_BAD_LENGTH, 0, 0);
        return;
    }
    g_rig.last_rx_us = now;                   /* only a well-formed host command shows the host is there */
    if (f->type == DOPA_MSG_HELLO) {
        hello(now, f->seq, f->body);
        return;
    }
    if (f->type == DOPA_MSG_HEARTBEAT) rig_events_ack(dopa_get_u16(f->body), dopa_get_u16(f->body + 2), now);
    for (uint8_t i = 0; i < DOPA_REPLY_WINDOW; i++) {
        const rig_reply_t *r = &g_rig.replies[i];
        if (r->cmd_type == f->type && r->seq == f->seq) {   /* a retry: answer again, do nothing */
            send_reply(r);
            return;
        }
    }
    int32_t value;
    uint8_t reason = execute(f->type, f->body, now, &value);
    reply(now, f->seq, f->type, reason, value, 1);
}

uint8_t rig_rx_byte(uint8_t byte, uint32_t now)
{
    dopa_frame_t f;
    uint8_t err, header_ok;
    uint8_t r = dopa_decoder_feed(&g_rig.dec, byte, &f, &err, &header_ok);
    if (r == DOPA_RX_FRAME) {
        handle_frame(&f, now);
    } else if (r == DOPA_RX_ERROR) {
        g_rig.rx_errors++;
        if (header_ok && f.type != DOPA_MSG_EVENT_ACK && f.type < 0x80)
            reply(now, f.seq, f.type, DOPA_NACK_REASON_BAD_CRC, 0, 0);
    }
    return r != DOPA_RX_NONE;
}

static uint8_t state_bits(void)
{
    uint8_t s = 0;
    if (g_rig.armed) s |= DOPA_STATE_BIT_ARMED;
    if (g_rig.valve_open) s |= DOPA_STATE_BIT_VALVE;
    if (g_rig.cue_on) s |= DOPA_STATE_BIT_CUE;
    if (g_rig.tone_hz) s |= DOPA_STATE_BIT_TONE;
    if (g_rig.ttl_on) s |= DOPA_STATE_BIT_TTL;
    if (g_rig.analog_rate) s |= DOPA_STATE_BIT_ANALOG;
    if (g_rig.trial_running) s |= DOPA_STATE_BIT_TRIAL_RUNNING;
    if (g_rig.prog[g_rig.run_idx ^ 1].valid == RIG_PROG_READY) s |= DOPA_STATE_BIT_TRIAL_PENDING;
    return s;
}

void rig_poll(uint32_t now)
{
    rig_program_valve_first(now);   /* the valve close first of all, then before each trial action */
    if (rig_program_poll(now)) return;   /* actions wait for the close: back to waiting for it at once */
    rig_outputs_poll(now);
    rig_lick_poll(now);
    if (g_rig.armed && DOPA_AFTER(now, g_rig.last_rx_us + (uint32_t)g_rig.host_timeout_ms * 1000UL)) {
        rig_programs_clear(now);
        rig_outputs_off(now, DOPA_CLOSE_CAUSE_HOST_TIMEOUT);
        g_rig.armed = 0;
        rig_trip(now, DOPA_TRIP_REASON_HOST_TIMEOUT, g_rig.host_timeout_ms);
    }
    /* the heartbeat (two 32-bit divisions, a frame built: ~100 us on the AVR) waits while a timed change is
     * due within RIG_HB_GUARD_US, so it never delays one (deadline checked only when a heartbeat is due) */
    if (g_rig.armed && DOPA_AFTER(now, g_rig.last_hb_us + DOPA_DEVICE_HEARTBEAT_MS * 1000UL) &&
        rig_deadline_us(now) > RIG_HB_GUARD_US) {
        dopa_device_heartbeat_t h;
        uint8_t b[DOPA_MSG_DEVICE_HEARTBEAT_SIZE];
        g_rig.last_hb_us = now;
        h.t_us = now; h.rx_frames = g_rig.rx_frames; h.rx_errors = g_rig.rx_errors;
        h.unacked = g_rig.ring_count; h.state = state_bits(); h.budget_used_ms = used_ms(now);
        dopa_pack_device_heartbeat(b, &h);
        rig_event(DOPA_MSG_DEVICE_HEARTBEAT, b, sizeof b);
    }
    rig_events_poll(now);
}

static uint32_t until(uint32_t now, uint32_t due)
{
    return DOPA_AFTER(now, due) ? 0 : due - now;
}

uint32_t rig_deadline_us(uint32_t now)
{
    uint32_t t = rig_outputs_idle_us(now), x = rig_program_idle_us(now);
    if (x < t) t = x;
    x = rig_lick_idle_us(now, 1);
    return x < t ? x : t;
}

uint32_t rig_idle_us(uint32_t now)
{
    uint32_t t = rig_events_idle_us(now), x;
    if (g_rig.armed) {
        x = until(now, g_rig.last_rx_us + (uint32_t)g_rig.host_timeout_ms * 1000UL);
        if (x < t) t = x;
        x = until(now, g_rig.last_hb_us + DOPA_DEVICE_HEARTBEAT_MS * 1000UL);
        if (x < t) t = x;
    }
    x = rig_deadline_us(now);
    if (x < t) t = x;
    x = rig_lick_idle_us(now, 0);
    return x < t ? x : t;
}
