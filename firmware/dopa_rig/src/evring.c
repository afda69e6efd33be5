/* Reliable device->host events: a byte ring of unacknowledged frames with cumulative EVENT_ACK and
 * go-back-N retransmission (docs/rig.md, "Reliable events").  BSD-3-Clause. */
#include "rig.h"

/* offsets stay below 2 * RIG_RING_BYTES, so a subtraction wraps them (a 16-bit % costs ~13 us on the AVR) */
static uint16_t wrap(uint16_t off)
{
    while (off >= RIG_RING_BYTES) off = (uint16_t)(off - RIG_RING_BYTES);
    return off;
}
static uint8_t at(uint16_t off) { return g_rig.ring[wrap(off)]; }
/* offset of the entry after the one at off */
static uint16_t next_entry(uint16_t off) { return wrap((uint16_t)(off + 2u + at((uint16_t)(off + 1u)))); }

static uint8_t fits(uint8_t len)
{
    return g_rig.ring_count < DOPA_EVENT_RING && g_rig.ring_used + 2u + len <= RIG_RING_BYTES;
}

static void push(uint8_t type, const uint8_t *body, uint8_t len)
{
    uint16_t off = (uint16_t)(g_rig.ring_head + g_rig.ring_used);
    g_rig.ring[wrap(off)] = type;
    g_rig.ring[wrap((uint16_t)(off + 1u))] = len;
    for (uint8_t i = 0; i < len; i++) g_rig.ring[wrap((uint16_t)(off + 2u + i))] = body[i];
    g_rig.ring_used = (uint16_t)(g_rig.ring_used + 2u + len);
    g_rig.ring_count++;
}

/* ERROR EVENT_OVERFLOW with the number of events lost since the ring filled up */
static void push_overflow_report(uint32_t t)
{
    uint8_t b[DOPA_MSG_ERROR_SIZE];
    dopa_error_t e;
    e.t_us = t;
    e.code = DOPA_ERROR_CODE_EVENT_OVERFLOW;
    e.value = g_rig.lost;
    dopa_pack_error(b, &e);
    push(DOPA_MSG_ERROR, b, sizeof b);
    g_rig.lost = 0;
}

/* queue latched SAFETY_TRIPs while they fit (lowest reason first) */
static void flush_trips(void)
{
    while (g_rig.trip_latched && fits(DOPA_MSG_SAFETY_TRIP_SIZE)) {
        uint8_t i = 0;
        while (!(g_rig.trip_latched & (1u << i))) i++;
        uint8_t b[DOPA_MSG_SAFETY_TRIP_SIZE];
        dopa_safety_trip_t t;
        t.t_us = g_rig.trip_t[i]; t.reason = (uint8_t)(i + 1u); t.value = g_rig.trip_value[i];
        dopa_pack_safety_trip(b, &t);
        push(DOPA_MSG_SAFETY_TRIP, b, sizeof b);
        g_rig.trip_latched = (uint8_t)(g_rig.trip_latched & ~(1u << i));
    }
}

void rig_event_trip(uint32_t t, uint8_t reason, int32_t value)
{
    uint8_t i = (uint8_t)(reason - 1u);
    flush_trips();
    if (!g_rig.trip_latched && fits(DOPA_MSG_SAFETY_TRIP_SIZE)) {
        uint8_t b[DOPA_MSG_SAFETY_TRIP_SIZE];
        dopa_safety_trip_t e;
        e.t_us = t; e.reason = reason; e.value = value;
        dopa_pack_safety_trip(b, &e);
        push(DOPA_MSG_SAFETY_TRIP, b, sizeof b);
        return;
    }
    if (i >= 4u || (g_rig.trip_latched & (1u << i))) {   /* the same limit again before the first got out */
        g_rig.lost++;
        g_rig.lost_total++;
        return;
    }
    g_rig.trip_latched = (uint8_t)(g_rig.trip_latched | (1u << i));
    g_rig.trip_t[i] = t;
    g_rig.trip_value[i] = value;
}

void rig_event(uint8_t type, const uint8_t *body, uint8_t len)
{
    if (type != DOPA_MSG_HELLO_REPLY) flush_trips();   /* a HELLO_REPLY opens the sequence at 0 */
    if (g_rig.lost) {
        if (!fits(DOPA_MSG_ERROR_SIZE)) { g_rig.lost++; g_rig.lost_total++; return; }
        push_overflow_report(dopa_get_u32(body));   /* every event body starts with t_us */
    }
    if (!fits(len)) {
        g_rig.lost++;
        g_rig.lost_total++;
        return;
    }
    push(type, body, len);
}

