"""Family factories: a learning rule becomes a full model.  The RW rule written as a user would must give
exactly the built-in RW models' likelihoods, simulations and trajectories (sessions, missed trials,
stickiness, lapse, compounds), which the built-ins' own tests tie to closed forms and plain loops."""
import numpy as np
import pandas as pd
import pytest
from numba import njit

from dopa_rl.errors import InputError
from dopa_rl.fit import fit
from dopa_rl.models import Param, choice_model, get_model, pavlovian_model, tasks
from dopa_rl.models.family import _compiled

ALPHA = Param("alpha", 0.0, 1.0, 0.3, 0.05, 0.95)


def rw_rule(q, c, r, theta):
    q[c] += theta[0] * (r - q[c])


def rw_cue_rule(v, present, r, theta):
    pred = 0.0
    for e in range(v.shape[0]):
        pred += v[e] * present[e]
    for e in range(v.shape[0]):
        v[e] += theta[0] * (r - pred) * present[e]


def test_param_needs_only_name_and_bounds():
    p = Param("phi", lower=0, upper=1)
    assert (p.default, p.init_low, p.init_high, p.prior_mean, p.prior_sd) == (0.5, 0.05, 0.95, 0.0, 1.5)
    assert p.transform == "logit"
    q = Param("tau", lower=0)
    assert q.transform == "log" and q.default == 1.0 and (q.init_low, q.init_high) == (0.1, 5.0)
    assert Param("b").transform == "identity"
    for bad in (dict(lower=1, upper=0), dict(upper=1), dict(lower=0, upper=1, default=2)):
        with pytest.raises(InputError, match="parameter x"):
            Param("x", **bad)


def test_parameters_are_the_rule_then_beta_kappa_epsilon():
    phi = Param("phi", lower=0, upper=1)
    assert choice_model("m", [ALPHA, phi], rw_rule).param_names == ["alpha", "phi", "beta"]
    assert choice_model("m", [ALPHA], rw_rule, sticky=True, lapse=True).param_names == ["alpha", "beta", "kappa", "epsilon"]
    assert pavlovian_model("p", [ALPHA], rw_cue_rule).param_names == ["alpha", "lick_intercept", "lick_slope"]
    with pytest.raises(InputError, match="beta are added by the library"):
        choice_model("m", [ALPHA, Param("beta", lower=0, upper=5)], rw_rule)
    with pytest.raises(InputError, match="must take"):
        choice_model("m", [ALPHA], lambda q, c, r: None)
    with pytest.raises(InputError, match="Param objects"):
        choice_model("m", ["alpha"], rw_rule)


def _bandit_table(seed=0):
    """Two subjects, two sessions each, with missed trials (empty choices)."""
    m = get_model("rw-softmax-sticky-lapse")
    rng = np.random.default_rng(seed)
    frames = [m.simulate(m.spec.defaults(), tasks.bandit_task(60), rng, subject=s, session=k).trials
              for s in ("a", "b") for k in ("1", "2")]
    df = pd.concat(frames, ignore_index=True)
    df.loc[[3, 70, 150], "choice"] = np.nan
    return df


@pytest.mark.parametrize("name,sticky,lapse", [("rw-softmax", False, False), ("rw-softmax-sticky", True, False),
                                               ("rw-softmax-lapse", False, True),
                                               ("rw-softmax-sticky-lapse", True, True)])
def test_rw_rule_gives_the_builtin_choice_models(name, sticky, lapse):
    builtin = get_model(name)
    user = choice_model("user-" + name, [ALPHA], rw_rule, sticky=sticky, lapse=lapse)
    df = _bandit_table()
    d1, d2 = builtin.pack(df), user.pack(df)
    x = builtin.spec.random_starts(70, np.random.default_rng(1))      # > PARALLEL_MIN_LANES: the parallel path
    lanes = np.arange(70) % 2
    np.testing.assert_allclose(user.loglik(x, d2, lanes), builtin.loglik(x, d1, lanes), rtol=1e-12)
    np.testing.assert_allclose(user.loglik(x[:3], d2, lanes[:3]), builtin.loglik(x[:3], d1, lanes[:3]), rtol=1e-12)
    pd.testing.assert_frame_equal(user.trajectories(x[0], d2, 1), builtin.trajectories(x[0], d1, 1))
    p = builtin.spec.as_dict(x[0])
    a = user.simulate(p, tasks.bandit_task(80), np.random.default_rng(5))
    b = builtin.simulate(p, tasks.bandit_task(80), np.random.default_rng(5))
    pd.testing.assert_frame_equal(a.trials, b.trials)
    np.testing.assert_array_equal(a.rpe, b.rpe)
    # finite-difference gradient lanes agree with the built-in's analytic one
    z = builtin.spec.to_unconstrained(x[:4])
    _, g_user = user.loglik_grad_z(z, d2, lanes[:4])
    _, g_builtin = builtin.loglik_grad_z(z, d1, lanes[:4])
    np.testing.assert_allclose(g_user, g_builtin, rtol=1e-4, atol=1e-5)


