/* The host side of the firmware core tests (test_rig.c, test_session.c): a fake host that numbers its
 * commands, collects the device's events once each in order (duplicates from go-back-N dropped), and
 * acknowledges them under the device session's epoch; plus the common command helpers.  Header-only:
 * each test program is one translation unit.  BSD-3-Clause. */
#ifndef DOPA_RIG_HOST_H
#define DOPA_RIG_HOST_H
#include <string.h>
#include "check.h"
#include "fake_hal.h"
#include "rig.h"

#define MAX_EV 256
typedef struct { uint8_t type; uint16_t seq; uint8_t len; uint8_t body[DOPA_MAX_BODY]; } ev_t;
static ev_t g_ev[MAX_EV];
static int g_nev;
static uint16_t g_host_seq;
static uint16_t g_expect;       /* next device seq: duplicates (retransmissions) are dropped like the host does */
static uint16_t g_epoch;        /* the device session's tag (HELLO_REPLY.epoch), carried by every acknowledgement */
static int g_dups;              /* retransmitted frames seen */
static dopa_decoder_t g_dec;

/* collect everything the device transmits (the UART always has room here) */
static inline void drain(void)
{
    const uint8_t *p;
    uint8_t n;
    while ((n = rig_tx_next(&p)) != 0) {
        for (uint8_t i = 0; i < n; i++) {
            dopa_frame_t f;
            uint8_t err, hok;
            if (dopa_decoder_feed(&g_dec, p[i], &f, &err, &hok) != DOPA_RX_FRAME || g_nev >= MAX_EV) continue;
            if (f.type == DOPA_MSG_HELLO_REPLY && f.seq == 0) {
                dopa_hello_reply_t h;
                dopa_unpack_hello_reply(f.body, &h);
                g_expect = 0;
                if (!h.boot) g_epoch = h.epoch;
            }
            if (f.seq != g_expect) { g_dups++; continue; }
            {
                g_expect++;
                g_ev[g_nev].type = f.type; g_ev[g_nev].seq = f.seq; g_ev[g_nev].len = f.body_len;
                memcpy(g_ev[g_nev].body, f.body, f.body_len);
                g_nev++;
            }
        }
        rig_tx_sent(g_now);
    }
}

static inline void feed(const uint8_t *wire, uint8_t n) { for (uint8_t i = 0; i < n; i++) rig_rx_byte(wire[i], g_now); drain(); }

static inline uint16_t send_seq(uint8_t type, uint16_t seq, const uint8_t *body, uint8_t len)
{
    uint8_t wire[DOPA_MAX_ENCODED + 1];
    feed(wire, dopa_frame_encode(type, seq, body, len, wire));
    return seq;
}
static inline uint16_t send(uint8_t type, const uint8_t *body, uint8_t len) { return send_seq(type, ++g_host_seq, body, len); }

/* body of EVENT_ACK / HEARTBEAT: next expected seq, under this session's epoch */
static inline void ack_body(uint8_t b[4], uint16_t next)
{
    dopa_put_u16(b, next);
    dopa_put_u16(b + 2, g_epoch);
}

static inline void ack_events(void)
{
    uint8_t b[4];
    ack_body(b, (uint16_t)(g_ev[g_nev - 1].seq + 1));
    send(DOPA_MSG_EVENT_ACK, b, 4);
}

/* advance the fake clock in steps, running the core like the AVR loop does */
static inline void run_until(uint32_t t, uint32_t step)
{
    while (DOPA_AFTER(t, g_now + step)) { g_now += step; rig_poll(g_now); drain(); }
    g_now = t; rig_poll(g_now); drain();
}

static inline int count(uint8_t type) { int c = 0; for (int i = 0; i < g_nev; i++) c += g_ev[i].type == type; return c; }
static inline const ev_t *last(uint8_t type) { for (int i = g_nev - 1; i >= 0; i--) if (g_ev[i].type == type) return &g_ev[i]; return 0; }
/* as last(), but an all-zero event when there is none (a failing check instead of a crash) */
static inline const ev_t *last0(uint8_t type) { static const ev_t none; const ev_t *e = last(type); return e ? e : &none; }

