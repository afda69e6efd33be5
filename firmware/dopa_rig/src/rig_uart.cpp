/* UART0 driver of the dopa_rig firmware (see rig_uart.h).  BSD-3-Clause.
 * Own driver instead of Arduino's HardwareSerial: a larger receive ring (128 bytes, ~1.4 ms of bytes at
 * 1 Mbaud, so the loop may pause near timed outputs), a count of lost bytes (reported as ERROR
 * RX_OVERFLOW), and a cheaper transmit path.  Arduino's Serial must not be used with it. */
#if defined(__AVR__)
#include <avr/interrupt.h>
#include <avr/io.h>
#include "rig_uart.h"

#define RX_SIZE 128u
#define TX_SIZE 64u     /* > the largest event frame the device sends (HELLO_REPLY, 45 bytes) */

static volatile uint8_t rx_buf[RX_SIZE], tx_buf[TX_SIZE];
static volatile uint8_t rx_head, rx_tail, tx_head, tx_tail;
static volatile uint16_t rx_lost;

void rig_uart_init(uint32_t baud)
{
    UCSR0A = _BV(U2X0);                                  /* U2X before UBRR (simavr times bytes from UBRR) */
    uint16_t ubrr = (uint16_t)((F_CPU / 8UL + baud / 2) / baud - 1);   /* 1 for 1 Mbaud at 16 MHz: exact */
    UBRR0H = (uint8_t)(ubrr >> 8);
    UBRR0L = (uint8_t)ubrr;
    UCSR0C = _BV(UCSZ01) | _BV(UCSZ00);                  /* 8N1 */
    UCSR0B = _BV(RXEN0) | _BV(TXEN0) | _BV(RXCIE0);
}

ISR(USART_RX_vect)
{
    uint8_t overrun = UCSR0A & _BV(DOR0);
    uint8_t c = UDR0;
    uint8_t next = (uint8_t)((rx_head + 1u) & (RX_SIZE - 1u));
    if (overrun) rx_lost++;
    if (next == rx_tail) {
        rx_lost++;
        return;
    }
    rx_buf[rx_head] = c;
    rx_head = next;
}

ISR(USART_UDRE_vect)
{
    if (tx_head == tx_tail) {
        UCSR0B &= (uint8_t)~_BV(UDRIE0);
        return;
    }
    UDR0 = tx_buf[tx_tail];
    tx_tail = (uint8_t)((tx_tail + 1u) & (TX_SIZE - 1u));
}

int16_t rig_uart_read(void)
{
    if (rx_head == rx_tail) return -1;
    uint8_t c = rx_buf[rx_tail];
    rx_tail = (uint8_t)((rx_tail + 1u) & (RX_SIZE - 1u));
    return c;
}

uint8_t rig_uart_available(void) { return (uint8_t)((rx_head - rx_tail) & (RX_SIZE - 1u)); }

uint8_t rig_uart_room(void) { return (uint8_t)(TX_SIZE - 1u - ((tx_head - tx_tail) & (TX_SIZE - 1u))); }

void rig_uart_write(const uint8_t *p, uint8_t n)
{
    uint8_t h = tx_head;
    while (n--) {
        tx_buf[h] = *p++;
        h = (uint8_t)((h + 1u) & (TX_SIZE - 1u));
    }
    tx_head = h;                       /* one store: the ISR sees all bytes or none */
    UCSR0B |= _BV(UDRIE0);
}

uint16_t rig_uart_lost(void)
{
    uint8_t s = SREG;
    cli();
    uint16_t v = rx_lost;
    SREG = s;
    return v;
}
#endif
