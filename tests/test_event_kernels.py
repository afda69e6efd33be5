"""Event-kernel regression (Parker et al. 2016 style encoding model)."""
import numpy as np
import pytest
from scipy import signal

from dopa_rl.neural.kernels import bspline_basis, event_design, event_kernel_regression, fit_diff_exp
from dopa_rl.models.indicator import diff_exp_kernel
from dopa_rl.errors import InputError

FS = 20.0
WINDOW = (-0.5, 3.0)


def _true_kernels(lags):
    pos = np.clip(lags, 0, None)
    cue = (pos / 0.3) * np.exp(1 - pos / 0.3)                                  # peak 1 at 0.3 s
    outcome = 1.5 * (pos / 0.4) * np.exp(1 - pos / 0.4) - 0.6 * np.exp(-((lags - 1.5) / 0.4) ** 2)
    lick = 0.5 * np.exp(-((lags - 0.1) / 0.3) ** 2)                            # starts before the lick
    return {"cue": cue, "outcome": outcome, "lick": lick}


def _session(rng, n_trials=250, rpe=None):
    cue = np.cumsum(rng.uniform(6.0, 10.0, n_trials))
    outcome = cue + rng.uniform(1.0, 2.5, n_trials)
    licks = np.sort(np.concatenate([o + rng.exponential(0.6, 4) for o in outcome] +
                                   [rng.uniform(0, cue[-1], 150)]))
    choice = np.sort(cue + rng.uniform(0.2, 0.8, n_trials))                   # never used for the trace
    n = int((cue[-1] + 10) * FS)
    return {"cue": cue, "outcome": outcome, "lick": licks, "choice": choice}, n


def _build(rng, events, n, kernels, amps=None, phi=0.8, sigma=0.3):
    d = event_design({k: events[k] for k in kernels}, FS, n, window=WINDOW, n_basis=12)
    lags = d["lags"]
    y = np.zeros(n)
    s0 = int(round(WINDOW[0] * FS))
    for name, k in kernels.items():
        a = np.ones(events[name].size) if amps is None or name not in amps else amps[name]
        idx = np.round(events[name] * FS).astype(int)
        for i, amp in zip(idx, a):
            lo = i + s0
            seg = slice(max(lo, 0), min(lo + k.size, n))
            y[seg] += amp * k[seg.start - lo: seg.stop - lo]
    y += signal.lfilter([1.0], [1.0, -phi], rng.normal(0, sigma, n))
    return y, lags


def test_basis_partition_of_unity():
    B = bspline_basis(71, 12)
    np.testing.assert_allclose(B.sum(1), 1.0, atol=1e-12)
    assert B.shape == (71, 12)
    with pytest.raises(InputError):
        bspline_basis(71, 2)


def test_kernels_recovered_and_unused_regressor_contributes_nothing():
    rng = np.random.default_rng(0)
    events, n = _session(rng)
    lags = np.arange(int(WINDOW[0] * FS), int(WINDOW[1] * FS) + 1) / FS
    truth = _true_kernels(lags)
    y, _ = _build(rng, events, n, truth)
    fit = event_kernel_regression(y, FS, events, window=WINDOW, n_basis=12)
    np.testing.assert_allclose(fit.lags, lags)
    for name, k in truth.items():
        r = np.corrcoef(fit.kernels[name], k)[0, 1]
        assert r > 0.9, (name, r)
    assert abs(fit.unique["choice"]) < 0.01
    # used regressors each explain something the others cannot (the choice regressor, 0.2-0.8 s after the
    # cue, shares much of the cue's variance, so the cue's unique part is modest)
    for name in ("cue", "outcome", "lick"):
        assert fit.unique[name] > 0.005 > abs(fit.unique["choice"]) * 10, name
    assert 0 < fit.r2_cv <= fit.r2_train < 1


def test_rpe_modulated_regressor_improves_the_model():
    rng = np.random.default_rng(1)
    events, n = _session(rng)
    rpe = rng.choice([-1.0, 0.5, 1.0, 2.0], events["outcome"].size)
    lags = np.arange(int(WINDOW[0] * FS), int(WINDOW[1] * FS) + 1) / FS
    truth = _true_kernels(lags)
    y, _ = _build(rng, events, n, {"cue": truth["cue"], "outcome": truth["outcome"]},
                  amps={"outcome": rpe})
    base = {"cue": events["cue"], "outcome": events["outcome"]}
    plain = event_kernel_regression(y, FS, base, window=WINDOW)
    with_rpe = event_kernel_regression(y, FS, {**base, "outcome_rpe": (events["outcome"], rpe)},
                                       window=WINDOW)
    assert with_rpe.r2_cv > plain.r2_cv + 0.05
    assert with_rpe.unique["outcome_rpe"] > 0.05
    assert np.corrcoef(with_rpe.kernels["outcome_rpe"], truth["outcome"])[0, 1] > 0.9


