/* Pin map and board id reported in HELLO_REPLY (Arduino digital pin numbers; 14 = A0).
 * The AVR port bits behind them are in rig_avr.cpp; docs/rig.md has the table.  BSD-3-Clause. */
#ifndef DOPA_RIG_BOARD_H
#define DOPA_RIG_BOARD_H

#define RIG_PIN_LICK 2
#define RIG_PIN_VALVE 8
#define RIG_PIN_CUE 13
#define RIG_PIN_TONE 9
#define RIG_PIN_TTL 7
#define RIG_PIN_ANALOG 14

#if defined(ARDUINO_AVR_NANO)
#define RIG_BOARD_ID DOPA_BOARD_NANO
#elif defined(ARDUINO_AVR_UNO)
#define RIG_BOARD_ID DOPA_BOARD_UNO
#else
#define RIG_BOARD_ID DOPA_BOARD_UNKNOWN
#endif

#endif
