/* AVR layer of the dopa_rig firmware: pins, timers, UART, ADC, watchdog, sleep.  BSD-3-Clause. */
#ifndef DOPA_RIG_AVR_H
#define DOPA_RIG_AVR_H

void rig_avr_setup(void);
void rig_avr_loop(void);

#endif
