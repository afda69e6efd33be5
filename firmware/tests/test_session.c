/* Host tests of the rig core's sessions under protocol v3 (docs/rig.md, "Sessions"): a new session takes
 * the HELLO's limits before it arms, every session has an epoch that a reset or a new session changes,
 * acknowledgements of another epoch remove nothing, a resume answers RESUMED with the epoch and the
 * valve time used, device heartbeats report it too, frames of device types are never answered, and every
 * sliding minute holds at most min(budget, DOPA_MINUTE_VALVE_MS) of valve time across sessions.
 * The simulated device's tests (tests/test_simdevice_sessions.py) check the same cases.  BSD-3-Clause. */
#include "rig_host.h"

/* HELLO of this host's nonce carrying limits (a new session applies them) */
static void hello_limits(uint16_t max_ms, uint16_t gap_ms, uint32_t budget_ms, uint16_t timeout_ms,
                         uint16_t debounce_us)
{
    dopa_hello_t h = {DOPA_PROTOCOL_VERSION, g_session, budget_ms, max_ms, gap_ms, timeout_ms, debounce_us, 0};
    uint8_t b[DOPA_MSG_HELLO_SIZE];
    dopa_pack_hello(b, &h);
    send(DOPA_MSG_HELLO, b, sizeof b);
}

static void test_a_new_session_arms_with_the_hello_limits(void)
{
    boot();
    hello_limits(200, 10, 500, 400, 500);
    dopa_hello_reply_t h;
    hello_reply(&h);
    CHECK(g_rig.armed);
    CHECK_EQ(h.boot, 0);
    CHECK_EQ(h.epoch, g_epoch);
    CHECK_EQ(g_rig.max_valve_ms, 200);                 /* the HELLO's limits are in force */
    CHECK_EQ(g_rig.min_valve_gap_ms, 10);
    CHECK_EQ(g_rig.budget_valve_ms, 500);
    CHECK_EQ(g_rig.host_timeout_ms, 400);
    CHECK_EQ(g_rig.debounce_us, 500);
    ack_events();
    valve_pulse(400);
    dopa_ack_t a;
    dopa_unpack_ack(last(DOPA_MSG_ACK)->body, &a);
    CHECK_EQ(a.value, 200);                            /* clamped at the HELLO's maximum */
    uint32_t t_on = g_now;
    run_until(g_now + 300000, 100);
    uint32_t t_off;
    CHECK(fake_edge_time('V', 0, 0, &t_off));
    CHECK_EQ(t_off - t_on, 200000);
    run_until(g_now + 300000, 10000);                  /* no host: the HELLO's 400 ms timeout, not 1000 */
    CHECK(!g_rig.armed);
}

static void test_a_hello_with_a_limit_out_of_bounds_changes_nothing(void)
{
    boot();
    hello_limits(DOPA_LIMIT_MAX_VALVE_MS_MAX + 1, 50, 1000, 1000, 2000);
    CHECK_EQ(last0(DOPA_MSG_NACK)->body[6], DOPA_MSG_HELLO);
    CHECK_EQ(last0(DOPA_MSG_NACK)->body[7], DOPA_NACK_REASON_BAD_VALUE);
    CHECK(!g_rig.armed);
    CHECK_EQ(g_rig.session, 0);
    CHECK_EQ(g_rig.max_valve_ms, DOPA_LIMIT_MAX_VALVE_MS_DEFAULT);
    hello_limits(1000, 50, 1000, 99, 2000);            /* host timeout below its bound */
    CHECK_EQ(last0(DOPA_MSG_NACK)->body[7], DOPA_NACK_REASON_BAD_VALUE);
    CHECK_EQ(g_rig.host_timeout_ms, DOPA_LIMIT_HOST_TIMEOUT_MS_DEFAULT);
}