/* reset at t = 0 */
static inline void boot_now(void)
{
    fake_reset();
    memset(g_ev, 0, sizeof g_ev);
    g_nev = 0;
    g_host_seq = 100;
    dopa_decoder_init(&g_dec);
    rig_init(DOPA_RESET_CAUSE_POWER_ON, g_now);
    drain();
}

/* reset, then 60 ms later (boot counts as a valve close: the 50 ms minimum gap has passed) */
static inline void boot(void)
{
    boot_now();
    g_now = 60000;
}

static uint32_t g_session = 0x5E55;   /* the host's session nonce */

static inline void send_hello_seq(uint16_t seq, uint32_t session, uint32_t budget_ms)
{
    dopa_hello_t h = {DOPA_PROTOCOL_VERSION, session, budget_ms, DOPA_LIMITS_KEEP, 0, 0, 0, 0};
    uint8_t b[DOPA_MSG_HELLO_SIZE];
    dopa_pack_hello(b, &h);
    send_seq(DOPA_MSG_HELLO, seq, b, sizeof b);
}

/* HELLO with this host's nonce: a new session after a reset, a resume otherwise */
static inline void hello(void)
{
    send_hello_seq(++g_host_seq, g_session, DOPA_BUDGET_KEEP);
    ack_events();
}

static inline void resend_hello(uint16_t seq) { send_hello_seq(seq, g_session, DOPA_BUDGET_KEEP); }

/* HELLO from another host (another nonce): always a new session */
static inline void hello_new(void) { g_session++; hello(); }

static inline void configure(uint16_t max_ms, uint16_t gap_ms, uint32_t budget_ms, uint16_t timeout_ms, uint16_t debounce_us)
{
    dopa_configure_t c = {max_ms, gap_ms, budget_ms, timeout_ms, debounce_us, 0};
    uint8_t b[DOPA_MSG_CONFIGURE_SIZE];
    dopa_pack_configure(b, &c);
    send(DOPA_MSG_CONFIGURE, b, sizeof b);
    CHECK_EQ(last(DOPA_MSG_ACK)->body[6], DOPA_MSG_CONFIGURE);
}

static inline uint16_t valve_pulse(uint16_t ms)
{
    uint8_t b[2];
    dopa_put_u16(b, ms);
    return send(DOPA_MSG_VALVE_PULSE, b, 2);
}

/* run the core for `us`, feeding every byte it transmits straight back to its receiver (an echoing line:
 * a loopback plug, a pty with echo, crossed wiring); the frames are recorded as usual too */
static inline void echo_for(uint32_t us)
{
    uint32_t end = g_now + us;
    while (DOPA_AFTER(end, g_now + 1000)) {
        const uint8_t *p;
        uint8_t n, buf[DOPA_MAX_ENCODED + 1];
        g_now += 1000;
        rig_poll(g_now);
        while ((n = rig_tx_next(&p)) != 0) {
            memcpy(buf, p, n);
            rig_tx_sent(g_now);
            for (uint8_t i = 0; i < n; i++) {
                dopa_frame_t f;
                uint8_t err, hok;
                if (dopa_decoder_feed(&g_dec, buf[i], &f, &err, &hok) == DOPA_RX_FRAME && g_nev < MAX_EV &&
                    f.seq == g_expect) {
                    g_expect++;
                    g_ev[g_nev].type = f.type; g_ev[g_nev].seq = f.seq; g_ev[g_nev].len = f.body_len;
                    memcpy(g_ev[g_nev].body, f.body, f.body_len);
                    g_nev++;
                }
            }
            for (uint8_t i = 0; i < n; i++) rig_rx_byte(buf[i], g_now);
        }
    }
}

static inline void hello_reply(dopa_hello_reply_t *h) { dopa_unpack_hello_reply(last0(DOPA_MSG_HELLO_REPLY)->body, h); }
#endif
