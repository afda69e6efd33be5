"""Photometry preprocessing against independent expectations (known transients, artefacts, outliers)."""
from __future__ import annotations

import numpy as np
import pytest

from _neural_support import bleaching_recording
from dopa_rl.errors import InputError
from dopa_rl.io.nwb_types import Photometry
from dopa_rl.neural import photometry as P
from dopa_rl.neural.pipeline import PhotometryPipeline


def _phot(t, s, c=None, rate=50.0):
    return Photometry(timestamps=t, signal=s, control=c, rate=rate, name="test")


def test_bleaching_plus_known_transient_gives_the_transient_back():
    t, s, _, transient, _ = bleaching_recording()
    clean = 2.0 * (1.0 + 0.3 * np.exp(-t / 600.0) + 0.1 * np.exp(-t / 60.0)) * (1.0 + transient)
    out = PhotometryPipeline(control_fit="none", lowpass_hz=None).run(_phot(t, clean))
    assert out.control_fit is None
    err = out.dff - transient
    # the transient back, within 5% of its peak (the trend fit sees the transients' mean as baseline)
    assert np.abs(err).max() < 0.05 * transient.max()
    assert np.median(out.dff[transient > 0.5 * transient.max()] / transient[transient > 0.5 * transient.max()]) \
        == pytest.approx(1.0, abs=0.05)
    assert np.corrcoef(out.dff, transient)[0, 1] > 0.995
    # without detrending the bleaching dominates: the check above can fail
    raw = PhotometryPipeline(control_fit="none", lowpass_hz=None, detrend="none").run(_phot(t, clean))
    assert np.corrcoef(raw.dff, transient)[0, 1] < 0.9


def test_motion_artefact_shared_with_the_control_is_removed():
    t, s, c, transient, motion = bleaching_recording()
    out = PhotometryPipeline().run(_phot(t, s, c))
    assert abs(np.corrcoef(out.dff, motion)[0, 1]) < 0.1
    assert np.corrcoef(out.dff, transient)[0, 1] > 0.95
    without = PhotometryPipeline(control_fit="none").run(_phot(t, s, c))
    assert np.corrcoef(without.dff, motion)[0, 1] > 0.3           # the artefact is there before correction
    assert out.control_fit.slope > 0 and [st["step"] for st in out.steps] == \
        ["lowpass", "detrend", "control_fit", "dff", "zscore"]


@pytest.mark.parametrize("method", ["huber", "bisquare"])
def test_robust_fit_ignores_large_transients_that_bias_ols(method):
    rng = np.random.default_rng(3)
    n = 200_000
    control = rng.normal(0, 1.0, n)
    signal = 0.5 + 0.8 * control + rng.normal(0, 0.2, n)
    big = rng.random(n) < 0.05
    signal[big] += 4.0 + 3.0 * control[big]          # big transients correlated with the control: bias OLS
    ols = P.fit_control(signal, control, "ols")
    rob = P.fit_control(signal, control, method)
    assert abs(ols.slope - 0.8) > 0.1
    assert abs(rob.slope - 0.8) < 0.02 and abs(rob.intercept - 0.5) < 0.05
    assert rob.iterations > 1


def test_robust_fit_matches_statsmodels_rlm():
    import statsmodels.api as sm

    rng = np.random.default_rng(4)
    x = rng.normal(size=3000)
    y = 1.0 + 2.0 * x + rng.standard_t(2, 3000)
    for method, norm in (("huber", sm.robust.norms.HuberT()), ("bisquare", sm.robust.norms.TukeyBiweight())):
        ref = sm.RLM(y, sm.add_constant(x), M=norm).fit()
        ours = P.fit_control(y, x, method)
        assert ours.slope == pytest.approx(ref.params[1], abs=0.01)
        assert ours.intercept == pytest.approx(ref.params[0], abs=0.01)


def test_fit_on_a_baseline_epoch_only():
    t, s, c, _, _ = bleaching_recording(duration=600)
    out = PhotometryPipeline(fit_epoch=(100.0, 300.0)).run(_phot(t, s, c))
    assert out.control_fit.baseline == (100.0, 300.0)
    assert out.control_fit.n_samples == pytest.approx(200 * 50, abs=2)


