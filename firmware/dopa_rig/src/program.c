/* Trial programs: upload into the pending slot, commit, start now or back-to-back, device-timed
 * actions and the lick-contingent window (docs/rig.md, "Trial programs").  BSD-3-Clause. */
#include <string.h>
#include "rig.h"

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
    RUNNING->valid = RIG_PROG_EMPTY;
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
        else start(now, now);
        return 0;
    }
    default:
        return DOPA_NACK_REASON_UNKNOWN_TYPE;
    }
}

void rig_program_action(uint32_t now, uint8_t action, uint16_t arg)
{
    int32_t applied;
    switch (action) {
    case DOPA_ACTION_CUE_ON: rig_cue(now, 1); break;
    case DOPA_ACTION_CUE_OFF: rig_cue(now, 0); break;
    case DOPA_ACTION_TONE_ON: rig_tone(now, arg); break;
    case DOPA_ACTION_TONE_OFF: rig_tone(now, 0); break;
    case DOPA_ACTION_VALVE_PULSE: rig_valve_open_for(now, arg, 1, 1, &applied); break;   /* refusals trip */
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

void rig_program_poll(uint32_t now)
{
    while (g_rig.trial_running) {
        const rig_program_t *p = RUNNING;
        uint32_t elapsed = now - g_rig.trial_start_us;
        for (uint8_t i = 0; i < p->n_actions; i++) {
            uint16_t bit = (uint16_t)(1u << i);
            if (!(g_rig.done & bit) && elapsed >= p->actions[i].offset_us) {
                uint32_t at = g_rig.trial_start_us + p->actions[i].offset_us;
                /* a valve close falling due meanwhile goes before the next action (the cut has priority);
                 * only a valve pulse scheduled while the valve was still open re-times it, as on time */
                if (!(p->actions[i].action == DOPA_ACTION_VALVE_PULSE && g_rig.valve_open &&
                      DOPA_AFTER(g_rig.valve_close_us, at)))
                    rig_valve_due();
                g_rig.done |= bit;      /* run as of its scheduled time (outputs stamp their real pin time) */
                rig_program_action(at, p->actions[i].action, p->actions[i].arg);
            }
        }
        uint32_t dur_us = p->duration_ms * 1000UL;
        if (elapsed < dur_us) return;
        uint32_t end_t = g_rig.trial_start_us + dur_us;
        ended(end_t, 0);
        if (!g_rig.start_after_current) return;
        g_rig.start_after_current = 0;
        if (PENDING->valid != RIG_PROG_READY) return;
        start(end_t, now);     /* back to back: the next trial's clock starts where this one ended */
        return;                /* start() already ran the new trial's due actions */
    }
}

uint32_t rig_program_idle_us(uint32_t now)
{
    if (!g_rig.trial_running) return 0x7FFFFFFFUL;
    const rig_program_t *p = RUNNING;
    uint32_t elapsed = now - g_rig.trial_start_us, t = p->duration_ms * 1000UL;
    for (uint8_t i = 0; i < p->n_actions; i++)
        if (!(g_rig.done & (1u << i)) && p->actions[i].offset_us < t) t = p->actions[i].offset_us;
    return t > elapsed ? t - elapsed : 0;
}
