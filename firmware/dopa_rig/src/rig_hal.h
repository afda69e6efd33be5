/* Hardware the rig core drives: implemented by the AVR layer (rig_avr.cpp) and by the host unit tests
 * (a fake that records every call with the fake clock). BSD-3-Clause. */
#ifndef DOPA_RIG_HAL_H
#define DOPA_RIG_HAL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

void hal_valve(uint8_t on);
void hal_cue(uint8_t on);
/* Start the tone at freq_hz (0 = off); returns the frequency actually produced (= hal_tone_hz). */
uint16_t hal_tone(uint16_t freq_hz);
/* The frequency the tone generator makes for freq_hz (portable, in outputs.c). */
uint16_t hal_tone_hz(uint16_t freq_hz);
void hal_ttl(uint8_t on);
/* Start one ADC conversion of the analog input; its value comes back through rig_analog_sample(). */
void hal_adc_start(void);
/* The device clock in microseconds, read again right after a pin changed (events carry that time). */
uint32_t hal_micros(void);
/* Boots counted in non-volatile memory (the AVR layer increments its EEPROM byte once per boot): the high
 * byte of every session epoch, so a session after a reset is told from the one before it. */
uint8_t hal_boot_count(void);

#ifdef __cplusplus
}
#endif
#endif
