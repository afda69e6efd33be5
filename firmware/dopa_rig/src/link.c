/* Framing of the dopa_rl rig link (see link.h). BSD-3-Clause. */
#include "link.h"
#if defined(__AVR__)
#include <util/crc16.h>
#endif

uint16_t dopa_crc16_update(uint16_t crc, uint8_t byte)
{
#if defined(__AVR__)
    return _crc_xmodem_update(crc, byte);   /* avr-libc's asm: same polynomial, MSB first (~4x faster) */
#else
    /* byte-wise CRC-CCITT (0x1021, MSB first) without a table */
    crc = (uint16_t)((crc >> 8) | (crc << 8));
    crc ^= byte;
    crc ^= (uint16_t)((crc & 0xFFu) >> 4);
    crc ^= (uint16_t)(crc << 12);
    crc ^= (uint16_t)((crc & 0xFFu) << 5);
    return crc;
#endif
}

uint16_t dopa_crc16(const uint8_t *data, uint16_t len)
{
    uint16_t crc = 0xFFFFu;
    while (len--) crc = dopa_crc16_update(crc, *data++);
    return crc;
}

uint16_t dopa_cobs_encode(const uint8_t *in, uint16_t len, uint8_t *out)
{
    uint16_t code_at = 0, o = 1;
    uint8_t code = 1;
    for (uint16_t i = 0; i < len; i++) {
        if (in[i] == 0) {
            out[code_at] = code;
            code_at = o++;
            code = 1;
        } else {
            out[o++] = in[i];
            if (++code == 0xFF) {
                out[code_at] = code;
                code_at = o++;
                code = 1;
            }
        }
    }
    out[code_at] = code;
    return o;
}

int16_t dopa_cobs_decode(const uint8_t *in, uint16_t len, uint8_t *out)
{
    uint16_t i = 0, o = 0;
    while (i < len) {
        uint8_t code = in[i++];
        if (code == 0) return -1;
        if ((uint16_t)(i + code - 1) > len) return -1;
        for (uint8_t k = 1; k < code; k++) {
            if (in[i] == 0) return -1;
            out[o++] = in[i++];
        }
        if (code != 0xFF && i < len) out[o++] = 0;
    }
    return (int16_t)o;
}

void dopa_decoder_init(dopa_decoder_t *d)
{
    d->len = 0;
    d->overflow = 0;
}

uint8_t dopa_decoder_feed(dopa_decoder_t *d, uint8_t byte, dopa_frame_t *out, uint8_t *err, uint8_t *header_ok)
{
    *header_ok = 0;
    if (byte != 0) {
        if (d->len < DOPA_MAX_ENCODED - 1) d->buf[d->len++] = byte;   /* 65 encoded bytes at most */
        else d->overflow = 1;
        return DOPA_RX_NONE;
    }
    uint8_t len = d->len, overflow = d->overflow;
    d->len = 0;
    d->overflow = 0;
    if (len == 0 && !overflow) return DOPA_RX_NONE;       /* empty frame: idle delimiter */
    if (overflow) { *err = DOPA_DECODE_ERROR_TOO_LONG; return DOPA_RX_ERROR; }
    int16_t n = dopa_cobs_decode(d->buf, len, d->buf);
    if (n < 0) { *err = DOPA_DECODE_ERROR_BAD_COBS; return DOPA_RX_ERROR; }
    if (n > (int16_t)DOPA_MAX_FRAME) { *err = DOPA_DECODE_ERROR_TOO_LONG; return DOPA_RX_ERROR; }
    if (n < (int16_t)(DOPA_HEADER_SIZE + DOPA_CRC_SIZE)) { *err = DOPA_DECODE_ERROR_BAD_LENGTH; return DOPA_RX_ERROR; }
    out->type = d->buf[0];
    out->seq = dopa_get_u16(d->buf + 1);
    out->body = d->buf + DOPA_HEADER_SIZE;
    out->body_len = (uint8_t)(n - DOPA_HEADER_SIZE - DOPA_CRC_SIZE);
    uint16_t crc = dopa_crc16(d->buf, (uint16_t)(n - DOPA_CRC_SIZE));
    if (crc != dopa_get_u16(d->buf + n - DOPA_CRC_SIZE)) {
        *err = DOPA_DECODE_ERROR_BAD_CRC;
        *header_ok = 1;
        return DOPA_RX_ERROR;
    }
    *err = DOPA_DECODE_ERROR_OK;
    return DOPA_RX_FRAME;
}

uint8_t dopa_frame_encode(uint8_t type, uint16_t seq, const uint8_t *body, uint8_t body_len, uint8_t *out)
{
    uint8_t raw[DOPA_MAX_FRAME];
    if (body_len > DOPA_MAX_BODY) return 0;
    raw[0] = type;
    dopa_put_u16(raw + 1, seq);
    for (uint8_t i = 0; i < body_len; i++) raw[DOPA_HEADER_SIZE + i] = body[i];
    uint8_t n = (uint8_t)(DOPA_HEADER_SIZE + body_len);
    dopa_put_u16(raw + n, dopa_crc16(raw, n));
    n = (uint8_t)(n + DOPA_CRC_SIZE);
    uint16_t e = dopa_cobs_encode(raw, n, out);
    out[e++] = 0;
    return (uint8_t)e;
}
