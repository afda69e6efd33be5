/* Framing of the dopa_rl rig link: CRC-16/CCITT-FALSE, COBS, frame decoder and encoder.
 * Plain C99, no I/O: compiles for the AVR and for the host (unit tests). BSD-3-Clause. */
#ifndef DOPA_LINK_H
#define DOPA_LINK_H

#include <stdint.h>
#include "protocol_gen.h"

#ifdef __cplusplus
extern "C" {
#endif

/* CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor). */
uint16_t dopa_crc16_update(uint16_t crc, uint8_t byte);
uint16_t dopa_crc16(const uint8_t *data, uint16_t len);

/* COBS-encode len bytes into out (room for len + len/254 + 1); returns the encoded length (no 0x00). */
uint16_t dopa_cobs_encode(const uint8_t *in, uint16_t len, uint8_t *out);
/* COBS-decode in place-safe (out may equal in); returns decoded length or -1 on a malformed block. */
int16_t dopa_cobs_decode(const uint8_t *in, uint16_t len, uint8_t *out);

/* A decoded frame: type, seq, body (points into the decoder's buffer, valid until the next byte). */
typedef struct {
    uint8_t type;
    uint16_t seq;
    const uint8_t *body;
    uint8_t body_len;
} dopa_frame_t;

/* Result of feeding one byte to the decoder. */
enum {
    DOPA_RX_NONE = 0,       /* frame not complete yet */
    DOPA_RX_FRAME = 1,      /* a frame with a good CRC is in *out (body length NOT yet checked) */
    DOPA_RX_ERROR = 2       /* a frame was dropped; *err says why, *out has type/seq when readable */
};

/* Byte-stream decoder: accumulates bytes up to a 0x00 delimiter, then COBS-decodes and checks the CRC. */
typedef struct {
    uint8_t buf[DOPA_MAX_ENCODED];
    uint8_t len;
    uint8_t overflow;       /* the current frame is longer than DOPA_MAX_ENCODED: drop it at 0x00 */
} dopa_decoder_t;

void dopa_decoder_init(dopa_decoder_t *d);
/* Feed one byte. On DOPA_RX_ERROR, *err is a DOPA_DECODE_ERROR_* and *header_ok says whether
 * out->type/out->seq were readable (a complete frame whose CRC failed). */
uint8_t dopa_decoder_feed(dopa_decoder_t *d, uint8_t byte, dopa_frame_t *out, uint8_t *err, uint8_t *header_ok);

/* Build type|seq|body|crc, COBS-encode it and append 0x00 into out (>= DOPA_MAX_ENCODED + 1 bytes).
 * Returns the number of bytes to send (0 if body_len is too large). */
uint8_t dopa_frame_encode(uint8_t type, uint16_t seq, const uint8_t *body, uint8_t body_len, uint8_t *out);

#ifdef __cplusplus
}
#endif
#endif
