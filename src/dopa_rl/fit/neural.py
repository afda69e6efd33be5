"""Neural and joint fitting: learning parameters fitted to dopamine responses, alone or with behaviour.

:class:`DopamineModel` wraps any model offering the model interface (``learning_params``, ``pack_learning``,
``rpes``: :mod:`dopa_rl.models.base`), built-in or a user's, so that :func:`dopa_rl.fit.fit` (same
optimiser, restarts, standard errors and :class:`~dopa_rl.fit.FitResult`) fits it:

* ``mode="neural"``: only the model's learning parameters are searched; the readout ``response ~ b0 + b1 *
  delta + noise`` at the cue and at the outcome (each its own b0, b1, sigma) is solved in closed form per
  candidate by :func:`dopa_rl.models.dopamine.profile_loglik`;
* ``mode="joint"``: every parameter of the model; log-likelihood = behaviour (licks or choices) + the
  dopamine profile log-likelihood, with the learning parameters shared.

Data: the behaviour table plus ``dopamine_cue`` / ``dopamine_outcome`` columns (from
:func:`dopa_rl.neural.dataset.load_responses`); NaN responses are left out.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from dopa_rl.errors import InputError
from dopa_rl.models.base import Model, Packed, take
from dopa_rl.models.dopamine import profile_loglik
from dopa_rl.models.params import ParamSpec

__all__ = ["DopamineModel", "fit_dopamine", "MODES"]

MODES = ("behavior", "neural", "joint")


class DopamineModel(Model):
    """A model seen through its dopamine responses (``neural``) or behaviour + dopamine (``joint``)."""

    def __init__(self, base: Model, mode: str = "neural"):
        if mode not in ("neural", "joint"):
            raise InputError(f"fit mode {mode!r}: a dopamine model is neural or joint")
        self.base, self.mode = base, mode
        self.name = f"{base.name}:{mode}"
        self.kind = base.kind
        self.description = f"{base.description}; fitted to dopamine" + (" and behaviour" if mode == "joint" else "")
        learning = set(base.learning_params)
        if not learning:
            raise InputError(f"model {base.name} has no learning parameters to fit to dopamine")
        self.spec = ParamSpec([p for p in base.spec if mode == "joint" or p.name in learning])
        self.required_columns = tuple(base.required_columns) if mode == "joint" else \
            tuple(c for c in base.required_columns if c not in base.observation_columns)
        self._defaults = {p.name: p.default for p in base.spec}
        self._index = [base.param_names.index(n) for n in self.spec.names]

    def options(self) -> dict:
        """The wrapped model and mode (:func:`dopa_rl.fit.results.rebuild_model` rebuilds it)."""
        return {"fit": self.mode, "base": self.base.name, "base_options": self.base.options()}

    def full_x(self, x: np.ndarray) -> np.ndarray:
        """Natural-space rows of the base model's parameters (the others at their defaults)."""
        x = np.atleast_2d(np.asarray(x, dtype=float))
        full = np.tile([self._defaults[n] for n in self.base.param_names], (x.shape[0], 1))
        full[:, self._index] = x
        return full

    def pack(self, df: pd.DataFrame) -> Packed:
        df = df.reset_index(drop=True)
        have = [c for c in ("dopamine_cue", "dopamine_outcome") if c in df.columns]
        if not have:
            raise InputError("neural fitting needs dopamine_cue and/or dopamine_outcome per trial")
        packed = self.base.pack(df) if self.mode == "joint" else self.base.pack_learning(df)
        groups = [packed.row_index[s, : packed.n_trials[s]] for s in range(packed.n_subjects)]
        T = packed.rewards.shape[1]
        dop = {}
        for ev in ("cue", "outcome"):
            col = f"dopamine_{ev}"
            values = pd.to_numeric(df[col], errors="coerce").to_numpy(float) if col in df.columns \
                else np.full(len(df), np.nan)
            dop[ev] = take(values, groups, T, np.nan, float)
        packed.extra.update(dop_cue=dop["cue"], dop_outcome=dop["outcome"])
        n_dop = np.isfinite(dop["cue"]).sum(axis=1) + np.isfinite(dop["outcome"]).sum(axis=1)
        if (n_dop < 3).any():
            bad = [s for s, n in zip(packed.subjects, n_dop) if n < 3]
            raise InputError(f"subject(s) {', '.join(bad)}: fewer than 3 dopamine responses; cannot fit to dopamine")
        packed.n_obs = (packed.n_obs if self.mode == "joint" else 0) + n_dop.astype(np.int64)
        return packed

    def rpes(self, x_full: np.ndarray, data: Packed, lanes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cue and outcome RPEs [L, T] for rows of base-model parameters (the base model's own)."""
        return self.base.rpes(x_full, data, np.asarray(lanes, np.int64))

    def dopamine_loglik(self, x_full: np.ndarray, data: Packed, lanes: np.ndarray) -> np.ndarray:
        cue, out = self.rpes(x_full, data, lanes)
        ll = np.zeros(len(lanes))
        for delta, y in ((cue, data.extra["dop_cue"]), (out, data.extra["dop_outcome"])):
            yl = y[lanes]
            has = np.isfinite(yl).sum(axis=1) >= 3
            if has.any():
                prof = profile_loglik(delta, yl).loglik
                ll += np.where(has, prof, 0.0)
        return np.where(np.isnan(ll), -np.inf, ll)

    def loglik(self, x, data, lanes):
        full = self.full_x(x)
        ll = self.dopamine_loglik(full, data, lanes)
        if self.mode == "joint":
            ll = ll + self.base.loglik(full, data, lanes)
        return ll

    def simulate(self, params: Mapping[str, float], task, rng, *, subject="1", session="1"):
        return self.base.simulate({**self._defaults, **params}, task, rng, subject=subject, session=session)

    def trajectories(self, x: np.ndarray, data: Packed, s: int) -> pd.DataFrame:
        return self.base.trajectories(self.full_x(x)[0], data, s)


def fit_dopamine(model: Model, trials: pd.DataFrame, *, mode: str = "neural", restarts: int = 10, seed: int = 0,
                 method: str = "mle", n_jobs: int | None = None, progress: bool | None = None):
    """Fit ``model`` to behaviour (``mode="behavior"``), to dopamine responses (``neural``) or both (``joint``).

    Returns a :class:`~dopa_rl.fit.FitResult`; for neural fits its parameters are the learning ones only.
    """
    from dopa_rl.fit import fit

    if mode not in MODES:
        raise InputError(f"mode {mode!r}: choose one of {', '.join(MODES)}")
    if mode == "behavior":
        missing = [c for c in model.required_columns if c not in trials.columns or trials[c].isna().all()]
        if missing:
            raise InputError(f"`mode` behavior: model {model.name} needs column(s) {', '.join(missing)} in the "
                             f"behavior (use `mode` neural to fit the dopamine alone, or regress on fixed `params`)")
        return fit(model, trials, method=method, restarts=restarts, seed=seed, n_jobs=n_jobs, progress=progress)
    return fit(DopamineModel(model, mode), trials, method=method, restarts=restarts, seed=seed, n_jobs=n_jobs,
               progress=progress)
