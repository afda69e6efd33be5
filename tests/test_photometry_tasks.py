"""What GuPPy users ask for (issue 20 item 3), each against a closed form or a simulated truth:
control fit on a baseline epoch (#200), drift removal after subtraction (#209), per-trial peak/AUC in z x s
(#366), transients with indicator defaults (#201, #211), bootstrap bands against baseline."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.special import erf

from dopa_rl.errors import InputError
from dopa_rl.io.nwb_types import Photometry
from dopa_rl.neural import photometry as P
from dopa_rl.neural.peri_stats import bootstrap_band, parse_named_window, parse_span, window_table
from dopa_rl.neural.pipeline import PhotometryPipeline
from dopa_rl.neural.transients import THRESHOLDS, TRANSIENT_INDICATORS, detect_transients, transient_settings


# ---------------------------------------------------------------- 1. control fit on a baseline epoch (#200)

def _drug_recording(rate=20.0, duration=3600.0, step_at=1800.0, step=0.15, seed=0):
    """Isosbestic control = bleaching x motion; signal = 0.2 + 0.8 control + a drug step (not in the control)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(duration * rate)) / rate
    m = np.convolve(rng.normal(0, 1, t.size), np.ones(int(5 * rate)) / (5 * rate), mode="same")
    control = (1.0 + 0.3 * np.exp(-t / 1500.0)) * (1.0 + 0.5 * m)
    drug = step * (t >= step_at)
    signal = 0.2 + 0.8 * control + drug + rng.normal(0, 1e-3, t.size)
    return t, signal, control, drug, m


def test_fit_epoch_before_a_drug_step_recovers_the_fit_and_keeps_the_step():
    t, s, c, drug, motion = _drug_recording()
    phot = Photometry(timestamps=t, signal=s, control=c, rate=20.0, name="drug")
    pre = PhotometryPipeline(detrend="none", lowpass_hz=None, fit_epoch=(0.0, 1700.0)).run(phot)
    whole = PhotometryPipeline(detrend="none", lowpass_hz=None).run(phot)
    across = PhotometryPipeline(detrend="none", lowpass_hz=None, fit_epoch=(1000.0, 2600.0)).run(phot)
    # the epoch before the step: the true coefficients, and the step in dF/F is the closed form step / fitted control
    assert pre.control_fit.slope == pytest.approx(0.8, abs=2e-3)
    assert pre.control_fit.intercept == pytest.approx(0.2, abs=2e-3)
    assert pre.control_fit.baseline == (0.0, 1700.0)
    expect = drug / (0.2 + 0.8 * c)
    err = pre.dff - expect                                      # only the 1e-3 measurement noise is left
    assert abs(err[t >= 1800].mean()) < 1e-4 and err.std() < 1.2e-3
    assert abs(np.corrcoef(pre.dff[t < 1800], motion[t < 1800])[0, 1]) < 0.05   # motion removed
    # fitting over the step (whole recording, or an epoch that contains it) lets the step bend the fit
    for bad in (whole, across):
        assert abs(bad.control_fit.slope - 0.8) > 0.05
        assert np.abs(bad.dff - expect).std() > 0.01


def test_fit_epoch_with_a_detrend_notes_that_the_trend_sees_the_whole_recording():
    t, s, c, _, _ = _drug_recording(duration=1200.0, step_at=600.0)
    out = PhotometryPipeline(lowpass_hz=None, fit_epoch=(0.0, 500.0)).run(
        Photometry(timestamps=t, signal=s, control=c, rate=20.0, name="drug"))
    assert any("fitted on the whole recording" in n for n in out.notes)


def test_parse_span_and_named_windows():
    assert parse_span("0:600") == (0.0, 600.0) and parse_span("-1.5:2") == (-1.5, 2.0)
    assert parse_named_window("cue=0:1.5") == ("cue", (0.0, 1.5))
    for bad, msg in [("5:1", "end must come after"), ("abc", "START:STOP"), ("1:2:3", "START:STOP"),
                     ("1:nan", "end must come after")]:
        with pytest.raises(InputError, match=msg):
            parse_span(bad, "--fit-epoch")
    for bad in ("0:1", "=0:1", "a b=0:1"):
        with pytest.raises(InputError, match="NAME=START:STOP"):
            parse_named_window(bad, "--window")


