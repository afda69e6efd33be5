/* Outputs and the safety kernel: valve (maximum open time, minimum gap, volume budget), cue, tone,
 * TTL, analog sampling, and the lick debounce (docs/rig.md).  BSD-3-Clause. */
#include <string.h>
#include "rig.h"
#include "rig_hal.h"

static void event_t(uint8_t type, uint32_t t)
{
    uint8_t b[4];
    dopa_put_u32(b, t);
    rig_event(type, b, 4);
}

static uint32_t elapsed_open_us(uint32_t now)
{
    return g_rig.valve_open && DOPA_AFTER(now, g_rig.valve_open_us) ? now - g_rig.valve_open_us : 0;
}

uint8_t rig_valve_open_for(uint32_t now, uint32_t ms, uint8_t is_pulse, int32_t *applied)
{
    /* all in microseconds, no division before the pin moves (a 32-bit division costs ~40 us on the AVR) */
    uint32_t open_for = elapsed_open_us(now);
    uint32_t budget_us = g_rig.budget_valve_ms * 1000UL;
    uint32_t used_us = g_rig.budget_used_us + open_for;
    uint32_t remaining = used_us >= budget_us ? 0 : budget_us - used_us;
    uint32_t max_us = (uint32_t)g_rig.max_valve_ms * 1000UL;
    uint32_t cap = open_for >= max_us ? 0 : max_us - open_for;     /* max open time counts from the opening */
    uint32_t want = is_pulse ? ms * 1000UL : 0xFFFFFFFFUL;
    uint8_t cause = DOPA_CLOSE_CAUSE_PULSE_END;
    if (!g_rig.valve_open && g_rig.valve_ever_closed &&
        !DOPA_AFTER(now, g_rig.valve_last_close_us + (uint32_t)g_rig.min_valve_gap_ms * 1000UL)) {
        rig_trip(now, DOPA_TRIP_REASON_MIN_GAP, (int32_t)((now - g_rig.valve_last_close_us) / 1000UL));
        return DOPA_NACK_REASON_SAFETY;
    }
    if (want > cap) { want = cap; cause = DOPA_CLOSE_CAUSE_MAX_OPEN; }
    /* the minute's ceiling (an open valve is not in it yet), as of the last move of its buckets (never more
     * lenient); they are moved now only when that would limit this opening (no loop before the pin else) */
    uint32_t room = g_rig.win_room_us;
    room = room > open_for ? room - open_for : 0;
    if (room < want && room < remaining) {
        room = rig_window_room_us(now);
        room = room > open_for ? room - open_for : 0;
    }
    if (room < remaining) remaining = room;
    /* a pulse that would overrun the budget is refused; an open valve is cut when the budget runs out */
    if ((is_pulse && want > remaining) || (!is_pulse && remaining < 1000UL)) {
        rig_trip(now, DOPA_TRIP_REASON_BUDGET, (int32_t)(g_rig.budget_used_us / 1000UL));
        return DOPA_NACK_REASON_SAFETY;
    }
    if (want > remaining) { want = remaining; cause = DOPA_CLOSE_CAUSE_BUDGET; }
    g_rig.valve_cause = cause;
    g_rig.valve_req_open = !is_pulse;
    if (!g_rig.valve_open) {
        hal_valve(1);
        uint32_t t = hal_micros();
        g_rig.valve_open = 1;
        g_rig.valve_open_us = t;
        g_rig.valve_close_us = t + want;          /* timed from the pin's own moment: the length is exact */
        g_rig.valve_req_end_us = t + ms * 1000UL;
        dopa_valve_opened_t o;
        uint8_t b[DOPA_MSG_VALVE_OPENED_SIZE];
        uint32_t planned = want / 1000UL;
        o.t_us = t; o.planned_ms = (uint16_t)(planned > 0xFFFFUL ? 0xFFFFUL : planned);
        dopa_pack_valve_opened(b, &o);
        rig_event(DOPA_MSG_VALVE_OPENED, b, sizeof b);
    } else {
        g_rig.valve_close_us = now + want;
        g_rig.valve_req_end_us = now + ms * 1000UL;
    }
    if (applied) *applied = (int32_t)(want / 1000UL);   /* a 32-bit division: only for a command's ACK */
    return 0;
}

