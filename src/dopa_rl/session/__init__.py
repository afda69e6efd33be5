"""Live conditioning sessions: TOML config, schedule and policies (pure), runner (the only I/O),
journal and recover, NWB export.  See docs/sessions.md.

>>> from dopa_rl.session import load_config, run_session, open_device   # doctest: +SKIP
>>> cfg, rig = load_config("examples/classical_conditioning.toml")
>>> result, nwb = run_session(cfg, rig, open_device("dopasim://?speed=50&animal=rw"), "s.nwb", speed=50)
"""
from dopa_rl.session.config import ConfigError, Rig, SessionConfig, load_config, load_rig, parse_config
from dopa_rl.session.export import export_journal, recover, session_data
from dopa_rl.session.journal import JournalWriter, read_journal
from dopa_rl.session.runner import (MAX_SPEED, Runner, RunResult, device_tally, device_url, open_device, parse_speed,
                                    run_session)
from dopa_rl.session.schedule import TrialPlan, plan_trial

__all__ = ["ConfigError", "Rig", "SessionConfig", "load_config", "load_rig", "parse_config", "export_journal",
           "recover", "session_data", "JournalWriter", "read_journal", "MAX_SPEED", "Runner", "RunResult",
           "device_tally", "device_url", "open_device", "parse_speed", "run_session", "TrialPlan", "plan_trial"]
