"""The rig wire protocol, shared by the host (:mod:`dopa_rl.rig`) and the simulated device (:mod:`dopa_rl.sim`).

- :mod:`dopa_rl.protocol.messages`: constants, enums and message layouts, generated from
  ``protocol/messages.toml`` by ``tools/protocol_codegen.py`` (never edited by hand),
- :mod:`dopa_rl.protocol.codec`: COBS framing, CRC-16 and frame encode/decode.

Pure: no I/O here.  Behaviour is in docs/rig.md, byte layouts in docs/protocol.md.
"""
