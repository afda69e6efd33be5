/* Host tests of the rig core on a fake clock: session and arming, idempotent retries, bad frames, the
 * safety kernel (max open time, min gap, budget, host silence), the event ring (go-back-N, overflow),
 * lick debounce and trial programs.  Expected values come from docs/rig.md, not from the code.
 * BSD-3-Clause. */
#include <string.h>
#include "check.h"
#include "fake_hal.h"
#include "rig.h"
#include "rig_host.h"


static void test_echo_does_not_keep_the_device_alive(void)
{
    boot(); hello();
    send(DOPA_MSG_CUE_ON, 0, 0);
    uint32_t last_rx = g_now;
    echo_for(1500000);                                 /* the host is gone; only our own frames come back */
    CHECK(!g_pins.cue);
    CHECK(!g_rig.armed);
    uint32_t t_off;
    CHECK(fake_edge_time('C', 0, 0, &t_off));
    CHECK(DOPA_AFTER(last_rx + 1000000 + 2000, t_off) && DOPA_AFTER(t_off, last_rx + 1000000));
}

static void test_min_gap_holds_across_hello_and_boot(void)
{
    boot_now();                                        /* boot counts as a close: no opening within the gap */
    g_now += 20000;
    hello();
    valve_pulse(10);
    CHECK(!g_pins.valve);
    CHECK_EQ(last0(DOPA_MSG_SAFETY_TRIP)->body[4], DOPA_TRIP_REASON_MIN_GAP);
    run_until(g_now + 31000, 100);                     /* 51 ms after boot */
    valve_pulse(10);
    CHECK(g_pins.valve);
    run_until(g_now + 15000, 100);                     /* closed 5 ms ago */
    CHECK(!g_pins.valve);
    hello();                                           /* neither a new session ... */
    valve_pulse(10);
    CHECK(!g_pins.valve);
    CHECK_EQ(last0(DOPA_MSG_SAFETY_TRIP)->body[4], DOPA_TRIP_REASON_MIN_GAP);
    run_until(g_now + 60000, 100);
    valve_pulse(10);
    CHECK(g_pins.valve);
    run_until(g_now + 60000, 100);
    configure(1000, 50, 30000, 100, 2000);
    send(DOPA_MSG_VALVE_OPEN, 0, 0);
    run_until(g_now + 101000, 1000);                   /* ... nor a host timeout (closing the valve) ... */
    CHECK(!g_rig.armed && !g_pins.valve);
    hello();                                           /* ... and a re-arm clear it */
    CHECK(g_rig.armed);
    valve_pulse(10);
    CHECK(!g_pins.valve);
    CHECK_EQ(last0(DOPA_MSG_SAFETY_TRIP)->body[4], DOPA_TRIP_REASON_MIN_GAP);
}

static void test_resume_after_host_timeout_keeps_the_session(void)
{
    boot(); hello();
    dopa_hello_reply_t h;
    hello_reply(&h);
    CHECK_EQ(h.session, g_session);
    CHECK_EQ(h.dropped, 0);
    configure(1000, 10, 100, 200, 2000);
    uint8_t b[2];
    dopa_put_u16(b, 60);
    uint16_t s = send(DOPA_MSG_VALVE_PULSE, b, 2);
    run_until(g_now + 300000, 1000);                   /* pulse over, then the host timeout */
    CHECK(!g_rig.armed);
    ack_events();
    int before = g_nev;
    int replies = count(DOPA_MSG_HELLO_REPLY);
    hello();                                           /* the same nonce: a resume, answered by RESUMED */
    CHECK_EQ(count(DOPA_MSG_HELLO_REPLY), replies);
    const ev_t *r = &g_ev[before];
    dopa_resumed_t a;
    dopa_unpack_resumed(r->body, &a);
    CHECK_EQ(r->type, DOPA_MSG_RESUMED);
    CHECK_EQ(r->seq, g_ev[before - 1].seq + 1);        /* the device seq goes on */
    CHECK_EQ(a.cmd_seq, g_host_seq - 1);
    CHECK_EQ(a.epoch, g_epoch);                        /* the session the host knows */
    CHECK_EQ(a.lost_total, 0);
    CHECK_EQ(a.budget_used_ms, 60);                    /* the water the session gave */
    CHECK(g_rig.armed);
    send_seq(DOPA_MSG_VALVE_PULSE, s, b, 2);           /* an old retry: the stored reply, not a new pulse */
    CHECK(!g_pins.valve);
    CHECK_EQ(count(DOPA_MSG_VALVE_OPENED), 1);
    valve_pulse(60);                                   /* the budget (100 ms) kept its 60 ms used */
    CHECK(!g_pins.valve);
    CHECK_EQ(last0(DOPA_MSG_SAFETY_TRIP)->body[4], DOPA_TRIP_REASON_BUDGET);
    valve_pulse(40);
    CHECK(g_pins.valve);
}

static void test_new_session_counts_dropped_events_and_takes_a_budget(void)
{
    boot(); hello();
    send(DOPA_MSG_CUE_ON, 0, 0);                       /* CUE_ONSET + ACK, never acknowledged */
    send(DOPA_MSG_CUE_OFF, 0, 0);                      /* CUE_OFFSET + ACK */
    CHECK_EQ(g_rig.ring_count, 4);
    g_session++;
    send_hello_seq(++g_host_seq, g_session, 70);       /* a new session with 70 ms of water */
    dopa_hello_reply_t h;
    hello_reply(&h);
    CHECK_EQ(last0(DOPA_MSG_HELLO_REPLY)->seq, 0);
    CHECK_EQ(h.session, g_session);
    CHECK_EQ(h.dropped, 4);
    CHECK_EQ(h.lost_total, 4);
    CHECK_EQ(g_rig.budget_valve_ms, 70);
    ack_events();
    valve_pulse(60);
    CHECK(g_pins.valve);
    run_until(g_now + 100000, 1000);
    valve_pulse(20);                                   /* 60 + 20 > 70 */
    CHECK(!g_pins.valve);
    ack_events();
    hello_new();                                       /* nothing unacknowledged: none dropped ... */
    hello_reply(&h);
    CHECK_EQ(h.dropped, 0);
    CHECK_EQ(h.lost_total, 4);                         /* ... and the count survives HELLO */
    CHECK_EQ(g_rig.budget_valve_ms, 70);               /* budget_keep */
    g_session++;
    send_hello_seq(++g_host_seq, g_session, DOPA_LIMIT_BUDGET_VALVE_MS_MAX + 1);
    CHECK_EQ(last0(DOPA_MSG_NACK)->body[7], DOPA_NACK_REASON_BAD_VALUE);
}

static void test_retried_hello_does_not_rerun_a_command(void)
{
    boot(); run_until(g_now + 60000, 1000);
    hello();
    uint16_t h = g_host_seq - 1;                       /* the HELLO's seq (hello() then sent an EVENT_ACK) */
    uint8_t b[2];
    dopa_put_u16(b, 10);
    uint16_t s = send(DOPA_MSG_VALVE_PULSE, b, 2);
    CHECK(g_pins.valve);
    run_until(g_now + 100000, 100);                    /* closed, and past the min gap */
    resend_hello(h);                                   /* the host's HELLO retry arrives late ... */
    send_seq(DOPA_MSG_VALVE_PULSE, s, b, 2);           /* ... and so does a retry of the pulse */
    CHECK(!g_pins.valve);
    CHECK_EQ(count(DOPA_MSG_VALVE_OPENED), 1);
    CHECK_EQ(last0(DOPA_MSG_ACK)->body[6], DOPA_MSG_VALVE_PULSE);
}