# ---------------------------------------------------------------- 2. drift removal after subtraction (#209)

def _long_dff(seed=0, rate=20.0, hours=3.0, n_transients=600):
    """3 h of dF/F: a known exponential drift + noise + positive transients (what the robust fit must ignore)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(hours * 3600 * rate)) / rate
    drift = 0.05 * np.exp(-t / 2400.0)
    imp = np.zeros(t.size)
    imp[rng.integers(0, t.size, n_transients)] = 0.08
    kt = np.arange(0, 5, 1 / rate)
    transients = np.convolve(imp, np.exp(-kt / 0.5) - np.exp(-kt / 0.1))[: t.size]
    return t, drift, drift + transients + rng.normal(0, 0.01, t.size), rate


def test_robust_exponential_drift_is_removed_to_1e_3_despite_transients():
    t, drift, x, rate = _long_dff()
    trend, info = P.bleach_trend(x, rate, t, "exp")
    assert np.abs(trend - drift).max() < 1e-3
    assert info["params"]["tau_s"] == pytest.approx(2400.0, rel=0.05) and info["iterations"] > 1
    # least squares: the transients lift the curve, the check above fails
    lsq, _ = P.bleach_trend(x, rate, t, "exp", robust=False)
    assert np.abs(lsq - drift).max() > 1e-3


def test_double_exponential_and_polynomial_drifts_recovered_exactly_without_noise():
    rate = 10.0
    t = np.arange(int(7200 * rate)) / rate
    two = 0.01 + 0.04 * np.exp(-t / 3000.0) + 0.02 * np.exp(-t / 300.0)
    trend, info = P.bleach_trend(two, rate, t, "double-exp")
    assert np.abs(trend - two).max() < 1e-5
    quad = 0.02 - 1e-5 * t + 1e-9 * t ** 2
    trend, info = P.bleach_trend(quad, rate, t, "poly2")
    assert np.abs(trend - quad).max() < 1e-9
    assert info["params"]["c2"] == pytest.approx(1e-9, rel=1e-6)


def test_pipeline_bleach_step_removes_the_drift_left_after_subtraction():
    rng = np.random.default_rng(2)
    rate = 20.0
    t = np.arange(int(2 * 3600 * rate)) / rate
    control = 1.0 + 0.2 * np.exp(-t / 3000.0) + 0.01 * rng.normal(size=t.size)
    residual = 0.04 * np.exp(-t / 1800.0)                  # bleaching the control does not see
    signal = (0.1 + 0.9 * control) * (1.0 + residual)
    phot = Photometry(timestamps=t, signal=signal, control=control, rate=rate, name="long")
    kept = PhotometryPipeline(detrend="none", lowpass_hz=None, fit_epoch=(6000.0, 7200.0)).run(phot)
    fixed = PhotometryPipeline(detrend="none", lowpass_hz=None, fit_epoch=(6000.0, 7200.0), bleach="exp").run(phot)
    assert np.ptp(kept.dff) > 0.02                          # the drift is there after subtraction
    assert np.abs(fixed.dff).max() < 2e-3                   # and gone after the bleach step
    assert [s["step"] for s in fixed.steps][-2:] == ["bleach_detrend", "zscore"]
    with pytest.raises(InputError, match="`bleach` 'cubic'"):
        PhotometryPipeline(bleach="cubic")


def test_drift_fitted_before_a_drug_step_keeps_the_step():
    """3 h: the drift, then a +0.05 step at 90 min. Fitted on the first 90 min and extrapolated, the drift goes
    and the step stays; fitted on everything, the exponential bends into the step."""
    t, drift, x, rate = _long_dff(seed=3)
    step = 0.05 * (t >= 5400.0)
    y = x + step
    before, info = P.bleach_trend(y, rate, t, "exp", epoch=(0.0, 5400.0))
    assert info["epoch"] == [0.0, 5400.0]
    assert np.abs(before - drift).max() < 1e-3                       # extrapolated over the next 90 min
    kept = y - before
    assert np.median(kept[t >= 5400]) - np.median(kept[t < 5400]) == pytest.approx(0.05, abs=2e-3)
    whole, _ = P.bleach_trend(y, rate, t, "exp")
    assert np.abs(whole - drift).max() > 0.01                         # the step bent the fit
    out = PhotometryPipeline(control_fit="none", detrend="none", lowpass_hz=None, bleach="exp",
                             bleach_epoch=(0.0, 5400.0)).run(Photometry(timestamps=t, signal=1.0 + y, rate=rate))
    assert out.steps[-2]["epoch"] == [0.0, 5400.0]
    with pytest.raises(InputError, match="`bleach_epoch` needs a `bleach` method"):
        PhotometryPipeline(bleach_epoch=(0.0, 10.0))
    with pytest.raises(InputError, match="`bleach_epoch` 0 20 is too short"):
        P.bleach_trend(y, rate, t, "double-exp", epoch=(0.0, 20.0))


def test_bleach_refuses_a_recording_too_short_for_the_model():
    with pytest.raises(InputError, match="too short"):
        P.bleach_trend(np.linspace(0, 1, 50) + np.sin(np.arange(50)), 10.0, method="double-exp")


# ---------------------------------------------------------------- 3. per-trial peak and AUC in z x s (#366)

def test_auc_of_a_gaussian_bump_equals_its_integral_and_baseline_is_removed():
    rate = 100.0
    time = np.arange(-100, 301) / rate
    amps, centres, width = np.array([1.0, 2.5, 4.0]), np.array([0.4, 0.8, 1.2]), 0.15
    offsets = np.array([0.0, -3.0, 7.0])          # each trial's own baseline level, removed by the baseline window
    m = offsets[:, None] + amps[:, None] * np.exp(-0.5 * ((time[None] - centres[:, None]) / width) ** 2)
    tab = window_table(m, time, {"resp": (0.0, 2.0), "odd": (0.123, 0.987)}, baseline=(-1.0, -0.5),
                       trial_ids=[5, 6, 7])

    def integral(a, c, lo, hi):
        s = width * np.sqrt(2)
        return a * width * np.sqrt(np.pi / 2) * (erf((hi - c) / s) - erf((lo - c) / s))

    for win, (lo, hi) in {"resp": (0.0, 2.0), "odd": (0.123, 0.987)}.items():
        rows = tab[tab["window"] == win]
        assert list(rows["trial"]) == [5, 6, 7]
        # trapezoid rule at 100 Hz: within 0.1 % even where a window cuts a steep flank
        np.testing.assert_allclose(rows["auc"], integral(amps, centres, lo, hi), rtol=1e-3)
        np.testing.assert_allclose(rows["mean"], rows["auc"] / (hi - lo))
    resp = tab[tab["window"] == "resp"]
    np.testing.assert_allclose(resp["peak"], amps, rtol=1e-8)    # the bumps reach 1e-8 into the baseline window
    np.testing.assert_allclose(resp["peak_time"], centres, atol=1e-12)


def test_auc_is_exact_for_a_ramp_between_samples():
    time = np.arange(0, 41) / 10.0 - 1.0
    m = np.vstack([2.0 * time + 1.0])
    tab = window_table(m, time, {"w": (0.033, 1.777)}, baseline=None)
    exact = (1.777 ** 2 - 0.033 ** 2) + (1.777 - 0.033)
    assert tab["auc"].iloc[0] == pytest.approx(exact, abs=1e-12)
    assert tab["peak"].iloc[0] == pytest.approx(2 * 1.777 + 1) and tab["peak_time"].iloc[0] == pytest.approx(1.777)


def test_window_table_refuses_windows_outside_the_trace():
    time = np.arange(-10, 31) / 10.0
    with pytest.raises(InputError, match="reaches outside the event window"):
        window_table(np.zeros((2, time.size)), time, {"late": (2.0, 5.0)})
    with pytest.raises(InputError, match="`baseline`"):
        window_table(np.zeros((2, time.size)), time, {"w": (0.0, 1.0)}, baseline=(-5.0, -4.0))


# ---------------------------------------------------------------- 4. transients with indicator defaults (#201, #211)

def _noise(rate, seconds, seed):
    return P.lowpass(np.random.default_rng(seed).normal(size=int(rate * seconds)), rate, 10.0)


@pytest.mark.parametrize("indicator", sorted(TRANSIENT_INDICATORS))
def test_no_false_transient_in_an_hour_of_noise_at_the_stated_threshold(indicator):
    rate = 100.0
    z = _noise(rate, 3600.0, seed=11)
    s = transient_settings(indicator)
    assert s.threshold == THRESHOLDS[TRANSIENT_INDICATORS[indicator]] >= 3.0
    assert len(detect_transients(z, rate, settings=s)) == 0


@pytest.mark.parametrize("indicator", ["dlight", "gcamp6f", "gcamp6s", "grab-da1m"])
def test_planted_transients_found_at_their_times_and_nothing_else(indicator):
    """Transients shaped by the sensor's own kernel, 2.5 thresholds high, 4 s or more apart, on filtered noise."""
    from dopa_rl.models.indicator import indicator_kernel

    rate = 100.0
    z = _noise(rate, 1200.0, seed=3)
    sd = float(np.std(z))
    rng = np.random.default_rng(4)
    times = np.sort(rng.choice(np.arange(20, 1180, 6.0), 150, replace=False) + rng.uniform(0, 2, 150))
    shape = indicator_kernel(TRANSIENT_INDICATORS[indicator], rate)
    peak_lag = np.argmax(shape) / rate
    imp = np.zeros(z.size)
    height = 2.5 * transient_settings(indicator).threshold
    imp[np.round(times * rate).astype(int)] = height * sd
    y = z + np.convolve(imp, shape)[: z.size]
    found = detect_transients(y, rate, t0=0.0, settings=transient_settings(indicator))
    got = found["timestamp"].to_numpy()
    assert len(got) == len(times)                                  # every one, and no false positive
    tol = max(0.03, 0.5 * transient_settings(indicator).min_width_s)    # noise moves the top of a broad peak
    np.testing.assert_allclose(got, np.round(times * rate) / rate + peak_lag, atol=tol)
    # amplitudes in noise SDs: the sliding baseline is close to the noise's, within 25 % even for GCaMP6s,
    # whose transients here cover about 40 % of the samples and lift the sliding median
    assert found["amplitude_sd"].median() == pytest.approx(height, rel=0.25)
    # an offset clock (t0), and a dF/F floor the transients pass (height x 1 % noise) or do not (twice that)
    dff = y * 0.01 / sd
    floor = 0.01 * height
    shifted = detect_transients(y, rate, t0=100.0, settings=transient_settings(indicator, min_dff=0.6 * floor), dff=dff)
    np.testing.assert_allclose(shifted["timestamp"], got + 100.0)
    assert len(detect_transients(y, rate, settings=transient_settings(indicator, min_dff=2 * floor), dff=dff)) == 0


