"""Distributional RL: expectile learners and the unit-level analysis (Dabney et al. 2020)."""
import json

import numpy as np
import pytest
from scipy.optimize import brentq

from dopa_rl.neural.distributional import (decode_distribution, distributional_analysis,
                                              reversal_points, select_trials, split_half)
from dopa_rl.errors import InputError
from dopa_rl.models.distributional import (expectile, fit_units, simulate_distributional,
                                           simulate_unit_responses)

MAGS = np.array([0.1, 0.3, 1.2, 2.5, 5.0, 10.0, 20.0])     # Dabney et al. 2020 variable-magnitude task (ul)


def _root_expectile(x, tau):
    f = lambda e: np.sum(np.abs(tau - (x < e)) * (x - e))  # noqa: E731
    return brentq(f, x.min(), x.max(), xtol=1e-12)


def test_expectile_matches_root_finding():
    rng = np.random.default_rng(1)
    x = rng.gamma(2.0, 2.0, 300)
    taus = np.array([0.05, 0.2, 0.5, 0.8, 0.97])
    ours = expectile(x, taus)
    ref = np.array([_root_expectile(x, t) for t in taus])
    np.testing.assert_allclose(ours, ref, atol=1e-8)
    assert ours[2] == pytest.approx(x.mean())
    assert np.all(np.diff(ours) > 0)


def test_learners_converge_to_their_expectile():
    rng = np.random.default_rng(2)
    taus = np.array([0.1, 0.3, 0.5, 0.7, 0.9])
    scale = 0.01
    r = rng.choice(MAGS, 30000)
    sim = simulate_distributional(scale * taus, scale * (1 - taus), r)
    v = sim["values"][10000:].mean(axis=0)
    ref = np.array([_root_expectile(MAGS, t) for t in taus])       # the distribution's own expectiles
    np.testing.assert_allclose(v, ref, atol=0.03 * (MAGS.max() - MAGS.min()))
    assert np.all(np.diff(v) > 0)


def _population(rng, taus, n_train=3000, n_rec=1400, gain=2.0, noise=0.5, scale=0.1):
    r = rng.choice(MAGS, n_train + n_rec)
    sim = simulate_unit_responses(scale * taus, scale * (1 - taus), r, rng, gain=gain, noise_sd=noise)
    return sim["responses"][n_train:], r[n_train:]


def test_recovers_reversal_points_and_taus_and_split_half_is_significant():
    rng = np.random.default_rng(3)
    taus = rng.uniform(0.1, 0.9, 40)
    y, r = _population(rng, taus)
    true_rp = expectile(MAGS, taus)
    fit = reversal_points(y, r)
    assert np.corrcoef(fit["reversal_point"], true_rp)[0, 1] > 0.8
    assert np.corrcoef(fit["tau"], taus)[0, 1] > 0.8
    sh = split_half(y, r, rng, n_splits=200)
    assert sh["n_units"] == 40
    assert sh["r"] > 0.5 and sh["p"] < 0.01
    assert 0 < sh["interval"][0] <= sh["r"] <= sh["interval"][1]


def test_classical_population_shows_no_split_half_effect():
    # one alpha for every unit (no asymmetry spread), heterogeneous gains; several sessions so the test
    # checks the procedure is unbiased, not one lucky draw
    rs = []
    for seed in range(4):
        rng = np.random.default_rng(200 + seed)
        r = rng.choice(MAGS, 4400)
        sim = simulate_unit_responses(np.full(40, 0.05), np.full(40, 0.05), r, rng,
                                      gain=rng.uniform(2, 6, 40), noise_sd=0.5)
        sh = split_half(sim["responses"][3000:], r[3000:], rng, n_splits=100)
        assert sh["p"] > 0.01 and sh["n_units"] == 40
        rs.append(sh["r"])
    assert abs(np.mean(rs)) < 0.15


def test_decoding_recovers_the_reward_distribution():
    rng = np.random.default_rng(5)
    taus = np.linspace(0.05, 0.95, 40)
    dec = decode_distribution(expectile(MAGS, taus), taus, rng, n_samples=100, n_restarts=5)
    z = np.array(dec["samples"])
    # the decoded samples reproduce the population's expectiles, and the distribution's moments
    np.testing.assert_allclose(expectile(z, taus), expectile(MAGS, taus), atol=0.5)
    assert z.mean() == pytest.approx(MAGS.mean(), abs=0.3)
    assert z.std() == pytest.approx(MAGS.std(), rel=0.2)
    s, d = np.array(dec["support"]), np.array(dec["density"])
    assert np.trapezoid(d, s) == pytest.approx(1.0, abs=0.02)


