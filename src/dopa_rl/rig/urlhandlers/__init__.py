"""pyserial URL handlers of dopa_rl: ``protocol_dopasim`` (dopasim://) and ``protocol_faulty`` (faulty://).

Registered by :func:`dopa_rl.rig.transports.register_url_handlers`.
"""
