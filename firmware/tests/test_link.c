/* Host tests of the link layer: CRC check value, COBS round trips, and every golden vector of
 * protocol/vectors.json (via the generated vectors_gen.h) through the firmware's decoder, encoder
 * and the generated unpack functions.  BSD-3-Clause. */
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "link.h"
#include "vectors_gen.h"

static void test_crc_check_value(void)
{
    CHECK_EQ(dopa_crc16((const uint8_t *)"123456789", 9), 0x29B1);   /* CRC-16/CCITT-FALSE check */
    CHECK_EQ(dopa_crc16((const uint8_t *)"", 0), 0xFFFF);
}

static void test_cobs_round_trip(void)
{
    uint8_t in[300], enc[310], dec[310];
    srand(7);
    for (int trial = 0; trial < 2000; trial++) {
        uint16_t n = (uint16_t)(rand() % 300);
        for (uint16_t i = 0; i < n; i++) in[i] = (uint8_t)(rand() % 4 == 0 ? 0 : rand());
        uint16_t e = dopa_cobs_encode(in, n, enc);
        CHECK(e <= n + n / 254 + 1);
        for (uint16_t i = 0; i < e; i++) if (enc[i] == 0) { CHECK(!"0x00 inside a COBS block"); break; }
        int16_t d = dopa_cobs_decode(enc, e, dec);
        CHECK_EQ(d, n);
        CHECK(d == n && memcmp(in, dec, n) == 0);
    }
}

/* classify one wire vector the way the firmware does: frame decoder, then body checks of the dispatcher */
static uint8_t classify(const dopa_vector_t *v, dopa_frame_t *f)
{
    dopa_decoder_t d;
    uint8_t err = DOPA_DECODE_ERROR_OK, header_ok, r = DOPA_RX_NONE;
    dopa_decoder_init(&d);
    for (uint16_t i = 0; i < v->wire_len; i++) {
        r = dopa_decoder_feed(&d, v->wire[i], f, &err, &header_ok);
        if (r != DOPA_RX_NONE) CHECK_EQ(i, v->wire_len - 1);   /* only the final 0x00 completes it */
    }
    if (r == DOPA_RX_ERROR) return err;
    CHECK_EQ(r, DOPA_RX_FRAME);
    int16_t size = dopa_body_size(f->type);
    if (size < 0) return DOPA_DECODE_ERROR_UNKNOWN_TYPE;
    if (size != f->body_len) return DOPA_DECODE_ERROR_BAD_LENGTH;
    return DOPA_DECODE_ERROR_OK;
}

