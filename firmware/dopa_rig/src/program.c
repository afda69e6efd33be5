/* Trial programs: upload into the pending slot, commit, start now or back-to-back, device-timed
 * actions and the lick-contingent window (docs/rig.md, "Trial programs").  BSD-3-Clause. */
#include <string.h>
#include "rig.h"
#include "rig_hal.h"

#define PENDING (&g_rig.prog[g_rig.run_idx ^ 1])
#define RUNNING (&g_rig.prog[g_rig.run_idx])

static uint8_t action_ok(uint8_t action, uint16_t arg)
{
    switch (action) {
    case DOPA_ACTION_CUE_ON: case DOPA_ACTION_CUE_OFF: case DOPA_ACTION_TONE_OFF:
        return 1;
    case DOPA_ACTION_TONE_ON:
        return arg >= DOPA_LIMIT_TONE_HZ_MIN && arg <= DOPA_LIMIT_TONE_HZ_MAX;
    case DOPA_ACTION_VALVE_PULSE:
        return arg >= DOPA_LIMIT_VALVE_PULSE_MS_MIN;
    case DOPA_ACTION_TTL_PULSE:
        return arg >= DOPA_LIMIT_TTL_MS_MIN && arg <= DOPA_LIMIT_TTL_MS_MAX;
    default:
        return 0;
    }
}

static void ended(uint32_t t, uint8_t aborted)
{
    dopa_trial_ended_t e;
    uint8_t b[DOPA_MSG_TRIAL_ENDED_SIZE];
    e.t_us = t; e.trial_id = RUNNING->trial_id; e.aborted = aborted;
    dopa_pack_trial_ended(b, &e);
    rig_event(DOPA_MSG_TRIAL_ENDED, b, sizeof b);
    g_rig.trial_running = 0;
    g_rig.held = 0;
    RUNNING->valid = RIG_PROG_EMPTY;
}

/* The earliest offset of a running-trial action not run yet, or the trial's duration. */
static void plan_next(void)
{
    const rig_program_t *p = RUNNING;
    uint32_t t = p->duration_ms * 1000UL;
    uint16_t bit = 1;
    for (uint8_t i = 0; i < p->n_actions; i++, bit = (uint16_t)(bit << 1))
        if (!(g_rig.done & bit) && p->actions[i].offset_us < t) t = p->actions[i].offset_us;
    g_rig.next_off_us = t;
}

/* The pending program becomes the running one, started at t0 (now, or the end of the previous trial). */
static void start(uint32_t t0, uint32_t now)
{
    dopa_trial_started_t s;
    uint8_t b[DOPA_MSG_TRIAL_STARTED_SIZE];
    g_rig.run_idx ^= 1;
    PENDING->valid = RIG_PROG_EMPTY;
    g_rig.trial_running = 1;
    g_rig.trial_start_us = t0;
    g_rig.done = 0;
    g_rig.held = 0;
    g_rig.ext_result = 0xFF;
    plan_next();
    g_rig.window_open = RUNNING->has_window;
    s.t_us = t0; s.trial_id = RUNNING->trial_id;
    dopa_pack_trial_started(b, &s);
    rig_event(DOPA_MSG_TRIAL_STARTED, b, sizeof b);
    rig_program_poll(now);      /* actions at offset 0 happen at once */
}

