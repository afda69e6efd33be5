"""The model interface (DESIGN section 4): options round trip, per-trial RPEs, online learners equal to the
offline kernels, for every built-in model and for user models."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dopa_rl.models import Param, choice_model, get_model, pavlovian_model
from dopa_rl.models.registry import model_names
from dopa_rl.models.tasks import TrialTiming


def _pavlovian_table(seed=0, n=60):
    rng = np.random.default_rng(seed)
    cues = rng.choice(["A", "B", "A+X", "X"], n)
    delay = rng.choice([1.0, 1.5, 2.0], n)
    cue_time = np.arange(n) * 8.0 + 0.5
    return pd.DataFrame({
        "subject": ["s1"] * (n // 2) + ["s2"] * (n - n // 2), "session": "1",
        "trial": np.r_[np.arange(n // 2), np.arange(n - n // 2)], "cue": cues,
        "reward": rng.choice([0.0, 1.0, 0.5], n), "licks": rng.poisson(2, n).astype(float),
        "cue_time": cue_time, "outcome_time": cue_time + delay})


def _choice_table(seed=0, n=60, k=3):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"subject": "s1", "session": np.repeat(["1", "2"], n // 2), "trial": np.arange(n),
                         "choice": rng.integers(0, k, n), "reward": rng.choice([0.0, 1.0], n)})


def _forget(q, choice, reward, theta):
    for k in range(q.shape[0]):
        if k == choice:
            q[k] += theta[0] * (reward - q[k])
        else:
            q[k] -= theta[1] * q[k]


def _decay(v, present, reward, theta):
    pred = 0.0
    for e in range(v.shape[0]):
        pred += v[e] * present[e]
    for e in range(v.shape[0]):
        v[e] += theta[0] * (reward - pred) * present[e] - theta[1] * v[e] * (1.0 - present[e])


USER_CHOICE = choice_model("u-forget", [Param("alpha", lower=0, upper=1, default=0.3),
                                        Param("phi", lower=0, upper=1, default=0.1)], _forget)
USER_PAV = pavlovian_model("u-decay", [Param("alpha", lower=0, upper=1, default=0.3),
                                       Param("phi", lower=0, upper=1, default=0.1)], _decay)

TD_VARIANTS = [("td", {}), ("td", {"representation": "presence"}),
               ("td", {"representation": "microstimulus", "n_micro": 6, "sigma": 0.1}),
               ("td-presence", {"timing": TrialTiming(bin_s=0.5, trial_s=4.0)}),
               ("belief-td", {"weber": 0.2, "iti_s": 5.0}),
               ("belief-td", {"reward_times": [[1.0, 0.3], [1.5, 0.3], [2.0, 0.4]], "p_omit": 0.3,
                              "timing": TrialTiming(bin_s=0.5, trial_s=4.0)})]


def _models():
    out = [(n, get_model(n)) for n in model_names()]
    out += [(f"{n}{o}", get_model(n, **o)) for n, o in TD_VARIANTS]
    out += [("user-choice", USER_CHOICE), ("user-pavlovian", USER_PAV)]
    return out


MODELS = _models()


def _params(model, seed=1):
    rng = np.random.default_rng(seed)
    out = {}
    for p in model.spec:
        lo, hi = p.init_low, p.init_high
        out[p.name] = float(rng.uniform(lo, hi))
    return out


@pytest.mark.parametrize("name,model", MODELS, ids=[n for n, _ in MODELS])
def test_options_round_trip_through_json(name, model):
    opts = json.loads(json.dumps(model.options()))
    again = get_model(model, **opts)
    assert again.options() == model.options()
    table = _choice_table() if model.kind == "choice" else _pavlovian_table()
    x = model.check_params(_params(model))[None]
    a, b = model.pack(table), again.pack(table)
    for got, want in zip(again.rpes(x, b, [0]), model.rpes(x, a, [0])):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name,model", MODELS, ids=[n for n, _ in MODELS])
def test_online_learner_equals_offline_kernel(name, model):
    """Stepping the online learner through each subject's trials gives the offline RPEs to 1e-12."""
    table = _choice_table() if model.kind == "choice" else _pavlovian_table()
    data = model.pack(table)
    params = _params(model)
    x = model.check_params(params)
    lanes = np.arange(data.n_subjects)
    cue, out = model.rpes(np.tile(x, (len(lanes), 1)), data, lanes)
    _, offset, courses = model.rpe_events(np.tile(x, (len(lanes), 1)), data, lanes)
    for s in lanes:
        rows = data.row_index[s, : data.n_trials[s]]
        tr = table.iloc[rows]
        learner = None
        got_cue, got_out, got_bins = [], [], []
        for t, row in enumerate(tr.itertuples()):
            if data.resets[s, t]:
                learner = model.online(params, n_bins=data.extra.get("n_bins"),
                                       n_options=data.extra.get("n_options"), structure=data.extra.get("structure"),
                                       subject=data.subjects[s])
            event = row.choice if model.kind == "choice" else row.cue
            kw = {"cue_s": row.cue_time, "outcome_s": row.outcome_time} if "cue_time" in tr.columns else {}
            if t % 2:           # half the trials meet new elements in step itself, half in outcome_rpe first
                rpe_pred = learner.outcome_rpe(event, row.reward, **kw)
            u = learner.step(event, row.reward, **kw)
            if t % 2:
                assert u.rpe_outcome == rpe_pred       # outcome_rpe is the step's own, without learning
            got_cue.append(u.rpe_cue)
            got_out.append(u.rpe_outcome)
            got_bins.append(u.rpe_bins)
        n = int(data.n_trials[s])
        np.testing.assert_allclose(got_cue, cue[s, :n], rtol=0, atol=1e-12)
        np.testing.assert_allclose(got_out, out[s, :n], rtol=0, atol=1e-12)
        if got_bins[0]:       # TD: the whole time course of every trial
            np.testing.assert_allclose(np.array(got_bins), courses[s, :n], rtol=0, atol=1e-12)
        assert np.isfinite(out[s, :n]).all() and np.abs(out[s, :n]).max() > 0