def test_q0_and_n_options_options():
    user = choice_model("user-q0", [ALPHA], rw_rule, q0=0.5, n_options=3)
    builtin = get_model("rw-softmax", q0=0.5, n_options=3)
    df = _bandit_table()
    x = np.array([[0.2, 4.0], [0.7, 1.0]])
    np.testing.assert_allclose(user.loglik(x, user.pack(df), np.array([0, 1])),
                               builtin.loglik(x, builtin.pack(df), np.array([0, 1])), rtol=1e-12)
    assert user.with_options(q0=0.0).q0 == 0.0 and user.q0 == 0.5


def test_pavlovian_rule_gives_the_builtin_model():
    builtin = get_model("rw-pavlovian")
    user = pavlovian_model("user-pav", [ALPHA], rw_cue_rule)
    rng = np.random.default_rng(3)
    frames = [builtin.simulate(builtin.spec.defaults(), tasks.blocking(30, 30, 5), rng, subject=s, session=k).trials
              for s in ("a", "b") for k in ("1", "2")]
    df = pd.concat(frames, ignore_index=True)
    df.loc[[4, 90], "licks"] = np.nan                       # a trial without a lick count still updates
    d1, d2 = builtin.pack(df), user.pack(df)
    x = builtin.spec.random_starts(70, np.random.default_rng(1))
    lanes = np.arange(70) % 2
    np.testing.assert_allclose(user.loglik(x, d2, lanes), builtin.loglik(x, d1, lanes), rtol=1e-12)
    pd.testing.assert_frame_equal(user.trajectories(x[0], d2, 0), builtin.trajectories(x[0], d1, 0))
    p = builtin.spec.as_dict(x[0])
    a = user.simulate(p, tasks.overexpectation(20, 20, 5), np.random.default_rng(5))
    b = builtin.simulate(p, tasks.overexpectation(20, 20, 5), np.random.default_rng(5))
    pd.testing.assert_frame_equal(a.trials, b.trials)


def test_a_compiled_rule_is_used_as_is_and_fits():
    jitted = njit(rw_rule)
    assert _compiled(jitted) is jitted
    assert _compiled(rw_rule) is not rw_rule
    m = choice_model("user-jit", [ALPHA], jitted)
    sim = m.simulate({"alpha": 0.3, "beta": 5.0}, tasks.bandit_task(300), np.random.default_rng(0))
    r = fit(m, sim.trials, restarts=3)
    assert r.params.loc["1", "alpha"] == pytest.approx(0.3, abs=0.2)
    assert np.isfinite(r.loglik_).all()


def test_a_rule_numba_cannot_compile_is_one_clear_error():
    def bad(q, c, r, theta):
        q[c] = {"not": "a number"}

    m = choice_model("user-bad", [ALPHA], bad)
    with pytest.raises(InputError, match="numba cannot compile the update function bad"):
        m.loglik(np.array([[0.3, 2.0]]), m.pack(_bandit_table()), np.array([0]))


def test_a_family_model_pickles_without_its_compiled_code():
    import pickle

    m = choice_model("user-pickle", [ALPHA], rw_rule, q0=0.25)
    df = _bandit_table()
    x = np.array([[0.4, 3.0]])
    before = m.loglik(x, m.pack(df), np.array([0]))
    back = pickle.loads(pickle.dumps(m))
    assert back._kernels == {} and back.q0 == 0.25 and back.param_names == m.param_names
    np.testing.assert_array_equal(back.loglik(x, back.pack(df), np.array([0])), before)
