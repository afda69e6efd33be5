"""The rig: wire protocol, simulated device, transports and the host-side device client (see docs/rig.md)."""
