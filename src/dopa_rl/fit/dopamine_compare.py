"""Models compared on the same dopamine responses (``dopa-rl compare --signal ...``).

Every session is fitted on its own by every model, all through the same observation model: the response at
the cue and at the outcome is ``b0 + b1 * signal + Normal(0, sigma)``, each event with its own readout,
solved in closed form (:func:`dopa_rl.models.dopamine.profile_loglik`).  ``signal`` is the model's own
prediction error for any model offering the model interface (RW, TD, a user's rule:
:func:`dopa_rl.fit.neural.fit_dopamine` with ``mode="neural"``, the learning parameters by L-BFGS with
restarts), and for a response model with a learner interface of its own (ANCCR,
:class:`dopa_rl.models.anccr.ANCCRResponses`) what its ``fit_responses`` fits (ANCCR: its DA, on a grid).
So the log-likelihoods are of the same
observations (``n_obs``, checked equal across models in every session), and ``k`` counts the learning
parameters plus the 3 readout parameters of each event scored; AIC and BIC follow, and the evidence
``-BIC/2`` per session goes through random-effects model selection (:func:`dopa_rl.fit.compare.bms`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dopa_rl.errors import InputError
from dopa_rl.fit.compare import BMSResult, bms

__all__ = ["DopamineComparison", "compare_dopamine", "dopamine_models"]


def _fits_own_responses(model) -> bool:
    """A response model (ANCCR's learner interface): it fits a session's responses itself."""
    return callable(getattr(model, "fit_responses", None))


def dopamine_models(names: list[str]) -> list:
    """The models of a dopamine comparison by name (:func:`dopa_rl.models.registry.get_response_model`),
    each checked to offer what the comparison needs."""
    from dopa_rl.fit.neural import DopamineModel
    from dopa_rl.models.registry import get_response_model

    out = []
    for name in names:
        m = get_response_model(name)
        if not _fits_own_responses(m):
            DopamineModel(m, "neural")  # InputError unless it has learning parameters
        out.append(m)
    return out


@dataclass
class DopamineComparison:
    """Models x sessions on the same dopamine responses: arrays are [sessions, models]."""

    models: list[str]
    sessions: list[str]
    signal: str
    loglik: np.ndarray
    n_params: np.ndarray
    n_obs: np.ndarray            # [sessions], the same for every model
    params: list[dict]           # per model: {session: {name: value}}
    bms: BMSResult
    method: str = "mle"
    unit: str = "session"
    readout: list[dict] = field(default_factory=list)   # per model: {session: {event: {b0, b1, sigma}}} (ANCCR)

    @property
    def subjects(self) -> list[str]:   # what the comparison figure labels its columns with
        return self.sessions

    @property
    def aic(self) -> np.ndarray:
        return 2.0 * self.n_params - 2.0 * self.loglik

    @property
    def bic(self) -> np.ndarray:
        return self.n_params * np.log(np.maximum(self.n_obs, 1))[:, None] - 2.0 * self.loglik

    @property
    def log_evidence(self) -> np.ndarray:
        return -0.5 * self.bic

    def table(self) -> pd.DataFrame:
        best = np.argmax(self.log_evidence, axis=1)
        rows = [{"model": m, "k": float(self.n_params[:, j].mean()), "loglik": float(self.loglik[:, j].sum()),
                 "aic": float(self.aic[:, j].sum()), "bic": float(self.bic[:, j].sum()),
                 "best_sessions": int(np.sum(best == j)), "frequency": float(self.bms.expected_r[j]),
                 "xp": float(self.bms.xp[j]), "pxp": float(self.bms.pxp[j])} for j, m in enumerate(self.models)]
        return pd.DataFrame(rows).set_index("model")

    def summary(self) -> str:
        with pd.option_context("display.width", 200, "display.max_columns", 30):
            table = self.table().to_string(float_format=lambda v: f"{v:.4g}")
        return "\n".join([
            f"Sessions: {len(self.sessions)}    Signal: {self.signal}    Observations: {int(self.n_obs.sum())} "
            "responses (the same for every model)",
            "Readout per event (cue, outcome): response = b0 + b1 * signal + noise, profiled; k = learning "
            "parameters + 3 per event.  Evidence: -BIC/2 per session",
            table,
            f"Bayesian omnibus risk: {self.bms.bor:.3g}    best by protected exceedance: "
            f"{self.models[int(np.argmax(self.bms.pxp))]}"])

    def to_dict(self) -> dict:
        def num(v):
            return float(v) if np.isfinite(v) else None

        per_session = {}
        for i, s in enumerate(self.sessions):
            per_session[s] = {"n_obs": int(self.n_obs[i]), "models": {
                m: {"loglik": num(self.loglik[i, j]), "n_params": int(self.n_params[i, j]),
                    "aic": num(self.aic[i, j]), "bic": num(self.bic[i, j]), "params": self.params[j].get(s, {}),
                    **({"readout": self.readout[j][s]} if self.readout and s in self.readout[j] else {})}
                for j, m in enumerate(self.models)}}
        table = self.table()
        return {"method": self.method, "signal": self.signal, "evidence": "-BIC/2", "models": self.models,
                "sessions": self.sessions,
                "totals": {m: {k: num(v) for k, v in row.items()} for m, row in table.to_dict(orient="index").items()},
                "rfx": self.bms.to_dict(), "per_session": per_session,
                "posterior_model": {s: dict(zip(self.models, map(float, row)))
                                    for s, row in zip(self.sessions, self.bms.g)}}


def _session_keys(trials: pd.DataFrame) -> pd.Series:
    subj = trials["subject"].astype(str)
    if "session" not in trials.columns:
        return subj
    return subj + "/" + trials["session"].astype(str)


def _readout_count(trials: pd.DataFrame) -> int:
    """Readout parameters the profile likelihood fits in one session: 3 per event with >= 3 responses."""
    return sum(3 for c in ("dopamine_cue", "dopamine_outcome")
               if c in trials.columns and np.isfinite(pd.to_numeric(trials[c], errors="coerce")).sum() >= 3)


def compare_dopamine(trials: pd.DataFrame, models: list, *, signal: str = "table", restarts=10, seed: int = 0,
                     progress: bool | None = None) -> DopamineComparison:
    """Fit every model in ``models`` (models offering the model interface, and/or response models such as
    :class:`~dopa_rl.models.anccr.ANCCRResponses`) to the dopamine responses of each session of ``trials``
    (the table of :func:`dopa_rl.neural.dataset.load_responses`) and compare them (see the module
    docstring)."""
    from tqdm.auto import tqdm

    from dopa_rl.fit.neural import fit_dopamine

    if len(models) < 2:
        raise InputError("model comparison needs at least 2 models")
    if not any(c in trials.columns for c in ("dopamine_cue", "dopamine_outcome")):
        raise InputError("no dopamine_cue or dopamine_outcome responses to compare the models on")
    trials = trials.reset_index(drop=True)
    for m in models:                # e.g. ANCCR needs event times: say so before any fit runs
        if _fits_own_responses(m):
            m.check_trials(trials)
    keys = _session_keys(trials)
    sessions = list(dict.fromkeys(keys))
    S, K = len(sessions), len(models)
    names = [m.name for m in models]
    readout_k = np.array([_readout_count(trials[(keys == s).to_numpy()]) for s in sessions], float)
    loglik, n_params = np.full((S, K), np.nan), np.zeros((S, K))
    n_obs = np.full((S, K), -1, dtype=np.int64)
    params, readouts = [dict() for _ in models], [dict() for _ in models]
    by_session = trials.assign(subject=keys.to_numpy())
    for j, m in enumerate(models):
        if _fits_own_responses(m):
            it = tqdm(sessions, desc=f"{m.name} fits", unit="session", disable=None if progress is None else not progress)
            for i, s in enumerate(it):
                tr = trials[(keys == s).to_numpy()]
                m.check_trials(tr, f"session {s}")
                f = m.fit_responses(tr, seed=seed)
                loglik[i, j], n_params[i, j], n_obs[i, j] = f["loglik"], f["n_params"], f["n_obs"]
                params[j][s] = {k: float(v) for k, v in f["params"].items()}
                readouts[j][s] = {ev: {"b0": f["b0"][ev], "b1": f["b1"][ev], "sigma": f["sigma"][ev]} for ev in f["b0"]}
            continue
        res = fit_dopamine(m, by_session, mode="neural", restarts=restarts, seed=seed, progress=progress)
        pos = {str(s): i for i, s in enumerate(res.subjects)}
        missing = [s for s in sessions if s not in pos]
        if missing:
            raise InputError(f"model {m.name}: session(s) {', '.join(missing[:3])} not fitted (no usable trials?)")
        idx = np.array([pos[s] for s in sessions])
        loglik[:, j] = res.loglik_[idx]
        n_obs[:, j] = res.n_obs_[idx]
        n_params[:, j] = res.n_params + readout_k
        table = res.params
        for s in sessions:
            params[j][s] = {k: float(v) for k, v in table.loc[s].items()}
    if np.any(n_obs != n_obs[:, :1]):
        i = int(np.flatnonzero(np.any(n_obs != n_obs[:, :1], axis=1))[0])
        raise RuntimeError(f"session {sessions[i]}: the models scored different numbers of responses "
                           f"({dict(zip(names, n_obs[i].tolist()))}); their likelihoods are not comparable")
    bad = ~np.isfinite(loglik)
    if bad.any():
        i, j = map(int, np.argwhere(bad)[0])
        raise InputError(f"session {sessions[i]}: model {names[j]} has no finite likelihood (constant responses?)")
    lme = -0.5 * (n_params * np.log(np.maximum(n_obs[:, :1], 1)) - 2.0 * loglik)     # -BIC/2
    return DopamineComparison(names, sessions, signal, loglik, n_params, n_obs[:, 0], params, bms(lme, names),
                              readout=readouts)
