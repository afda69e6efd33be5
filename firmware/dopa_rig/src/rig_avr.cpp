/* AVR layer of the dopa_rig firmware (ATmega328P, 16 MHz: Uno, Nano).  BSD-3-Clause.
 *
 * Thin on purpose: everything with logic lives in the portable core (rig.c, outputs.c, program.c,
 * evring.c, link.c), which the host unit tests run on a fake clock.  This file only moves bits:
 *   valve PB0 (D8), cue LED PB5 (D13), tone OC1A/PB1 (D9, Timer1 CTC toggle, no interrupts),
 *   TTL PD7 (D7), lick PD2 (D2, INT0 on both edges, timestamped with micros() in the ISR),
 *   analog ADC0 (A0, one conversion per sample, ADC interrupt), UART0 at 1,000,000 baud (U2X, exact;
 *   own driver in rig_uart.cpp, Arduino's Serial is not used).
 * The device clock is Arduino's micros() (Timer0, 4 us resolution, wraps every 71.6 min).
 * The loop never blocks: it sleeps (SLEEP_MODE_IDLE) until the next interrupt or the core's next
 * deadline (Timer2, used only as a one-shot wake-up timer); the 250 ms hardware watchdog resets a
 * hung loop.
 * GPIOR0 bit 0 mirrors "tone generator running" so the emulator can trace tone on/off exactly.
 */
#if defined(__AVR__)
#include <Arduino.h>
#include <avr/interrupt.h>
#include <avr/sleep.h>
#include <avr/wdt.h>
#include <avr/eeprom.h>

#include "rig.h"
#include "rig_hal.h"
#include "rig_board.h"
#include "rig_avr.h"
#include "rig_uart.h"

#define VALVE_BIT _BV(0)   /* PORTB */
#define TONE_BIT _BV(1)    /* PORTB, OC1A */
#define CUE_BIT _BV(5)     /* PORTB */
#define TTL_BIT _BV(7)     /* PORTD */
#define LICK_BIT _BV(2)    /* PIND, INT0 */

/* MCUSR is read and cleared before anything else runs (after a watchdog reset the watchdog stays
 * enabled with its shortest timeout, so it is also switched off here until setup() re-arms it). */
static uint8_t g_mcusr __attribute__((section(".noinit")));
extern "C" void rig_early_init(void) __attribute__((naked, used, section(".init3")));
extern "C" void rig_early_init(void)
{
    g_mcusr = MCUSR;
    MCUSR = 0;
    wdt_disable();
}

#ifndef RIG_NO_SLEEP
#define RIG_NO_SLEEP 0      /* -DRIG_NO_SLEEP=1: never sleep (debugging; simavr then runs unpaced) */
#endif

#define LICK_QUEUE 8
static volatile uint8_t g_lick_level[LICK_QUEUE];
static volatile uint32_t g_lick_t[LICK_QUEUE];
static volatile uint8_t g_lick_head, g_lick_tail;
static volatile uint16_t g_lick_lost;      /* raw edges the full queue could not hold (wraps) */
static uint16_t g_lick_lost_reported;
static volatile uint16_t g_adc_value;
static uint16_t g_lost_reported;
static volatile uint8_t g_adc_ready;

static void lick_isr(void)
{
    uint8_t level = (PIND & LICK_BIT) ? 1 : 0;
    uint8_t next = (uint8_t)((g_lick_head + 1) % LICK_QUEUE);
    if (next == g_lick_tail) {           /* queue full: the newest entry takes the newest level and time */
        uint8_t last = (uint8_t)((g_lick_head + LICK_QUEUE - 1) % LICK_QUEUE);
        g_lick_level[last] = level;      /* (the debounce runs from the last edge: a lost one never */
        g_lick_t[last] = micros();       /* shortens it; the edge it replaced is the one lost) */
        g_lick_lost++;                   /* counted: ERROR LICK_OVERFLOW */
        return;
    }
    g_lick_level[g_lick_head] = level;
    g_lick_t[g_lick_head] = micros();
    g_lick_head = next;
}

ISR(ADC_vect)
{
    g_adc_value = ADC;
    g_adc_ready = 1;
}

EMPTY_INTERRUPT(TIMER2_COMPA_vect);     /* only wakes the CPU at the core's next deadline */

