"""Belief-state TD (models/belief.py): the belief filter against brute-force Bayes, the hidden-state maths in
closed form, the Starkweather et al. (2017) signature where CSC TD fails, parameter recovery from simulated
dopamine, the online learner, bad options."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dopa_rl.errors import InputError
from dopa_rl.fit.neural import fit_dopamine
from dopa_rl.models import get_model
from dopa_rl.models.belief import BeliefTDModel, starkweather_task, variable_delay_task
from dopa_rl.models.belief_filter import hazards, joint_matrix, weber_blur
from dopa_rl.models.tasks import TrialTiming

TINY = TrialTiming(bin_s=1.0, cue_onset_s=1.0, outcome_s=2.0, trial_s=5.0, iti_mean_s=3.0, iti_min_s=1.0)
PMF = [[1.0, 0.3], [2.0, 0.5], [3.0, 0.2]]


# ------------------------------------------------------------------------------------------ brute-force Bayes
def _generative(pmf, p_omit, h, K):
    """P(next state, observation | state) straight from the model's definition (docs/belief-td.md), as a
    function; the ITI is state ``"ITI"``, ISI sub-states are ints."""
    def hazard(d):
        tail = sum(pmf[d:]) if d < len(pmf) else 0.0
        return pmf[d] / tail if d < len(pmf) and tail > 0 else 0.0

    def step(i):
        if i == "ITI":
            return [("ITI", "nothing", 1 - h), (0, "cue", h * (1 - p_omit)), ("ITI", "cue", h * p_omit)]
        if i == K - 1:
            return [("ITI", "nothing", 1.0)]
        H = 1.0 if i + 1 == len(pmf) - 1 else hazard(i + 1)
        return [("ITI", "reward", H), (i + 1, "nothing", 1 - H)]

    return step


def _brute_force(step, observations):
    """Posterior over the state after each observation by enumerating every hidden path of positive
    probability (P(path, observations), summed by end state, normalised)."""
    paths = [(("ITI",), 1.0)]
    out = []
    for x in observations:
        paths = [(p + (j,), w * q) for p, w in paths for j, m, q in step(p[-1]) if m == x and w * q > 0]
        z = sum(w for _, w in paths)
        post: dict = {}
        for p, w in paths:
            post[p[-1]] = post.get(p[-1], 0.0) + w / z
        out.append(post)
    return out


@pytest.mark.parametrize("weber,p_omit", [(0.0, 0.25), (0.0, 0.0), (0.3, 0.25), (0.15, 0.6)])
def test_belief_filter_equals_brute_force_bayes(weber, p_omit):
    model = get_model("belief-td", timing=TINY, reward_times=PMF, p_omit=p_omit, weber=weber)
    st = model.structure(["A"], [2], [True])
    pmf = list(st.pmfs[0])
    D = len(pmf) - 1
    delays = [d for d in range(1, D + 1) if pmf[d] > 0]
    ob = [st.cue_bin + d for d in delays] + ([st.cue_bin + 2] if p_omit > 0 else [])
    rewarded = [True] * len(delays) + ([False] if p_omit > 0 else [])
    phis = st.beliefs(np.zeros(len(ob), int), ob, rewarded)
    step = _generative(pmf, st.p_omit[0], st.iti_hazard, st.K)
    for i, (o, r) in enumerate(zip(ob, rewarded)):
        obs = ["cue" if t == st.cue_bin else "reward" if (r and t == o) else "nothing" for t in range(st.n_bins)]
        want = np.zeros((st.n_bins, st.n_features))
        for t, post in enumerate(_brute_force(step, obs)):
            for s, p in post.items():
                want[t, 0 if s == "ITI" else 1 + s] = p
        np.testing.assert_allclose(phis[i], want, rtol=0, atol=1e-12)
    # every window ends in the ITI (what the closed-form ITI between windows assumes)
    np.testing.assert_allclose(phis[:, -1, 0], 1.0, atol=1e-12)


def test_omission_belief_drifts_to_the_iti_in_closed_form():
    """After the cue b(ITI) = p_omit; after n bins without reward (before any reward can come, hazard 0)
    b(ITI) = p (1-h)^n / (p (1-h)^n + (1-p))."""
    tm = TrialTiming(bin_s=1.0, cue_onset_s=1.0, outcome_s=5.0, trial_s=9.0, iti_mean_s=4.0, iti_min_s=1.0)
    model = get_model("belief-td", timing=tm, reward_times=[[5.0, 1.0]], p_omit=0.2)
    st = model.structure(["A"], [6], [True])
    phi = st.beliefs([0], [6], [False])[0]
    h = st.iti_hazard
    for n in range(0, 5):
        q = 0.2 * (1 - h) ** n
        assert phi[st.cue_bin + n, 0] == pytest.approx(q / (q + 0.8), abs=1e-14)
    assert phi[st.cue_bin + 5, 0] == pytest.approx(1.0, abs=1e-14)      # no reward at 5 s: surely the ITI


def test_hazards_and_weber_blur_in_closed_form():
    np.testing.assert_allclose(hazards(np.array([0, .25, .25, .25, .25])), [0, 1 / 4, 1 / 3, 1 / 2, 1], atol=1e-15)
    pmf = np.zeros(11)
    pmf[10] = 1.0
    np.testing.assert_array_equal(weber_blur(pmf, 0.0), pmf)
    b = weber_blur(pmf, 0.2)
    d = np.arange(b.size)
    assert b.sum() == pytest.approx(1.0, abs=1e-14) and b[0] == 0
    mean = (d * b).sum()
    sd = np.sqrt(((d - mean) ** 2 * b).sum())
    assert mean == pytest.approx(10.0, abs=0.02)
    assert sd == pytest.approx(np.sqrt(2.0 ** 2 + 1 / 12), rel=0.01)       # Weber: sd = 0.2 x 10 bins (+ binning)
    # scalar timing: twice the delay, twice the spread
    pmf2 = np.zeros(21)
    pmf2[20] = 1.0
    b2 = weber_blur(pmf2, 0.2)
    d2 = np.arange(b2.size)
    sd2 = np.sqrt(((d2 - (d2 * b2).sum()) ** 2 * b2).sum())
    assert sd2 / sd == pytest.approx(2.0, rel=0.02)
    M = joint_matrix(np.array([0, .5, .5]), 0.1, 0.05, 5)
    np.testing.assert_allclose(M.sum(axis=(0, 2)), 1.0, atol=1e-15)   # each state: a distribution over (next, obs)


# ------------------------------------------------------------------------------------------ the signature
def _late_trend(delays, rpe, rewarded, after):
    """Mean reward RPE per delay (trials after ``after``) and the slope over the delays from the mean on."""
    d = np.round(delays, 2)
    keep = rewarded & (np.arange(d.size) >= after)
    levels = np.unique(d[keep])
    mean = np.array([rpe[keep & (d == v)].mean() for v in levels])
    late = levels >= 2.0
    return levels, mean, np.polyfit(levels[late], mean[late], 1)[0]


def _reward_rpes(model, params, task, seed=0):
    tm = task.timing
    rewards = task.draw_rewards(np.random.default_rng(seed))
    ob = tm.cue_bin + np.round(task.delays_s / tm.bin_s).astype(int)
    out = model.run(params, list(task.cues), rewards, ob)
    return out[0][np.arange(task.n_trials), ob], rewards > 0


def test_starkweather_signature_belief_td_flips_where_csc_td_does_not():
    """Task 1 (100% rewarded): the RPE at reward falls with its delay; task 2 (90%): it rises for late
    rewards.  CSC TD (models/td.py) gives one and the same curve in both tasks (it has no state for 'this
    trial's reward was omitted'), so it cannot show the 90%-specific rise."""
    slopes, csc = {}, {}
    for p in (1.0, 0.9):
        task = starkweather_task(3000, p, 1)
        belief = get_model("belief-td", timing=task.timing)
        rpe, rew = _reward_rpes(belief, {"alpha": 0.1, "gamma": 0.98}, task)
        _, mean, slopes[p] = _late_trend(task.delays_s, rpe, rew, 1500)
        if p == 1.0:
            assert np.all(np.diff(mean) < 0)              # falls over every step of delay
        td = get_model("td", timing=task.timing)
        rpe, rew = _reward_rpes(td, {"alpha": 0.1, "gamma": 0.98, "lambda_": 0.0}, task)
        csc[p] = _late_trend(task.delays_s, rpe, rew, 1500)
    assert slopes[1.0] < -0.02 and slopes[0.9] > 0.2
    curve100, curve90 = csc[1.0][1], csc[0.9][1]
    # CSC: the same shape in both tasks (no sign flip), while belief TD's late slopes differ by > 0.2 per s
    assert np.sign(csc[1.0][2]) == np.sign(csc[0.9][2])
    assert abs(csc[0.9][2] - csc[1.0][2]) < 0.1 * abs(slopes[0.9] - slopes[1.0])
    assert np.max(np.abs(curve90 - curve100)) < 0.05


def test_omission_dip_is_spread_and_late_reward_rpe_grows_with_p_omit():
    """In the 90% task an omitted reward gives negative errors over the reward window, not one dip."""
    task = starkweather_task(2000, 0.9, 3)
    model = get_model("belief-td", timing=task.timing)
    tm = task.timing
    rewards = task.draw_rewards(np.random.default_rng(0))
    ob = tm.cue_bin + np.round(task.delays_s / tm.bin_s).astype(int)
    rpe, _, _ = model.run({"alpha": 0.1, "gamma": 0.98}, list(task.cues), rewards, ob)
    om = (rewards == 0) & (np.arange(task.n_trials) > 1000)
    course = rpe[om].mean(axis=0)
    window = slice(tm.cue_bin + 6, tm.cue_bin + 15)          # 1.2 .. 2.8 s after the cue
    assert np.sum(course[window] < -0.01) >= 5
    assert course[window].min() > -0.5


# ------------------------------------------------------------------------------------------ recovery
def dopamine_table(model_name, truths, n_trials=300, p_reward=0.9, noise=0.15, seed=0):
    """Sessions of the Starkweather task whose dopamine_cue/dopamine_outcome are ``model_name``'s RPEs (cue
    bin, outcome bin) read out as 0.1 + RPE + Normal(0, noise)."""
    rows = []
    for k, p in enumerate(truths):
        task = starkweather_task(n_trials, p_reward, seed + k)
        tm = task.timing
        m = get_model(model_name, timing=tm)
        rng = np.random.default_rng(seed + 100 + k)
        rew = task.draw_rewards(rng)
        ob = tm.cue_bin + np.round(task.delays_s / tm.bin_s).astype(int)
        rpe = m.run(p, list(task.cues), rew, ob)[0]
        i = np.arange(n_trials)
        ct = np.cumsum(rng.exponential(8, n_trials) + 5.0)
        rows.append(pd.DataFrame({
            "subject": f"m{k}", "session": "1", "trial": i, "cue": "A", "reward": rew,
            "cue_time": ct, "outcome_time": ct + (ob - tm.cue_bin) * tm.bin_s,
            "dopamine_cue": 0.1 + rpe[:, tm.cue_bin] + rng.normal(0, noise, n_trials),
            "dopamine_outcome": 0.1 + rpe[i, ob] + rng.normal(0, noise, n_trials)}))
    return pd.concat(rows, ignore_index=True)


STARK = starkweather_task(10, 0.9, 0).timing
TRUTHS = [{"alpha": a, "gamma": g} for a, g in [(0.05, 0.95), (0.1, 0.9), (0.2, 0.97), (0.3, 0.93)]]


def test_parameter_recovery_from_simulated_dopamine():
    df = dopamine_table("belief-td", TRUTHS)
    res = fit_dopamine(get_model("belief-td", timing=STARK), df, mode="neural", restarts=4, seed=1)
    got = res.params.loc[[f"m{k}" for k in range(len(TRUTHS))]]
    for k, t in enumerate(TRUTHS):
        assert got["alpha"].iloc[k] == pytest.approx(t["alpha"], rel=0.25), got
        assert got["gamma"].iloc[k] == pytest.approx(t["gamma"], abs=0.03), got
    # the fit is at least as good as the truth (the optimiser found the maximum)
    model = get_model("belief-td", timing=STARK)
    from dopa_rl.fit.neural import DopamineModel

    dm = DopamineModel(model, "neural")
    data = dm.pack(df)
    x_true = np.array([[t["alpha"], t["gamma"]] for t in TRUTHS])
    assert np.all(res.loglik_ >= dm.loglik(x_true, data, np.arange(len(TRUTHS))) - 1e-6)


# ------------------------------------------------------------------------------------------ online, options
def test_online_learner_with_explicit_structure_needs_no_table():
    model = get_model("belief-td", timing=TINY, reward_times=PMF, p_omit=0.25)
    rng = np.random.default_rng(4)
    n = 40
    ct = np.arange(n) * 10.0 + 1.0
    delay = rng.choice([1.0, 2.0, 3.0], n)
    df = pd.DataFrame({"subject": "a", "trial": np.arange(n), "cue": rng.choice(["A", "B"], n),
                       "reward": (rng.random(n) < 0.75).astype(float), "licks": 1.0, "cue_time": ct,
                       "outcome_time": ct + delay})
    data = model.pack(df)
    x = model.check_params({"alpha": 0.3, "gamma": 0.9})
    cue, out = model.rpes(x[None], data, [0])
    learner = model.online({"alpha": 0.3, "gamma": 0.9})       # cues met as they come
    got = [learner.step(r.cue, r.reward, cue_s=r.cue_time, outcome_s=r.outcome_time) for r in df.itertuples()]
    np.testing.assert_allclose([u.rpe_cue for u in got], cue[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose([u.rpe_outcome for u in got], out[0], rtol=0, atol=1e-12)
    assert set(learner.state()) == {"ITI", "A", "B"}


def test_online_learner_of_an_empirical_model_needs_the_structure():
    with pytest.raises(InputError, match="needs the task structure"):
        get_model("belief-td").online({"alpha": 0.1})


def test_each_subject_learns_its_own_task():
    """A 100% and a 90% animal in one table: each gets its own omission probability and reward times."""
    tasks = [starkweather_task(200, p, k) for k, p in enumerate((1.0, 0.9))]
    model = get_model("belief-td", timing=STARK)
    frames = [model.simulate({"alpha": 0.1}, t, np.random.default_rng(k), subject=f"s{k}").trials
              for k, t in enumerate(tasks)]
    data = model.pack(pd.concat(frames, ignore_index=True))
    st = data.extra["structure"]
    assert st["s0"].p_omit == (0.0,)
    assert st["s1"].p_omit[0] == pytest.approx(np.mean(frames[1].reward == 0))
    sim_rpe = frames[1]["rpe_outcome"].to_numpy()
    _, out = model.rpes(model.check_params({"alpha": 0.1})[None], data, [1])
    np.testing.assert_allclose(out[0, :200], sim_rpe, rtol=0, atol=1e-12)       # simulate = fit's own recursion


@pytest.mark.parametrize("options, needle", [
    ({"reward_times": "gaussian"}, "`reward_times` 'gaussian'"),
    ({"reward_times": [[0.0, 1.0]]}, "delays must be > 0 s"),
    ({"p_omit": 1.5}, "`p_omit` 1.5"),
    ({"weber": -0.1}, "`weber` -0.1"),
    ({"iti_s": -2}, "`iti_s` -2"),
    ({"lambda_": 0.5}, "unknown option(s) lambda_"),
    ({"timing": {"bin_s": -1}}, "trial timing"),
])
def test_bad_options_are_one_line_errors(options, needle):
    with pytest.raises(InputError) as err:
        get_model("belief-td", **options)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_impossible_observations_are_named():
    base = pd.DataFrame({"subject": "a", "trial": [0, 1], "cue": "A", "reward": [1.0, 0.0], "licks": 0.0,
                         "cue_time": [1.0, 11.0], "outcome_time": [4.0, 13.0]})
    with pytest.raises(InputError, match="subject a, trials of cue 'A' rewarded with outcome 3 s"):
        get_model("belief-td", timing=TINY, reward_times=[[1.0, 0.5], [2.0, 0.5]], p_omit=0.2).pack(base)
    with pytest.raises(InputError, match="unrewarded"):
        get_model("belief-td", timing=TINY, reward_times=PMF, p_omit=0.0).pack(base)


def test_simulated_tables_fit_back_exactly_and_tasks_check_their_delays():
    task = variable_delay_task(100, 0.8, [0.5, 1.0], [0.5, 0.5], 0)
    model = get_model("belief-td")
    sim = model.simulate({"alpha": 0.2, "gamma": 0.9}, task, np.random.default_rng(2))
    data = model.pack(sim.trials)
    cue, out = model.rpes(model.check_params(sim.params)[None], data, [0])
    np.testing.assert_allclose(cue[0], sim.trials.rpe_cue, atol=1e-12)
    np.testing.assert_allclose(out[0], sim.trials.rpe_outcome, atol=1e-12)
    assert isinstance(model, BeliefTDModel) and model.kind == "pavlovian"
    with pytest.raises(InputError, match="past the trial"):
        variable_delay_task(10, 1.0, [5.0], [1.0], 0)


def test_example_writes_the_docs_figures(tmp_path):
    """examples/belief_td_starkweather.py, as docs/belief-td.md runs it: both figures, the signature's signs."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "examples" / "belief_td_starkweather.py"
    r = subprocess.run([sys.executable, str(script), "--out-dir", str(tmp_path)], capture_output=True, text=True,
                       cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    slopes = {(m, int(p)): float(s) for m, p, s in
              re.findall(r"^(belief TD|CSC TD)\s+(\d+)% task: .* late slope ([+-][\d.]+) per s$", r.stdout, re.M)}
    assert slopes[("belief TD", 100)] < 0 < slopes[("belief TD", 90)]
    assert re.search(r"recovery alpha: r = 0\.9[5-9]", r.stdout), r.stdout
    for name in ("belief_td_signature.png", "belief_td_recovery.png"):
        assert (tmp_path / name).stat().st_size > 20_000