uint8_t rig_program_command(uint8_t type, const uint8_t *body, uint32_t now, int32_t *value)
{
    rig_program_t *p = PENDING;
    switch (type) {
    case DOPA_MSG_PROGRAM_BEGIN: {
        dopa_program_begin_t m;
        dopa_unpack_program_begin(body, &m);
        if (m.n_actions > DOPA_MAX_ACTIONS || m.duration_ms == 0 || m.duration_ms > 0x7FFFFFFFUL / 1000UL)
            return DOPA_NACK_REASON_BAD_VALUE;
        /* two slots: the upload goes into the pending slot, so not while that one waits to start */
        if (g_rig.start_after_current) return DOPA_NACK_REASON_PROGRAM_STATE;
        memset(p, 0, sizeof *p);
        p->trial_id = m.trial_id;
        p->duration_ms = m.duration_ms;
        p->n_actions = m.n_actions;
        p->valid = RIG_PROG_UPLOADING;
        *value = m.n_actions;
        return 0;
    }
    case DOPA_MSG_PROGRAM_ACTION: {
        dopa_program_action_t m;
        dopa_unpack_program_action(body, &m);
        if (p->valid != RIG_PROG_UPLOADING) return DOPA_NACK_REASON_PROGRAM_STATE;
        if (m.index >= p->n_actions || m.offset_us >= p->duration_ms * 1000UL || !action_ok(m.action, m.arg))
            return DOPA_NACK_REASON_BAD_VALUE;
        p->actions[m.index].offset_us = m.offset_us;
        p->actions[m.index].action = m.action;
        p->actions[m.index].arg = m.arg;
        p->have |= (uint16_t)(1u << m.index);
        if (m.action == DOPA_ACTION_VALVE_PULSE) p->valve_bits |= (uint16_t)(1u << m.index);
        else p->valve_bits &= (uint16_t)~(1u << m.index);
        *value = m.index;
        return 0;
    }
    case DOPA_MSG_PROGRAM_LICK_WINDOW: {
        dopa_program_lick_window_t m;
        dopa_unpack_program_lick_window(body, &m);
        if (p->valid != RIG_PROG_UPLOADING) return DOPA_NACK_REASON_PROGRAM_STATE;
        if (m.end_us <= m.start_us || m.end_us > p->duration_ms * 1000UL || !action_ok(m.action, m.arg))
            return DOPA_NACK_REASON_BAD_VALUE;
        p->has_window = 1;
        p->win_start_us = m.start_us;
        p->win_end_us = m.end_us;
        p->win_action = m.action;
        p->win_arg = m.arg;
        *value = m.action;
        return 0;
    }
    case DOPA_MSG_PROGRAM_COMMIT: {
        uint16_t all = (uint16_t)((1UL << p->n_actions) - 1u);
        if (p->valid != RIG_PROG_UPLOADING || p->have != all) return DOPA_NACK_REASON_PROGRAM_STATE;
        p->valid = RIG_PROG_READY;
        *value = (int32_t)p->trial_id;
        return 0;
    }
    case DOPA_MSG_TRIAL_START: {
        uint8_t when = body[0];
        if (when > DOPA_TRIAL_WHEN_AFTER_CURRENT) return DOPA_NACK_REASON_BAD_VALUE;
        if (p->valid != RIG_PROG_READY || g_rig.start_after_current ||
            (when == DOPA_TRIAL_WHEN_NOW && g_rig.trial_running))
            return DOPA_NACK_REASON_PROGRAM_STATE;
        *value = (int32_t)p->trial_id;
        if (g_rig.trial_running) g_rig.start_after_current = 1;
        else start(hal_micros() + RIG_START_LEAD_US, now);   /* its clock starts just ahead: offset 0 on time */
        return 0;
    }
    default:
        return DOPA_NACK_REASON_UNKNOWN_TYPE;
    }
}

void rig_program_action(uint32_t now, uint8_t action, uint16_t arg)
{
    switch (action) {
    case DOPA_ACTION_CUE_ON: rig_cue(now, 1); break;
    case DOPA_ACTION_CUE_OFF: rig_cue(now, 0); break;
    case DOPA_ACTION_TONE_ON: rig_tone(now, arg); break;
    case DOPA_ACTION_TONE_OFF: rig_tone(now, 0); break;
    case DOPA_ACTION_VALVE_PULSE: rig_valve_open_for(now, arg, 1, NULL); break;   /* refusals trip */
    case DOPA_ACTION_TTL_PULSE: rig_ttl_pulse(now, arg); break;
    default: break;
    }
}

