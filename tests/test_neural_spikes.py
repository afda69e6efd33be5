"""Spike trains around events: PSTH and window rates against brute force, selection, real units tables."""
from __future__ import annotations

import numpy as np
import pytest

from dopa_rl.errors import InputError
from dopa_rl.io import nwb
from dopa_rl.neural.spikes import normalise_rates, psth, select_dopamine_units, window_rates


def _trains():
    rng = np.random.default_rng(0)
    return {"a": np.sort(rng.uniform(0, 100, 500)), "b": np.sort(rng.uniform(0, 100, 50)), "silent": np.array([])}


def test_psth_and_window_rates_match_brute_force():
    trains = _trains()
    events = np.array([10.0, 50.0, np.nan, 80.0])
    h = psth(trains, events, (-1.0, 1.0), 0.1, units=["a", "b"])
    assert h.rates.shape == (2, 3, 20) and h.kept.tolist() == [True, True, False, True]
    t = trains["a"]
    want = [((t >= 50.0 - 1.0 + 0.1 * k) & (t < 50.0 - 0.9 + 0.1 * k)).sum() / 0.1 for k in range(20)]
    np.testing.assert_allclose(h.rates[0, 1], want, atol=1e-9)
    with pytest.warns(UserWarning, match="unit silent has no spikes"):
        r = window_rates(trains, events, (0.0, 0.5))
    assert r.loc[0, "a"] == ((t >= 10.0) & (t < 10.5)).sum() / 0.5
    assert np.isnan(r.loc[2, "a"]) and (r.loc[[0, 1, 3], "silent"] == 0).all()
    with pytest.raises(InputError, match="not found"):
        psth(trains, events, units=["zz"])


def test_normalise_rates():
    trains = _trains()
    ev = np.arange(5.0, 95.0, 5.0)
    resp, base = window_rates(trains, ev, (0, 0.5), ["a"]), window_rates(trains, ev, (-0.5, 0), ["a"])
    np.testing.assert_allclose(normalise_rates(resp, base)["a"], resp["a"] - base["a"])
    z = normalise_rates(resp, base, how="zscore")["a"]
    np.testing.assert_allclose(z, (resp["a"] - base["a"].mean()) / base["a"].std())


def test_dopamine_unit_selector(rw_sessions):
    trains = nwb.read_units(rw_sessions[0])
    trials = nwb.read_behavior(rw_sessions[0])
    rewarded = trials.loc[trials["reward"] > 0, "outcome_time"].to_numpy()
    assert select_dopamine_units(trains, rewarded) == list(trains)          # all 4 simulated cells respond
    rng = np.random.default_rng(2)
    random_times = rng.uniform(10, trials["stop_time"].max() - 10, 100)
    assert select_dopamine_units(trains, random_times) == []
    assert select_dopamine_units(trains, rewarded, units=[1]) == [1]


def test_real_units_table_without_resolution_is_read_as_it_is(real_data):
    """Zheng 2022 units (MatNWB, no resolution, only an electrodes column) aligned to a named trials table."""
    path = real_data / "zheng2022_human_mtl_units/sub-4_ses-4_ecephys+image.nwb"
    trains = nwb.read_units(path)
    with nwb.NWBSession(path) as s:
        from dopa_rl.neural.dataset import event_times

        name, times = event_times(s, "fixcross_time", "encoding_table")
    assert name == "fixcross_time" and len(times) == 90 and len(trains) == 35
    h = psth(trains, times, (-0.5, 1.0), 0.1)
    assert h.rates.shape == (35, 90, 15) and h.rates.sum() > 0
    brute = ((trains[trains.unit_ids[0]][:, None] >= times[None, :]) &
             (trains[trains.unit_ids[0]][:, None] < times[None, :] + 1.0)).sum(axis=0)
    np.testing.assert_allclose(window_rates(trains, times, (0.0, 1.0), [trains.unit_ids[0]]).iloc[:, 0], brute)
