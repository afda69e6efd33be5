"""The result of a posterior fit (``method="bayes"``): summaries, diagnostics, LOO/WAIC, trial-wise posteriors.

A :class:`BayesResult` is a :class:`~dopa_rl.fit.results.FitResult` whose ``params`` are posterior means and
``se`` posterior sds (natural space), with each subject's 94% highest-density interval (``hdi``), the
group-level posterior (``group``: the population median ``to_natural(mu)`` per parameter), the sampler
diagnostics (R-hat, bulk/tail ESS, divergences; :class:`SamplingWarning` when a threshold is missed) and
PSIS-LOO/WAIC over subjects (the pointwise log-likelihood is one subject's whole series, as in hBayesDM:
trials within a subject are not exchangeable).  The draws live in ``idata`` (ArviZ InferenceData, written by
:meth:`BayesResult.to_netcdf`); JSON keeps the summaries and ``from_json(..., posterior=FILE.nc)`` reattaches
the draws that :meth:`BayesResult.prediction_errors` needs.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dopa_rl.errors import DataWarning, InputError
from dopa_rl.fit.bayes import ESS_PER_CHAIN, HDI_PROB, RHAT_MAX, unconstrained_draws
from dopa_rl.fit.results import FitResult, _number, make_result
from dopa_rl.fit.space import carried_over
from dopa_rl.models.base import Model, Packed


class SamplingWarning(DataWarning):
    """The sampler missed a diagnostic threshold (R-hat, ESS, divergences): the posterior may be wrong."""


def hdi(samples: np.ndarray, prob: float = HDI_PROB) -> np.ndarray:
    """Highest-density interval of ``samples`` along axis 0: array [..., 2] (NaN where a column has a NaN).

    The shortest interval holding ``ceil(prob * n)`` of the sorted draws (ArviZ's definition)."""
    a = np.sort(np.asarray(samples, dtype=float), axis=0)
    n = a.shape[0]
    m = max(int(np.ceil(prob * n)), 1)
    width = a[m - 1:] - a[: n - m + 1]
    with np.errstate(invalid="ignore"):
        best = np.argmin(np.where(np.isnan(width), np.inf, width), axis=0)
    low = np.take_along_axis(a, best[None], axis=0)[0]
    high = np.take_along_axis(a, best[None] + m - 1, axis=0)[0]
    bad = np.isnan(a).any(axis=0)
    return np.stack([np.where(bad, np.nan, low), np.where(bad, np.nan, high)], axis=-1)


def _flat(a: np.ndarray) -> np.ndarray:
    """[chain, draw, ...] -> [chain * draw, ...]."""
    return a.reshape((-1,) + a.shape[2:])


def inference_data(model: Model, data: Packed, d: dict, options: dict):
    """ArviZ InferenceData of the draws: posterior (``mu``, ``sigma``, ``u`` or ``z`` unconstrained; each
    parameter by name in natural space per subject; ``<name>_group`` = to_natural(mu)), log_likelihood
    ``y`` per subject, sample_stats ``diverging``."""
    import arviz as az

    names = model.spec.names
    z = unconstrained_draws(d)
    x = model.spec.to_natural(z)
    post: dict[str, np.ndarray] = {}
    dims: dict[str, list[str]] = {}
    for key in ("mu", "sigma"):
        if key in d:
            post[key] = d[key]
            dims[key] = ["param"]
    key = "u" if "u" in d else "z"
    post[key] = d[key]
    dims[key] = ["subject", "param"]
    for j, n in enumerate(names):
        post[n] = x[..., j]
        dims[n] = ["subject"]
    if "mu" in d:
        g = model.spec.to_natural(d["mu"])
        for j, n in enumerate(names):
            post[f"{n}_group"] = g[..., j]
    dims["y"] = ["subject"]
    attrs = {"model": model.name, **{k: str(v) for k, v in options.items()}}
    return az.from_dict(posterior=post, log_likelihood={"y": d["log_lik"]},
                        sample_stats={"diverging": d["diverging"].astype(bool)},
                        coords={"subject": list(data.subjects), "param": names}, dims=dims, attrs=attrs)


def diagnostics(idata, sampled: list[str]) -> dict:
    """R-hat (rank-normalised), bulk and tail ESS over every sampled variable; divergences; chains, draws."""
    import arviz as az

    post = idata.posterior[sampled]
    rhat = az.rhat(post)
    bulk = az.ess(post, method="bulk")
    tail = az.ess(post, method="tail")
    mx = lambda ds: float(max(float(ds[v].max()) for v in sampled))
    mn = lambda ds: float(min(float(ds[v].min()) for v in sampled))
    return {"rhat_max": mx(rhat), "ess_bulk_min": mn(bulk), "ess_tail_min": mn(tail),
            "divergences": int(idata.sample_stats["diverging"].values.sum()),
            "chains": int(idata.posterior.sizes["chain"]), "draws": int(idata.posterior.sizes["draw"])}


def diagnostic_problems(diag: dict) -> list[str]:
    """The thresholds missed: R-hat > 1.01, bulk or tail ESS < 100 per chain, any divergence."""
    out = []
    need = ESS_PER_CHAIN * diag["chains"]
    if not diag["rhat_max"] <= RHAT_MAX:
        out.append(f"R-hat {diag['rhat_max']:.3f} > {RHAT_MAX}")
    if not diag["ess_bulk_min"] >= need:
        out.append(f"bulk ESS {diag['ess_bulk_min']:.0f} < {need}")
    if not diag["ess_tail_min"] >= need:
        out.append(f"tail ESS {diag['ess_tail_min']:.0f} < {need}")
    if diag["divergences"]:
        out.append(f"{diag['divergences']} divergent transition(s)")
    return out


def information_criteria(idata) -> dict:
    """PSIS-LOO and WAIC (log scale: elpd, its SE, effective parameters) over subjects."""
    import arviz as az

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the Pareto k and WAIC variance warnings: reported as numbers here
        loo = az.loo(idata, pointwise=True)
        waic = az.waic(idata)
    return {"loo": {"elpd": float(loo.elpd_loo), "se": float(loo.se), "p": float(loo.p_loo),
                    "pareto_k_max": float(np.max(loo.pareto_k.values))},
            "waic": {"elpd": float(waic.elpd_waic), "se": float(waic.se), "p": float(waic.p_waic)}}


@dataclass
class BayesResult(FitResult):
    """A posterior fit (see the module docstring); ``x`` posterior means, ``se_`` posterior sds."""

    hdi_: np.ndarray = None                    # [S, k, 2] natural space
    group: dict[str, dict] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    criteria: dict[str, dict] = field(default_factory=dict)
    bayes: dict[str, Any] = field(default_factory=dict)
    idata: Any = None

    @property
    def hdi(self) -> pd.DataFrame:
        """Per subject, ``<name>_low`` and ``<name>_high`` of the 94% HDI."""
        cols = {}
        for j, n in enumerate(self.param_names):
            cols[f"{n}_low"] = self.hdi_[:, j, 0]
            cols[f"{n}_high"] = self.hdi_[:, j, 1]
        return pd.DataFrame(cols, index=self._index)

    @property
    def problems(self) -> list[str]:
        return diagnostic_problems(self.diagnostics)

    def to_frame(self) -> pd.DataFrame:
        df = self.params.copy()
        for j, n in enumerate(self.param_names):
            df[f"sd_{n}"] = self.se_[:, j]
            df[f"{n}_low"] = self.hdi_[:, j, 0]
            df[f"{n}_high"] = self.hdi_[:, j, 1]
        df["n_trials"] = self.n_trials
        df["loglik"] = self.loglik
        return df

    def summary(self) -> str:
        pct = round(100 * HDI_PROB)
        shown = pd.DataFrame(index=self._index)
        for j, n in enumerate(self.param_names):
            shown[n] = [f"{m:.3g} [{lo:.3g}, {hi:.3g}]" for m, (lo, hi) in zip(self.x[:, j], self.hdi_[:, j])]
        shown["n_trials"] = self.n_trials_
        with pd.option_context("display.width", 200, "display.max_columns", 50, "display.max_rows", 500):
            table = shown.to_string()
        b, dg = self.bayes, self.diagnostics
        lines = [f"Model: {self.model_name}    Method: bayes ({'hierarchical' if b.get('hierarchical') else 'per subject'}"
                 f", NUTS)    Subjects: {len(self.subjects)}    Chains: {dg['chains']} x {dg['draws']} draws "
                 f"(warm-up {b.get('warmup')})",
                 f"Posterior means and {pct}% HDI:", table]
        if self.group:
            rows = [f"  {n:<15} {g['mean']:.4g} [{g['hdi'][0]:.4g}, {g['hdi'][1]:.4g}]  (mu {g['mu']:.3g}, "
                    f"sigma {g['sigma']:.3g} unconstrained; R-hat {g['rhat']:.3f}, bulk ESS {g['ess_bulk']:.0f})"
                    for n, g in self.group.items()]
            lines += [f"Group (population median, {pct}% HDI):", *rows]
        lines.append(f"Diagnostics: R-hat max {dg['rhat_max']:.4f}   bulk ESS min {dg['ess_bulk_min']:.0f}   "
                     f"tail ESS min {dg['ess_tail_min']:.0f}   divergences {dg['divergences']}")
        if self.criteria:
            lo, wa = self.criteria["loo"], self.criteria["waic"]
            lines.append(f"PSIS-LOO elpd {lo['elpd']:.2f} (SE {lo['se']:.2f}, p_loo {lo['p']:.2f}, Pareto k max "
                         f"{lo['pareto_k_max']:.2f})   WAIC elpd {wa['elpd']:.2f} (SE {wa['se']:.2f})")
        if self.problems:
            lines.append("Warning: " + "; ".join(self.problems) + " (run more warm-up/draws or raise --target-accept)")
        return "\n".join(lines)

    # -- JSON -------------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = super().to_dict()
        for i, s in enumerate(d["subjects"]):
            s["sd"] = s.pop("se")
            s["hdi"] = {n: [float(self.hdi_[i, j, 0]), float(self.hdi_[i, j, 1])] for j, n in enumerate(self.param_names)}
            for key in ("aic", "bic", "restarts_at_best", "restarts_agree", "converged", "at_bound"):
                s.pop(key, None)
        d.pop("total", None)
        d.pop("restarts", None)
        d.update(hdi_prob=HDI_PROB, group=self.group, diagnostics=self.diagnostics, bayes=self.bayes,
                 loo=self.criteria.get("loo"), waic=self.criteria.get("waic"),
                 total={"loglik": _number(self.loglik_.sum())})
        return d

    @classmethod
    def from_dict(cls, d: dict, model: Model | None = None, posterior=None) -> "BayesResult":
        """Rebuild from :meth:`to_dict`; ``posterior`` (an InferenceData or the path of a .nc file) reattaches
        the draws."""
        try:
            d = dict(d)
            names = list(d["param_names"])
            subs = []
            for s in d["subjects"]:
                s = dict(s)
                s["se"] = s["sd"]
                s.setdefault("converged", True)
                s.setdefault("restarts_at_best", 0)
                subs.append(s)
            base = FitResult.from_dict.__func__(cls, {**d, "subjects": subs, "restarts": 0}, model)
            base.hdi_ = np.array([[[float(s["hdi"][n][0]), float(s["hdi"][n][1])] for n in names] for s in subs],
                                 dtype=float).reshape(-1, len(names), 2)
            base.group = d["group"] or {}
            base.diagnostics = dict(d["diagnostics"])
            base.bayes = dict(d["bayes"])
            base.criteria = {k: d[k] for k in ("loo", "waic") if d.get(k)}
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not a dopa_rl posterior fit result ({type(exc).__name__}: {exc})") from None
        if posterior is not None:
            base.idata = _open_posterior(posterior)
        return base

    @classmethod
    def from_json(cls, text_or_path, model: Model | None = None, posterior=None) -> "BayesResult":
        out = FitResult.from_json.__func__(cls, text_or_path, model)
        if posterior is not None:
            out.idata = _open_posterior(posterior)
        return out

    def to_netcdf(self, path) -> None:
        """Write the draws (ArviZ InferenceData, netCDF4/HDF5) to ``path`` atomically."""
        if self.idata is None:
            raise InputError("this result has no draws (read with posterior=FILE.nc to attach them)")
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            self.idata.to_netcdf(str(tmp))
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()

    # -- trial-wise posteriors --------------------------------------------------------------------------
    def parameter_draws(self, n: int | None = None, seed: int = 0) -> np.ndarray:
        """Natural-space draws [M, S, k] (``n`` of them, evenly thinned; all when None)."""
        if self.idata is None:
            raise InputError("trial-wise posteriors need the draws: keep the result of fit(), or read it with "
                             "BayesResult.from_json(..., posterior='post.nc')")
        post = self.idata.posterior
        x = np.stack([_flat(post[name].values) for name in self.param_names], axis=-1)    # [M, S, k]
        if n is not None and n < x.shape[0]:
            x = x[np.linspace(0, x.shape[0] - 1, int(n)).round().astype(int)]
        return x

    def prediction_errors(self, data: pd.DataFrame | Packed, *, model: Model | None = None, choice_base: int = 0,
                          n_draws: int = 200, prob: float = HDI_PROB) -> pd.DataFrame:
        """Per-trial posterior of every trajectory column (prediction errors, values, choice probabilities):
        the posterior mean under the column's own name and the ``prob`` HDI as ``<col>_low``/``<col>_high``,
        from ``n_draws`` evenly thinned draws; rows and id columns as :meth:`FitResult.prediction_errors`."""
        model = model or self.model
        if model is None:
            raise InputError(f"model {self.model_name!r} is not registered here; pass it: "
                             f"result.prediction_errors(data, model=...)")
        draws = self.parameter_draws(n_draws)
        # the id columns, row order and fingerprint check of the point-estimate path, once
        frame = FitResult.prediction_errors(self, data, model=model, choice_base=0)
        source = data.reset_index(drop=True) if isinstance(data, pd.DataFrame) else None
        packed = model.pack(source) if source is not None else data
        if self.provenance.get("carry_over"):
            packed = carried_over(packed)
        index = {s: i for i, s in enumerate(packed.subjects)}
        blocks = []
        for i, s in enumerate(self.subjects):
            j = index[s]
            per = [model.trajectories(draws[m, i], packed, j) for m in range(draws.shape[0])]
            cols = list(per[0].columns)
            stack = np.stack([p[cols].to_numpy(dtype=float) for p in per])              # [M, T, C]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)                    # all-NaN: a missed trial
                mean = np.nanmean(stack, axis=0)
            iv = hdi(stack, prob)
            block = {}
            for c, name in enumerate(cols):
                block[name] = mean[:, c]
                block[f"{name}_low"] = iv[:, c, 0]
                block[f"{name}_high"] = iv[:, c, 1]
            blocks.append(pd.DataFrame(block))
        post = pd.concat(blocks, ignore_index=True)
        lead = [c for c in ("subject", "session", "trial", "cue", "choice", "reward") if c in frame.columns]
        out = pd.concat([frame[lead].reset_index(drop=True), post], axis=1)
        if choice_base:
            if "choice" in out.columns:
                out["choice"] = out["choice"] + choice_base
            ren = {}
            for c in out.columns:
                for prefix in ("q_", "p_choice_"):
                    stem = c[len(prefix):].split("_")[0] if c.startswith(prefix) else ""
                    if stem.isdigit():
                        ren[c] = f"{prefix}{int(stem) + choice_base}" + c[len(prefix) + len(stem):]
            out = out.rename(columns=ren)
        return out


def _open_posterior(posterior):
    import arviz as az

    if isinstance(posterior, (str, os.PathLike)):
        path = Path(posterior)
        if not path.is_file():
            raise InputError(f"{path}: no such file")
        try:
            return az.from_netcdf(str(path))
        except Exception as exc:  # not a netCDF file
            raise InputError(f"{path}: not an ArviZ InferenceData file ({type(exc).__name__}: {exc})") from None
    return posterior


def build_result(model: Model, data: Packed, d: dict, options: dict) -> BayesResult:
    """Summaries, diagnostics and LOO/WAIC of the draws ``d`` (:func:`dopa_rl.fit.bayes.sample`)."""
    import arviz as az

    idata = inference_data(model, data, d, options)
    names = model.spec.names
    S, k = data.n_subjects, len(names)
    x_draws = np.stack([_flat(idata.posterior[n].values) for n in names], axis=-1)     # [M, S, k]
    x = x_draws.mean(axis=0)
    sd = x_draws.std(axis=0, ddof=1)
    iv = hdi(x_draws)
    sampled = [v for v in ("mu", "sigma", "u", "z") if v in d]
    diag = diagnostics(idata, sampled)
    group = {}
    if "mu" in d:
        rhat = az.rhat(idata.posterior[[f"{n}_group" for n in names] + ["sigma"]])
        bulk = az.ess(idata.posterior[[f"{n}_group" for n in names] + ["sigma"]], method="bulk")
        for j, n in enumerate(names):
            g = _flat(idata.posterior[f"{n}_group"].values)
            s_j = _flat(d["sigma"])[:, j]
            group[n] = {"mean": float(g.mean()), "sd": float(g.std(ddof=1)), "hdi": [float(v) for v in hdi(g)],
                        "mu": float(_flat(d["mu"])[:, j].mean()), "sigma": float(s_j.mean()),
                        "rhat": float(max(float(rhat[f"{n}_group"]), float(rhat["sigma"].values[j]))),
                        "ess_bulk": float(min(float(bulk[f"{n}_group"]), float(bulk["sigma"].values[j])))}
    ll = model.loglik(x, data, np.arange(S, dtype=np.int64))

    class _Draws:  # what make_result reads of a restart fit
        converged = np.ones(S, bool)
        n_at_best = np.full(S, options["chains"])
        n_restarts = np.full(S, options["chains"])
        evaluations = 0
        redrawn = 0
        edge_best = np.zeros(S, bool)

    z = model.spec.to_unconstrained(x)
    result = make_result(model, "bayes", data, z, x, sd, ll, _Draws, options["chains"], options["seed"], None,
                         cls=BayesResult, hdi_=iv, group=group, diagnostics=diag,
                         criteria=information_criteria(idata), bayes=options, idata=idata)
    result.at_bound = np.zeros((S, k), bool)
    result.meta = {}
    result.provenance["bayes"] = options
    problems = diagnostic_problems(diag)
    if problems:
        warnings.warn(SamplingWarning(f"{model.name}: sampler diagnostics missed thresholds: " + "; ".join(problems)
                                      + " (run more warm-up/draws or raise target_accept)"), stacklevel=3)
    return result
