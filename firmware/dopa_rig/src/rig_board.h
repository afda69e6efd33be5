/* Pin map and board id reported in HELLO_REPLY (Arduino digital pin numbers; 14 = A0).
 * The AVR port bits behind them are in rig_avr.cpp; docs/rig.md has the table.  BSD-3-Clause. */
#ifndef DOPA_RIG_BOARD_H
#define DOPA_RIG_BOARD_H

#include "protocol_gen.h"

/* the pin map is defined once, in protocol/messages.toml [pins] */
#define RIG_PIN_LICK DOPA_PIN_LICK
#define RIG_PIN_VALVE DOPA_PIN_VALVE
#define RIG_PIN_CUE DOPA_PIN_CUE
#define RIG_PIN_TONE DOPA_PIN_TONE
#define RIG_PIN_TTL DOPA_PIN_TTL
#define RIG_PIN_ANALOG DOPA_PIN_ANALOG

#if defined(ARDUINO_AVR_NANO)
#define RIG_BOARD_ID DOPA_BOARD_NANO
#elif defined(ARDUINO_AVR_UNO)
#define RIG_BOARD_ID DOPA_BOARD_UNO
#else
#define RIG_BOARD_ID DOPA_BOARD_UNKNOWN
#endif

#endif
