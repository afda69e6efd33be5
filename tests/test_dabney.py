"""Dabney et al. (2020)'s counting zero-crossing, slopes and splits (dopa_rl.neural.dabney) against a
trial-level reference written from their MATLAB code (EstimateZeroCrossings.m, EstimateScaleFactors.m,
splitIndices.m), closed forms on noiseless units, and the range-end rule."""
import numpy as np
import pytest

from dopa_rl.neural import dabney

LEVELS = np.array([0.1, 0.3, 1.2, 2.5, 5.0, 10.0, 20.0])


def _ref_zero_crossing(y, lev_idx, axis, noise):
    """EstimateZeroCrossings for one cell, trial by trial (lev_idx 1..K, candidates k = 0.5 ... K + 0.5)."""
    K = axis.size
    ks = np.arange(K + 1) + 0.5
    crit = np.array([np.sum(y[lev_idx > k] > 0) + np.sum(y[lev_idx < k] < 0) for k in ks], float) + 0.001 * noise
    mcv = int(np.argmax(crit))
    zc = ks[mcv]
    if zc < 1:
        return axis[0] + 0.01
    if zc > K:
        return axis[-1] - 0.1
    w = np.abs(np.diff(crit[mcv - 1:mcv + 2]))
    w = (1 / w) / np.sum(1 / w)
    return w[0] * axis[int(zc - 0.5) - 1] + w[1] * axis[int(zc + 0.5) - 1]


def _ref_slopes(y, lev_idx, axis, zc):
    """EstimateScaleFactors, 'linear': glmfit without constant on each side of the reversal point."""
    u = axis[lev_idx - 1] - zc
    neg, pos = u <= 0, u >= 0
    sn = np.sum(-u[neg] * -y[neg]) / np.sum(u[neg] ** 2)
    sp = np.sum(u[pos] * y[pos]) / np.sum(u[pos] ** 2)
    return sp, sn


def test_counting_estimator_and_slopes_match_the_trial_level_reference():
    rng = np.random.default_rng(0)
    T, U = 420, 12
    m = rng.choice(LEVELS, T)
    idx = np.searchsorted(LEVELS, m) + 1
    axis = np.array([-3.6, -3.3, -2.8, -1.9, 0.0, 4.1, 8.1])              # a real-looking utility axis
    rp_true = rng.uniform(-3, 6, U)
    y = (np.where(axis[idx - 1][:, None] > rp_true, 1.3, 0.7) * (axis[idx - 1][:, None] - rp_true)
         + rng.normal(0, 2.5, (T, U)))
    st = dabney.level_stats(y, m, LEVELS)
    rp, end = dabney.zero_crossings(st["pos"], st["neg"], axis, np.random.default_rng(5))
    sp, sn, tau = dabney.asymmetric_slopes(st["n"], st["s"], axis, rp)
    noise = np.random.default_rng(5).standard_normal((1, U, LEVELS.size + 1))[0]
    for u in range(U):
        ref = _ref_zero_crossing(y[:, u], idx, axis, noise[u])
        assert rp[0, u] == pytest.approx(ref, abs=1e-12)
        rsp, rsn = _ref_slopes(y[:, u], idx, axis, ref)
        assert sp[0, u] == pytest.approx(rsp, rel=1e-10) and sn[0, u] == pytest.approx(rsn, rel=1e-10)
        assert tau[0, u] == pytest.approx(rsp / (rsp + rsn), rel=1e-10)
    assert np.corrcoef(rp[0], rp_true)[0, 1] > 0.8


def test_noiseless_unit_gives_its_slopes_and_a_reversal_between_the_bracketing_magnitudes():
    axis = LEVELS.copy()
    m = np.repeat(LEVELS, 10)
    c, s_pos, s_neg = 3.0, 2.0, 0.5
    y = np.where(m > c, s_pos, s_neg) * (m - c)
    st = dabney.level_stats(y[:, None], m, LEVELS)
    rp, end = dabney.zero_crossings(st["pos"], st["neg"], axis, np.random.default_rng(1))
    assert 2.5 < rp[0, 0] < 5.0 and end[0, 0] == 0
    sp, sn, tau = dabney.asymmetric_slopes(st["n"], st["s"], axis, np.array([[c]]))
    assert sp[0, 0] == pytest.approx(s_pos) and sn[0, 0] == pytest.approx(s_neg)
    assert tau[0, 0] == pytest.approx(0.8)


def test_range_ends_follow_the_paper_and_are_flagged():
    m = np.repeat(LEVELS, 8)
    rng = np.random.default_rng(2)
    up = 5 + m + rng.normal(0, 0.1, m.size)           # excited by every reward: boundary below the range
    down = -5 - m + rng.normal(0, 0.1, m.size)        # inhibited by every reward (and falling): above the range
    st = dabney.level_stats(np.c_[up, down], m, LEVELS)
    rp, end = dabney.zero_crossings(st["pos"], st["neg"], LEVELS, rng)
    assert rp[0, 0] == pytest.approx(LEVELS[0] + 0.01) and end[0, 0] == -1
    assert rp[0, 1] == pytest.approx(LEVELS[-1] - 0.1) and end[0, 1] == 1
    sp, sn, _ = dabney.asymmetric_slopes(st["n"], st["s"], LEVELS, rp)
    flags = dabney.unit_flags(end[0], sp[0], sn[0])
    assert "reversal_at_low_end" in flags[0] and "reversal_at_high_end" in flags[1]
    assert "slope_pos_not_positive" in flags[1]


def test_random_and_alternate_halves_split_every_unit_and_magnitude():
    rng = np.random.default_rng(3)
    m = rng.choice(LEVELS, 301)
    y = rng.normal(size=(301, 4))
    y[5, 1] = np.nan                                   # a missing response is in neither half
    full = dabney.level_stats(y, m, LEVELS)
    for scheme, S in (("random", 50), ("alternate", 1)):
        A, B = dabney.half_stats(y, m, LEVELS, rng, n_splits=S, scheme=scheme)
        assert A["n"].shape == (S, 4, LEVELS.size)
        np.testing.assert_allclose(A["n"] + B["n"], np.broadcast_to(full["n"], A["n"].shape))
        np.testing.assert_allclose(A["s"] + B["s"], np.broadcast_to(full["s"], A["s"].shape))
        np.testing.assert_array_equal(A["n"], np.floor(full["n"] / 2).repeat(S, axis=0))
    A1, _ = dabney.half_stats(y, m, LEVELS, rng, n_splits=20)
    assert np.unique(A1["s"][:, 0, 0]).size > 1        # random halves differ from split to split
    # alternate: the 2nd, 4th, ... trials of each magnitude in row order
    A, _ = dabney.half_stats(y, m, LEVELS, rng, scheme="alternate")
    rows = np.flatnonzero(m == LEVELS[3])
    assert A["s"][0, 0, 3] == pytest.approx(y[rows[1::2], 0].sum())


def test_trial_type_shift_equalises_the_grand_means():
    rng = np.random.default_rng(4)
    m = rng.choice(LEVELS, 400)
    cued = rng.random(400) < 0.5
    y = m[:, None] * np.array([1.0, 2.0]) + np.where(cued, 0.0, 3.0)[:, None] + rng.normal(0, 0.1, (400, 2))
    shift = dabney.trial_type_shift([(y, m, cued)], LEVELS)
    assert shift == pytest.approx(-3.0, abs=0.05)
    ax = dabney.utility_axis(dabney.unit_level_means(y + np.where(cued, 0, shift)[:, None], m, LEVELS))
    np.testing.assert_allclose(ax, 1.5 * LEVELS, atol=0.05)