#define F(i, x) CHECK_EQ((int64_t)(x), v->fields[i])
/* the decoded fields, through the generated unpack functions, against the vector's field list */
static void check_fields(const dopa_vector_t *v, const uint8_t *b)
{
    switch (v->type) {
    case DOPA_MSG_HELLO: { dopa_hello_t m; dopa_unpack_hello(b, &m);
        F(0, m.protocol_version); F(1, m.session); F(2, m.budget_valve_ms); F(3, m.max_valve_ms);
        F(4, m.min_valve_gap_ms); F(5, m.host_timeout_ms); F(6, m.debounce_us); F(7, m.flags); break; }
    case DOPA_MSG_PING: { dopa_ping_t m; dopa_unpack_ping(b, &m); F(0, m.nonce); break; }
    case DOPA_MSG_CONFIGURE: { dopa_configure_t m; dopa_unpack_configure(b, &m);
        F(0, m.max_valve_ms); F(1, m.min_valve_gap_ms); F(2, m.budget_valve_ms); F(3, m.host_timeout_ms);
        F(4, m.debounce_us); F(5, m.flags); break; }
    case DOPA_MSG_VALVE_PULSE: { dopa_valve_pulse_t m; dopa_unpack_valve_pulse(b, &m); F(0, m.ms); break; }
    case DOPA_MSG_TONE_ON: { dopa_tone_on_t m; dopa_unpack_tone_on(b, &m); F(0, m.freq_hz); break; }
    case DOPA_MSG_TTL_PULSE: { dopa_ttl_pulse_t m; dopa_unpack_ttl_pulse(b, &m); F(0, m.ms); break; }
    case DOPA_MSG_ANALOG_START: { dopa_analog_start_t m; dopa_unpack_analog_start(b, &m); F(0, m.rate_hz); break; }
    case DOPA_MSG_HEARTBEAT: { dopa_heartbeat_t m; dopa_unpack_heartbeat(b, &m); F(0, m.next_expected_seq); F(1, m.epoch); break; }
    case DOPA_MSG_EVENT_ACK: { dopa_event_ack_t m; dopa_unpack_event_ack(b, &m); F(0, m.next_expected_seq); F(1, m.epoch); break; }
    case DOPA_MSG_PROGRAM_BEGIN: { dopa_program_begin_t m; dopa_unpack_program_begin(b, &m);
        F(0, m.trial_id); F(1, m.duration_ms); F(2, m.n_actions); break; }
    case DOPA_MSG_PROGRAM_ACTION: { dopa_program_action_t m; dopa_unpack_program_action(b, &m);
        F(0, m.index); F(1, m.offset_us); F(2, m.action); F(3, m.arg); break; }
    case DOPA_MSG_PROGRAM_LICK_WINDOW: { dopa_program_lick_window_t m; dopa_unpack_program_lick_window(b, &m);
        F(0, m.start_us); F(1, m.end_us); F(2, m.action); F(3, m.arg); break; }
    case DOPA_MSG_TRIAL_START: { dopa_trial_start_t m; dopa_unpack_trial_start(b, &m); F(0, m.when); break; }
    case DOPA_MSG_ACK: { dopa_ack_t m; dopa_unpack_ack(b, &m);
        F(0, m.t_us); F(1, m.cmd_seq); F(2, m.cmd_type); F(3, m.value); break; }
    case DOPA_MSG_NACK: { dopa_nack_t m; dopa_unpack_nack(b, &m);
        F(0, m.t_us); F(1, m.cmd_seq); F(2, m.cmd_type); F(3, m.reason); break; }
    case DOPA_MSG_HELLO_REPLY: { dopa_hello_reply_t m; dopa_unpack_hello_reply(b, &m);
        F(0, m.t_us); F(1, m.cmd_seq); F(2, m.boot); F(3, m.protocol_version); F(4, m.firmware_version);
        F(5, m.schema_hash); F(6, m.board); F(7, m.reset_cause); F(8, m.event_ring); F(9, m.session);
        F(10, m.dropped); F(11, m.lost_total); F(12, m.epoch); F(13, m.budget_used_ms); break; }
    case DOPA_MSG_RESUMED: { dopa_resumed_t m; dopa_unpack_resumed(b, &m);
        F(0, m.t_us); F(1, m.cmd_seq); F(2, m.epoch); F(3, m.lost_total); F(4, m.budget_used_ms); break; }
    case DOPA_MSG_LICK_ON: case DOPA_MSG_LICK_OFF: case DOPA_MSG_CUE_ONSET: case DOPA_MSG_CUE_OFFSET:
    case DOPA_MSG_TONE_OFFSET:
        F(0, dopa_get_u32(b)); break;
    case DOPA_MSG_VALVE_OPENED: { dopa_valve_opened_t m; dopa_unpack_valve_opened(b, &m); F(0, m.t_us); F(1, m.planned_ms); break; }
    case DOPA_MSG_VALVE_CLOSED: { dopa_valve_closed_t m; dopa_unpack_valve_closed(b, &m);
        F(0, m.t_us); F(1, m.open_us); F(2, m.cause); break; }
    case DOPA_MSG_TONE_ONSET: { dopa_tone_onset_t m; dopa_unpack_tone_onset(b, &m); F(0, m.t_us); F(1, m.freq_hz); break; }
    case DOPA_MSG_TTL_SENT: { dopa_ttl_sent_t m; dopa_unpack_ttl_sent(b, &m); F(0, m.t_us); F(1, m.ms); break; }
    case DOPA_MSG_ANALOG_BATCH: { dopa_analog_batch_t m; dopa_unpack_analog_batch(b, &m);
        F(0, m.t_us); F(1, m.rate_hz); F(2, m.n); for (int i = 0; i < 8; i++) F(3 + i, m.samples[i]); break; }
    case DOPA_MSG_DEVICE_HEARTBEAT: { dopa_device_heartbeat_t m; dopa_unpack_device_heartbeat(b, &m);
        F(0, m.t_us); F(1, m.rx_frames); F(2, m.rx_errors); F(3, m.unacked); F(4, m.state);
        F(5, m.budget_used_ms); break; }
    case DOPA_MSG_SAFETY_TRIP: { dopa_safety_trip_t m; dopa_unpack_safety_trip(b, &m); F(0, m.t_us); F(1, m.reason); F(2, m.value); break; }
    case DOPA_MSG_TRIAL_STARTED: { dopa_trial_started_t m; dopa_unpack_trial_started(b, &m); F(0, m.t_us); F(1, m.trial_id); break; }
    case DOPA_MSG_TRIAL_ENDED: { dopa_trial_ended_t m; dopa_unpack_trial_ended(b, &m);
        F(0, m.t_us); F(1, m.trial_id); F(2, m.aborted); break; }
    case DOPA_MSG_ERROR: { dopa_error_t m; dopa_unpack_error(b, &m); F(0, m.t_us); F(1, m.code); F(2, m.value); break; }
    case DOPA_MSG_SYNC_START: { dopa_sync_start_t m; dopa_unpack_sync_start(b, &m);
        F(0, m.min_ms); F(1, m.max_ms); F(2, m.pulse_ms); F(3, m.seed); break; }
    case DOPA_MSG_SYNC_PULSE: { dopa_sync_pulse_t m; dopa_unpack_sync_pulse(b, &m); F(0, m.t_us); F(1, m.n); F(2, m.ms); break; }
    default:
        CHECK_EQ(v->n_fields, 0);     /* the commands without fields */
    }
}

