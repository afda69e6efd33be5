"""Indicator kernels, RPE time courses at the sampling rate, and the trace-level RW fit."""
import numpy as np
import pytest
from scipy import signal

from dopa_rl.errors import InputError
from dopa_rl.models.indicator import (INDICATORS, ar1_profile, convolve_kernel, diff_exp_kernel,
                                      fit_trace_rw, impulse_train, indicator_kernel, rw_event_rpes,
                                      simulate_trace)

FS = 20.0


def test_kernel_shape_matches_closed_form():
    rise, decay = 0.1, 0.6
    k = diff_exp_kernel(1000.0, rise, decay)
    t_peak = rise * decay / (decay - rise) * np.log(decay / rise)     # argmax of the difference of exps
    assert np.argmax(k) / 1000.0 == pytest.approx(t_peak, abs=1e-3)
    assert k.max() == pytest.approx(1.0) and k[0] == 0.0
    for name in INDICATORS:
        kk = indicator_kernel(name, 1000.0)
        assert kk.max() == pytest.approx(1.0) and np.argmax(kk) < 1000     # peaks within 1 s
    half = [np.sum(indicator_kernel(g, 1000.0) > 0.5) for g in ("gcamp6f", "gcamp6m", "gcamp6s")]
    assert half[0] < half[1] < half[2]                                     # f faster than m than s
    with pytest.raises(InputError):
        indicator_kernel("gcamp99", FS)


def test_impulses_convolve_to_shifted_kernels():
    k = diff_exp_kernel(FS, 0.1, 0.5)
    u = impulse_train([1.0, 3.025], [2.0, -1.0], FS, 200)
    assert u[20] == pytest.approx(2.0)
    assert u[60] == pytest.approx(-0.5) and u[61] == pytest.approx(-0.5)   # split between samples
    x = convolve_kernel(u, k)
    ref = np.zeros(200)
    ref[20:20 + k.size] += 2 * k[: 180]
    ref[60:60 + k.size] += -0.5 * k[:140]
    ref[61:61 + k.size] += -0.5 * k[:139]
    np.testing.assert_allclose(x, ref, atol=1e-10)


def test_rw_rpes_follow_the_recursion():
    c, o = rw_event_rpes(["A", "B", "A"], [1.0, 0.0, 1.0], [0.5])
    np.testing.assert_allclose(c[0], [0.0, 0.0, 0.5])
    np.testing.assert_allclose(o[0], [1.0, 0.0, 0.5])


def test_ar1_profile_recovers_readout_and_phi():
    rng = np.random.default_rng(0)
    n = 20000
    x = rng.normal(size=n)
    e = signal.lfilter([1.0], [1.0, -0.8], rng.normal(0, 0.5, n))
    y = 2.0 + 3.0 * x + e
    p = ar1_profile(y, x)
    assert p["phi"][0] == pytest.approx(0.8, abs=0.02)
    assert p["b1"][0] == pytest.approx(3.0, abs=0.02)
    assert p["b0"][0] == pytest.approx(2.0, abs=0.2)
    assert p["sigma"][0] == pytest.approx(0.5, abs=0.02)


def _session(rng, n=200):
    ct = np.cumsum(rng.uniform(7.0, 11.0, n))
    return ct, ct + 1.5, (rng.random(n) < 0.7).astype(float)


def _window_fit(y, ct, ot, rew, grid):
    """The comparator: mean response 0-1 s after cue and outcome minus the 0.5 s pre-cue baseline,
    regressed on the RW RPEs per candidate alpha; the alpha with the smallest residual sum of squares."""
    def wmean(times, a, b):
        idx = (times[:, None] * FS + np.arange(int(a * FS), int(b * FS))[None, :]).astype(int)
        return y[idx].mean(1)
    base = wmean(ct, -0.5, 0.0)
    resp = np.concatenate([wmean(ct, 0.0, 1.0) - base, wmean(ot, 0.0, 1.0) - base])
    c, o = rw_event_rpes(["A"] * ct.size, rew, grid)
    X = np.concatenate([c, o], axis=1)
    rss = [np.sum((resp - np.polyval(np.polyfit(xx, resp, 1), xx)) ** 2) for xx in X]
    return grid[int(np.argmin(rss))]


