/* Fake hardware for the host unit tests (see fake_hal.c). */
#ifndef DOPA_FAKE_HAL_H
#define DOPA_FAKE_HAL_H
#include <stdint.h>
#include "rig_hal.h"

#define FAKE_MAX_EDGES 256
typedef struct { uint8_t valve, cue, ttl; uint16_t tone; } fake_pins_t;
typedef struct { char pin; int level; uint32_t t; } fake_edge_t;   /* pin: V valve, C cue, T ttl, S tone */

extern uint32_t g_now;
extern fake_pins_t g_pins;
extern fake_edge_t g_edges[FAKE_MAX_EDGES];
extern int g_n_edges;
extern int g_adc_starts;
extern uint32_t g_micros_step;
extern uint8_t g_boot_count;     /* boots so far (hal_boot_count() increments it, as the AVR's EEPROM byte) */   /* hal_micros() advances the clock by this much per call (work that takes time) */

void fake_reset(void);
/* time of the nth (0-based) change of pin to level; returns 0 if there is none */
int fake_edge_time(char pin, int level, int nth, uint32_t *t);
#endif