extern "C" void hal_valve(uint8_t on) { if (on) PORTB |= VALVE_BIT; else PORTB &= (uint8_t)~VALVE_BIT; }
extern "C" void hal_cue(uint8_t on) { if (on) PORTB |= CUE_BIT; else PORTB &= (uint8_t)~CUE_BIT; }
extern "C" void hal_ttl(uint8_t on) { if (on) PORTD |= TTL_BIT; else PORTD &= (uint8_t)~TTL_BIT; }
extern "C" void hal_adc_start(void) { ADCSRA |= _BV(ADSC); }
extern "C" uint32_t hal_micros(void) { return micros(); }

/* EEPROM byte 0 counts boots (rig_init reads it once per boot; 100,000 writes: one per boot is fine) */
extern "C" uint8_t hal_boot_count(void)
{
    uint8_t n = (uint8_t)(eeprom_read_byte((uint8_t *)0) + 1u);
    eeprom_update_byte((uint8_t *)0, n);
    return n;
}

extern "C" uint16_t hal_tone(uint16_t freq_hz)
{
    if (freq_hz == 0) {
        TCCR1B = 0;
        TCCR1A = 0;
        PORTB &= (uint8_t)~TONE_BIT;
        GPIOR0 &= (uint8_t)~1u;
        return 0;
    }
    uint32_t top = dopa_tone_top(freq_hz);                 /* 50..20000 Hz -> 20000..50 */
    uint16_t made = hal_tone_hz(freq_hz);                   /* divisions first: the pin starts last */
    TCCR1B = 0;
    TCNT1 = 0;
    TCCR1A = _BV(COM1A0);                /* toggle OC1A on compare match */
    TCCR1B = (uint8_t)(_BV(WGM12) | _BV(CS11)); /* CTC, TOP = OCR1A, clk/8: toggles at 1 MHz / top */
    OCR1A = (uint16_t)(top - 1);
    GPIOR0 |= 1u;
    return made;
}

static uint8_t reset_cause(uint8_t mcusr)
{
    if (mcusr & _BV(WDRF)) return DOPA_RESET_CAUSE_WATCHDOG;
    if (mcusr & _BV(BORF)) return DOPA_RESET_CAUSE_BROWN_OUT;
    if (mcusr & _BV(EXTRF)) return DOPA_RESET_CAUSE_EXTERNAL;
    if (mcusr & _BV(PORF)) return DOPA_RESET_CAUSE_POWER_ON;
    return DOPA_RESET_CAUSE_UNKNOWN;
}

void rig_avr_setup(void)
{
    PORTB &= (uint8_t)~(VALVE_BIT | TONE_BIT | CUE_BIT);   /* outputs off before they are outputs */
    PORTD &= (uint8_t)~(TTL_BIT | LICK_BIT);
    DDRB |= VALVE_BIT | TONE_BIT | CUE_BIT;
    DDRD |= TTL_BIT;
    DDRD &= (uint8_t)~LICK_BIT;
    hal_tone(0);
    ADMUX = _BV(REFS0);                                  /* AVcc reference, channel ADC0 */
    ADCSRA = _BV(ADEN) | _BV(ADIE) | _BV(ADPS2) | _BV(ADPS1) | _BV(ADPS0);
    rig_uart_init(DOPA_BAUD);                            /* U2X before UBRR0: exact 1 Mbaud */
    attachInterrupt(digitalPinToInterrupt(RIG_PIN_LICK), lick_isr, CHANGE);
    TIMSK2 = 0;                                          /* Timer2: the wake-up timer, CTC at clk/64 */
    TCCR2A = _BV(WGM21);
    TCCR2B = _BV(CS22);
    OCR2A = 255;
    set_sleep_mode(SLEEP_MODE_IDLE);
    rig_init(reset_cause(g_mcusr), micros());
    rig_lick_edge((PIND & LICK_BIT) ? 1 : 0, micros());
    wdt_enable(WDTO_250MS);
}

/* Handling a complete frame takes up to ~400 us and queueing its reply ~200 us (more while receive
 * interrupts keep coming): none of it starts this close to a timed output change.  The 128-byte receive
 * ring holds ~1.4 ms of incoming bytes meanwhile. */
#define RIG_GUARD_US 1000UL
#define RIG_RX_BURST 16

/* Queue event frames on the UART while they fit and no timed output change is near (encoding a frame
 * costs ~90 us). */