static void test_hello_sends_the_events_it_causes(void)
{
    boot(); run_until(g_now + 60000, 1000);
    hello();
    send(DOPA_MSG_CUE_ON, 0, 0);
    send(DOPA_MSG_VALVE_OPEN, 0, 0);
    CHECK(g_pins.cue && g_pins.valve);
    int opened = count(DOPA_MSG_VALVE_OPENED);
    hello_new();                                       /* another host: a new session */
    CHECK(!g_pins.cue && !g_pins.valve);
    CHECK_EQ(count(DOPA_MSG_VALVE_OPENED), opened);
    CHECK_EQ(count(DOPA_MSG_CUE_OFFSET), 1);           /* the outputs it switched off are reported */
    CHECK_EQ(count(DOPA_MSG_VALVE_CLOSED), 1);
    CHECK_EQ(last0(DOPA_MSG_VALVE_CLOSED)->body[8], DOPA_CLOSE_CAUSE_ALL_OFF);
}

static void test_boot_and_arming(void)
{
    boot();
    CHECK_EQ(g_nev, 1);
    CHECK_EQ(g_ev[0].type, DOPA_MSG_HELLO_REPLY);
    CHECK_EQ(g_ev[0].seq, 0);
    dopa_hello_reply_t h;
    dopa_unpack_hello_reply(g_ev[0].body, &h);
    CHECK_EQ(h.boot, 1);
    CHECK_EQ(h.reset_cause, DOPA_RESET_CAUSE_POWER_ON);
    CHECK_EQ(h.event_ring, DOPA_EVENT_RING);
    CHECK_EQ(h.epoch, 0);                              /* no session yet */
    CHECK_EQ(g_rig.max_valve_ms, 1000);                /* the defaults until a HELLO sets its limits */
    CHECK_EQ(g_rig.host_timeout_ms, 1000);
    CHECK_EQ(h.schema_hash, DOPA_SCHEMA_HASH);
    CHECK(!g_pins.valve && !g_pins.cue && !g_pins.ttl && !g_pins.tone);
    valve_pulse(50);                                   /* disarmed: refused, nothing moves */
    CHECK_EQ(last(DOPA_MSG_NACK)->body[7], DOPA_NACK_REASON_NOT_ARMED);
    CHECK(!g_pins.valve);
    uint8_t bad[DOPA_MSG_HELLO_SIZE] = {99, 0};
    send(DOPA_MSG_HELLO, bad, sizeof bad);
    CHECK_EQ(last(DOPA_MSG_NACK)->body[7], DOPA_NACK_REASON_VERSION);
    g_now = 60000;                                     /* past the minimum gap after boot */
    hello();
    const ev_t *r = last(DOPA_MSG_HELLO_REPLY);
    CHECK_EQ(r->seq, 0);                               /* HELLO restarts the device sequence */
    dopa_unpack_hello_reply(r->body, &h);
    CHECK_EQ(h.boot, 0);
    CHECK_EQ(h.cmd_seq, g_host_seq - 1);
    valve_pulse(50);
    CHECK(g_pins.valve);
}

static void test_valve_pulse_timing(void)
{
    boot(); hello();
    g_now = 1000000;
    valve_pulse(50);
    dopa_ack_t a;
    dopa_unpack_ack(last(DOPA_MSG_ACK)->body, &a);
    CHECK_EQ(a.value, 50);
    run_until(1049999, 7);
    CHECK(g_pins.valve);
    run_until(1050000, 1);
    CHECK(!g_pins.valve);
    dopa_valve_closed_t c;
    dopa_unpack_valve_closed(last(DOPA_MSG_VALVE_CLOSED)->body, &c);
    CHECK_EQ(c.open_us, 50000);
    CHECK_EQ(c.cause, DOPA_CLOSE_CAUSE_PULSE_END);
    CHECK_EQ(count(DOPA_MSG_SAFETY_TRIP), 0);
}

static void test_max_open_time(void)
{
    boot(); hello();
    valve_pulse(3000);                                 /* clamped to the 1000 ms default */
    dopa_ack_t a;
    dopa_unpack_ack(last(DOPA_MSG_ACK)->body, &a);
    CHECK_EQ(a.value, 1000);
    run_until(g_now + 999000, 1000);
    CHECK(g_pins.valve);
    ack_events();                                      /* keep the host alive */
    run_until(g_now + 1000, 100);
    CHECK(!g_pins.valve);
    dopa_safety_trip_t t;
    dopa_unpack_safety_trip(last(DOPA_MSG_SAFETY_TRIP)->body, &t);
    CHECK_EQ(t.reason, DOPA_TRIP_REASON_MAX_OPEN);
    CHECK_EQ(t.value, 1000);
    /* VALVE_OPEN without a close is cut at the maximum too */
    g_now += 100000;
    send(DOPA_MSG_VALVE_OPEN, 0, 0);
    uint32_t opened = g_now;
    run_until(g_now + 600000, 1000);
    ack_events();
    run_until(opened + 1000000, 1000);
    CHECK(!g_pins.valve);
    dopa_valve_closed_t c;
    dopa_unpack_valve_closed(last(DOPA_MSG_VALVE_CLOSED)->body, &c);
    CHECK_EQ(c.cause, DOPA_CLOSE_CAUSE_MAX_OPEN);
    CHECK_EQ(c.open_us, 1000000);
}

static void test_min_gap(void)
{
    boot(); hello();
    valve_pulse(10);
    run_until(g_now + 10000, 100);
    CHECK(!g_pins.valve);
    run_until(g_now + 20000, 100);                     /* 20 ms after the close: below the 50 ms gap */
    valve_pulse(10);
    CHECK(!g_pins.valve);
    CHECK_EQ(last(DOPA_MSG_NACK)->body[7], DOPA_NACK_REASON_SAFETY);
    CHECK_EQ(last(DOPA_MSG_SAFETY_TRIP)->body[4], DOPA_TRIP_REASON_MIN_GAP);
    run_until(g_now + 30000, 100);                     /* 50 ms: allowed again */
    valve_pulse(10);
    CHECK(g_pins.valve);
}

static void keepalive_for(uint32_t us);

static void test_budget(void)
{
    boot(); hello();
    configure(1000, 10, 100, 1000, 2000);
    valve_pulse(60);
    run_until(g_now + 70000, 100);
    valve_pulse(60);                                   /* 60 + 60 > 100 ms: refused, valve stays shut */
    CHECK(!g_pins.valve);
    CHECK_EQ(last(DOPA_MSG_NACK)->body[7], DOPA_NACK_REASON_SAFETY);
    CHECK_EQ(last(DOPA_MSG_SAFETY_TRIP)->body[4], DOPA_TRIP_REASON_BUDGET);
    valve_pulse(40);                                   /* exactly what is left */
    CHECK(g_pins.valve);
    run_until(g_now + 50000, 100);
    send(DOPA_MSG_VALVE_OPEN, 0, 0);                   /* nothing left */
    CHECK(!g_pins.valve);
    hello_new();                                       /* a new session restarts the session's count ... */
    valve_pulse(60);
    CHECK(!g_pins.valve);                              /* ... not the minute's: 100 ms in the last minute */
    CHECK_EQ(last(DOPA_MSG_SAFETY_TRIP)->body[4], DOPA_TRIP_REASON_BUDGET);
    keepalive_for(59000000);
    valve_pulse(60);
    CHECK(!g_pins.valve);                              /* within the minute: still refused */
    keepalive_for(11000000);                           /* 70 s: past the 7 buckets of 10 s */
    valve_pulse(60);
    CHECK(g_pins.valve);
}

