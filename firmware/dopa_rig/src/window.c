/* The ceiling on valve time per sliding minute, across sessions (docs/rig.md, "Volume budget"): a new
 * session (HELLO) restarts the session's budget, never this count, and no HELLO or CONFIGURE raises the
 * ceiling above DOPA_MINUTE_VALVE_MS (device-held: messages.toml), so a host that opens session after
 * session gets no more water per minute than min(budget_valve_ms, minute_valve_ms).  The last minute is
 * kept in 7 buckets of 10 s (the current one and the 6 before it: at least the last 60 s and at most 70 s,
 * never more lenient than an exact sliding minute) with their running sum.  Cost: an opening compares
 * against the sum as of the last move (never more lenient: buckets only expire); the buckets move at a
 * valve close (after the pin) and, before a pin moves, only when the ceiling is what limits the opening;
 * nothing per poll, no division.  RAM only: a reset clears it (and counts as a
 * valve close for the minimum gap).  BSD-3-Clause. */
#include "rig.h"

#define WIN_BUCKETS 7u
#define WIN_BUCKET_US 10000000UL

/* win_room_us = what the minute still allows, as of now: read by an opening without a call */
static void refresh(void)
{
    uint32_t ceiling = (uint32_t)DOPA_MINUTE_VALVE_MS * 1000UL;
    uint32_t budget_us = g_rig.budget_valve_ms * 1000UL;
    if (budget_us < ceiling) ceiling = budget_us;
    g_rig.win_room_us = g_rig.win_sum_us >= ceiling ? 0 : ceiling - g_rig.win_sum_us;
}

static void roll(uint32_t now)
{
    uint8_t n = 0;
    while (DOPA_AFTER(now, g_rig.win_start_us + WIN_BUCKET_US)) {
        if (++n > WIN_BUCKETS) {           /* every bucket is empty now: start over at now */
            g_rig.win_start_us = now;
            break;
        }
        g_rig.win_start_us += WIN_BUCKET_US;
        g_rig.win_head = (uint8_t)(g_rig.win_head + 1u == WIN_BUCKETS ? 0u : g_rig.win_head + 1u);
        g_rig.win_sum_us -= g_rig.win_us[g_rig.win_head];
        g_rig.win_us[g_rig.win_head] = 0;
    }
    refresh();
}

void rig_window_init(uint32_t now)
{
    for (uint8_t i = 0; i < WIN_BUCKETS; i++) g_rig.win_us[i] = 0;
    g_rig.win_head = 0;
    g_rig.win_sum_us = 0;
    g_rig.win_start_us = now;
    refresh();
}

uint32_t rig_window_room_us(uint32_t now)
{
    roll(now);
    return g_rig.win_room_us;
}

void rig_window_add(uint32_t t, uint32_t open_us)
{
    roll(t);
    g_rig.win_us[g_rig.win_head] += open_us;
    g_rig.win_sum_us += open_us;
    refresh();
}
