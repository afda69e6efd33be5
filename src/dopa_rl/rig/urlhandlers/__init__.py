"""pyserial URL handler of the host side: ``protocol_faulty`` (faulty://, fault injection around any link).

Registered by :func:`dopa_rl.rig.transports.register_url_handlers`; ``dopasim://`` is in :mod:`dopa_rl.sim.urlhandlers`.
"""
