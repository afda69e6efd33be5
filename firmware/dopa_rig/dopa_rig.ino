// dopa_rig: firmware of the dopa_rl conditioning rig (ATmega328P: Arduino Uno / Nano, 16 MHz).
// Open this folder in the Arduino IDE and upload; or build with `make firmware` (see docs/firmware.md).
// Protocol: docs/protocol.md (generated from protocol/messages.toml); behaviour: docs/rig.md.
// All the logic is in src/ (portable C, unit-tested on the host); this sketch only hands over to it.
// Licence: BSD-3-Clause (see LICENSE at the top of the repository).
#include "src/rig_avr.h"

void setup() { rig_avr_setup(); }

void loop() { rig_avr_loop(); }
