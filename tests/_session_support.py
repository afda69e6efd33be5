"""Helpers for the session tests: a fast config, a simulated rig the test can count on, NWB reading."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dopa_rl.sim.animal import SimulatedAnimal
from dopa_rl.testing import SimulatedDUT

FAST = """
[session]
subject = "m1"
session_id = "t1"
n_trials = {n}
seed = {seed}

[[trial_types]]
name = "CS+"
cue = "light"
cue_s = 0.5
trace_s = 0.5
post_s = 1.0
reward_probability = {p}
reward_ul = 4.0
frequency = 3

[[trial_types]]
name = "CS-"
cue = "tone"
tone_hz = 8000
cue_s = 0.5
trace_s = 0.5
post_s = 0.5
reward_probability = 0.0
frequency = 1

[iti]
distribution = "uniform"
min_s = 0.5
max_s = 1.5

[model]
name = "{model}"
alpha = 0.3
{extra}
"""


def fast_config(tmp_path: Path, n: int = 20, *, seed: int = 1, p: float = 0.9, model: str = "rw-pavlovian", extra: str = "",
                name: str = "fast.toml") -> Path:
    path = tmp_path / name
    path.write_text(FAST.format(n=n, seed=seed, p=p, model=model, extra=extra))
    return path


def sim_rig(speed: float = 50.0, seed: int = 0) -> SimulatedDUT:
    """A simulated device with a simulated animal, reachable at ``.url``, that outlives the session's link."""
    from dopa_rl.session.runner import sim_retransmit_ms, sim_ring

    return SimulatedDUT(speed=speed, animal=SimulatedAnimal(np.random.default_rng(seed)), ring_size=sim_ring(speed),
                        retransmit_ms=sim_retransmit_ms(speed))


def rising(dut, pin: str, after_us: int = 0, before_us: int | None = None) -> list[int]:
    return [t for t, lv in dut.pin_edges(pin) if lv and t >= after_us and (before_us is None or t < before_us)]


def nwb_contents(path: Path) -> tuple:
    from dopa_rl.io import nwb

    with nwb.NWBSession(path) as s:
        trials = s.behavior()
        events = s.events()
    return trials, events


def nwb_cut_trials(path: Path):
    """The NWB's cut_trials intervals as a DataFrame (None when no trial was cut)."""
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(path), "r") as io:
        f = io.read()
        return f.intervals["cut_trials"].to_dataframe() if "cut_trials" in f.intervals else None
