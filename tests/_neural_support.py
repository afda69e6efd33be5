"""Shared fixtures of the dopamine-analysis tests: synthetic NWB sessions with known parameters (written once
per test run) and hand-made traces."""
from __future__ import annotations

import numpy as np
import pytest

TRUE_ALPHA = 0.15


def write_sessions(folder, model="rw", n=2, n_trials=300, seed=11, alpha=TRUE_ALPHA):
    from dopa_rl.io.nwb_write import write_session
    from dopa_rl.io.synthetic import simulate_session

    paths = []
    for k in range(n):
        data = simulate_session("pavlovian", model, params={"alpha": alpha}, seed=seed + k, subject=f"m{k + 1}",
                                session="s1", n_trials=n_trials)
        paths.append(write_session(folder / f"sub-m{k + 1}_{model}.nwb", data))
    return paths


@pytest.fixture(scope="session")
def rw_sessions(tmp_path_factory):
    """Two simulated RW Pavlovian sessions (300 trials, alpha 0.15) with photometry and 4 dopamine units."""
    return write_sessions(tmp_path_factory.mktemp("neural_rw"))


def bleaching_recording(rate=50.0, duration=1800.0, seed=0):
    """Signal = bleaching double exponential x (1 + transients + motion) + noise; control shares the motion.

    Returns (t, signal, control, true dF/F transients, motion)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(duration * rate)) / rate
    bleach = 1.0 + 0.3 * np.exp(-t / 600.0) + 0.1 * np.exp(-t / 60.0)
    bleach_c = 1.0 + 0.2 * np.exp(-t / 800.0)
    onsets = np.sort(rng.uniform(10, duration - 10, int(duration / 20)))
    kernel_t = np.arange(int(3 * rate)) / rate
    kernel = np.exp(-kernel_t / 0.5) - np.exp(-kernel_t / 0.08)
    kernel /= kernel.max()
    drive = np.zeros_like(t)
    drive[np.round(onsets * rate).astype(int)] = rng.uniform(0.05, 0.15, onsets.size)
    transient = np.convolve(drive, kernel)[: len(t)]
    mdrive = np.zeros_like(t)
    mdrive[rng.integers(0, len(t), int(duration / 30))] = -rng.uniform(0.05, 0.1, int(duration / 30))
    mk = np.exp(-kernel_t / 0.8)
    motion = np.convolve(mdrive, mk)[: len(t)]
    signal = 2.0 * bleach * (1.0 + transient + motion) + rng.normal(0, 0.001, len(t))
    control = 1.5 * bleach_c * (1.0 + motion) + rng.normal(0, 0.001, len(t))
    return t, signal, control, transient, motion