static void transmit(void)
{
    const uint8_t *p;
    uint8_t n;
    while (rig_deadline_us(micros()) > RIG_GUARD_US && (n = rig_tx_next(&p)) != 0) {
        if (n > rig_uart_room()) return;                 /* never wait: the frame goes on a later pass */
        rig_uart_write(p, n);
        rig_tx_sent(micros());
    }
}


/* Raw lick edges from the interrupt's queue into the core.  Always before rig_poll, after reading the
 * `now` it is given: every edge up to `now` is then in the core, so no debounce is judged on a level that
 * already changed (an edge after `now` carries a later time and cannot confirm anything yet). */
static void drain_licks(void)
{
    while (g_lick_tail != g_lick_head) {
        cli();                           /* the interrupt may rewrite the newest entry (queue full) */
        uint8_t i = g_lick_tail, level = g_lick_level[i];
        uint32_t t = g_lick_t[i];
        g_lick_tail = (uint8_t)((i + 1) % LICK_QUEUE);
        sei();
        rig_lick_edge(level, t);
    }
}

/* One pass of this loop takes 25-250 us (32-bit arithmetic on an 8-bit CPU, receive interrupts): a timed
 * change closer than this is waited for in a tight loop on micros() and run at once (~25 us late).  The
 * wait takes in lick edges as they come (cheap); it is not re-planned (that costs ~50 us): the poll at the
 * end judges the debounce on every edge so far. */
#define RIG_SPIN_US 300UL

void rig_avr_loop(void)
{
    wdt_reset();
    uint32_t now = micros();
    drain_licks();
    uint32_t due_in = rig_deadline_us(now);
    if (due_in < RIG_SPIN_US) {
        uint32_t due = now + due_in;
        uint8_t cut = rig_valve_closes_at(due);          /* the valve closes first at `due`: */
        while ((int32_t)((now = micros()) - due) < 0)
            drain_licks();
        if (cut) {                                       /* the pin at once, then the core records it */
            hal_valve(0);
            rig_valve_cut(micros());
        }
        drain_licks();
        rig_poll(now);
        return;
    }
    uint8_t link_ok = due_in > RIG_GUARD_US;
    int16_t c;
    if (link_ok && rig_uart_available()) {
        now = micros();                                  /* a burst is at most 16 bytes (176 us) old */
        /* at most one frame per pass, so a pass stays shorter than the guard before timed changes */
        for (uint8_t n = 0; n < RIG_RX_BURST && (c = rig_uart_read()) >= 0; n++)
            if (rig_rx_byte((uint8_t)c, now)) break;
        uint16_t lost = rig_uart_lost();
        if (lost != g_lost_reported) {
            rig_error(now, DOPA_ERROR_CODE_RX_OVERFLOW, (uint16_t)(lost - g_lost_reported));
            g_lost_reported = lost;
        }
    }
    cli();
    uint16_t lick_lost = g_lick_lost;
    sei();
    if (lick_lost != g_lick_lost_reported) {
        rig_error(micros(), DOPA_ERROR_CODE_LICK_OVERFLOW, (uint16_t)(lick_lost - g_lick_lost_reported));
        g_lick_lost_reported = lick_lost;
    }
    if (g_adc_ready) {
        g_adc_ready = 0;
        rig_analog_sample(g_adc_value);
    }
    now = micros();
    drain_licks();
    rig_poll(now);
    if (link_ok) transmit();

    /* sleep until the next interrupt if nothing is pending; the deadline is computed with interrupts
     * on (it takes ~30 us, longer than the UART's 2-byte hardware buffer lasts at 1 Mbaud) */
    uint32_t idle = rig_idle_us(micros());
    if (idle <= RIG_SPIN_US + 100 || RIG_NO_SLEEP) return;
    cli();
    if (!rig_uart_available() && g_lick_tail == g_lick_head && !g_adc_ready) {
        if (idle < 1000) {                         /* Timer0 overflows (and wakes us) every 1024 us anyway */
            OCR2A = (uint8_t)((idle - RIG_SPIN_US) / 4);   /* wake in time for the spin */
            TCNT2 = 0;                             /* Timer2 (CTC, 4 us ticks, always running) as a one-shot */
            TIFR2 = _BV(OCF2A);
            TIMSK2 = _BV(OCIE2A);
        }
        sleep_enable();
        sei();
        sleep_cpu();                               /* sei then sleep: the sleep runs before any ISR */
        sleep_disable();
        TIMSK2 = 0;
    }
    sei();
}
#endif
