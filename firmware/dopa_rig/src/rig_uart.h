/* UART0 driver of the dopa_rig firmware (replaces Arduino's Serial): 1,000,000 baud, interrupt-driven
 * 128-byte receive and 64-byte transmit rings, lost receive bytes counted.  BSD-3-Clause. */
#ifndef DOPA_RIG_UART_H
#define DOPA_RIG_UART_H
#include <stdint.h>

void rig_uart_init(uint32_t baud);
int16_t rig_uart_read(void);              /* next received byte, or -1 */
uint8_t rig_uart_available(void);         /* received bytes waiting */
uint8_t rig_uart_room(void);              /* bytes the transmit ring can take now */
void rig_uart_write(const uint8_t *p, uint8_t n);   /* caller checks rig_uart_room() first */
uint16_t rig_uart_lost(void);             /* receive bytes dropped so far (ring full or hardware overrun) */

#endif