/* keep the host alive (HEARTBEAT every 200 ms of device time) for `us`, forgetting the events collected */
static void keepalive_for(uint32_t us)
{
    uint32_t end = g_now + us;
    uint8_t b[4];
    while (DOPA_AFTER(end, g_now + 200000)) {
        run_until(g_now + 200000, 50000);
        ack_body(b, g_expect);
        send(DOPA_MSG_HEARTBEAT, b, 4);
        g_nev = 0;
    }
    run_until(end, 50000);
}

static void test_min_gap_long_after_the_last_close(void)
{
    /* the gap is measured on the wrapping u32 clock: 36 min (> 2^31 us) after the last close a pulse must
     * still be allowed (a signed "a is after b" flips sign there) */
    boot(); hello();
    valve_pulse(10);
    run_until(g_now + 10000, 100);
    CHECK(!g_pins.valve);
    keepalive_for(2160000000UL);                        /* 36 min of silence from the valve */
    int trips = count(DOPA_MSG_SAFETY_TRIP);
    valve_pulse(10);
    CHECK(g_pins.valve);
    CHECK_EQ(count(DOPA_MSG_SAFETY_TRIP), trips);
    CHECK_EQ(last0(DOPA_MSG_ACK)->body[6], DOPA_MSG_VALVE_PULSE);
    run_until(g_now + 10000, 100);
    keepalive_for(4300000000UL - 2160000000UL);         /* ~71.7 min: past a full wrap of the clock */
    valve_pulse(10);
    CHECK(g_pins.valve);
    run_until(g_now + 10000, 100);
    run_until(g_now + 20000, 100);                      /* and the gap itself still holds */
    valve_pulse(10);
    CHECK(!g_pins.valve);
    CHECK_EQ(last0(DOPA_MSG_SAFETY_TRIP)->body[4], DOPA_TRIP_REASON_MIN_GAP);
}

static void test_limits_apply_to_an_open_valve(void)
{
    /* CONFIGURE while the valve is open applies the new maximum / budget to it (as the simulated device) */
    boot(); hello();
    g_now = 1000000;
    send(DOPA_MSG_VALVE_OPEN, 0, 0);                    /* planned close after the 1000 ms default */
    CHECK(g_pins.valve);
    run_until(g_now + 100000, 1000);
    configure(200, 50, 30000, 1000, 2000);              /* max 200 ms: the open valve closes at 200 ms */
    run_until(1000000 + 199000, 100);
    CHECK(g_pins.valve);
    run_until(1000000 + 200000, 100);
    CHECK(!g_pins.valve);
    dopa_valve_closed_t c;
    dopa_unpack_valve_closed(last0(DOPA_MSG_VALVE_CLOSED)->body, &c);
    CHECK_EQ(c.cause, DOPA_CLOSE_CAUSE_MAX_OPEN);
    CHECK_EQ(c.open_us, 200000);
    CHECK_EQ(last0(DOPA_MSG_SAFETY_TRIP)->body[4], DOPA_TRIP_REASON_MAX_OPEN);
    /* a budget lowered below what an open valve will use cuts it when the budget runs out */
    run_until(g_now + 100000, 1000);
    uint32_t t_open = g_now;
    valve_pulse(150);
    run_until(t_open + 50000, 1000);
    configure(1000, 50, 300, 1000, 2000);               /* 200 used + 100 left: closes at 100 ms */
    run_until(t_open + 99000, 100);
    CHECK(g_pins.valve);
    run_until(t_open + 100000, 100);
    CHECK(!g_pins.valve);
    dopa_unpack_valve_closed(last0(DOPA_MSG_VALVE_CLOSED)->body, &c);
    CHECK_EQ(c.cause, DOPA_CLOSE_CAUSE_BUDGET);
    CHECK_EQ(c.open_us, 100000);
    /* a maximum raised while open lets the requested pulse run to its end */
    configure(100, 50, 30000, 1000, 2000);
    run_until(g_now + 100000, 1000);
    t_open = g_now;
    valve_pulse(300);                                   /* clamped to 100 ms ... */
    run_until(t_open + 50000, 1000);
    configure(1000, 50, 30000, 1000, 2000);             /* ... then the maximum goes up: 300 ms as asked */
    run_until(t_open + 299000, 1000);
    CHECK(g_pins.valve);
    run_until(t_open + 300000, 100);
    CHECK(!g_pins.valve);
    dopa_unpack_valve_closed(last0(DOPA_MSG_VALVE_CLOSED)->body, &c);
    CHECK_EQ(c.cause, DOPA_CLOSE_CAUSE_PULSE_END);
}

static void test_host_silence(void)
{
    boot(); hello();
    configure(3000, 50, 30000, 1000, 2000);            /* max open above the host timeout */
    send(DOPA_MSG_CUE_ON, 0, 0);
    send(DOPA_MSG_VALVE_OPEN, 0, 0);
    uint8_t f[2] = {0xA0, 0x0F};                       /* 4000 Hz */
    send(DOPA_MSG_TONE_ON, f, 2);
    uint32_t last_rx = g_now;
    run_until(last_rx + 999999, 500);
    CHECK(g_pins.cue && g_pins.tone && g_pins.valve);
    run_until(last_rx + 1000000, 1);
    CHECK(!g_pins.valve && !g_pins.cue && !g_pins.tone && !g_pins.ttl);
    CHECK_EQ(last(DOPA_MSG_VALVE_CLOSED)->body[8], DOPA_CLOSE_CAUSE_HOST_TIMEOUT);
    dopa_safety_trip_t t;
    dopa_unpack_safety_trip(last(DOPA_MSG_SAFETY_TRIP)->body, &t);
    CHECK_EQ(t.reason, DOPA_TRIP_REASON_HOST_TIMEOUT);
    CHECK_EQ(t.t_us, last_rx + 1000000);
    send(DOPA_MSG_CUE_ON, 0, 0);                       /* disarmed until a new HELLO */
    CHECK_EQ(last(DOPA_MSG_NACK)->body[7], DOPA_NACK_REASON_NOT_ARMED);
}

