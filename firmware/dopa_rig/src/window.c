/* The session budget as a ceiling on every sliding minute, across sessions (docs/rig.md, "Volume budget"):
 * a new session (HELLO) restarts the session's count, never this one, so a host that opens session after
 * session gets no more water per minute than one budget.  The last minute is kept in 7 buckets of 10 s
 * (the current one and the 6 before it: at least the last 60 s and at most 70 s, so the check is never
 * more lenient than an exact sliding minute).  No division: buckets advance by comparison.  RAM only: a reset clears it
 * (and counts as a valve close for the minimum gap).  BSD-3-Clause. */
#include "rig.h"

#define WIN_BUCKETS 7u
#define WIN_BUCKET_US 10000000UL

static void roll(uint32_t now)
{
    uint8_t n = 0;
    while (DOPA_AFTER(now, g_rig.win_start_us + WIN_BUCKET_US)) {
        if (++n > WIN_BUCKETS) {           /* more than a minute since the last use: start over at now */
            g_rig.win_start_us = now;
            return;
        }
        g_rig.win_start_us += WIN_BUCKET_US;
        g_rig.win_head = (uint8_t)(g_rig.win_head + 1u == WIN_BUCKETS ? 0u : g_rig.win_head + 1u);
        g_rig.win_us[g_rig.win_head] = 0;
    }
}

void rig_window_init(uint32_t now)
{
    for (uint8_t i = 0; i < WIN_BUCKETS; i++) g_rig.win_us[i] = 0;
    g_rig.win_head = 0;
    g_rig.win_start_us = now;
}

uint32_t rig_window_used_us(uint32_t now)
{
    uint32_t sum = 0;
    roll(now);
    for (uint8_t i = 0; i < WIN_BUCKETS; i++) sum += g_rig.win_us[i];
    return sum;
}

uint32_t rig_budget_used_us(uint32_t now)
{
    uint32_t w = rig_window_used_us(now);
    return w > g_rig.budget_used_us ? w : g_rig.budget_used_us;
}

void rig_window_add(uint32_t now, uint32_t open_us)
{
    roll(now);
    g_rig.win_us[g_rig.win_head] += open_us;
}