def test_indicator_defaults_come_from_the_kinetics():
    d, s = transient_settings("dlight"), transient_settings("gcamp6s")
    assert d.min_width_s < transient_settings("gcamp6f").min_width_s < s.min_width_s
    assert d.min_separation_s == pytest.approx(0.090) and "dlight1.1" in d.source
    # full width at half maximum of the difference of exponentials, checked on a fine grid
    t = np.arange(0, 10, 1e-5)
    k = np.exp(-t / (0.55 / np.log(2))) - np.exp(-t / (0.18 / np.log(2)))
    above = t[k >= k.max() / 2]
    assert s.min_width_s == pytest.approx(above[-1] - above[0], abs=1e-4)
    with pytest.raises(InputError, match="`indicator` 'jrgeco'"):
        transient_settings("jrgeco")
    with pytest.raises(InputError, match="`threshold`"):
        transient_settings("dlight", threshold=-1)
    with pytest.raises(InputError, match="`min_dff` needs the dF/F"):
        detect_transients(np.zeros(2000) + np.arange(2000) % 7, 100.0, settings=transient_settings(min_dff=0.02))


# ---------------------------------------------------------------- 5. bootstrap bands against baseline

def test_bootstrap_band_covers_the_true_mean_at_its_level():
    rng = np.random.default_rng(5)
    time = np.linspace(-1, 2, 16)
    truth = np.where(time > 0, 1.5 * np.exp(-time), 0.0)
    covered, n_rep = [], 200
    for rep in range(n_rep):
        m = truth + rng.normal(0, 1.0, (40, time.size)) + rng.normal(0, 1.0, (40, 1))  # trial offsets, removed
        band = bootstrap_band(m, time, baseline=(-1.0, 0.0), n_boot=400, seed=rep)
        covered.append((band.low <= truth - truth[time < 0].mean()) & (truth - truth[time < 0].mean() <= band.high))
    rate = np.mean(covered)
    assert 0.92 <= rate <= 0.975, rate


