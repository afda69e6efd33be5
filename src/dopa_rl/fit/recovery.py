"""Recovery studies: simulate a population from known parameters, fit it, and see what comes back.

* Parameter recovery: correlation, bias (mean fitted - true) and RMSE per parameter.
* Model recovery: data from each model, every model fitted to it; confusion matrices ``P(selected |
  simulated)`` by per-subject BIC and by the random-effects posterior (each subject's most probable model).

The simulated population: by default each parameter's unconstrained value is drawn from
``N(prior_mean, (POP_SD_FACTOR * prior_sd)^2)`` (the model's default prior, narrowed to a plausible lab
population); ``params`` overrides a parameter with a fixed value or a ``(low, high)`` uniform range in
natural units.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

from dopa_rl.errors import InputError
from dopa_rl.models.base import Model

__all__ = ["POP_SD_FACTOR", "draw_population", "simulate_study", "recovery_stats", "ParameterRecovery",
           "recover_parameters", "ModelRecovery", "recover_models"]

POP_SD_FACTOR = 0.5


def draw_population(model: Model, n_subjects: int, rng: np.random.Generator,
                    params: Mapping[str, float | tuple[float, float]] | None = None) -> pd.DataFrame:
    """[n_subjects, k] natural-space parameters (see the module docstring)."""
    spec = model.spec
    params = dict(params or {})
    unknown = sorted(set(params) - set(spec.names))
    if unknown:
        raise InputError(f"unknown parameter(s) {', '.join(unknown)}; {model.name} takes {', '.join(spec.names)}")
    z = spec.prior_mean() + POP_SD_FACTOR * spec.prior_sd() * rng.standard_normal((n_subjects, len(spec)))
    x = spec.to_natural(z)
    problems = []
    for j, p in enumerate(spec):
        if p.name not in params:
            continue
        v = params[p.name]
        if isinstance(v, (tuple, list)):
            lo, hi = map(float, v)
            if not (p.lower <= lo <= hi <= p.upper):
                problems.append(f"{p.name} range {lo:g}..{hi:g} is not inside [{p.lower:g}, {p.upper:g}]")
            x[:, j] = lo + (hi - lo) * rng.random(n_subjects)
        else:
            msg = p.check(float(v))
            if msg:
                problems.append(msg)
            x[:, j] = float(v)
    if problems:
        raise InputError(f"{model.name} population: " + "; ".join(problems))
    return pd.DataFrame(x, columns=spec.names, index=pd.Index([f"sim{i + 1}" for i in range(n_subjects)], name="subject"))


def simulate_study(model: Model, task, truth: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """One behaviour table: ``model`` run on ``task`` once per row of ``truth`` (subject = the row's label)."""
    frames = [model.simulate(dict(zip(truth.columns, map(float, row))), task, rng, subject=str(s)).trials
              for s, row in zip(truth.index, truth.to_numpy())]
    return pd.concat(frames, ignore_index=True)


def recovery_stats(truth: pd.DataFrame, fitted: pd.DataFrame) -> pd.DataFrame:
    """Per parameter: Pearson r, bias (mean fitted - true), RMSE, and r of the unconstrained-scale ranks."""
    rows = {}
    for name in truth.columns:
        t, f = truth[name].to_numpy(float), fitted[name].to_numpy(float)
        r = np.corrcoef(t, f)[0, 1] if np.std(t) > 0 and np.std(f) > 0 else np.nan
        rows[name] = {"r": r, "bias": float(np.mean(f - t)), "rmse": float(np.sqrt(np.mean((f - t) ** 2))),
                      "spearman": float(pd.Series(t).corr(pd.Series(f), method="spearman"))}
    return pd.DataFrame(rows).T


@dataclass
class ParameterRecovery:
    """A parameter-recovery study: true and fitted parameters per simulated subject and their agreement (``stats``)."""

    model: str
    truth: pd.DataFrame
    fitted: pd.DataFrame
    stats: pd.DataFrame
    result: object

    def summary(self) -> str:
        return (f"Parameter recovery: {self.model}, {len(self.truth)} subjects, method {self.result.method}\n"
                + self.stats.to_string(float_format=lambda v: f"{v:.3f}"))

    def to_dict(self) -> dict:
        return {"model": self.model, "subjects": len(self.truth), "method": self.result.method,
                "stats": {k: {c: (float(v) if np.isfinite(v) else None) for c, v in row.items()}
                          for k, row in self.stats.to_dict(orient="index").items()},
                "truth": self.truth.reset_index().to_dict(orient="list"),
                "fitted": self.fitted.reset_index().to_dict(orient="list")}


def recover_parameters(model: Model, task, n_subjects: int, *, seed: int = 0, method: str = "mle", restarts=10,
                       params=None, scheduler=None, progress: bool | None = None) -> ParameterRecovery:
    """Parameter recovery: simulate ``n_subjects`` learners of ``model`` on ``task`` (parameters drawn, or
    ``params``), fit them, and compare the estimates with the truth."""

    from dopa_rl.fit.mle import fit

    if n_subjects < 1:
        raise InputError(f"`n_subjects` {n_subjects}: need at least 1")
    rng = np.random.default_rng([int(seed), 11])
    truth = draw_population(model, n_subjects, rng, params)
    df = simulate_study(model, task, truth, rng)
    res = fit(model, df, method=method, restarts=restarts, seed=seed, scheduler=scheduler, progress=progress)
    fitted = res.params.loc[truth.index]
    return ParameterRecovery(model.name, truth, fitted, recovery_stats(truth, fitted), res)


@dataclass
class ModelRecovery:
    """A model-recovery study: how often each simulated model is the one selected (BIC and random-effects confusion)."""

    models: list[str]
    confusion_bic: pd.DataFrame      # rows: simulated, columns: selected (fractions of subjects)
    confusion_rfx: pd.DataFrame
    winner_pxp: dict                 # simulated model -> model with the highest protected exceedance
    comparisons: list

    def summary(self) -> str:
        f = lambda df: df.to_string(float_format=lambda v: f"{v:.2f}")
        return ("Model recovery: P(selected | simulated)\nby BIC:\n" + f(self.confusion_bic)
                + "\nby random-effects posterior:\n" + f(self.confusion_rfx)
                + "\nbest by protected exceedance per simulated model: "
                + ", ".join(f"{k} -> {v}" for k, v in self.winner_pxp.items()))

    def to_dict(self) -> dict:
        return {"models": self.models, "confusion_bic": self.confusion_bic.to_dict(orient="index"),
                "confusion_rfx": self.confusion_rfx.to_dict(orient="index"), "winner_pxp": self.winner_pxp}


def recover_models(models: list[Model], task, n_subjects: int, *, seed: int = 0, method: str = "mle", restarts=10,
                   params: Mapping[str, Mapping] | None = None, scheduler=None,
                   progress: bool | None = None) -> ModelRecovery:
    """Simulate ``n_subjects`` from each model and fit all of them; ``params[model name]`` sets that model's
    population (see :func:`draw_population`)."""
    from dopa_rl.fit.compare import compare_models

    names = [m.name for m in models]
    if len(set(names)) != len(names) or len(names) < 2:
        raise InputError("model recovery needs at least 2 different models")
    bic_rows, rfx_rows, winners, comps = [], [], {}, []
    for i, gen in enumerate(models):
        rng = np.random.default_rng([int(seed), 12, i])
        truth = draw_population(gen, n_subjects, rng, (params or {}).get(gen.name))
        df = simulate_study(gen, task, truth, rng)
        comp = compare_models(models, df, method=method, restarts=restarts, seed=seed, scheduler=scheduler,
                              progress=progress)
        K = len(models)
        by_bic = np.argmin(np.stack([r.bic.to_numpy() for r in comp.fits], axis=1), axis=1)
        by_rfx = np.argmax(comp.bms.g, axis=1)
        bic_rows.append(np.bincount(by_bic, minlength=K) / len(by_bic))
        rfx_rows.append(np.bincount(by_rfx, minlength=K) / len(by_rfx))
        winners[gen.name] = names[int(np.argmax(comp.bms.pxp))]
        comps.append(comp)
    idx = pd.Index(names, name="simulated")
    cols = pd.Index(names, name="selected")
    return ModelRecovery(names, pd.DataFrame(bic_rows, index=idx, columns=cols),
                         pd.DataFrame(rfx_rows, index=idx, columns=cols), winners, comps)
