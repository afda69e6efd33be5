"""Weak-identification check (dopa_rl.fit.identification): a flat profile is flagged, a peaked one is not,
on a constructed case where the learning rate cannot matter (every cue is new, so every RPE is the same
for any alpha) and on the same trials with one repeated cue."""
import numpy as np
import pandas as pd
import pytest

from dopa_rl.fit.identification import LR_HALF_WIDTH, dopamine_profiles, profile_interval, weak_parameters
from dopa_rl.fit.neural import fit_dopamine
from dopa_rl.models import get_model


def test_profile_interval_closed_forms():
    g = np.linspace(0, 1, 101)
    peaked = -0.5 * ((g - 0.4) / 0.05) ** 2                 # Gaussian profile: 95% interval 0.4 +- 1.96 * 0.05
    info = profile_interval(g, peaked)
    assert info["interval"] == pytest.approx([0.31, 0.49], abs=0.011) and not info["flat"]
    flat = 0.3 * np.sin(6 * g)                              # wiggles of 0.6, less than 2 x 1.92
    assert profile_interval(g, flat)["flat"]
    assert LR_HALF_WIDTH == pytest.approx(1.9207, abs=1e-4)
    edge = -4.0 * g                                         # rejects the top of the range only
    assert not profile_interval(g, edge)["flat"]


def _trials(novel: bool, seed=0, n=150, alpha=0.3):
    rng = np.random.default_rng(seed)
    r = (rng.random(n) < 0.6).astype(float)
    v, rpe = 0.0, np.empty(n)
    for t in range(n):
        rpe[t] = r[t] - (0.0 if novel else v)
        v += alpha * (r[t] - v)
    cues = [f"c{t}" for t in range(n)] if novel else ["A"] * n
    return pd.DataFrame({"subject": "s1", "session": "1", "trial": np.arange(n), "cue": cues, "reward": r,
                         "dopamine_cue": np.nan, "dopamine_outcome": 0.2 + 1.5 * rpe + rng.normal(0, 0.3, n)})


def test_neural_fit_profile_is_flat_when_every_cue_is_new_and_peaked_otherwise():
    model = get_model("rw-pavlovian")
    for novel in (True, False):
        tr = _trials(novel)
        fit = fit_dopamine(model, tr, mode="neural", restarts=3, seed=1)
        prof = dopamine_profiles(model, tr, fit.params)
        info = prof["s1"]["alpha"]
        assert info["flat"] == novel, info
        weak = weak_parameters(prof)
        assert [w["param"] for w in weak] == (["alpha"] if novel else [])
        if not novel:
            lo, hi = info["interval"]
            assert lo < 0.3 < hi and hi - lo < 0.5


def test_a_peak_narrower_than_the_grid_gives_a_narrow_interval_around_the_estimate():
    g = np.linspace(0, 1, 11)
    info = profile_interval(g, -100 * (g - 0.43) ** 2 * 100, best_loglik=0.0, estimate=0.43)
    assert info["interval"] == [0.43, 0.43] and not info["flat"]