static void test_idempotent_retry_and_bad_crc(void)
{
    boot(); hello();
    uint8_t b[2];
    dopa_put_u16(b, 30);
    uint16_t seq = send(DOPA_MSG_VALVE_PULSE, b, 2);
    run_until(g_now + 40000, 100);
    send_seq(DOPA_MSG_VALVE_PULSE, seq, b, 2);          /* the host retries: answered, not executed */
    CHECK(!g_pins.valve);
    CHECK_EQ(count(DOPA_MSG_VALVE_OPENED), 1);
    CHECK_EQ(count(DOPA_MSG_ACK), 2);                   /* the pulse and its retry (EVENT_ACK is never answered) */
    /* a frame with a bad CRC: NACK BAD_CRC, nothing happens, and the retry with the same seq runs */
    uint8_t wire[DOPA_MAX_ENCODED + 1], raw[8];
    raw[0] = DOPA_MSG_CUE_ON; dopa_put_u16(raw + 1, 555);
    uint16_t crc = dopa_crc16(raw, 3) ^ 0x0100u;
    dopa_put_u16(raw + 3, crc);
    uint8_t n = (uint8_t)dopa_cobs_encode(raw, 5, wire);
    wire[n++] = 0;
    feed(wire, n);
    CHECK(!g_pins.cue);
    dopa_nack_t k;
    dopa_unpack_nack(last(DOPA_MSG_NACK)->body, &k);
    CHECK_EQ(k.reason, DOPA_NACK_REASON_BAD_CRC);
    CHECK_EQ(k.cmd_seq, 555);
    send_seq(DOPA_MSG_CUE_ON, 555, 0, 0);
    CHECK(g_pins.cue);
}

static void test_go_back_n_and_overflow(void)
{
    boot(); hello();
    int before = g_nev;
    g_dups = 0;
    send(DOPA_MSG_CUE_ON, 0, 0);                       /* ACK + CUE_ONSET, not acknowledged */
    CHECK_EQ(g_nev, before + 2);
    run_until(g_now + 49000, 1000);
    CHECK_EQ(g_dups, 0);
    run_until(g_now + 2000, 1000);                     /* 50 ms without progress: both again, same seqs */
    CHECK_EQ(g_dups, 2);
    CHECK_EQ(g_nev, before + 2);
    ack_events();
    run_until(g_now + 200000, 1000);
    CHECK_EQ(g_dups, 2);                               /* acknowledged: no more resends */
    /* overflow: 40 pings without acknowledgement; the ring keeps 32, then reports the loss */
    for (int i = 0; i < 40; i++) { uint8_t b[4] = {0}; send(DOPA_MSG_PING, b, 4); }
    CHECK_EQ(g_rig.ring_count, DOPA_EVENT_RING);
    ack_events();
    const ev_t *e = last(DOPA_MSG_ERROR);
    CHECK(e != 0);
    if (e) {
        dopa_error_t er;
        dopa_unpack_error(e->body, &er);
        CHECK_EQ(er.code, DOPA_ERROR_CODE_EVENT_OVERFLOW);
        CHECK_EQ(er.value, 40 - DOPA_EVENT_RING);       /* the ring was empty before the 40 replies */
    }
}

static void test_ack_during_a_go_back_round(void)
{
    /* an EVENT_ACK for frames sent before a go-back-N restart is good: it frees the ring at once (it was
     * ignored until the resend had caught up, so a full ring kept overflowing meanwhile) */
    boot(); hello();
    int before = g_nev;
    g_dups = 0;
    send(DOPA_MSG_CUE_ON, 0, 0);                       /* ACK + CUE_ONSET, sent, not acknowledged */
    CHECK_EQ(g_nev, before + 2);
    g_now += 51000;
    rig_poll(g_now);                                   /* 50 ms without progress: go back to the oldest */
    uint8_t wire[DOPA_MAX_ENCODED + 1], b[4];
    ack_body(b, (uint16_t)(g_ev[g_nev - 1].seq + 1));
    uint8_t n = dopa_frame_encode(DOPA_MSG_EVENT_ACK, 0, b, 4, wire);
    for (uint8_t i = 0; i < n; i++) rig_rx_byte(wire[i], g_now);   /* arrives before the resend went out */
    CHECK_EQ(g_rig.ring_count, 0);
    drain();
    CHECK_EQ(g_dups, 0);                               /* nothing resent: it was all acknowledged */
    send(DOPA_MSG_CUE_OFF, 0, 0);                      /* and numbering carries on */
    CHECK_EQ(g_nev, before + 4);
    CHECK_EQ(g_dups, 0);
}

static void test_lick_debounce(void)
{
    boot();
    g_now = 2000000;
    hello();
    rig_lick_edge(1, 2000000);                          /* onset with bounces */
    rig_lick_edge(0, 2000100);
    rig_lick_edge(1, 2000300);
    run_until(2002299, 10);
    CHECK_EQ(count(DOPA_MSG_LICK_ON), 0);              /* the level has not held 2000 us yet */
    run_until(2002300, 1);
    CHECK_EQ(count(DOPA_MSG_LICK_ON), 1);
    CHECK_EQ(dopa_get_u32(last(DOPA_MSG_LICK_ON)->body), 2000000);   /* time of the first edge */
    rig_lick_edge(0, 2100000);                          /* a glitch shorter than the debounce */
    rig_lick_edge(1, 2100500);
    run_until(2110000, 100);
    CHECK_EQ(count(DOPA_MSG_LICK_OFF), 0);
}

static void program(uint32_t id, uint32_t dur_ms, const dopa_program_action_t *a, uint8_t n, const dopa_program_lick_window_t *w)
{
    uint8_t b[16];
    dopa_program_begin_t pb = {id, dur_ms, n};
    dopa_pack_program_begin(b, &pb); send(DOPA_MSG_PROGRAM_BEGIN, b, DOPA_MSG_PROGRAM_BEGIN_SIZE);
    for (uint8_t i = 0; i < n; i++) { dopa_pack_program_action(b, &a[i]); send(DOPA_MSG_PROGRAM_ACTION, b, DOPA_MSG_PROGRAM_ACTION_SIZE); }
    if (w) { dopa_pack_program_lick_window(b, w); send(DOPA_MSG_PROGRAM_LICK_WINDOW, b, DOPA_MSG_PROGRAM_LICK_WINDOW_SIZE); }
    send(DOPA_MSG_PROGRAM_COMMIT, 0, 0);
    CHECK_EQ(last(DOPA_MSG_ACK)->body[6], DOPA_MSG_PROGRAM_COMMIT);
}

static void trial_start(uint8_t when) { send(DOPA_MSG_TRIAL_START, &when, 1); }

static void test_trial_program(void)
{
    boot();
    g_now = 3000000;
    hello();
    dopa_program_action_t a[3] = {{0, 100000, DOPA_ACTION_CUE_ON, 0}, {1, 300000, DOPA_ACTION_CUE_OFF, 0},
                                  {2, 300000, DOPA_ACTION_VALVE_PULSE, 20}};
    dopa_program_lick_window_t w = {150000, 250000, DOPA_ACTION_TTL_PULSE, 5};
    program(7, 500, a, 3, &w);
    trial_start(DOPA_TRIAL_WHEN_NOW);
    uint32_t t0 = g_now + RIG_START_LEAD_US, t;      /* a trial started NOW begins just ahead */
    CHECK_EQ(dopa_get_u32(last(DOPA_MSG_TRIAL_STARTED)->body), t0);
    /* the next trial is uploaded while this one runs, queued back to back */
    dopa_program_action_t b[1] = {{0, 1000, DOPA_ACTION_CUE_ON, 0}};
    program(8, 100, b, 1, 0);
    trial_start(DOPA_TRIAL_WHEN_AFTER_CURRENT);
    run_until(t0 + 140000, 10);
    ack_events();
    rig_lick_edge(1, t0 + 140000);                      /* before the window: no TTL */
    run_until(t0 + 145000, 10);
    rig_lick_edge(0, t0 + 145000);
    run_until(t0 + 160000, 10);
    rig_lick_edge(1, t0 + 160000);                      /* inside it: TTL at confirmation (+2 ms debounce) */
    run_until(t0 + 700000, 10);
    CHECK(fake_edge_time('C', 1, 0, &t) && t == t0 + 100000);
    CHECK(fake_edge_time('C', 0, 0, &t) && t == t0 + 300000);
    CHECK(fake_edge_time('V', 1, 0, &t) && t == t0 + 300000);
    CHECK(fake_edge_time('V', 0, 0, &t) && t == t0 + 320000);
    CHECK(fake_edge_time('T', 1, 0, &t) && t == t0 + 162000);
    CHECK(!fake_edge_time('T', 1, 1, &t));
    CHECK(fake_edge_time('C', 1, 1, &t) && t == t0 + 501000);   /* trial 8 starts exactly at 500 ms */
    dopa_trial_started_t s;
    dopa_unpack_trial_started(last(DOPA_MSG_TRIAL_STARTED)->body, &s);
    CHECK_EQ(s.trial_id, 8);
    CHECK_EQ(s.t_us, t0 + 500000);
    CHECK_EQ(count(DOPA_MSG_TRIAL_ENDED), 2);
}