void rig_valve_replan(uint32_t now)
{
    if (!g_rig.valve_open) return;
    uint32_t open_for = elapsed_open_us(now);
    uint32_t budget_us = g_rig.budget_valve_ms * 1000UL;
    uint32_t used_us = g_rig.budget_used_us + open_for;
    uint32_t remaining = used_us >= budget_us ? 0 : budget_us - used_us;
    uint32_t room = rig_window_room_us(now);      /* and the minute's ceiling (an open valve is not in it yet) */
    room = room > open_for ? room - open_for : 0;
    if (room < remaining) remaining = room;
    uint32_t max_us = (uint32_t)g_rig.max_valve_ms * 1000UL;
    uint32_t cap = open_for >= max_us ? 0 : max_us - open_for;
    uint32_t want = g_rig.valve_req_open ? 0xFFFFFFFFUL
                    : DOPA_AFTER(now, g_rig.valve_req_end_us) ? 0 : g_rig.valve_req_end_us - now;
    uint8_t cause = DOPA_CLOSE_CAUSE_PULSE_END;
    if (want > cap) { want = cap; cause = DOPA_CLOSE_CAUSE_MAX_OPEN; }
    if (want > remaining) { want = remaining; cause = DOPA_CLOSE_CAUSE_BUDGET; }
    g_rig.valve_cause = cause;
    g_rig.valve_close_us = now + want;
}

/* The valve pin went low at t (micros() read right after it) */
static void closed_at(uint32_t t, uint8_t cause)
{
    dopa_valve_closed_t c;
    uint8_t b[DOPA_MSG_VALVE_CLOSED_SIZE];
    /* a close at its own deadline whose pin moved within RIG_ON_TIME_US of it: the valve was open exactly
     * as planned (as far as the 4 us clock can tell), so the event and the budget count the plan and both
     * devices agree on it (docs/firmware.md, "Timing on the device") */
    if (cause != DOPA_CLOSE_CAUSE_COMMAND && cause != DOPA_CLOSE_CAUSE_ALL_OFF &&
        cause != DOPA_CLOSE_CAUSE_HOST_TIMEOUT && DOPA_AFTER(t, g_rig.valve_close_us - RIG_VALVE_LEAD_US) &&
        !DOPA_AFTER(t, g_rig.valve_close_us + RIG_ON_TIME_US + 1u))
        t = g_rig.valve_close_us;
    g_rig.valve_open = 0;
    g_rig.budget_used_us += t - g_rig.valve_open_us;
    rig_window_add(t, t - g_rig.valve_open_us);
    g_rig.valve_last_close_us = t;
    g_rig.valve_ever_closed = 1;
    c.t_us = t; c.open_us = t - g_rig.valve_open_us; c.cause = cause;
    dopa_pack_valve_closed(b, &c);
    rig_event(DOPA_MSG_VALVE_CLOSED, b, sizeof b);
    if (cause == DOPA_CLOSE_CAUSE_MAX_OPEN) rig_trip(t, DOPA_TRIP_REASON_MAX_OPEN, g_rig.max_valve_ms);
    else if (cause == DOPA_CLOSE_CAUSE_BUDGET) rig_trip(t, DOPA_TRIP_REASON_BUDGET, (int32_t)g_rig.budget_valve_ms);
}

void rig_valve_close(uint32_t now, uint8_t cause)
{
    (void)now;
    if (!g_rig.valve_open) return;
    hal_valve(0);
    closed_at(hal_micros(), cause);
}

void rig_valve_cut(uint32_t t)
{
    if (!g_rig.valve_open) return;
    hal_valve(0);                  /* already low (the caller moved it): the core's view follows */
    closed_at(t, g_rig.valve_cause);
}

uint8_t rig_valve_close_due(uint32_t now)
{
    return g_rig.valve_open && DOPA_AFTER(now + RIG_VALVE_LEAD_US, g_rig.valve_close_us);
}


void rig_cue(uint32_t now, uint8_t on)
{
    (void)now;
    on = on ? 1 : 0;
    if (on == g_rig.cue_on) return;
    hal_cue(on);
    g_rig.cue_on = on;
    event_t(on ? DOPA_MSG_CUE_ONSET : DOPA_MSG_CUE_OFFSET, hal_micros());
}

uint16_t rig_tone(uint32_t now, uint16_t freq_hz)
{
    (void)now;
    if (freq_hz == 0) {
        if (g_rig.tone_hz) {
            hal_tone(0);
            g_rig.tone_hz = 0;
            event_t(DOPA_MSG_TONE_OFFSET, hal_micros());
        }
        return 0;
    }
    dopa_tone_onset_t t;
    uint8_t b[DOPA_MSG_TONE_ONSET_SIZE];
    uint16_t applied = hal_tone_hz(freq_hz);
    if (applied == g_rig.tone_hz) return applied;        /* already playing that frequency */
    g_rig.tone_hz = hal_tone(freq_hz);
    t.t_us = hal_micros(); t.freq_hz = g_rig.tone_hz;
    dopa_pack_tone_onset(b, &t);
    rig_event(DOPA_MSG_TONE_ONSET, b, sizeof b);
    return g_rig.tone_hz;
}

