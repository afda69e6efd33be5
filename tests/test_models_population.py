"""Population simulation (models.simulate_population) and the one-pass packing of behavior tables."""
import numpy as np
import pandas as pd
import pytest

from dopa_rl.errors import InputError
from dopa_rl.models import get_model, simulate_population, tasks
from dopa_rl.models.base import pack_common


def test_population_is_reproducible_and_subjects_are_independent_streams():
    m = get_model("rw-softmax")
    task = tasks.bandit_task(50)
    a = simulate_population(m, task, 3, 7)
    b = simulate_population(m, task, 3, np.random.default_rng(7))
    pd.testing.assert_frame_equal(a.trials, b.trials)
    pd.testing.assert_frame_equal(a.params, b.params)
    more = simulate_population(m, task, 5, 7)
    pd.testing.assert_frame_equal(more.trials[more.trials.subject.isin(["1", "2", "3"])].reset_index(drop=True), a.trials)
    assert list(a.params.columns) == ["subject", "alpha", "beta"] and a.params.subject.tolist() == ["1", "2", "3"]
    lo, hi = m.spec["alpha"].init_low, m.spec["alpha"].init_high
    assert a.params.alpha.between(lo, hi).all() and a.params.alpha.nunique() == 3
    c = simulate_population(m, task, 3, 8)
    assert not c.trials["choice"].equals(a.trials["choice"])


def test_population_params_forms_and_sessions():
    m = get_model("rw-softmax-sticky")
    task = tasks.bandit_task(30)
    fixed = simulate_population(m, task, 2, 0, {"alpha": 0.4}, n_sessions=3)
    assert fixed.params[["alpha", "beta", "kappa"]].to_numpy().tolist() == [[0.4, 3.0, 0.0]] * 2
    assert fixed.trials.groupby("subject").session.unique().map(list).tolist() == [["1", "2", "3"]] * 2
    assert len(fixed.trials) == 2 * 3 * 30
    table = pd.DataFrame({"alpha": [0.1, 0.9], "beta": [1.0, 8.0], "kappa": [0.5, -0.5]})
    per = simulate_population(m, task, 2, 0, table, subjects=["m1", "m2"])
    assert per.params.set_index("subject").loc["m2", "beta"] == 8.0
    drawn = simulate_population(m, task, 4, 0, lambda rng: {"alpha": rng.uniform(0.1, 0.2)})
    assert drawn.params.alpha.between(0.1, 0.2).all()
    lean = simulate_population(m, task, 1, 0, keep_latent=False)
    assert not [c for c in lean.trials.columns if c.startswith("p_choice_")]
    with pytest.raises(InputError, match="cannot run a pavlovian task"):
        simulate_population(m, tasks.acquisition(10), 2, 0)
    with pytest.raises(InputError, match="2 rows for 3 subjects"):
        simulate_population(m, task, 3, 0, table)
    with pytest.raises(InputError, match="n_subjects must be an integer >= 1"):
        simulate_population(m, task, 0, 0)
    with pytest.raises(InputError, match="alpha=1.5 is outside"):
        simulate_population(m, task, 1, 0, {"alpha": 1.5})


def _reference_groups(df):
    """The per-subject grouping as first written (quadratic, obviously right)."""
    subj = df["subject"].astype(str)
    out = []
    for s in dict.fromkeys(subj):
        rows = np.flatnonzero((subj == s).to_numpy())
        sub = df.iloc[rows]
        keys = [pd.factorize(sub["session"].astype(str))[0], sub["trial"].to_numpy()]
        out.append(rows[np.lexsort(keys[::-1])])
    return out


def test_one_pass_packing_matches_the_per_subject_grouping():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(1, 200))
        df = pd.DataFrame({"subject": rng.choice(["a", "b", "10", "2", "c"], n),
                           "session": rng.choice(["s2", "s10", "s1"], n),
                           "trial": rng.permutation(n), "reward": rng.random(n)})
        packed, groups = pack_common(df)
        ref = _reference_groups(df)
        assert packed.subjects == list(dict.fromkeys(df["subject"]))
        assert [g.tolist() for g in groups] == [g.tolist() for g in ref]
        for i, g in enumerate(ref):
            assert packed.row_index[i, : len(g)].tolist() == g.tolist()
            assert (packed.row_index[i, len(g):] == -1).all()
            assert packed.rewards[i, : len(g)].tolist() == df["reward"].to_numpy()[g].tolist()
            ses = df["session"].to_numpy()[g]
            expect = np.r_[True, ses[1:] != ses[:-1]]
            assert packed.resets[i, : len(g)].tolist() == expect.tolist()
    dup = pd.DataFrame({"subject": ["a", "b", "b"], "session": "1", "trial": [0, 0, 0], "reward": 1.0})
    with pytest.raises(InputError, match="subject b: trial numbers repeat"):
        pack_common(dup)


def test_packing_many_subjects_is_linear():
    import time

    def cost(n_subjects):
        df = pd.DataFrame({"subject": np.repeat(np.arange(n_subjects), 20).astype(str), "session": "1",
                           "trial": np.tile(np.arange(20), n_subjects), "choice": np.tile([0, 1], 10 * n_subjects),
                           "reward": 1.0})
        m = get_model("rw-softmax")
        best = np.inf
        for _ in range(3):
            t0 = time.perf_counter()
            m.pack(df)
            best = min(best, time.perf_counter() - t0)
        return best

    small, big = cost(500), cost(5000)
    assert big < 30 * small + 0.05  # quadratic grouping costs ~100x here


def test_carry_over_sessions_continue_learning():
    m = get_model("rw-softmax")
    task = tasks.bandit_task(60, probs=(0.9, 0.1), reversals=[])
    params = {"alpha": 0.5, "beta": 5.0}
    fresh = simulate_population(m, task, 1, 0, params, n_sessions=2).trials
    kept = simulate_population(m, task, 1, 0, params, n_sessions=2, carry_over=True).trials
    for df in (fresh, kept):
        assert df.session.tolist() == ["1"] * 60 + ["2"] * 60 and df.trial.tolist() == list(range(60)) * 2
        assert (df.groupby("session").start_time.first() == 0).all()
    assert fresh.p_choice_0.iloc[60] == pytest.approx(0.5)   # session 2 starts afresh
    assert kept.p_choice_0.iloc[60] > 0.9                     # session 2 goes on from session 1's values
    # and fitting with carry_over finds the higher likelihood on data that carried over
    from dopa_rl.fit import fit

    assert fit(m, kept, restarts=2, carry_over=True).loglik_[0] > fit(m, kept, restarts=2).loglik_[0]
    with pytest.raises(InputError, match="`n_trials` does not apply"):
        tasks.make_task("blocking", 30)
    with pytest.raises(InputError, match="choose one of bandit"):
        tasks.make_task("maze")