static void test_bad_commands_and_bounds(void)
{
    boot(); hello();
    uint8_t body[16] = {0};
    send(0x7E, body, 0);                               /* unknown command type */
    CHECK_EQ(last(DOPA_MSG_NACK)->body[7], DOPA_NACK_REASON_UNKNOWN_TYPE);
    send(DOPA_MSG_VALVE_PULSE, body, 3);               /* wrong body length */
    CHECK_EQ(last(DOPA_MSG_NACK)->body[7], DOPA_NACK_REASON_BAD_LENGTH);
    CHECK(!g_pins.valve);
    dopa_configure_t c = {5001, 50, 30000, 1000, 2000, 0};   /* max_valve_ms above the hard bound */
    dopa_pack_configure(body, &c);
    send(DOPA_MSG_CONFIGURE, body, DOPA_MSG_CONFIGURE_SIZE);
    CHECK_EQ(last(DOPA_MSG_NACK)->body[7], DOPA_NACK_REASON_BAD_VALUE);
    c.max_valve_ms = 1000; c.host_timeout_ms = 99;            /* host timeout below 100 ms */
    dopa_pack_configure(body, &c);
    send(DOPA_MSG_CONFIGURE, body, DOPA_MSG_CONFIGURE_SIZE);
    CHECK_EQ(last(DOPA_MSG_NACK)->body[7], DOPA_NACK_REASON_BAD_VALUE);
    CHECK_EQ(g_rig.host_timeout_ms, 1000);                    /* nothing applied */
    dopa_put_u16(body, 49);                                   /* tone below 50 Hz */
    send(DOPA_MSG_TONE_ON, body, 2);
    CHECK_EQ(last(DOPA_MSG_NACK)->body[7], DOPA_NACK_REASON_BAD_VALUE);
    CHECK(!g_pins.tone);
    dopa_put_u16(body, 3000);
    send(DOPA_MSG_TONE_ON, body, 2);
    dopa_ack_t a;
    dopa_unpack_ack(last(DOPA_MSG_ACK)->body, &a);
    CHECK_EQ(a.value, 3003);                                  /* 1e6 / round(1e6 / 3000) */
    dopa_put_u16(body, 1001);                                 /* analog above 1 kHz */
    send(DOPA_MSG_ANALOG_START, body, 2);
    CHECK_EQ(last(DOPA_MSG_NACK)->body[7], DOPA_NACK_REASON_BAD_VALUE);
    ack_body(body, 0);
    send(DOPA_MSG_HEARTBEAT, body, 4);                        /* acks nothing new: value = events held */
    dopa_unpack_ack(last(DOPA_MSG_ACK)->body, &a);
    CHECK(a.value > 0);
}

/* SYNC_START: bounds, the first pulse at once, then the xorshift32 intervals planned from it; ALL_OFF stops */
static void test_sync_pulses(void)
{
    boot(); hello();
    uint8_t b[DOPA_MSG_SYNC_START_SIZE];
    dopa_sync_start_t s = {99, 200, 5, 7};                    /* min interval below 100 ms */
    dopa_pack_sync_start(b, &s);
    send(DOPA_MSG_SYNC_START, b, sizeof b);
    CHECK_EQ(last(DOPA_MSG_NACK)->body[7], DOPA_NACK_REASON_BAD_VALUE);
    s.min_ms = 300; s.max_ms = 200;                            /* max below min */
    dopa_pack_sync_start(b, &s);
    send(DOPA_MSG_SYNC_START, b, sizeof b);
    CHECK_EQ(last(DOPA_MSG_NACK)->body[7], DOPA_NACK_REASON_BAD_VALUE);
    s.min_ms = 100; s.max_ms = 200;
    dopa_pack_sync_start(b, &s);
    send(DOPA_MSG_SYNC_START, b, sizeof b);
    uint32_t t0 = g_now, x = 7, due = t0;
    rig_poll(g_now); drain();
    CHECK(g_pins.ttl);
    for (uint32_t k = 1; k < 6; k++) {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        due += (100u + x % 101u) * 1000u;
        run_until(due - 1000, 500);
        CHECK(!g_pins.ttl);                                    /* 5 ms pulses, intervals >= 100 ms */
        run_until(due, 1000);
        CHECK(g_pins.ttl);
        const ev_t *e = last(DOPA_MSG_SYNC_PULSE);
        dopa_sync_pulse_t p;
        dopa_unpack_sync_pulse(e->body, &p);
        CHECK_EQ(p.n, k);
        CHECK_EQ(p.t_us, due);
        CHECK_EQ(p.ms, 5);
    }
    send(DOPA_MSG_ALL_OFF, 0, 0);
    CHECK(!g_pins.ttl && !g_rig.sync_on);
}

static void test_analog_batches(void)
{
    boot(); hello();
    uint8_t b[2];
    dopa_put_u16(b, 500);
    send(DOPA_MSG_ANALOG_START, b, 2);
    uint32_t t0 = g_now;
    for (int k = 0; k < 11; k++) {                             /* the ADC answers each conversion */
        run_until(t0 + (uint32_t)k * 2000, 100);
        CHECK_EQ(g_adc_starts, k + 1);
        rig_analog_sample((uint16_t)(100 + k));
    }
    const ev_t *e = last(DOPA_MSG_ANALOG_BATCH);
    CHECK(e != 0);
    if (e) {
        dopa_analog_batch_t m;
        dopa_unpack_analog_batch(e->body, &m);
        CHECK_EQ(m.n, 8);
        CHECK_EQ(m.rate_hz, 500);
        CHECK_EQ(m.t_us, t0);
        CHECK_EQ(m.samples[0], 100);
        CHECK_EQ(m.samples[7], 107);
    }
    send(DOPA_MSG_ANALOG_STOP, 0, 0);                          /* flushes the 3 samples left */
    dopa_analog_batch_t m;
    dopa_unpack_analog_batch(last(DOPA_MSG_ANALOG_BATCH)->body, &m);
    CHECK_EQ(m.n, 3);
    CHECK_EQ(m.t_us, t0 + 16000);
    CHECK_EQ(m.samples[2], 110);
    CHECK_EQ(m.samples[3], 0);
}

