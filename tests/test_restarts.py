"""Restarts that agree: starts seeded by subject id, the agreement count, and ``restarts="auto"``."""
import numpy as np
import pandas as pd
import pytest

from dopa_rl.errors import InputError
from dopa_rl.fit import fit
from dopa_rl.fit.restarts import start_points, subject_starts
from dopa_rl.models import get_model, tasks


def bandit_pm1(model, n_subjects, n_trials, seed):
    """A two-armed bandit study like those labs run: outcomes +1 / -1."""
    rng = np.random.default_rng(seed)
    frames = []
    for s in range(n_subjects):
        p = {"alpha_pos": rng.uniform(0.05, 0.9), "alpha_neg": rng.uniform(0.05, 0.9),
             "beta": float(np.exp(rng.uniform(0, np.log(8))))}
        sim = model.simulate(p, tasks.bandit_task(n_trials), rng, subject=f"s{s}").trials
        sim["reward"] = np.where(sim["reward"] > 0, 1.0, -1.0)
        frames.append(sim)
    return pd.concat(frames, ignore_index=True)


def test_starts_depend_on_subject_id_not_position():
    m = get_model("rw-softmax")
    a = start_points(m, ["x", "y", "z"], 5, 7)
    b = start_points(m, ["z", "x"], 5, 7)
    assert np.array_equal(a[2], b[0]) and np.array_equal(a[0], b[1])
    assert not np.array_equal(a[0], a[1])
    assert not np.array_equal(start_points(m, ["x"], 5, 8)[0], a[0])     # the seed matters
    # restart r is the same point whether drawn in one go or in later rounds (auto)
    assert np.array_equal(subject_starts(m, "x", 7, 3, 2), a[0, 3:5])


def test_reordering_or_removing_subjects_never_changes_another_fit():
    m = get_model("rw-softmax-asym")
    df = bandit_pm1(m, 6, 60, 3)
    full = fit(m, df, restarts=4, seed=1)
    order = ["s5", "s2", "s0"]
    part = fit(m, pd.concat([df[df.subject == s] for s in order], ignore_index=True), restarts=4, seed=1)
    assert np.array_equal(part.params.loc[order].to_numpy(), full.params.loc[order].to_numpy())


@pytest.fixture(scope="module")
def lab_study():
    m = get_model("rw-softmax-asym")
    return m, bandit_pm1(m, 20, 100, 5)


def test_auto_restarts_agree_across_seeds_and_match_200_fixed(lab_study):
    m, df = lab_study
    fixed = fit(m, df, restarts=200, seed=0).loglik_.sum()
    totals = [fit(m, df, restarts="auto", seed=seed).loglik_.sum() for seed in range(4)]
    assert max(totals) - min(totals) < 1e-6
    assert min(totals) >= fixed - 1e-6


def test_agreement_is_reported_and_flagged(lab_study):
    m, df = lab_study
    one = fit(m, df, restarts=1)
    assert (one.n_at_best == 1).all()
    auto = fit(m, df, restarts="auto")
    assert auto.meta["restarts"] == "auto" and (auto.n_at_best >= 1).all()
    d = auto.to_dict()["subjects"][0]
    assert d["restarts_agree"] == (d["restarts_at_best"] >= 2)
    weak = fit(m, df, restarts=2)
    if (weak.n_at_best < 2).any():
        assert "fewer than 2 restarts reached the best optimum" in weak.summary()
    with pytest.raises(InputError):
        fit(m, df, restarts="many")