@pytest.mark.parametrize("name,model", MODELS, ids=[n for n, _ in MODELS])
def test_rpes_match_the_models_own_trajectories(name, model):
    """The many-lane RPEs are the per-subject trajectories (an independent path through the same rule)."""
    table = _choice_table() if model.kind == "choice" else _pavlovian_table()
    data = model.pack(table)
    x = model.check_params(_params(model))
    X = np.tile(x, (2 * data.n_subjects, 1))
    lanes = np.r_[np.arange(data.n_subjects), np.arange(data.n_subjects)]
    cue, out = model.rpes(X, data, lanes)
    for i, s in enumerate(lanes):
        traj = model.trajectories(x, data, int(s))
        n = len(traj)
        want_out = traj["rpe_outcome"] if "rpe_outcome" in traj else traj["rpe"]
        want_cue = traj["rpe_cue"] if "rpe_cue" in traj else traj.get("value_chosen", traj.get("value"))
        np.testing.assert_allclose(out[i, :n], want_out, rtol=0, atol=1e-12)
        np.testing.assert_allclose(cue[i, :n], want_cue, rtol=0, atol=1e-12)
        assert np.isnan(out[i, n:]).all()


def test_learning_params_leave_out_the_observation_model():
    assert get_model("td").learning_params == ["alpha", "gamma", "lambda_"]
    assert get_model("rw-pavlovian-asym").learning_params == ["alpha_pos", "alpha_neg"]
    assert get_model("rw-softmax-sticky-lapse").learning_params == ["alpha"]
    assert USER_CHOICE.learning_params == ["alpha", "phi"]
    assert USER_PAV.learning_params == ["alpha", "phi"]


def test_td_learner_refuses_an_outcome_past_its_bins():
    from dopa_rl.errors import InputError

    learner = get_model("td").online({"alpha": 0.1})
    with pytest.raises(InputError, match="past the model"):
        learner.step("A", 1.0, cue_s=0.0, outcome_s=60.0)
