/* Fake hardware for the host unit tests: a settable clock and a log of every output change. */
#include "fake_hal.h"

uint32_t g_now;
fake_pins_t g_pins;
fake_edge_t g_edges[FAKE_MAX_EDGES];
int g_n_edges;
int g_adc_starts;
uint32_t g_micros_step;
uint8_t g_boot_count;   /* the EEPROM boot counter: it survives fake_reset(), as EEPROM survives a reset */

static void edge(char pin, int level)
{
    if (g_n_edges < FAKE_MAX_EDGES) {
        g_edges[g_n_edges].pin = pin;
        g_edges[g_n_edges].level = level;
        g_edges[g_n_edges].t = g_now;
        g_n_edges++;
    }
}

void hal_valve(uint8_t on) { if (g_pins.valve != on) edge('V', on); g_pins.valve = on; }
void hal_cue(uint8_t on) { if (g_pins.cue != on) edge('C', on); g_pins.cue = on; }
void hal_ttl(uint8_t on) { if (g_pins.ttl != on) edge('T', on); g_pins.ttl = on; }
uint16_t hal_tone(uint16_t freq_hz)
{
    uint16_t f = freq_hz ? hal_tone_hz(freq_hz) : 0;
    if ((g_pins.tone != 0) != (f != 0)) edge('S', f != 0);
    g_pins.tone = f;
    return f;
}
void hal_adc_start(void) { g_adc_starts++; }
uint32_t hal_micros(void) { g_now += g_micros_step; return g_now; }
uint8_t hal_boot_count(void) { return ++g_boot_count; }

void fake_reset(void)
{
    g_now = 0;
    g_n_edges = 0;
    g_adc_starts = 0;
    g_micros_step = 0;
    g_pins.valve = g_pins.cue = g_pins.ttl = 0;
    g_pins.tone = 0;
}

int fake_edge_time(char pin, int level, int nth, uint32_t *t)
{
    for (int i = 0; i < g_n_edges; i++)
        if (g_edges[i].pin == pin && g_edges[i].level == level && nth-- == 0) { *t = g_edges[i].t; return 1; }
    return 0;
}
