"""The host side of a rig link: links and URL handlers, the device client, clock sync, raw log, port lookup.

The wire protocol is in :mod:`dopa_rl.protocol`, the simulated device in :mod:`dopa_rl.sim` (see docs/rig.md).
"""
