"""The simulated rig device: the firmware's behaviour in Python, on a virtual clock (see docs/rig.md).

- :mod:`dopa_rl.sim.kernel`: the pure state machine (outputs, safety limits, trial programs),
- :mod:`dopa_rl.sim.device`: the device's link side (framing, replies, the event ring) around the kernel,
- :mod:`dopa_rl.sim.vclock`: the virtual clock and its real-time driver,
- :mod:`dopa_rl.sim.animal`: a simulated animal that licks according to an RL model,
- :mod:`dopa_rl.sim.links`: in-process pyserial ports; ``dopasim://`` is in :mod:`dopa_rl.sim.urlhandlers`.

Uses :mod:`dopa_rl.protocol` only; never the host side (:mod:`dopa_rl.rig`).
"""