static void test_program_states_and_all_off(void)
{
    boot(); hello();
    uint8_t when = DOPA_TRIAL_WHEN_NOW;
    send(DOPA_MSG_TRIAL_START, &when, 1);                     /* nothing committed */
    CHECK_EQ(last(DOPA_MSG_NACK)->body[7], DOPA_NACK_REASON_PROGRAM_STATE);
    send(DOPA_MSG_PROGRAM_COMMIT, 0, 0);                      /* nothing uploaded */
    CHECK_EQ(last(DOPA_MSG_NACK)->body[7], DOPA_NACK_REASON_PROGRAM_STATE);
    uint8_t b[16];
    dopa_program_begin_t pb = {9, 100, 2};
    dopa_pack_program_begin(b, &pb);
    send(DOPA_MSG_PROGRAM_BEGIN, b, DOPA_MSG_PROGRAM_BEGIN_SIZE);
    dopa_program_action_t pa = {0, 100000, DOPA_ACTION_CUE_ON, 0};       /* offset == duration */
    dopa_pack_program_action(b, &pa);
    send(DOPA_MSG_PROGRAM_ACTION, b, DOPA_MSG_PROGRAM_ACTION_SIZE);
    CHECK_EQ(last(DOPA_MSG_NACK)->body[7], DOPA_NACK_REASON_BAD_VALUE);
    pa.offset_us = 0;
    dopa_pack_program_action(b, &pa);
    send(DOPA_MSG_PROGRAM_ACTION, b, DOPA_MSG_PROGRAM_ACTION_SIZE);
    send(DOPA_MSG_PROGRAM_COMMIT, 0, 0);                      /* action 1 missing */
    CHECK_EQ(last(DOPA_MSG_NACK)->body[7], DOPA_NACK_REASON_PROGRAM_STATE);
    pa.index = 1; pa.offset_us = 50000; pa.action = DOPA_ACTION_VALVE_PULSE; pa.arg = 20;
    dopa_pack_program_action(b, &pa);
    send(DOPA_MSG_PROGRAM_ACTION, b, DOPA_MSG_PROGRAM_ACTION_SIZE);
    send(DOPA_MSG_PROGRAM_COMMIT, 0, 0);
    dopa_ack_t a;
    dopa_unpack_ack(last(DOPA_MSG_ACK)->body, &a);
    CHECK_EQ(a.cmd_type, DOPA_MSG_PROGRAM_COMMIT);
    CHECK_EQ(a.value, 9);
    send(DOPA_MSG_TRIAL_START, &when, 1);
    run_until(g_now + RIG_START_LEAD_US, 100);
    CHECK(g_pins.cue);
    run_until(g_now + 55000, 100);
    CHECK(g_pins.valve);
    send(DOPA_MSG_ALL_OFF, 0, 0);                              /* everything off, trial aborted */
    CHECK(!g_pins.valve && !g_pins.cue);
    dopa_trial_ended_t e;
    dopa_unpack_trial_ended(last(DOPA_MSG_TRIAL_ENDED)->body, &e);
    CHECK_EQ(e.trial_id, 9);
    CHECK_EQ(e.aborted, 1);
    dopa_valve_closed_t vc;
    dopa_unpack_valve_closed(last(DOPA_MSG_VALVE_CLOSED)->body, &vc);
    CHECK_EQ(vc.cause, DOPA_CLOSE_CAUSE_ALL_OFF);
    CHECK(g_rig.armed);                                        /* ALL_OFF does not disarm */
}

static void test_safety_trips_survive_a_full_ring(void)
{
    /* a SAFETY_TRIP that finds the event ring full is latched and queued as soon as there is room */
    boot(); hello();
    configure(1000, 50, 10, 1000, 2000);
    valve_pulse(10);
    run_until(g_now + 10000, 100);
    CHECK(!g_pins.valve);
    ack_events();
    for (int i = 0; i < 40; i++) { uint8_t b[4] = {0}; send(DOPA_MSG_PING, b, 4); }
    CHECK_EQ(g_rig.ring_count, DOPA_EVENT_RING);
    int trips = count(DOPA_MSG_SAFETY_TRIP);
    valve_pulse(10);                                   /* 0 ms after the close: MIN_GAP, ring full */
    run_until(g_now + 60000, 1000);
    valve_pulse(10);                                   /* budget (10 ms) used up: BUDGET, ring full */
    valve_pulse(10);                                   /* BUDGET again while the first one waits: lost */
    CHECK(!g_pins.valve);
    CHECK_EQ(count(DOPA_MSG_SAFETY_TRIP), trips);
    ack_events();                                      /* room: the latched trips go first */
    run_until(g_now + 1000, 1000);
    ack_events();
    CHECK_EQ(count(DOPA_MSG_SAFETY_TRIP), trips + 2);
    int first = -1;
    for (int i = 0; i < g_nev; i++)
        if (g_ev[i].type == DOPA_MSG_SAFETY_TRIP) { first = i; break; }
    CHECK(first >= 0);
    if (first >= 0) {
        dopa_safety_trip_t a, b;
        dopa_unpack_safety_trip(g_ev[first].body, &a);
        dopa_unpack_safety_trip(g_ev[first + 1].body, &b);
        CHECK_EQ(a.reason, DOPA_TRIP_REASON_MIN_GAP);
        CHECK_EQ(a.value, 0);
        CHECK_EQ(b.reason, DOPA_TRIP_REASON_BUDGET);
        CHECK_EQ(b.value, 10);
        CHECK(a.t_us < b.t_us);                        /* each carries the time it tripped */
    }
    dopa_error_t er;
    dopa_unpack_error(last0(DOPA_MSG_ERROR)->body, &er);
    CHECK_EQ(er.code, DOPA_ERROR_CODE_EVENT_OVERFLOW);
    CHECK_EQ(er.value, (40 - DOPA_EVENT_RING) + 3 + 1);   /* pings, 3 NACKs and the repeated BUDGET trip */
}

/* A programmed 2000 ms pulse cut at max_valve_ms (1000) while 15 actions (action, arg) fall due 50 us
 * before the cut, each costing 80 us of CPU; returns how late the cut came after the limit (us). */
static uint32_t cut_under_15_actions(uint8_t action, uint16_t arg)
{
    boot(); hello();
    dopa_program_action_t a[16];
    a[0].index = 0; a[0].offset_us = 0; a[0].action = DOPA_ACTION_VALVE_PULSE; a[0].arg = 2000;
    for (uint8_t i = 1; i < 16; i++) {
        a[i].index = i; a[i].offset_us = 1000000UL - 50; a[i].action = action; a[i].arg = arg;
    }
    program(1, 2000, a, 16, 0);
    trial_start(DOPA_TRIAL_WHEN_NOW);
    uint32_t t0 = g_now + RIG_START_LEAD_US, t_close = 0;
    run_until(t0, 100);
    CHECK(g_pins.valve);
    run_until(t0 + 500000, 10000);
    ack_events();
    run_until(t0 + 1000000 - 51, 10000);
    CHECK(g_pins.valve);
    g_now = t0 + 1000000 - 50;
    g_micros_step = 80;
    rig_poll(g_now);                                   /* the actions' pass: the cut falls due during it */
    g_micros_step = 0;
    drain();
    CHECK(fake_edge_time('V', 0, 0, &t_close));
    CHECK(!g_pins.valve);
    return t_close - (t0 + 1000000);
}