def test_fit_diff_exp_recovers_time_constants():
    lags = np.arange(-10, 81) / FS
    k = np.concatenate([np.zeros(10), 2.0 * diff_exp_kernel(FS, 0.15, 0.8, duration_s=4.0)])
    noisy = k + np.random.default_rng(0).normal(0, 0.02, k.size)
    p = fit_diff_exp(lags, noisy)
    assert p["rise_s"] == pytest.approx(0.15, rel=0.15)
    assert p["decay_s"] == pytest.approx(0.8, rel=0.1)
    assert p["peak_s"] == pytest.approx(0.15 * 0.8 / 0.65 * np.log(0.8 / 0.15), abs=0.05)


def test_bad_input():
    with pytest.raises(InputError):
        event_kernel_regression(np.zeros(1000), FS, {})
    with pytest.raises(InputError):
        event_kernel_regression(np.zeros(1000), FS, {"cue": ([1.0, 2.0], [1.0])})
    with pytest.raises(InputError):
        event_kernel_regression(np.zeros(1000), FS, {"cue": [1.0]}, window=(1.0, 0.0))


def test_real_dlight_cue_kernel_peaks_within_one_second(real_data):
    """Akam dLight1.1 NAc recording (../shared/data/real): the reward-cue kernel peaks within 1 s."""
    from dopa_rl.io import nwb
    from dopa_rl.io.nwb_read import read_events

    path = real_data / "akam_dlight_nac" / "m53_NAc_L-2019-11-24-093939_dLight.nwb"
    ph = nwb.read_photometry(path)
    cues = read_events(path)["reward_cue"]
    fs = ph.rate
    b, a = signal.butter(2, 10 / (fs / 2))
    bh, ah = signal.butter(2, 0.01 / (fs / 2), "high")
    sig = signal.filtfilt(bh, ah, signal.filtfilt(b, a, ph.signal))
    ctl = signal.filtfilt(bh, ah, signal.filtfilt(b, a, ph.control))
    x = signal.decimate(sig - np.polyfit(ctl, sig, 1)[0] * ctl, 13)          # motion-corrected, 10 Hz
    z = (x - x.mean()) / x.std()
    fit = event_kernel_regression(z, fs / 13, {"cue": cues}, window=(-1.0, 4.0), n_basis=15,
                                  t0=float(ph.timestamps[0]))
    k = fit.kernels["cue"]
    peak = fit.lags[np.argmax(k)]
    assert 0.0 < peak <= 1.0
    assert k.max() > 1.5                                   # README: peri-cue z-score peaks near 3 SD
    assert fit.r2_cv > 0.05
    shape = fit_diff_exp(fit.lags, k)                   # the parametric kernel, estimated from data
    assert 0.0 < shape["peak_s"] <= 1.0 and shape["r2"] > 0.8


def test_kernel_collinearity_flags_a_constant_lag_and_not_a_jittered_one():
    from dopa_rl.neural.kernels import event_design, event_lags, kernel_collinearity

    rng = np.random.default_rng(11)
    fs = 20.0
    cue = np.cumsum(rng.uniform(8, 12, 150))
    n = int((cue[-1] + 10) * fs)
    lick = np.sort(rng.uniform(5, cue[-1], 600))
    for delay, jitter, flagged in ((1.0, 0.0, True), (1.5, 0.0, True), (1.5, 0.5, False), (3.5, 0.0, False)):
        out = cue + delay + rng.uniform(-jitter, jitter, cue.size)
        d = event_design({"cue": cue, "outcome": out, "lick": lick}, fs, n, window=(-0.5, 3.0))
        c = kernel_collinearity(d["X"], d["groups"])
        assert ([x["events"] for x in c] == [["cue", "outcome"]]) == flagged, (delay, jitter, c)
        if flagged:
            assert c[0]["vif"] > 100
    lag = event_lags(cue, cue + 1.5, 3.5)
    assert lag["leader"] == "first" and lag["median_s"] == pytest.approx(1.5) and lag["sd_s"] < 1e-9
    assert lag["n"] == cue.size


def test_collinear_pairs_travel_with_the_kernel_result():
    from dopa_rl.neural.kernels import KernelResult

    rng = np.random.default_rng(12)
    fs = 20.0
    cue = np.cumsum(rng.uniform(8, 12, 120))
    n = int((cue[-1] + 10) * fs)
    y = rng.normal(0, 1, n)
    fit = event_kernel_regression(y, fs, {"cue": cue, "outcome": cue + 1.5}, unique=False)
    assert [c["events"] for c in fit.collinear] == [["cue", "outcome"]]
    assert fit.inseparable() == {"cue": ["outcome"], "outcome": ["cue"]}
    assert "(not separable from outcome)" in fit.summary()
    back = KernelResult.from_json(fit.to_json())
    assert back.collinear[0]["events"] == ["cue", "outcome"] and back.collinear[0]["vif"] == fit.collinear[0]["vif"]
