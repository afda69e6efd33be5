"""Peri-event matrices and per-trial response measures against brute force and hand-computed values."""
from __future__ import annotations

import numpy as np
import pytest

from dopa_rl.errors import InputError
from dopa_rl.neural.alignment import peri_event_matrix, window_measures


def test_matrix_matches_brute_force_and_time_axis():
    rate, t0 = 20.0, 5.0
    x = np.random.default_rng(0).normal(size=2000)
    events = np.array([10.0, 33.3, 60.05])
    pe = peri_event_matrix(x, events, (-1.0, 2.0), rate=rate, t0=t0)
    assert pe.time[0] == -1.0 and pe.time[-1] == 2.0 and len(pe.time) == 61
    for row, e in zip(pe.matrix, events):
        i = int(round((e - t0) * rate))
        np.testing.assert_array_equal(row, x[i - 20: i + 41])
    assert pe.n_events == 3 and pe.excluded == {}


def test_events_outside_the_recording_and_missing_are_excluded_and_counted():
    x = np.arange(1000.0)
    with pytest.warns(UserWarning, match="2 of 5 event"):
        pe = peri_event_matrix(x, [0.5, 10.0, np.nan, 49.0, 20.0], (-1.0, 1.0), rate=20.0)
    assert pe.kept.tolist() == [False, True, False, False, True]
    assert pe.excluded == {"missing": 1, "outside": 2}
    full = pe.full()
    assert np.isnan(full[0]).all() and not np.isnan(full[1]).any()


def test_signal_shorter_than_window_is_a_clear_error():
    with pytest.raises(InputError, match="signal has 10 samples .* needs 41"):
        peri_event_matrix(np.zeros(10), [0.1], (-1.0, 1.0), rate=20.0)
    with pytest.raises(InputError, match="end must come after"):
        peri_event_matrix(np.zeros(100), [1.0], (1.0, -1.0), rate=20.0)


def test_no_event_inside_raises_on_mean():
    with pytest.warns(UserWarning):
        pe = peri_event_matrix(np.zeros(100), [100.0], (-1.0, 1.0), rate=10.0)
    with pytest.raises(InputError, match="no event"):
        pe.mean()


def test_window_measures_of_a_known_box():
    time = np.arange(-10, 21) / 10.0        # -1 .. 2 s at 10 Hz
    row = np.where((time >= 0.2) & (time <= 0.5), 3.0, 1.0)
    m = window_measures(np.vstack([row, np.full_like(row, np.nan)]), time, (0.0, 1.0), (-1.0, 0.0))
    assert m.loc[0, "peak"] == pytest.approx(2.0)
    assert m.loc[0, "peak_time"] == pytest.approx(0.2)
    assert m.loc[0, "mean"] == pytest.approx(2.0 * 4 / 11)
    assert m.loc[0, "auc"] == pytest.approx(2.0 * 4 * 0.1)      # z * s
    assert m.iloc[1].isna().all()                                # an excluded trial stays missing
    with pytest.raises(InputError, match="response window"):
        window_measures(row[None], time, (5.0, 6.0))