def test_analysis_output_keys_and_exclusions():
    rng = np.random.default_rng(6)
    taus = rng.uniform(0.2, 0.8, 30)
    y, r = _population(rng, taus, n_rec=700)
    mags = r.astype(object)
    mags[:5] = np.nan
    mags[5] = None
    ttype = np.array([True] * 700, dtype=object)
    ttype[10:13] = None
    out = distributional_analysis(y, mags, trial_type=ttype, rng=rng, n_splits=50)
    assert out.n_excluded == 9 and out.n_trials == 691
    assert set(out.units[0]) == {"unit", "session", "reversal_point", "tau", "slope_pos", "slope_neg", "flags",
                                 "mean_response"}
    assert set(out.split_half) == {"r", "interval", "p", "n_units"}
    assert set(out.split_half_alternate) == {"r", "p", "n_units"}
    assert set(out.decoded) == {"support", "density", "n_units"}
    assert out.estimator == "count" and out.axis["name"] == "utility"
    assert len(out.units) == 30 and len(out.to_frame()) == 30
    json.loads(out.to_json())                                # strict JSON: NaN becomes null


def test_result_round_trips_through_json_and_nwb(tmp_path):
    from dopa_rl.io.nwb import read_results
    from dopa_rl.neural.distributional import DistributionalResult

    rng = np.random.default_rng(9)
    taus = rng.uniform(0.2, 0.8, 12)
    y, r = _population(rng, taus, n_rec=400)
    out = distributional_analysis(y, r, rng=rng, n_splits=20)
    back = DistributionalResult.from_json(out.to_json())
    assert back.to_json() == out.to_json()
    np.testing.assert_allclose(back.to_frame()["tau"], [u["tau"] for u in out.units])
    assert "split-half reversal point vs tau: r = " in out.summary()
    import datetime as dt

    from pynwb import NWBFile
    nwb = NWBFile(session_description="t", identifier="t", session_start_time=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
    out.to_nwb(nwb)
    from pynwb import NWBHDF5IO
    path = tmp_path / "r.nwb"
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    tables = read_results(path)
    again = DistributionalResult.from_json(tables["dopa_rl_distributional"].result_json)
    assert again.to_json() == out.to_json()
    with pytest.raises(InputError):
        DistributionalResult.from_json('{"schema": "dopa_rl.kernels/1"}')


def test_select_trials_by_type():
    keep, n = select_trials([1, 2, np.nan, 3], [1, 0, 1, None], use="cued")
    assert keep.tolist() == [True, False, False, False] and n == 3
    with pytest.raises(InputError):
        select_trials([1, 2], [1, 0], use="sometimes")


def test_fit_units_recovers_asymmetry():
    rng = np.random.default_rng(7)
    taus = rng.uniform(0.15, 0.85, 30)
    y, r = _population(rng, taus, n_train=0, n_rec=1500, scale=0.1)
    f = fit_units(r, y)
    assert np.corrcoef(f["tau"], taus)[0, 1] > 0.9


def test_bad_input():
    with pytest.raises(InputError):
        reversal_points(np.zeros((5, 2)), [1, 2, 3])
    with pytest.raises(InputError):
        simulate_distributional([0.1], [0.0], [1.0])


def test_figures_render(tmp_path):
    rng = np.random.default_rng(8)
    taus = rng.uniform(0.2, 0.8, 30)
    y, r = _population(rng, taus, n_rec=500)
    out = distributional_analysis(y, r, rng=rng, n_splits=20)
    figs = [out.plot(panel="responses"), out.plot(panel="tau", true_tau=taus, true_reversal=out.to_axis(expectile(MAGS, taus))),
            out.plot(panel="decoded", true_values=MAGS)]
    for i, f in enumerate(figs):
        p = tmp_path / f"f{i}.png"
        f.savefig(p)
        assert p.stat().st_size > 5000
        assert f.axes[0].has_data()
    with pytest.raises(InputError):
        out.plot(panel="histogram")