static void test_a_resume_keeps_the_limits_and_proves_the_session(void)
{
    boot();
    hello_limits(300, 10, 1000, 1000, 2000);
    ack_events();
    uint16_t epoch = g_epoch;
    CHECK(epoch != 0);
    valve_pulse(40);
    run_until(g_now + 100000, 1000);
    ack_events();
    int before = g_nev;
    hello_limits(900, 50, 5000, 1000, 2000);           /* the same nonce: a resume; its limits are ignored */
    CHECK_EQ(g_nev, before + 1);
    CHECK_EQ(g_ev[before].type, DOPA_MSG_RESUMED);
    dopa_resumed_t r;
    dopa_unpack_resumed(g_ev[before].body, &r);
    CHECK_EQ(r.cmd_seq, g_host_seq);
    CHECK_EQ(r.epoch, epoch);
    CHECK_EQ(r.budget_used_ms, 40);
    CHECK_EQ(r.lost_total, 0);
    CHECK_EQ(g_rig.max_valve_ms, 300);
    CHECK_EQ(g_rig.budget_valve_ms, 1000);
}

static void test_epochs_differ_across_resets_and_sessions(void)
{
    boot(); hello();
    uint16_t e1 = g_epoch;
    hello_new();
    uint16_t e2 = g_epoch;
    boot(); hello();                                   /* a reset: the boot counter (EEPROM) moved on */
    uint16_t e3 = g_epoch;
    CHECK(e1 && e2 && e3);
    CHECK(e2 != e1 && e3 != e1 && e3 != e2);
    CHECK_EQ(e1 >> 8, e2 >> 8);                        /* high byte: the boot */
    CHECK_EQ((e3 >> 8) & 0xFF, ((e1 >> 8) + 1) & 0xFF);
    CHECK_EQ(e1 & 0xFF, 1);                            /* low byte: sessions since boot */
    CHECK_EQ(e2 & 0xFF, 2);
    CHECK_EQ(e3 & 0xFF, 1);
}

static void test_an_acknowledgement_of_another_epoch_removes_nothing(void)
{
    boot(); hello();
    uint16_t old = g_epoch;
    boot();                                            /* the device resets ... */
    send_hello_seq(++g_host_seq, g_session, DOPA_BUDGET_KEEP);   /* ... and opens a new session */
    send(DOPA_MSG_CUE_ON, 0, 0);                       /* CUE_ONSET + ACK */
    CHECK_EQ(g_rig.ring_count, 3);                     /* HELLO_REPLY, CUE_ONSET, ACK */
    uint8_t b[4];
    dopa_put_u16(b, 3);
    dopa_put_u16(b + 2, old);                          /* a host still acking the session before the reset */
    send(DOPA_MSG_EVENT_ACK, b, 4);
    send(DOPA_MSG_HEARTBEAT, b, 4);
    CHECK_EQ(g_rig.ring_count, 4);                     /* nothing removed (the HEARTBEAT's ACK added) */
    int replies = count(DOPA_MSG_HELLO_REPLY);
    run_until(g_now + 60000, 1000);                    /* go-back-N: the HELLO_REPLY is sent again */
    CHECK_EQ(count(DOPA_MSG_HELLO_REPLY), replies + 1);
    ack_events();                                      /* under the new epoch: all of it */
    CHECK_EQ(g_rig.ring_count, 0);
}

static void test_frames_of_device_types_are_never_answered(void)
{
    boot(); hello();
    int nacks = count(DOPA_MSG_NACK), before = g_nev;
    uint8_t body[DOPA_MAX_BODY] = {0}, wire[DOPA_MAX_ENCODED + 1];
    send(DOPA_MSG_LICK_ON, body, DOPA_MSG_LICK_ON_SIZE);          /* an echo of a device frame */
    send(DOPA_MSG_ACK, body, 3);                                  /* the wrong length */
    uint8_t n = dopa_frame_encode(DOPA_MSG_CUE_ONSET, 77, body, 4, wire);
    wire[2] ^= 0x10;                                              /* damaged: bad CRC, header readable */
    feed(wire, n);
    CHECK_EQ(count(DOPA_MSG_NACK), nacks);
    CHECK_EQ(g_nev, before);
}

static void test_heartbeats_report_the_valve_time_used(void)
{
    boot(); hello();
    valve_pulse(60);
    run_until(g_now + 150000, 1000);                   /* closed, and past the 50 ms gap */
    send(DOPA_MSG_VALVE_OPEN, 0, 0);
    CHECK(g_pins.valve);
    uint32_t t_open = g_now;
    g_nev = 0;
    run_until(g_rig.last_hb_us + DOPA_DEVICE_HEARTBEAT_MS * 1000UL, 1000);
    dopa_device_heartbeat_t h;
    dopa_unpack_device_heartbeat(last0(DOPA_MSG_DEVICE_HEARTBEAT)->body, &h);
    CHECK(last(DOPA_MSG_DEVICE_HEARTBEAT) != 0);
    CHECK_EQ(h.budget_used_ms, 60 + (h.t_us - t_open + 999) / 1000);   /* an open valve counts up to now */
}