void rig_program_lick(uint32_t onset_us, uint32_t now)
{
    const rig_program_t *p = RUNNING;
    if (!g_rig.trial_running || !g_rig.window_open) return;
    int32_t rel = (int32_t)(onset_us - g_rig.trial_start_us);
    if (rel < 0 || (uint32_t)rel < p->win_start_us || (uint32_t)rel >= p->win_end_us) return;
    g_rig.window_open = 0;
    rig_program_action(now, p->win_action, p->win_arg);
}

void rig_programs_clear(uint32_t now)
{
    if (g_rig.trial_running) ended(now, 1);
    g_rig.prog[0].valid = RIG_PROG_EMPTY;
    g_rig.prog[1].valid = RIG_PROG_EMPTY;
    g_rig.start_after_current = 0;
    g_rig.window_open = 0;
}

/* The longest an action takes on the AVR, from its start until the loop can close the valve again
 * (measured in the emulator, tests/hil/test_firmware_timing.py, with ~25 % margin): an action due closer
 * than this before a pending valve close waits for the close, so it never makes the close late. */
static uint16_t action_us(uint8_t action)
{
    switch (action) {
    case DOPA_ACTION_TONE_ON: return 320;    /* five 32-bit divisions */
    case DOPA_ACTION_TTL_PULSE: return 190;
    default: return 150;
    }
}

static uint32_t until(uint32_t now, uint32_t due) { return DOPA_AFTER(now, due) ? 0 : due - now; }

/* A VALVE_PULSE due while the valve is open, before the end of its pulse, re-times that end (back-to-back
 * pulses merge): it runs before the close it moves. */
static uint8_t extends(const rig_action_t *a, uint32_t at)
{
    return a->action == DOPA_ACTION_VALVE_PULSE && g_rig.valve_open &&
           g_rig.valve_cause == DOPA_CLOSE_CAUSE_PULSE_END && DOPA_AFTER(g_rig.valve_close_us, at);
}

/* A VALVE_PULSE due while the valve was open, reached only after a limit (maximum open time, budget)
 * cut it: re-timing could not have moved that cut, so it changes nothing (no new opening). */
static uint8_t absorbed(const rig_action_t *a, uint32_t at)
{
    return a->action == DOPA_ACTION_VALVE_PULSE && !g_rig.valve_open && g_rig.valve_ever_closed &&
           (g_rig.valve_cause == DOPA_CLOSE_CAUSE_MAX_OPEN || g_rig.valve_cause == DOPA_CLOSE_CAUSE_BUDGET) &&
           !DOPA_AFTER(at, g_rig.valve_last_close_us) && DOPA_AFTER(at, g_rig.valve_open_us);
}

/* 1: a VALVE_PULSE of the running trial not yet run is due at or before the planned pulse end: it will
 * re-time it, so that close must not happen first.  The scan is cached for this close, done set and
 * trial (it runs ahead, when the loop plans its wait, not between the clock read and the pin). */
static uint8_t close_extended(void)
{
    if (!g_rig.trial_running || !g_rig.valve_open || g_rig.valve_cause != DOPA_CLOSE_CAUSE_PULSE_END) return 0;
    if (g_rig.ext_close_us == g_rig.valve_close_us && g_rig.ext_done == g_rig.done &&
        g_rig.ext_start_us == g_rig.trial_start_us && g_rig.ext_result != 0xFF)
        return g_rig.ext_result;
    const rig_program_t *p = RUNNING;
    uint16_t pending = (uint16_t)(p->valve_bits & ~g_rig.done);
    uint8_t r = 0;
    for (uint8_t i = 0; pending && !r; i++, pending >>= 1)
        if ((pending & 1u) && extends(&p->actions[i], g_rig.trial_start_us + p->actions[i].offset_us)) r = 1;
    g_rig.ext_close_us = g_rig.valve_close_us;
    g_rig.ext_done = g_rig.done;
    g_rig.ext_start_us = g_rig.trial_start_us;
    g_rig.ext_result = r;
    return r;
}