static void test_max_open_cut_has_priority_over_trial_actions(void)
{
    /* the cut must not wait for all 15 TTL actions */
    CHECK(cut_under_15_actions(DOPA_ACTION_TTL_PULSE, 1) <= 100);   /* within 100 us of the limit */
}

static void test_back_to_back_programmed_pulses_merge(void)
{
    /* a programmed pulse due the moment the previous one ends re-times the open valve (one opening),
     * also when that action runs late: the close only goes first for other actions */
    boot(); hello();
    dopa_program_action_t a[2] = {{0, 0, DOPA_ACTION_VALVE_PULSE, 30}, {1, 30000, DOPA_ACTION_VALVE_PULSE, 30}};
    program(1, 100, a, 2, 0);
    trial_start(DOPA_TRIAL_WHEN_NOW);
    uint32_t t0 = g_now + RIG_START_LEAD_US;
    run_until(t0, 100);
    g_now = t0 + 30000 + 200;                          /* the loop comes round 200 us late */
    rig_poll(g_now);
    drain();
    run_until(t0 + 100000, 100);
    CHECK_EQ(count(DOPA_MSG_VALVE_OPENED), 1);
    CHECK_EQ(count(DOPA_MSG_SAFETY_TRIP), 0);
    uint32_t t_close = 0;
    CHECK(fake_edge_time('V', 0, 0, &t_close));
    CHECK_EQ(t_close, t0 + 60000);
}

static void test_lick_polarity_flip_long_after_the_last_edge(void)
{
    /* CONFIGURE flipping LICK_ACTIVE_LOW changes the logical lick level without a raw edge: a lick change
     * debounced from the CONFIGURE, also 36 min (> 2^31 us) after the last raw edge */
    dopa_configure_t c = {1000, 50, 30000, 1000, 2000, DOPA_CONFIG_FLAG_LICK_ACTIVE_LOW};
    uint8_t b[DOPA_MSG_CONFIGURE_SIZE];
    for (int late = 0; late < 2; late++) {
        boot();
        g_now = 1000000;
        hello();
        rig_lick_edge(0, g_now);                       /* sensor at rest (low) */
        run_until(g_now + 10000, 1000);
        if (late) keepalive_for(2160000000UL);
        else run_until(g_now + 100000, 1000);
        int ons = count(DOPA_MSG_LICK_ON);
        c.flags = DOPA_CONFIG_FLAG_LICK_ACTIVE_LOW;
        dopa_pack_configure(b, &c);
        send(DOPA_MSG_CONFIGURE, b, sizeof b);
        uint32_t t_cfg = g_now;
        run_until(g_now + 1999, 1);
        CHECK_EQ(count(DOPA_MSG_LICK_ON), ons);        /* debounced like any change */
        run_until(g_now + 1, 1);
        CHECK_EQ(count(DOPA_MSG_LICK_ON), ons + 1);
        CHECK_EQ(dopa_get_u32(last0(DOPA_MSG_LICK_ON)->body), t_cfg);
        c.flags = 0;                                   /* and back: the lick ends */
        dopa_pack_configure(b, &c);
        send(DOPA_MSG_CONFIGURE, b, sizeof b);
        run_until(g_now + 3000, 100);
        CHECK_EQ(count(DOPA_MSG_LICK_OFF), 1);
    }
}

/* ---- timing (issue 16, item 4): the orders and times the AVR loop relies on ---- */

/* the next timed change is an action turning `pin` on exactly at t (no sooner), and the loop waits for it */
static void action_runs_at(char pin, uint32_t t)
{
    uint32_t got = 0;
    CHECK_EQ(rig_deadline_us(g_now), t - g_now);
    run_until(t - 1, 1);
    CHECK(!fake_edge_time(pin, 1, 0, &got));
    run_until(t, 1);
    CHECK(fake_edge_time(pin, 1, 0, &got) && got == t);
}

static void test_trial_started_now_begins_just_ahead(void)
{
    /* a trial started NOW begins RIG_START_LEAD_US after the command: its offset-0 actions are a timed change
     * like any other (the loop waits for them) instead of running late inside the command's handling */
    boot(); hello();
    dopa_program_action_t a[1] = {{0, 0, DOPA_ACTION_CUE_ON, 0}};
    program(3, 10, a, 1, 0);
    uint32_t t0 = g_now + RIG_START_LEAD_US;
    trial_start(DOPA_TRIAL_WHEN_NOW);
    CHECK_EQ(dopa_get_u32(last0(DOPA_MSG_TRIAL_STARTED)->body), t0);
    action_runs_at('C', t0);
}

static void test_back_to_back_switch_is_made_ahead(void)
{
    /* the next trial's clock starts exactly at the end of the last; the switch (TRIAL_ENDED, TRIAL_STARTED,
     * both stamped with the end) is made RIG_START_LEAD_US ahead, so its offset-0 action runs at the end */
    boot(); hello();
    dopa_program_action_t a[1] = {{0, 0, DOPA_ACTION_CUE_ON, 0}}, b[1] = {{0, 0, DOPA_ACTION_TTL_PULSE, 5}};
    program(1, 10, a, 1, 0);
    trial_start(DOPA_TRIAL_WHEN_NOW);
    uint32_t end = g_now + RIG_START_LEAD_US + 10000;
    program(2, 10, b, 1, 0);
    trial_start(DOPA_TRIAL_WHEN_AFTER_CURRENT);
    run_until(end - RIG_START_LEAD_US - 1, 1);
    CHECK_EQ(count(DOPA_MSG_TRIAL_ENDED), 0);
    run_until(end - RIG_START_LEAD_US, 1);
    CHECK_EQ(count(DOPA_MSG_TRIAL_ENDED), 1);
    CHECK_EQ(dopa_get_u32(last0(DOPA_MSG_TRIAL_ENDED)->body), end);
    CHECK_EQ(dopa_get_u32(last0(DOPA_MSG_TRIAL_STARTED)->body), end);
    action_runs_at('T', end);
}

static void test_an_action_due_just_before_the_close_waits_for_it(void)
{
    /* a TONE_ON due 100 us before the end of a pulse would still be running when the close falls due (it
     * takes ~250 us on the AVR): it waits, the close goes first at its time and the tone right after */
    boot(); hello();
    dopa_program_action_t a[2] = {{0, 0, DOPA_ACTION_VALVE_PULSE, 20}, {1, 19900, DOPA_ACTION_TONE_ON, 4000}};
    program(1, 50, a, 2, 0);
    trial_start(DOPA_TRIAL_WHEN_NOW);
    uint32_t t0 = g_now + RIG_START_LEAD_US, t_close = 0, t_tone = 0;
    run_until(t0 + 19900, 100);
    CHECK(g_pins.valve && !g_pins.tone);
    CHECK_EQ(rig_deadline_us(g_now), 100);                  /* the loop waits for the close */
    run_until(t0 + 20000, 1);
    CHECK(fake_edge_time('V', 0, 0, &t_close) && t_close == t0 + 20000);
    CHECK(fake_edge_time('S', 1, 0, &t_tone) && t_tone == t0 + 20000);
    CHECK(g_n_edges >= 2 && g_edges[g_n_edges - 2].pin == 'V' && g_edges[g_n_edges - 1].pin == 'S');
}