/* TTL high for ms from now; returns the time the pin went high */
static uint32_t ttl_high(uint16_t ms)
{
    uint32_t t;
    hal_ttl(1);
    t = hal_micros();
    g_rig.ttl_on = 1;
    g_rig.ttl_off_us = t + (uint32_t)ms * 1000UL;
    return t;
}

void rig_ttl_pulse(uint32_t now, uint16_t ms)
{
    dopa_ttl_sent_t t;
    uint8_t b[DOPA_MSG_TTL_SENT_SIZE];
    (void)now;
    t.t_us = ttl_high(ms);
    t.ms = ms;
    dopa_pack_ttl_sent(b, &t);
    rig_event(DOPA_MSG_TTL_SENT, b, sizeof b);
}

/* the next interval of the sync sequence, ms (xorshift32, as in protocol/messages.toml) */
static uint32_t sync_interval_ms(void)
{
    uint32_t x = g_rig.sync_x;
    x ^= x << 13; x ^= x >> 17; x ^= x << 5;
    g_rig.sync_x = x;
    return g_rig.sync_min_ms + x % g_rig.sync_span_ms;
}

void rig_sync_start(uint32_t now, uint16_t min_ms, uint16_t max_ms, uint16_t pulse_ms, uint32_t seed)
{
    g_rig.sync_on = 1;
    g_rig.sync_min_ms = min_ms;
    g_rig.sync_span_ms = (uint16_t)(max_ms - min_ms + 1u);
    g_rig.sync_pulse_ms = pulse_ms;
    g_rig.sync_x = seed ? seed : 1u;
    g_rig.sync_n = 0;
    g_rig.sync_next_us = now;       /* the first pulse at once */
}

uint32_t rig_sync_stop(void)
{
    g_rig.sync_on = 0;
    return g_rig.sync_n;
}

static void sync_poll(uint32_t now)
{
    dopa_sync_pulse_t p;
    uint8_t b[DOPA_MSG_SYNC_PULSE_SIZE];
    if (!g_rig.sync_on || !DOPA_AFTER(now, g_rig.sync_next_us)) return;
    p.t_us = ttl_high(g_rig.sync_pulse_ms);
    p.n = g_rig.sync_n++;
    p.ms = g_rig.sync_pulse_ms;
    /* from the time planned, not the time it ran: a late pulse does not shift the ones after it (the
     * first is planned from when it ran: SYNC_START asks for it at once) */
    if (p.n == 0) g_rig.sync_next_us = p.t_us;
    g_rig.sync_next_us += sync_interval_ms() * 1000UL;
    if (DOPA_AFTER(now, g_rig.sync_next_us)) g_rig.sync_next_us = now + sync_interval_ms() * 1000UL;
    dopa_pack_sync_pulse(b, &p);
    rig_event(DOPA_MSG_SYNC_PULSE, b, sizeof b);
}

static void analog_flush(void)
{
    dopa_analog_batch_t a;
    uint8_t b[DOPA_MSG_ANALOG_BATCH_SIZE];
    if (!g_rig.analog_n) return;
    memset(&a, 0, sizeof a);
    a.t_us = g_rig.analog_t0; a.rate_hz = g_rig.analog_rate; a.n = g_rig.analog_n;
    memcpy(a.samples, g_rig.analog_samples, g_rig.analog_n * sizeof(uint16_t));
    dopa_pack_analog_batch(b, &a);
    rig_event(DOPA_MSG_ANALOG_BATCH, b, sizeof b);
    g_rig.analog_n = 0;
}

void rig_analog_set(uint32_t now, uint16_t rate_hz)
{
    analog_flush();
    g_rig.analog_rate = rate_hz;
    if (rate_hz) {
        g_rig.analog_period_us = 1000000UL / rate_hz;
        g_rig.analog_next_us = now;
    }
}

void rig_analog_sample(uint16_t value)
{
    g_rig.analog_busy = 0;
    if (!g_rig.analog_rate) return;
    if (g_rig.analog_n == 0) g_rig.analog_t0 = g_rig.analog_pending_t;
    g_rig.analog_samples[g_rig.analog_n++] = value;
    if (g_rig.analog_n == DOPA_ANALOG_BATCH) analog_flush();
}

/* Frequency the tone generator makes for freq_hz: Timer1 toggling OC1A at DOPA_TONE_TIMER_HZ (16 MHz / 8 / 2),
 * the formula generated from protocol/messages.toml.  The AVR layer programs exactly this. */
