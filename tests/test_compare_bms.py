"""Random-effects BMS (Stephan 2009, Rigoux 2014) against cases with known answers."""
import numpy as np
import pytest
from scipy import integrate, special

from dopa_rl.errors import InputError
from dopa_rl.fit.compare import aic, bic, bms, exceedance_probabilities, fold_labels


def test_decisive_evidence_gives_the_analytic_posterior():
    # every subject decisively prefers model 1: g -> one-hot, alpha = alpha0 + [N, 0], and
    # r_1 ~ Beta(N + 1, 1), so xp_1 = P(r_1 > 1/2) = 1 - 2^-(N + 1)
    N = 10
    res = bms(np.c_[np.zeros(N), np.full(N, -60.0)], ["a", "b"])
    assert np.allclose(res.alpha, [N + 1, 1], atol=1e-9)
    assert res.xp[0] == pytest.approx(1 - 0.5 ** (N + 1), abs=1e-12)
    assert np.allclose(res.g[:, 0], 1.0)
    assert res.bor < 0.05 and res.pxp[0] > 0.97


def test_equal_evidence_is_the_null():
    res = bms(np.zeros((10, 2)))
    assert np.allclose(res.alpha, [6, 6]) and np.allclose(res.xp, 0.5) and np.allclose(res.pxp, 0.5)
    # the null explains the data exactly as well and is simpler: the omnibus risk favours it
    assert res.null_evidence == pytest.approx(0.0)
    assert res.free_energy < 0 and res.bor > 0.5


def _exact_two_model(lme):
    """Exact posterior of r_1 under a uniform prior: p(r | y) ∝ prod_n (r e^L1 + (1 - r) e^L2)."""
    m = lme.max(axis=1, keepdims=True)
    e = np.exp(lme - m)
    f = lambda r: np.exp(np.sum(np.log(r * e[:, 0] + (1 - r) * e[:, 1])))
    z = integrate.quad(f, 0, 1, limit=200)[0]
    mean = integrate.quad(lambda r: r * f(r), 0, 1, limit=200)[0] / z
    xp = integrate.quad(f, 0.5, 1, limit=200)[0] / z
    return np.log(z) + m.sum(), mean, xp


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_two_models_against_exact_integration(seed):
    rng = np.random.default_rng(seed)
    lme = rng.normal(0, 2.0, size=(12, 2))
    lme[:, 0] += 1.0
    res = bms(lme)
    log_ev, mean_r1, xp1 = _exact_two_model(lme)
    assert res.free_energy <= log_ev + 1e-9          # F1 is a lower bound on the exact log evidence
    assert res.free_energy > log_ev - 1.0             # and a close one here
    assert res.expected_r[0] == pytest.approx(mean_r1, abs=0.03)
    assert res.xp[0] == pytest.approx(xp1, abs=0.1)  # VB is known to be a little overconfident
    # Rigoux 2014: bor = 1 / (1 + exp(F1 - F0)), F0 = sum_n log mean_k exp(lme)
    f0 = np.sum(special.logsumexp(lme, axis=1) - np.log(2))
    assert res.bor == pytest.approx(1 / (1 + np.exp(res.free_energy - f0)))
    assert np.allclose(res.pxp, (1 - res.bor) * res.xp + res.bor / 2)


def test_exceedance_quadrature_matches_sampling():
    alpha = np.array([3.0, 2.0, 1.5, 4.2])
    samples = np.random.default_rng(0).dirichlet(alpha, 400_000)
    mc = np.bincount(samples.argmax(axis=1), minlength=4) / len(samples)
    assert np.allclose(exceedance_probabilities(alpha), mc, atol=0.004)
    assert exceedance_probabilities(alpha).sum() == pytest.approx(1.0)


def test_information_criteria_and_bad_input():
    assert aic(-10.0, 2) == pytest.approx(24.0)
    assert bic(-10.0, 2, 100) == pytest.approx(2 * np.log(100) + 20)
    with pytest.raises(InputError):
        bms(np.zeros((5, 1)))
    with pytest.raises(InputError):
        bms(np.array([[0.0, -np.inf]]))


def test_folds_over_sessions_or_blocks():
    kind, f = fold_labels(np.array(list("aabbccddee")), None, 5)
    assert kind == "sessions" and list(f) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    kind, f = fold_labels(np.array(["s"] * 10), None, 5)
    assert kind == "blocks" and list(f) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]


def test_cross_validation_over_sessions_scores_held_out_sessions():
    import pandas as pd

    from dopa_rl.fit import fit
    from dopa_rl.fit.compare import cross_validated_loglik
    from dopa_rl.models import get_model, tasks

    m = get_model("rw-softmax")
    rng = np.random.default_rng(3)
    df = pd.concat([m.simulate({"alpha": 0.3, "beta": 4.0}, tasks.bandit_task(80), rng, subject=s, session=k).trials
                    for s in ("a", "b") for k in ("1", "2")], ignore_index=True)
    cv, kind = cross_validated_loglik(m, df, 2, restarts=3)
    assert kind == "sessions"
    expect = np.zeros(2)
    for test_session in ("1", "2"):
        train = fit(m, df[df.session != test_session], restarts=3)
        test = m.pack(df[df.session == test_session])
        expect += m.loglik(train.x, test, np.arange(2))
    assert np.allclose(cv, expect)
    assert np.all(cv < fit(m, df, restarts=3).loglik_)   # held-out fit is worse than in-sample