def test_lowpass_is_zero_phase_and_highpass_removes_drift():
    rate = 100.0
    t = np.arange(6000) / rate
    pulse = np.exp(-0.5 * ((t - 30.0) / 0.3) ** 2)
    noisy = pulse + np.random.default_rng(0).normal(0, 0.2, t.size)
    from scipy.signal import butter, sosfilt

    assert abs(t[np.argmax(P.lowpass(pulse, rate, 2.0))] - 30.0) <= 0.01     # no delay
    causal = sosfilt(butter(2, 2.0, fs=rate, output="sos"), pulse)
    assert t[np.argmax(causal)] - 30.0 > 0.05                                 # a one-way filter would delay it
    assert np.std(P.lowpass(noisy, rate, 5.0) - pulse) < 0.1
    drift = 2.0 + 0.01 * t
    hp = P.highpass(drift + pulse, rate, 0.01)
    assert abs(np.mean(hp[1000:5000])) < 0.05


def test_zscore_session_baseline_and_robust():
    x = np.concatenate([np.zeros(100), np.ones(100)]) + np.tile([-0.1, 0.1], 100)
    z = P.zscore(x)
    assert z.mean() == pytest.approx(0, abs=1e-12) and z.std() == pytest.approx(1)
    zb = P.zscore(x, mask=np.arange(200) < 100)
    assert zb[:100].mean() == pytest.approx(0, abs=1e-12) and zb[151] == pytest.approx(11.0)
    spiky = np.r_[np.tile([-1.0, 1.0], 500), 1000.0]
    assert abs(P.zscore(spiky, robust=True)[0]) == pytest.approx(1 / 1.4826, rel=1e-6)


def test_resample_keeps_duration():
    x = np.sin(np.arange(1000) / 100.0 * 2 * np.pi)
    y = P.resample(x, 100.0, 20.0)
    assert len(y) == 200


def test_bad_traces_give_clear_errors():
    t = np.arange(1000) / 50.0
    good = 1.0 + 0.01 * np.sin(t)
    with pytest.raises(InputError, match="constant"):
        PhotometryPipeline().run(_phot(t, np.full(1000, 1.2)))
    with pytest.raises(InputError, match="control channel has 999 samples but the signal 1000"):
        PhotometryPipeline().run(_phot(t, good, good[:-1]))
    with pytest.raises(InputError, match="control .*constant"):
        PhotometryPipeline(detrend="none").run(_phot(t, good, np.ones(1000)))
    nan = good.copy()
    nan[10] = np.nan
    with pytest.raises(InputError, match="NaN"):
        PhotometryPipeline().run(_phot(t, nan))
    with pytest.raises(InputError, match="`detrend`"):
        PhotometryPipeline(detrend="poly")
    with pytest.raises(InputError, match="zscore_epoch"):
        PhotometryPipeline(zscore="baseline")


def test_pipeline_records_its_parameters():
    p = PhotometryPipeline(control_fit="huber", fit_epoch=(0.0, 10.0))
    assert p.params()["control_fit"] == "huber" and p.params()["fit_epoch"] == [0.0, 10.0]


def test_jittered_timestamps_are_put_on_a_regular_grid():
    rng = np.random.default_rng(0)
    t = np.cumsum(rng.uniform(0.5, 1.5, 20000) / 50.0)
    truth = lambda tt: 1.0 + 0.1 * np.sin(2 * np.pi * 0.2 * tt)  # noqa: E731
    out = PhotometryPipeline(control_fit="none", detrend="none", lowpass_hz=None).run(
        Photometry(timestamps=t, signal=truth(t), rate=None, name="jitter"))
    assert out.steps[0]["step"] == "regularise" and np.allclose(np.diff(out.timestamps), 1 / out.rate)
    want = (truth(out.timestamps) - truth(out.timestamps).mean()) / truth(out.timestamps).mean()
    assert np.abs(out.dff - want).max() < 1e-3
