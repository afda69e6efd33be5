/* Golden vectors GENERATED from protocol/vectors.json by dopa_rl.rig.protocol_codegen: do not edit.
 * wire = COBS-encoded frame including the trailing 0x00; raw = the unencoded frame.
 * error = DOPA_DECODE_ERROR_* expected when decoding wire; fields = body fields in toml order
 * (arrays flattened), valid when error == DOPA_DECODE_ERROR_OK. */
#ifndef DOPA_VECTORS_GEN_H
#define DOPA_VECTORS_GEN_H

#include <stdint.h>
#include "../dopa_rig/src/protocol_gen.h"

typedef struct {
    const char *name;
    const uint8_t *wire;
    uint16_t wire_len;
    const uint8_t *raw;
    uint16_t raw_len;
    uint8_t error;
    uint8_t type;
    uint16_t seq;
    const int64_t *fields;
    uint8_t n_fields;
} dopa_vector_t;


#define DOPA_N_VECTORS 0u
static const dopa_vector_t dopa_vectors[] = {
    {"none", 0, 0u, 0, 0u, 0u, 0u, 0u, 0, 0u},
};

#endif /* DOPA_VECTORS_GEN_H */
