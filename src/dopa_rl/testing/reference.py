"""Plain per-trial reference likelihoods, written independently of the compiled lane kernels.

Slow and obvious on purpose: :func:`dopa_rl.testing.check_model` compares every model's vectorised
likelihood with one of these, computed from the behaviour table itself (one subject's rows in file order,
sessions reset by the ``session`` column, missed choices skipped).  Each takes ``(model, params, trials)``
with ``params`` a name -> value dict and returns the natural-log likelihood of that subject's observations.

A model none of these covers gives its own: ``check_model(model, reference=fn)`` with
``fn(params, trials) -> float``, or a ``reference_loglik(params, trials)`` method.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["choice_loglik", "rw_choice", "family_choice", "cue_loglik", "rw_pavlovian", "family_pavlovian", "td",
           "belief_td", "builtin_reference"]


def _session_starts(trials) -> list[bool]:
    sessions = trials["session"].astype(str).tolist() if "session" in trials.columns else ["1"] * len(trials)
    return [i == 0 or sessions[i] != sessions[i - 1] for i in range(len(sessions))]


def _choices(trials) -> list[int]:
    return [-1 if (c is None or (isinstance(c, float) and math.isnan(c))) else int(c) for c in trials["choice"]]


def _softmax_choice_logp(q, c, prev, beta, kappa, epsilon):
    logits = [beta * q[k] + (kappa if k == prev else 0.0) for k in range(len(q))]
    m = max(logits)
    z = sum(math.exp(v - m) for v in logits)
    p = math.exp(logits[c] - m) / z
    return math.log((1.0 - epsilon) * p + epsilon / len(q))


def choice_loglik(params, trials, *, n_options, q0, update) -> float:
    """Softmax choice with stickiness and lapse over values changed by ``update(q, choice, reward)``."""
    beta, kappa, epsilon = params["beta"], params.get("kappa", 0.0), params.get("epsilon", 0.0)
    ll = 0.0
    q, prev = None, -1
    for start, c, r in zip(_session_starts(trials), _choices(trials), trials["reward"].astype(float)):
        if start:
            q, prev = np.full(n_options, float(q0)), -1
        if c < 0:
            continue
        ll += _softmax_choice_logp(q, c, prev, beta, kappa, epsilon)
        update(q, c, float(r))
        prev = c
    return ll


def _n_options(model, trials) -> int:
    return model.n_options or max(max(_choices(trials)) + 1, 2)


def rw_choice(model, params, trials) -> float:
    """Independent per-trial log-likelihood of the RW choice models (a plain Python loop)."""
    ap = params.get("alpha_pos", params.get("alpha"))
    an = params.get("alpha_neg", params.get("alpha"))

    def update(q, c, r):
        d = r - q[c]
        q[c] += (ap if d >= 0 else an) * d

    return choice_loglik(params, trials, n_options=_n_options(model, trials), q0=model.q0, update=update)


def family_choice(model, params, trials) -> float:
    """A ``choice_model``: its own rule run as plain Python (``update.py_func`` if the user compiled it)."""
    rule = getattr(model.update, "py_func", model.update)
    theta = np.array([params[p.name] for p in model.rule_params])
    return choice_loglik(params, trials, n_options=_n_options(model, trials), q0=model.q0,
                         update=lambda q, c, r: rule(q, c, r, theta))


def _elements(cue) -> list[str]:
    return [e.strip() for e in str(cue).split("+") if e.strip()]


def _poisson(k, log_rate) -> float:
    # the lick model's rate is exp(eta) up to exp(10) and grows linearly beyond (docs/models.md)
    if log_rate <= 10.0:
        return k * log_rate - math.exp(log_rate) - math.lgamma(k + 1.0)
    rate = math.exp(10.0) * (1.0 + (log_rate - 10.0))
    return k * math.log(rate) - rate - math.lgamma(k + 1.0)


def cue_loglik(params, trials, *, update) -> float:
    """Poisson anticipatory licks on the summed value of the cues present; ``update(values, elements, r)``."""
    b0, b1 = params["lick_intercept"], params["lick_slope"]
    ll = 0.0
    v: dict = {}
    for start, cue, r, k in zip(_session_starts(trials), trials["cue"], trials["reward"].astype(float),
                                trials["licks"].astype(float)):
        if start:
            v = {}
        elems = _elements(cue)
        pred = sum(v.get(e, 0.0) for e in elems)
        if not math.isnan(k):
            ll += _poisson(k, b0 + b1 * pred)
        update(v, elems, float(r), pred)
    return ll


def rw_pavlovian(model, params, trials) -> float:
    """Independent per-trial log-likelihood of the Pavlovian RW models (a plain Python loop)."""
    ap = params.get("alpha_pos", params.get("alpha"))
    an = params.get("alpha_neg", params.get("alpha"))

    def update(v, elems, r, pred):
        d = r - pred
        for e in elems:
            v[e] = v.get(e, 0.0) + (ap if d >= 0 else an) * d

    return cue_loglik(params, trials, update=update)


def family_pavlovian(model, params, trials) -> float:
    """Independent per-trial log-likelihood of a ``pavlovian_model`` (the user's rule in a plain Python loop)."""
    rule = getattr(model.update, "py_func", model.update)
    theta = np.array([params[p.name] for p in model.rule_params])
    everything = sorted({e for c in trials["cue"] for e in _elements(c)})

    def update(v, elems, r, pred):
        values = np.array([v.get(e, 0.0) for e in everything])
        present = np.array([1.0 if e in elems else 0.0 for e in everything])
        rule(values, present, r, theta)
        v.update(zip(everything, values.tolist()))

    return cue_loglik(params, trials, update=update)


def _td_feature(model, element_onset: int, outcome_bin: int, t: int, n_bins: int) -> list[float]:
    """Features of one cue element at bin t, straight from the definitions in docs/models.md."""
    rep, bin_s = model.representation, model.timing.bin_s
    since = t - element_onset
    if rep == "csc":
        return [1.0 if since == j else 0.0 for j in range(n_bins - element_onset)]
    if rep == "presence":
        return [1.0 if 0 <= since and t < outcome_bin else 0.0]
    opts = {"n_micro": 8, "sigma": 0.08, "trace_tau_s": 2.0, **model.rep_options}
    if since < 0:
        return [0.0] * opts["n_micro"]
    y = math.exp(-since * bin_s / opts["trace_tau_s"])
    return [y * math.exp(-((y - (i + 1) / opts["n_micro"]) ** 2) / (2 * opts["sigma"] ** 2))
            for i in range(opts["n_micro"])]


def td(model, params, trials) -> float:
    """TD(lambda) over time bins, licks on the mean value from cue to outcome."""
    tm = model.timing
    alpha, gamma, lam = params["alpha"], params["gamma"], params["lambda_"]
    if {"cue_time", "outcome_time"} <= set(trials.columns):
        delay = trials["outcome_time"].astype(float).to_numpy() - trials["cue_time"].astype(float).to_numpy()
        delay = np.where(np.isfinite(delay), delay, tm.outcome_s - tm.cue_onset_s)
        obs = [tm.cue_bin + max(int(np.round(d / tm.bin_s)), 1) for d in delay]
    else:
        obs = [tm.outcome_bin] * len(trials)
    n_bins = max(tm.n_bins, max(obs) + 2)
    cb = tm.cue_bin
    everything = sorted({e for c in trials["cue"] for e in _elements(c)})
    ll = 0.0
    w: dict = {}
    for start, cue, r, k, ob in zip(_session_starts(trials), trials["cue"], trials["reward"].astype(float),
                                    trials["licks"].astype(float), obs):
        if start:
            w = {}
        elems = _elements(cue)

        def x(t):  # feature dict {(element, index): value}
            return {(e, i): f for e in everything if e in elems
                    for i, f in enumerate(_td_feature(model, cb, ob, t, n_bins)) if f != 0.0}

        def value(t):
            return sum(w.get(key, 0.0) * f for key, f in x(t).items())

        vals = []
        trace: dict = {}
        v_prev = 0.0
        for t in range(n_bins):
            v = value(t)
            vals.append(v)
            if t > 0:
                delta = (r if t == ob else 0.0) + gamma * v - v_prev
                for key, e_val in trace.items():
                    w[key] = w.get(key, 0.0) + alpha * delta * e_val
            v_prev = value(t)
            trace = {key: gamma * lam * e_val for key, e_val in trace.items()} if t > 0 else {}
            for key, f in x(t).items():
                trace[key] = trace.get(key, 0.0) + f
        if not math.isnan(k) and ob > cb:
            ll += _poisson(k, params["lick_intercept"] + params["lick_slope"] * sum(vals[cb:ob]) / (ob - cb))
    return ll


def _believed_pmf(model, delays: list[int]) -> dict[int, float]:
    """A cue's believed reward-time distribution {delay bin: p}: the empirical one of ``delays`` (rewarded trials)
    or the model's explicit ``reward_times``, spread by Weber timing noise (sd ``weber * delay``)."""
    if model.reward_times == "empirical":
        raw = {d: delays.count(d) / len(delays) for d in set(delays)} if delays else {}
    else:
        raw = {}
        total = sum(p for _, p in model.reward_times)
        for delay_s, p in model.reward_times:
            d = max(int(np.round(delay_s / model.timing.bin_s)), 1)
            raw[d] = raw.get(d, 0.0) + p / total
    if model.weber == 0 or not raw:
        return raw
    top = max(raw)
    top = int(math.ceil(top + 4 * model.weber * top))
    out: dict = {}
    for j, p in raw.items():
        sd = model.weber * j
        cdf = [0.5 * (1 + math.erf((d + 0.5 - j) / (sd * math.sqrt(2)))) - 0.5 * (1 + math.erf((d - 0.5 - j) / (sd * math.sqrt(2))))
               for d in range(1, top + 1)]
        for d, c in zip(range(1, top + 1), cdf):
            out[d] = out.get(d, 0.0) + p * c / sum(cdf)
    return out


def belief_td(model, params, trials) -> float:
    """Belief-state TD: the hidden-state filter and linear TD written out per bin and per state (dicts)."""
    tm = model.timing
    alpha, gamma = params["alpha"], params["gamma"]
    cb = tm.cue_bin
    if {"cue_time", "outcome_time"} <= set(trials.columns):
        delay = trials["outcome_time"].astype(float).to_numpy() - trials["cue_time"].astype(float).to_numpy()
        delay = np.where(np.isfinite(delay), delay, tm.outcome_s - tm.cue_onset_s)
        obs = [cb + max(int(np.round(d / tm.bin_s)), 1) for d in delay]
    else:
        obs = [tm.outcome_bin] * len(trials)
    cues = [str(c) for c in trials["cue"]]
    rewards = trials["reward"].astype(float).tolist()
    pmf, p_omit = {}, {}
    for c in set(cues):
        mine = [i for i, x in enumerate(cues) if x == c]
        pmf[c] = _believed_pmf(model, [obs[i] - cb for i in mine if rewards[i] > 0])
        p_omit[c] = (sum(rewards[i] <= 0 for i in mine) / len(mine)) if model.p_omit == "empirical" else model.p_omit
        if not pmf[c]:
            p_omit[c] = 1.0
    top = max([max(p) for p in pmf.values() if p] + [1])
    if model.reward_times != "empirical":
        top = max(top, max(_believed_pmf(model, [])))
    n_bins = max(tm.n_bins, cb + top + 2, max(obs) + 2)
    iti_bins = int(round((tm.iti_mean_s if model.iti_s is None else model.iti_s) / tm.bin_s))
    h = 1.0 / (iti_bins + cb + 1)

    def hazard(c, d):   # P(reward at delay d | none before)
        tail = sum(p for k, p in pmf[c].items() if k >= d)
        return pmf[c].get(d, 0.0) / tail if tail > 0 else 0.0

    def step(c, b, x):  # one bin of Bayes' rule: belief {state: p} -> posterior after observation x
        post: dict = {}
        for s, p in b.items():
            if s == "ITI":
                moves = {("ITI", "nothing"): 1 - h, (0, "cue"): h * (1 - p_omit[c]), ("ITI", "cue"): h * p_omit[c]}
            else:
                hz = hazard(c, s + 1) if s < n_bins - cb - 1 else None
                moves = {("ITI", "nothing"): 1.0} if hz is None else {("ITI", "reward"): hz, (s + 1, "nothing"): 1 - hz}
            for (s2, obs_), q in moves.items():
                if obs_ == x and q * p > 0:
                    post[s2] = post.get(s2, 0.0) + q * p
        z = sum(post.values())
        return {s: p / z for s, p in post.items()}

    ll = 0.0
    w: dict = {}
    for start, c, r, k, ob in zip(_session_starts(trials), cues, rewards, trials["licks"].astype(float), obs):
        if start:
            w = {}
        else:
            w["ITI"] = w.get("ITI", 0.0) * (1 - alpha * (1 - gamma)) ** iti_bins
        key = {"ITI": "ITI", **{s: (c, s) for s in range(n_bins)}}
        b_prev = {"ITI": 1.0}
        v_prev = w.get("ITI", 0.0)
        vals = []
        for t in range(n_bins):
            x = "cue" if t == cb else ("reward" if t == ob and r > 0 else "nothing")
            b = step(c, b_prev, x)
            v = sum(w.get(key[s], 0.0) * p for s, p in b.items())
            vals.append(v)
            delta = (r if t == ob else 0.0) + gamma * v - v_prev
            for s, p in b_prev.items():
                w[key[s]] = w.get(key[s], 0.0) + alpha * delta * p
            v_prev = sum(w.get(key[s], 0.0) * p for s, p in b.items())
            b_prev = b
        if not math.isnan(k) and ob > cb:
            ll += _poisson(k, params["lick_intercept"] + params["lick_slope"] * sum(vals[cb:ob]) / (ob - cb))
    return ll


def builtin_reference(model):
    """The plain loop for ``model`` (a built-in or family model), or None."""
    from dopa_rl.models.family import ChoiceFamilyModel, PavlovianFamilyModel
    from dopa_rl.models.rw import RWChoice, RWPavlovian
    from dopa_rl.models.belief import BeliefTDModel
    from dopa_rl.models.td import TDModel

    for cls, fn in ((ChoiceFamilyModel, family_choice), (PavlovianFamilyModel, family_pavlovian),
                    (RWChoice, rw_choice), (RWPavlovian, rw_pavlovian), (TDModel, td), (BeliefTDModel, belief_td)):
        if isinstance(model, cls):
            return lambda params, trials: fn(model, params, trials)
    return None
