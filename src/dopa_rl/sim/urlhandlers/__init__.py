"""pyserial URL handler of the simulated device: ``protocol_dopasim`` (dopasim://).

Registered by :func:`dopa_rl.rig.transports.register_url_handlers` (by package name).
"""