/* 1: the action waits for the valve close (pending, final, and due before the action would be done at t) */
static uint8_t waits(const rig_action_t *a, uint32_t at, uint32_t t)
{
    return g_rig.valve_open && !extends(a, at) && until(t, g_rig.valve_close_us) < action_us(a->action) &&
           !close_extended();
}

uint8_t rig_valve_closes_at(uint32_t t)
{
    return rig_valve_close_due(t) && !close_extended();
}

void rig_program_valve_first(uint32_t now)
{
    if (rig_valve_closes_at(now)) rig_valve_close(now, g_rig.valve_cause);
}

/* 1: the running trial has run all its actions and a committed one starts back to back at its end: the
 * switch is made RIG_START_LEAD_US ahead, as of the end (events stamped with it), so that the next trial's
 * actions at offset 0 run on time like any other (its clock starts at the end, exactly). */
static uint8_t next_back_to_back(void)
{
    return g_rig.start_after_current && PENDING->valid == RIG_PROG_READY &&
           g_rig.next_off_us >= RUNNING->duration_ms * 1000UL;
}

uint8_t rig_program_poll(uint32_t now)
{
    while (g_rig.trial_running) {
        const rig_program_t *p = RUNNING;
        uint32_t elapsed = now - g_rig.trial_start_us;
        uint8_t held = 0;
        if ((int32_t)elapsed < 0) return 0;   /* started NOW: its clock has not started yet */
        uint16_t bit = 1;
        for (uint8_t i = 0; elapsed >= g_rig.next_off_us && i < p->n_actions; i++, bit = (uint16_t)(bit << 1)) {
            const rig_action_t *a = &p->actions[i];
            if ((g_rig.done & bit) || elapsed < a->offset_us) continue;
            uint32_t at = g_rig.trial_start_us + a->offset_us;
            /* the valve close goes first: due now, or before this action would be done */
            if (g_rig.valve_open && !extends(a, at)) {
                uint32_t t = hal_micros();
                rig_program_valve_first(t);
                if (waits(a, at, t)) { held = 1; continue; }
            }
            g_rig.done |= bit;          /* run as of its scheduled time (outputs stamp their real pin time) */
            if (!absorbed(a, at)) rig_program_action(at, a->action, a->arg);
        }
        if (elapsed >= g_rig.next_off_us) plan_next();
        g_rig.held = held;
        if (held) return 1;             /* the loop waits for the close, then they run */
        uint32_t dur_us = p->duration_ms * 1000UL;
        if (elapsed + (next_back_to_back() ? RIG_START_LEAD_US : 0u) < dur_us) return 0;
        uint32_t end_t = g_rig.trial_start_us + dur_us;
        ended(end_t, 0);
        if (!g_rig.start_after_current) return 0;
        g_rig.start_after_current = 0;
        if (PENDING->valid != RIG_PROG_READY) return 0;
        start(end_t, now);     /* back to back: the next trial's clock starts where this one ended */
        return g_rig.held;     /* start() already ran the new trial's due actions */
    }
    return 0;
}

uint32_t rig_program_idle_us(uint32_t now)
{
    if (!g_rig.trial_running) return 0x7FFFFFFFUL;
    if (g_rig.held && g_rig.valve_open) return until(now, g_rig.valve_close_us - RIG_VALVE_LEAD_US);   /* the close first */
    (void)close_extended();             /* fill the cache now, not when the close falls due */
    uint32_t elapsed = now - g_rig.trial_start_us, t = g_rig.next_off_us;
    if ((int32_t)elapsed < 0) return g_rig.trial_start_us - now;   /* started NOW: not begun yet */
    if (next_back_to_back()) t -= RIG_START_LEAD_US;              /* duration >= 1 ms > the lead */
    return t > elapsed ? t - elapsed : 0;
}