static void test_retiming_pulses_never_delay_the_cut(void)
{
    /* 15 VALVE_PULSEs due 50 us before the max-open cut: the cut goes first (within 100 us), and those
     * reached after it change nothing (no new opening, no MIN_GAP trip) */
    CHECK(cut_under_15_actions(DOPA_ACTION_VALVE_PULSE, 2000) <= 100);
    run_until(g_now + 100000, 1000);
    CHECK_EQ(count(DOPA_MSG_VALVE_OPENED), 1);
    CHECK_EQ(count(DOPA_MSG_SAFETY_TRIP), 1);
    CHECK_EQ(last0(DOPA_MSG_SAFETY_TRIP)->body[4], DOPA_TRIP_REASON_MAX_OPEN);
    CHECK(!g_pins.valve);
}

static dopa_valve_closed_t last_closed(void)
{
    dopa_valve_closed_t c;
    dopa_unpack_valve_closed(last0(DOPA_MSG_VALVE_CLOSED)->body, &c);
    return c;
}

/* A commanded pulse of `ms` whose close the loop reaches `late` us after its time; its VALVE_CLOSED. */
static dopa_valve_closed_t pulse_closed_late(uint16_t ms, uint32_t late)
{
    valve_pulse(ms);
    uint32_t close = g_now + ms * 1000UL;
    run_until(close - 10, 10);
    g_now = close + late;
    rig_poll(g_now);
    drain();
    dopa_valve_closed_t c = last_closed();
    CHECK_EQ(c.t_us - c.open_us, close - ms * 1000UL);   /* timed from its opening */
    return c;
}

static void test_pulses_are_exact_against_the_budget(void)
{
    /* a close RIG_ON_TIME_US or less after its time (the loop's latency) counts the planned length, so a
     * 300 ms budget gives three 100 ms pulses, as on the simulated device; a later close counts its real
     * length */
    boot(); hello();
    configure(1000, 10, 300, 1000, 2000);
    for (int k = 0; k < 3; k++) {
        dopa_valve_closed_t c = pulse_closed_late(100, k == 2 ? RIG_ON_TIME_US : 3);
        CHECK_EQ(c.open_us, 100000);
        run_until(g_now + 20000, 1000);
    }
    valve_pulse(1);                                          /* the budget is used up exactly */
    CHECK_EQ(last0(DOPA_MSG_NACK)->body[7], DOPA_NACK_REASON_SAFETY);
    g_session++;                                             /* a new session with more budget (the */
    send_hello_seq(++g_host_seq, g_session, 1000);           /* minute's 300 ms still count against it) */
    ack_events();
    CHECK_EQ(pulse_closed_late(100, 40).open_us, 100040);    /* late: its real length */
}

static void test_the_loop_cuts_the_valve_itself(void)
{
    /* the AVR loop asks before it waits (rig_valve_closes_at), moves the pin the moment the time comes and
     * has the core record it (rig_valve_cut); never while a due VALVE_PULSE will re-time the pulse end */
    boot(); hello();
    valve_pulse(50);
    uint32_t close = g_now + 50000;
    CHECK(!rig_valve_closes_at(close - RIG_VALVE_LEAD_US - 1));
    CHECK(rig_valve_closes_at(close - RIG_VALVE_LEAD_US));
    g_now = close + 2;
    hal_valve(0);
    rig_valve_cut(g_now);
    drain();
    CHECK_EQ(last_closed().open_us, 50000);                  /* as planned */
    CHECK_EQ(last_closed().cause, DOPA_CLOSE_CAUSE_PULSE_END);
    run_until(g_now + 60000, 1000);
    CHECK_EQ(count(DOPA_MSG_VALVE_CLOSED), 1);
    dopa_program_action_t a[2] = {{0, 0, DOPA_ACTION_VALVE_PULSE, 30}, {1, 30000, DOPA_ACTION_VALVE_PULSE, 30}};
    program(1, 100, a, 2, 0);
    trial_start(DOPA_TRIAL_WHEN_NOW);
    uint32_t t0 = g_now + RIG_START_LEAD_US;
    run_until(t0, 100);
    CHECK(g_pins.valve);
    CHECK(!rig_valve_closes_at(t0 + 30000));                /* the second pulse moves it */
}

static void test_a_lick_bouncing_on_stops_holding_the_link(void)
{
    /* a lick change is a timed change the link waits for until it has bounced RIG_LICK_SETTLE_US past the
     * moment it could first be accepted; then only the poll still waits for it (and never accepts it) */
    boot(); hello();                                         /* debounce 2000 us */
    uint32_t t = g_now;
    rig_lick_edge(1, t);
    CHECK_EQ(rig_deadline_us(t + 500), 1500);
    for (uint32_t k = 1; k <= 9; k++) {                    /* ends low: at rest */
        run_until(t + 1800 * k - 1, 100);
        rig_lick_edge(k & 1 ? 0 : 1, t + 1800 * k);
    }
    uint32_t now = t + 1800 * 9 + 100;
    run_until(now, 100);
    CHECK_EQ(rig_deadline_us(now), 0x7FFFFFFFUL);
    CHECK(rig_idle_us(now) <= 2000);
    run_until(now + 5000, 100);                             /* the resting level holds: no lick at all */
    CHECK_EQ(count(DOPA_MSG_LICK_ON) + count(DOPA_MSG_LICK_OFF), 0);
}

int main(void)
{
    RUN(test_boot_and_arming);
    RUN(test_valve_pulse_timing);
    RUN(test_max_open_time);
    RUN(test_min_gap);
    RUN(test_budget);
    RUN(test_min_gap_long_after_the_last_close);
    RUN(test_limits_apply_to_an_open_valve);
    RUN(test_host_silence);
    RUN(test_idempotent_retry_and_bad_crc);
    RUN(test_go_back_n_and_overflow);
    RUN(test_ack_during_a_go_back_round);
    RUN(test_lick_debounce);
    RUN(test_trial_program);
    RUN(test_bad_commands_and_bounds);
    RUN(test_analog_batches);
    RUN(test_sync_pulses);
    RUN(test_program_states_and_all_off);
    RUN(test_safety_trips_survive_a_full_ring);
    RUN(test_max_open_cut_has_priority_over_trial_actions);
    RUN(test_lick_polarity_flip_long_after_the_last_edge);
    RUN(test_back_to_back_programmed_pulses_merge);
    RUN(test_echo_does_not_keep_the_device_alive);
    RUN(test_min_gap_holds_across_hello_and_boot);
    RUN(test_retried_hello_does_not_rerun_a_command);
    RUN(test_hello_sends_the_events_it_causes);
    RUN(test_resume_after_host_timeout_keeps_the_session);
    RUN(test_new_session_counts_dropped_events_and_takes_a_budget);
    RUN(test_trial_started_now_begins_just_ahead);
    RUN(test_back_to_back_switch_is_made_ahead);
    RUN(test_an_action_due_just_before_the_close_waits_for_it);
    RUN(test_retiming_pulses_never_delay_the_cut);
    RUN(test_pulses_are_exact_against_the_budget);
    RUN(test_the_loop_cuts_the_valve_itself);
    RUN(test_a_lick_bouncing_on_stops_holding_the_link);
    return REPORT("test_rig");
}