void rig_events_reset(void)
{
    g_rig.ring_head = 0;
    g_rig.ring_used = 0;
    g_rig.ring_sent_at = 0;
    g_rig.ring_count = 0;
    g_rig.ring_sent = 0;
    g_rig.ring_hi = 0;
    g_rig.ring_seq = 0;
    g_rig.lost = 0;
    g_rig.tx_len = 0;
}

uint16_t rig_events_drop(void)
{
    uint16_t n = 0, off = g_rig.ring_head;
    for (uint8_t i = 0; i < g_rig.ring_count; i++, off = next_entry(off))
        if (at(off) != DOPA_MSG_HELLO_REPLY) n++;   /* a HELLO_REPLY is superseded by the next one */
    g_rig.lost_total += n;
    rig_events_reset();
    return n;
}

void rig_events_ack(uint16_t next_expected, uint16_t epoch, uint32_t now)
{
    uint16_t n = (uint16_t)(next_expected - g_rig.ring_seq);
    if (epoch != g_rig.epoch || !g_rig.epoch) return;   /* meant for another device session (before a reset) */
    if (n == 0 || n > g_rig.ring_hi) return;        /* nothing new, or acks what was never sent */
    for (uint16_t i = 0; i < n; i++) {
        uint16_t nxt = next_entry(g_rig.ring_head);
        g_rig.ring_used = (uint16_t)(g_rig.ring_used - 2u - at((uint16_t)(g_rig.ring_head + 1u)));
        g_rig.ring_head = nxt;
    }
    g_rig.ring_count = (uint8_t)(g_rig.ring_count - n);
    g_rig.ring_hi = (uint8_t)(g_rig.ring_hi - n);
    if (g_rig.ring_sent >= n) {
        g_rig.ring_sent = (uint8_t)(g_rig.ring_sent - n);
    } else {                                        /* acked during a go-back-N round: skip what is acked */
        g_rig.ring_sent = 0;
        g_rig.tx_len = 0;                           /* a frame encoded for sending may be among them */
    }
    g_rig.ring_seq = next_expected;
    g_rig.ring_progress_us = now;
    if (g_rig.ring_sent == 0) g_rig.ring_sent_at = g_rig.ring_head;
    flush_trips();
    if (g_rig.lost && fits(DOPA_MSG_ERROR_SIZE)) push_overflow_report(now);
}

void rig_events_poll(uint32_t now)
{
    flush_trips();
    if (g_rig.lost && fits(DOPA_MSG_ERROR_SIZE)) push_overflow_report(now);
    if (g_rig.ring_sent && DOPA_AFTER(now, g_rig.ring_progress_us + DOPA_RETRANSMIT_MS * 1000UL)) {
        g_rig.ring_sent = 0;   /* go back N: resend everything from the oldest unacknowledged */
        g_rig.ring_sent_at = g_rig.ring_head;
        g_rig.tx_len = 0;
        g_rig.ring_progress_us = now;
    }
}

uint8_t rig_tx_next(const uint8_t **bytes)
{
    if (g_rig.ring_sent >= g_rig.ring_count) return 0;
    if (!g_rig.tx_len) {
        uint8_t body[DOPA_MAX_BODY];
        uint16_t off = g_rig.ring_sent_at;
        uint8_t len = at((uint16_t)(off + 1u));
        for (uint8_t i = 0; i < len; i++) body[i] = at((uint16_t)(off + 2u + i));
        g_rig.tx_len = dopa_frame_encode(at(off), (uint16_t)(g_rig.ring_seq + g_rig.ring_sent), body, len, g_rig.tx_buf);
    }
    *bytes = g_rig.tx_buf;
    return g_rig.tx_len;
}

void rig_tx_sent(uint32_t now)
{
    if (g_rig.ring_sent == 0) g_rig.ring_progress_us = now;   /* the retransmit clock starts with the first unacked send */
    g_rig.ring_sent_at = next_entry(g_rig.ring_sent_at);
    g_rig.ring_sent++;
    if (g_rig.ring_sent > g_rig.ring_hi) g_rig.ring_hi = g_rig.ring_sent;
    g_rig.tx_len = 0;
}

uint32_t rig_events_idle_us(uint32_t now)
{
    if (g_rig.ring_sent < g_rig.ring_count || (g_rig.lost && fits(DOPA_MSG_ERROR_SIZE)) ||
        (g_rig.trip_latched && fits(DOPA_MSG_SAFETY_TRIP_SIZE)))
        return 0;
    if (!g_rig.ring_sent) return 0x7FFFFFFFUL;
    uint32_t due = g_rig.ring_progress_us + DOPA_RETRANSMIT_MS * 1000UL;
    return DOPA_AFTER(now, due) ? 0 : due - now;
}