uint16_t hal_tone_hz(uint16_t freq_hz)
{
    return dopa_tone_applied_hz(freq_hz);
}

void rig_outputs_off(uint32_t now, uint8_t cause)
{
    rig_valve_close(now, cause);
    rig_cue(now, 0);
    rig_tone(now, 0);
    hal_ttl(0);
    g_rig.ttl_on = 0;
    g_rig.sync_on = 0;
    rig_analog_set(now, 0);
}

void rig_outputs_poll(uint32_t now)
{
    rig_program_valve_first(now);
    /* forget the last close once no gap can apply: DOPA_AFTER on it would flip sign after ~35.8 min */
    if (g_rig.valve_ever_closed && !g_rig.valve_open &&
        DOPA_AFTER(now, g_rig.valve_last_close_us + DOPA_LIMIT_MIN_VALVE_GAP_MS_MAX * 1000UL))
        g_rig.valve_ever_closed = 0;
    if (g_rig.ttl_on && DOPA_AFTER(now, g_rig.ttl_off_us)) {
        hal_ttl(0);
        g_rig.ttl_on = 0;
    }
    sync_poll(now);
    if (g_rig.analog_rate && !g_rig.analog_busy && DOPA_AFTER(now, g_rig.analog_next_us)) {
        g_rig.analog_pending_t = g_rig.analog_next_us;
        g_rig.analog_next_us += g_rig.analog_period_us;
        if (DOPA_AFTER(now, g_rig.analog_next_us)) g_rig.analog_next_us = now + g_rig.analog_period_us;
        g_rig.analog_busy = 1;
        hal_adc_start();
    }
}

static uint32_t until(uint32_t now, uint32_t due) { return DOPA_AFTER(now, due) ? 0 : due - now; }

uint32_t rig_outputs_idle_us(uint32_t now)
{
    uint32_t t = 0x7FFFFFFFUL, x;
    if (g_rig.valve_open && (x = until(now, g_rig.valve_close_us - RIG_VALVE_LEAD_US)) < t) t = x;
    if (g_rig.ttl_on && (x = until(now, g_rig.ttl_off_us)) < t) t = x;
    if (g_rig.sync_on && (x = until(now, g_rig.sync_next_us)) < t) t = x;
    if (g_rig.analog_rate && !g_rig.analog_busy && (x = until(now, g_rig.analog_next_us)) < t) t = x;
    return t;
}

uint32_t rig_lick_idle_us(uint32_t now, uint8_t settling_only)
{
    uint8_t lick = g_rig.lick_raw ^ (g_rig.flags & DOPA_CONFIG_FLAG_LICK_ACTIVE_LOW);
    if (lick == g_rig.lick_state && !g_rig.lick_pending) return 0x7FFFFFFFUL;
    /* a change still bouncing RIG_LICK_SETTLE_US after it could first have been accepted keeps moving
     * its deadline: it no longer counts as a timed change (it would hold the link for good) */
    if (settling_only && g_rig.lick_pending &&
        DOPA_AFTER(now, g_rig.lick_first_us + g_rig.debounce_us + RIG_LICK_SETTLE_US))
        return 0x7FFFFFFFUL;
    return until(now, g_rig.lick_last_edge_us + g_rig.debounce_us);
}

void rig_lick_edge(uint8_t level, uint32_t t)
{
    g_rig.lick_raw = level ? 1 : 0;
    uint8_t logical = g_rig.lick_raw ^ (g_rig.flags & DOPA_CONFIG_FLAG_LICK_ACTIVE_LOW);
    if (logical != g_rig.lick_state && !g_rig.lick_pending) {
        g_rig.lick_pending = 1;
        g_rig.lick_first_us = t;     /* first edge of a (possibly bouncing) change */
    }
    g_rig.lick_last_edge_us = t;
}

void rig_lick_poll(uint32_t now)
{
    uint8_t logical = g_rig.lick_raw ^ (g_rig.flags & DOPA_CONFIG_FLAG_LICK_ACTIVE_LOW);
    if (!DOPA_AFTER(now, g_rig.lick_last_edge_us + g_rig.debounce_us)) return;
    if (logical != g_rig.lick_state) {
        uint32_t first = g_rig.lick_pending ? g_rig.lick_first_us : g_rig.lick_last_edge_us;
        g_rig.lick_state = logical;
        g_rig.lick_pending = 0;
        if (!g_rig.armed) return;          /* licks are reported within a session only */
        event_t(logical ? DOPA_MSG_LICK_ON : DOPA_MSG_LICK_OFF, first);
        if (logical) rig_program_lick(first, now);
    } else {
        g_rig.lick_pending = 0;      /* a glitch that came back within the debounce time */
    }
}