static void test_a_host_rotating_session_nonces_gets_one_budget_per_minute(void)
{
    /* finding: a host opening session after session got 1961 ms of opening in 2.6 s against a 300 ms
     * budget.  The budget also caps every sliding minute, and no HELLO refreshes that count */
    boot();
    int opened = 0;
    for (int k = 0; k < 6; k++) {
        g_session++;
        hello_limits(1000, 10, 300, 1000, 2000);       /* a new session each time, budget 300 ms */
        valve_pulse(100);
        opened += g_pins.valve;
        run_until(g_now + 150000, 1000);
        ack_events();
    }
    CHECK_EQ(opened, 3);                               /* 300 ms in the minute, not 600 */
    CHECK_EQ(last0(DOPA_MSG_SAFETY_TRIP)->body[4], DOPA_TRIP_REASON_BUDGET);
    uint32_t t;
    CHECK(fake_edge_time('V', 1, 2, &t) && !fake_edge_time('V', 1, 3, &t));
    for (int k = 0; k < 14; k++) {                     /* 70 s later (7 buckets of 10 s): allowed again */
        g_session++;
        hello_limits(1000, 10, 300, 5000, 2000);
        run_until(g_now + 5000000, 100000);
    }
    g_session++;
    hello_limits(1000, 10, 300, 1000, 2000);
    valve_pulse(100);
    CHECK(g_pins.valve);
}

static void test_no_hello_raises_the_minute_ceiling(void)
{
    /* a host that gives every new session a large budget still gets at most DOPA_MINUTE_VALVE_MS of valve
     * time in any minute: the device holds that ceiling; a pulse beyond it is refused, an open valve cut */
    boot();
    int opened = 0;
    for (int k = 0; k < 3; k++) {
        g_session++;
        hello_limits(5000, 10, 60000, 10000, 2000);    /* a new session each time, budget 60 s */
        ack_events();
        valve_pulse(4000);
        opened += g_pins.valve;
        run_until(g_now + 4200000, 1000);
        ack_events();
    }
    CHECK_EQ(opened, 2);                               /* 8 s in the minute; 4 more would pass 10 s */
    CHECK_EQ(last0(DOPA_MSG_NACK)->body[7], DOPA_NACK_REASON_SAFETY);
    CHECK_EQ(last0(DOPA_MSG_SAFETY_TRIP)->body[4], DOPA_TRIP_REASON_BUDGET);
    g_session++;
    hello_limits(5000, 10, 60000, 10000, 2000);
    ack_events();
    send(DOPA_MSG_VALVE_OPEN, 0, 0);                   /* open until closed: cut at the ceiling */
    CHECK(g_pins.valve);
    run_until(g_now + 3000000, 100);
    CHECK(!g_pins.valve);
    dopa_valve_closed_t c;
    dopa_unpack_valve_closed(last0(DOPA_MSG_VALVE_CLOSED)->body, &c);
    CHECK_EQ(c.open_us, DOPA_MINUTE_VALVE_MS * 1000UL - 8000000UL);
    CHECK_EQ(c.cause, DOPA_CLOSE_CAUSE_BUDGET);
}

int main(void)
{
    RUN(test_a_new_session_arms_with_the_hello_limits);
    RUN(test_a_hello_with_a_limit_out_of_bounds_changes_nothing);
    RUN(test_a_resume_keeps_the_limits_and_proves_the_session);
    RUN(test_epochs_differ_across_resets_and_sessions);
    RUN(test_an_acknowledgement_of_another_epoch_removes_nothing);
    RUN(test_frames_of_device_types_are_never_answered);
    RUN(test_heartbeats_report_the_valve_time_used);
    RUN(test_a_host_rotating_session_nonces_gets_one_budget_per_minute);
    RUN(test_no_hello_raises_the_minute_ceiling);
    return REPORT("test_session");
}