def test_bootstrap_band_marks_where_the_mean_leaves_baseline():
    rng = np.random.default_rng(6)
    time = np.arange(-100, 301) / 100.0
    truth = np.where((time > 0.5) & (time < 1.5), 2.0, 0.0)
    m = truth + rng.normal(0, 0.5, (60, time.size))
    band = bootstrap_band(m, time, n_boot=1000)
    assert band.excludes[(time > 0.6) & (time < 1.4)].all()
    assert band.excludes[(time > 2.0)].mean() < 0.2
    (a, b), *_ = [iv for iv in band.intervals() if iv[1] - iv[0] > 0.5]
    assert a == pytest.approx(0.51, abs=0.02) and b == pytest.approx(1.49, abs=0.02)
    with pytest.raises(InputError, match="at least 2"):
        bootstrap_band(m[:1], time)
    with pytest.raises(InputError, match="NaN rows"):
        bootstrap_band(np.vstack([m, np.full(time.size, np.nan)]), time)


# ---------------------------------------------------------------- the library entry point behind the command

def test_analyse_photometry_in_python_names_its_parameters():
    from dopa_rl.neural.photometry_analysis import analyse_photometry
    from dopa_rl.neural.transients import transient_settings

    rate = 50.0
    t = np.arange(int(200 * rate)) / rate
    cues = np.arange(5.0, 195.0, 10.0)
    kinds = np.resize(np.array(["big", "small"]), len(cues))
    amp = np.where(kinds == "big", 0.1, 0.04)
    bumps = sum(a * np.exp(-0.5 * ((t - c - 0.5) / 0.3) ** 2) for a, c in zip(amp, cues))
    phot = Photometry(timestamps=t, signal=2.0 * (1 + bumps) + 1e-5 * np.random.default_rng(0).normal(size=t.size),
                      rate=rate)
    pipe = PhotometryPipeline(lowpass_hz=None, detrend="none", control_fit="none")
    res = analyse_photometry(phot, cues, pipeline=pipe, event="cue", named_windows={"early": (0.0, 1.0)},
                             trial_types=kinds, trial_type="kind", transients=transient_settings("dlight"),
                             n_boot=200)
    s = res.summary()
    assert s["n_events"] == len(cues) and set(s["bands"]["groups"]) == {"big", "small"}
    w = res.windows
    big, small = (w[w["trial"].isin(np.flatnonzero(kinds == k))]["auc"].mean() for k in ("big", "small"))
    assert big / small == pytest.approx(2.5, rel=1e-3)                 # AUC scales with the planted amplitude
    assert len(res.transients) == len(cues)
    with pytest.raises(InputError, match="`named_windows`: none of the 19 'cue' events"):
        analyse_photometry(phot, cues, pipeline=pipe, event="cue", named_windows={"late": (0.0, 196.0)})
    with pytest.raises(InputError, match="`named_windows` with the baseline span -1 to 300 s: longer than"):
        analyse_photometry(phot, cues, pipeline=pipe, event="cue", named_windows={"late": (0.0, 300.0)})
    with pytest.raises(InputError, match="`event_times` 'licks'"):
        analyse_photometry(phot, "licks", pipeline=pipe)
    with pytest.raises(InputError, match="`trial_types`: 3 labels for 19"):
        analyse_photometry(phot, cues, pipeline=pipe, trial_types=["a", "b", "c"])