def test_trace_fit_recovers_alpha_at_least_as_well_as_windows():
    k = diff_exp_kernel(FS, 0.1, 0.6)
    grid = np.linspace(0.01, 1.0, 100)
    err_trace, err_window = [], []
    for seed in range(5):
        rng = np.random.default_rng(100 + seed)
        alpha = [0.1, 0.2, 0.3, 0.4, 0.15][seed]
        ct, ot, rew = _session(rng)
        y = simulate_trace(FS, ["A"] * ct.size, ct, ot, rew, alpha, rng, kernel=k, phi=0.9, sigma=0.2)
        fit = fit_trace_rw(y, FS, ["A"] * ct.size, ct, ot, rew, kernel=k)
        assert abs(fit["alpha"] - alpha) < 0.1
        assert fit["phi"] == pytest.approx(0.9, abs=0.03)
        err_trace.append(abs(fit["alpha"] - alpha))
        err_window.append(abs(_window_fit(y, ct, ot, rew, grid) - alpha))
    assert np.mean(err_trace) <= np.mean(err_window)
    assert np.mean(err_trace) < 0.05


def test_trace_fit_bad_input():
    with pytest.raises(InputError):
        fit_trace_rw(np.array([0.0, np.nan, 1.0, 2.0]), FS, ["A"], [0.0], [0.1], [1.0])
    with pytest.raises(InputError):
        fit_trace_rw(np.zeros(100), FS, ["A", "A"], [0.0], [0.1], [1.0])


def test_generic_trace_fit_with_two_parameters():
    """fit_trace with any RPE generator: asymmetric RW (alpha_pos, alpha_neg) recovered from the trace."""
    from dopa_rl.models.indicator import fit_trace

    rng = np.random.default_rng(7)
    ct, ot, rew = _session(rng, n=300)
    k = diff_exp_kernel(FS, 0.1, 0.6)
    times = np.concatenate([ct, ot])

    def rpe_events(P):
        V = np.zeros(P.shape[0])
        c, o = np.empty((P.shape[0], ct.size)), np.empty((P.shape[0], ct.size))
        for t, r in enumerate(rew):
            c[:, t] = V
            d = r - V
            o[:, t] = d
            V = V + np.where(d > 0, P[:, 0], P[:, 1]) * d
        return times, np.concatenate([c, o], axis=1)

    _, amps = rpe_events(np.array([[0.3, 0.1]]))
    from dopa_rl.models.indicator import convolve_kernel, impulse_train
    n = int((ot.max() + 10) * FS)
    x = convolve_kernel(impulse_train(times, amps[0], FS, n), k)
    y = 1.0 + 2.0 * x + signal.lfilter([1.0], [1.0, -0.9], rng.normal(0, 0.2, n))
    g = np.linspace(0.02, 0.8, 7)
    grid = np.array([(a, b) for a in g for b in g])
    fit = fit_trace(y, FS, rpe_events, grid, kernel=k, n_restarts=1)
    assert fit["params"][0] == pytest.approx(0.3, abs=0.08)
    assert fit["params"][1] == pytest.approx(0.1, abs=0.08)
    assert fit["b1"] == pytest.approx(2.0, rel=0.1)
    assert fit["loglik"] >= max(fit["grid_loglik"])


def test_trace_level_td_recovers_alpha():
    """TD (CSC) RPE of every bin through the kernel; alpha recovered from the whole trace."""
    from dopa_rl.models import get_model
    from dopa_rl.models.indicator import convolve_kernel, fit_trace, impulse_train, model_rpe_events

    td = get_model("td")
    rng = np.random.default_rng(11)
    n = 150
    ct = np.cumsum(rng.uniform(6.0, 9.0, n))
    rew = (rng.random(n) < 0.8).astype(float)
    k = diff_exp_kernel(FS, 0.1, 0.6)
    events = model_rpe_events(td, ["A"] * n, ct, ct + 1.5, rew, names=("alpha",))
    times, amps = events(np.array([[0.2]]))
    m = int((ct[-1] + 10) * FS)
    y = 0.5 + 1.5 * convolve_kernel(impulse_train(times, amps[0], FS, m), k)
    y += signal.lfilter([1.0], [1.0, -0.9], rng.normal(0, 0.15, m))
    fit = fit_trace(y, FS, events, np.linspace(0.02, 0.8, 12), kernel=k)
    assert fit["params"][0] == pytest.approx(0.2, abs=0.05)
    assert fit["b1"] == pytest.approx(1.5, rel=0.15)