static void test_golden_vectors(void)
{
    CHECK(DOPA_N_VECTORS >= 40);
    for (unsigned k = 0; k < DOPA_N_VECTORS; k++) {
        const dopa_vector_t *v = &dopa_vectors[k];
        dopa_frame_t f;
        uint8_t err = classify(v, &f);
        if (err != v->error) fprintf(stderr, "vector %s\n", v->name);
        CHECK_EQ(err, v->error);
        if (v->error == DOPA_DECODE_ERROR_OK || v->error == DOPA_DECODE_ERROR_BAD_CRC ||
            v->error == DOPA_DECODE_ERROR_UNKNOWN_TYPE || (v->error == DOPA_DECODE_ERROR_BAD_LENGTH && v->raw_len >= 5)) {
            CHECK_EQ(f.type, v->type);
            CHECK_EQ(f.seq, v->seq);
            CHECK_EQ(f.body_len, v->raw_len - 5);
            CHECK(memcmp(f.body, v->raw + 3, f.body_len) == 0);
        }
        if (v->error != DOPA_DECODE_ERROR_OK) continue;
        uint8_t wire[DOPA_MAX_ENCODED + 1];
        uint8_t n = dopa_frame_encode(v->type, v->seq, v->raw + 3, (uint8_t)(v->raw_len - 5), wire);
        CHECK_EQ(n, v->wire_len);
        CHECK(n == v->wire_len && memcmp(wire, v->wire, n) == 0);    /* the encoder makes the same bytes */
        check_fields(v, v->raw + 3);
    }
}

static void test_resync_after_garbage(void)
{
    /* a corrupted frame, then a good one: the decoder reports one error and then the good frame */
    const dopa_vector_t *ping = &dopa_vectors[1];
    dopa_decoder_t d;
    dopa_frame_t f;
    uint8_t err, hok, r, frames = 0, errors = 0;
    uint8_t junk[] = {0x13, 0x37, 0x42, 0xFF, 0x00};
    dopa_decoder_init(&d);
    for (unsigned i = 0; i < sizeof junk; i++) {
        r = dopa_decoder_feed(&d, junk[i], &f, &err, &hok);
        errors += r == DOPA_RX_ERROR;
    }
    for (unsigned i = 0; i < ping->wire_len; i++) {
        r = dopa_decoder_feed(&d, ping->wire[i], &f, &err, &hok);
        frames += r == DOPA_RX_FRAME;
    }
    CHECK_EQ(errors, 1);
    CHECK_EQ(frames, 1);
    CHECK_EQ(f.type, DOPA_MSG_PING);
}

int main(void)
{
    RUN(test_crc_check_value);
    RUN(test_cobs_round_trip);
    RUN(test_golden_vectors);
    RUN(test_resync_after_garbage);
    return REPORT("test_link");
}
