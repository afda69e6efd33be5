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
from dopa_rl.fit.bayes import ESS_MIN, HDI_PROB, RHAT_MAX, unconstrained_draws
from dopa_rl.fit.results import FitResult, _number, data_fingerprint, versions
from dopa_rl.fit.space import carried_over
from dopa_rl.models.base import Model, Packed

__all__ = ["SamplingWarning", "hdi", "inference_data", "diagnostics", "diagnostic_problems",
           "information_criteria", "BayesResult", "build_result"]


class SamplingWarning(DataWarning):
    """The sampler missed a diagnostic threshold (R-hat, ESS, divergences): the posterior may be wrong."""


def hdi(samples: np.ndarray, prob: float = HDI_PROB) -> np.ndarray:
    """Highest-density interval of ``samples`` along axis 0: array [..., 2] (NaN where a column has a NaN).

    ArviZ's definition (``arviz.hdi``), vectorised over the other axes: of the sorted draws ``a``, the
    narrowest ``[a[i], a[i + floor(prob * n)]]``."""
    a = np.sort(np.asarray(samples, dtype=float), axis=0)
    n = a.shape[0]
    m = int(np.floor(prob * n))
    width = a[m:] - a[: n - m]
    with np.errstate(invalid="ignore"):
        best = np.argmin(np.where(np.isnan(width), np.inf, width), axis=0)
    low = np.take_along_axis(a, best[None], axis=0)[0]
    high = np.take_along_axis(a, best[None] + m, axis=0)[0]
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
    """The thresholds missed: R-hat > 1.01, bulk or tail ESS < 400, any divergence."""
    out = []
    need = ESS_MIN
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


GROUP_KEYS = ("mean", "sd", "hdi")


@dataclass
class BayesResult(FitResult):
    """A posterior fit (see the module docstring); ``x`` posterior means, ``se_`` posterior sds.

    ``group`` maps each parameter to ``{"mean", "sd", "hdi"}`` of the population median
    ``to_natural(mu)`` (hierarchical fits; empty otherwise); ``group_detail`` adds per parameter ``mu`` and
    ``sigma`` (unconstrained posterior means), R-hat and bulk ESS; ``diagnostics`` holds ``rhat_max``,
    ``ess_bulk_min``, ``ess_tail_min``, ``divergences``, ``chains`` and ``draws``.
    """

    hdi_: np.ndarray = None                    # [S, k, 2] natural space
    group: dict[str, dict] = field(default_factory=dict)
    group_detail: dict[str, dict] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    criteria: dict[str, dict] = field(default_factory=dict)
    bayes: dict[str, Any] = field(default_factory=dict)
    idata: Any = None

    kind = "fit"
    description = "model fitted to behaviour by posterior sampling (NUTS): posterior means, sds and HDIs per subject"

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
        """The diagnostic thresholds this posterior missed (empty: none)."""
        return diagnostic_problems(self.diagnostics)

    @property
    def loo(self) -> dict | None:
        """PSIS-LOO over subjects: ``elpd``, ``se``, ``p``, ``pareto_k_max``."""
        return self.criteria.get("loo")

    @property
    def waic(self) -> dict | None:
        """WAIC over subjects: ``elpd``, ``se``, ``p``."""
        return self.criteria.get("waic")

    def to_frame(self) -> pd.DataFrame:
        """One row per subject.

        Returns
        -------
        pandas.DataFrame
            Posterior means, ``sd_<name>``, ``<name>_low``/``_high`` (94% HDI), ``n_trials`` and the
            log-likelihood at the posterior means.
        """
        df = self.params.copy()
        for j, n in enumerate(self.param_names):
            df[f"sd_{n}"] = self.se_[:, j]
            df[f"{n}_low"] = self.hdi_[:, j, 0]
            df[f"{n}_high"] = self.hdi_[:, j, 1]
        df["n_trials"] = self.n_trials
        df["loglik"] = self.loglik
        return df

    def summary(self) -> str:
        """The fit as text.

        Returns
        -------
        str
            The per-subject table (posterior means and 94% HDIs), the group posterior, the diagnostics (with a
            warning line when a threshold is missed) and PSIS-LOO/WAIC.
        """
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
            rows = []
            for n, g in self.group.items():
                det = self.group_detail.get(n, {})
                rows.append(f"  {n:<15} {g['mean']:.4g} [{g['hdi'][0]:.4g}, {g['hdi'][1]:.4g}]"
                            + (f"  (R-hat {det['rhat']:.3f}, bulk ESS {det['ess_bulk']:.0f})" if det else ""))
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

    def _draw(self, fig, **options) -> None:
        """One panel per parameter: each subject's posterior mean with its 94% HDI (and the group's)."""
        axes = fig.subplots(1, self.n_params, squeeze=False)[0]
        fig.set_size_inches(max(3.0 * self.n_params, 4.0), 3.4)
        ids = [str(s) for s in self.subjects]
        y = np.arange(len(ids))
        pct = round(100 * HDI_PROB)
        for j, (ax, name) in enumerate(zip(axes, self.param_names)):
            err = np.abs(self.hdi_[:, j, :].T - self.x[:, j])
            ax.errorbar(self.x[:, j], y, xerr=err, fmt="o", ms=3, lw=1, label=f"posterior mean, {pct}% HDI")
            if name in self.group:
                g = self.group[name]
                ax.axvspan(g["hdi"][0], g["hdi"][1], color="C1", alpha=0.2, label=f"group median, {pct}% HDI")
            ax.set_yticks(y, ids if j == 0 else [""] * len(ids), fontsize=7)
            ax.set_xlabel(f"{name} (model units)")
            ax.legend(fontsize=6, frameon=False)
        axes[0].set_ylabel("subject (id)")
        fig.suptitle(f"{self.model_name} by NUTS: posterior per subject", fontsize=9)

    # -- JSON -------------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The result as plain JSON-able values.

        Returns
        -------
        dict
            The other fits' shape (``subjects``: ``subject``, ``params`` = posterior means, ``hdi``
            ``{name: [low, high]}``, ``sd``, ``n_trials``, ``n_obs``, ``loglik``) plus ``group``,
            ``diagnostics``, ``loo``, ``waic``, ``hdi_prob``, ``group_detail`` and ``bayes`` (the sampler's
            options).
        """
        names = list(self.param_names)
        subjects = []
        for i, s in enumerate(self.subjects):
            subjects.append({
                "subject": str(s), "n_trials": int(self.n_trials_[i]), "n_obs": int(self.n_obs_[i]),
                "params": {k: float(v) for k, v in zip(names, self.x[i])},
                "hdi": {n: [_number(self.hdi_[i, j, 0]), _number(self.hdi_[i, j, 1])] for j, n in enumerate(names)},
                "sd": {k: _number(v) for k, v in zip(names, self.se_[i])},
                "loglik": _number(self.loglik_[i]),
            })
        return {"schema": self.schema, "model": self.model_name, "method": "bayes", "param_names": names,
                "provenance": self.provenance, "subjects": subjects, "hdi_prob": HDI_PROB,
                "group": self.group, "diagnostics": self.diagnostics,
                "loo": self.criteria.get("loo"), "waic": self.criteria.get("waic"),
                "group_detail": self.group_detail, "bayes": self.bayes,
                "total": {"loglik": _number(self.loglik_.sum())}}

    @classmethod
    def from_dict(cls, d: dict, model: Model | None = None, posterior=None) -> "BayesResult":
        """Rebuild from :meth:`to_dict`.

        Parameters
        ----------
        d : dict
            What :meth:`to_dict` gave (or its JSON read back).
        model : Model, optional
            The model fitted; rebuilt from the registry (its name and options) when not given.
        posterior : arviz.InferenceData or str or Path, optional
            The draws (or the path of the .nc file ``--posterior`` wrote), reattached to the result.

        Returns
        -------
        BayesResult
            The result.
        """
        from dopa_rl.fit.results import _float, rebuild_model

        try:
            if d.get("method") != "bayes":
                raise ValueError(f"method {d.get('method')!r}, not 'bayes'")
            names = list(d["param_names"])
            subs = d["subjects"]
            prov = d.get("provenance") or {}
            if model is None:
                try:
                    model = rebuild_model(d["model"], prov.get("model_options") or {})
                except InputError:
                    model = None
            rows = lambda key: np.array([[_float(s[key][n]) for n in names] for s in subs],
                                        dtype=float).reshape(-1, len(names))
            S = len(subs)
            out = cls(model=model, method="bayes", subjects=[str(s["subject"]) for s in subs], param_names=names,
                      x=rows("params"), se_=rows("sd"), loglik_=np.array([_float(s["loglik"]) for s in subs]),
                      log_prior=np.zeros(S), converged=np.ones(S, bool), n_at_best=np.zeros(S, int), restarts=0,
                      n_trials_=np.array([int(s["n_trials"]) for s in subs], dtype=np.int64),
                      n_obs_=np.array([int(s["n_obs"]) for s in subs], dtype=np.int64),
                      at_bound=np.zeros((S, len(names)), bool), model_name=d["model"], provenance=prov,
                      hdi_=np.array([[[_float(s["hdi"][n][0]), _float(s["hdi"][n][1])] for n in names] for s in subs],
                                    dtype=float).reshape(-1, len(names), 2),
                      group={n: {"mean": _float(g["mean"]), "sd": _float(g["sd"]), "hdi": [_float(v) for v in g["hdi"]]}
                             for n, g in (d["group"] or {}).items()},
                      group_detail=dict(d.get("group_detail") or {}), diagnostics=dict(d["diagnostics"]),
                      criteria={k: d[k] for k in ("loo", "waic") if d.get(k)}, bayes=dict(d.get("bayes") or {}))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise InputError(f"not a dopa_rl posterior fit result ({type(exc).__name__}: {exc})") from None
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
    def parameter_draws(self, n: int | None = None) -> np.ndarray:
        """Natural-space draws [M, S, k] (``n`` of them, evenly thinned; all when None)."""
        if self.idata is None:
            raise InputError("trial-wise posteriors need the draws: keep the result of fit(), or read it with "
                             "BayesResult.from_json(..., posterior='post.nc')")
        post = self.idata.posterior
        x = np.stack([_flat(post[name].values) for name in self.param_names], axis=-1)    # [M, S, k]
        if n is not None and n < x.shape[0]:
            x = x[np.linspace(0, x.shape[0] - 1, int(n)).round().astype(int)]
        return x

    def _packed(self, data, model):
        source = data.reset_index(drop=True) if isinstance(data, pd.DataFrame) else None
        packed = model.pack(source) if source is not None else data
        if self.provenance.get("carry_over"):
            packed = carried_over(packed)
        want = self.provenance.get("data_fingerprint")
        if want and data_fingerprint(packed) != want:
            raise InputError(f"these data are not the data the result was fitted to (fingerprint "
                             f"{data_fingerprint(packed)}, fitted {want}); pass the same behavior table")
        return packed, source

    def trial_draws(self, data: pd.DataFrame | Packed, *, model: Model | None = None, n_draws: int | None = 400):
        """Per-trial quantities for ``n_draws`` posterior draws: a dict of arrays [M, S, T] (``value``, ``rpe``,
        ``p_chosen``; choice models also ``probs`` [M, S, T, K]), computed in JAX
        (:func:`dopa_rl.models.jax_rules.trial_function`), all subjects at once, in chunks of draws."""
        import jax

        from dopa_rl.models.jax_rules import trial_function

        model = self._model(model)
        packed, _ = self._packed(data, model)
        draws = self.parameter_draws(n_draws)
        fn = jax.jit(jax.vmap(trial_function(model, packed, check=False)))
        S, T = packed.rewards.shape
        K = int(packed.extra.get("n_options", 1))
        chunk = max(1, int(4e6 // max(S * T * K, 1)))
        parts = [jax.tree_util.tree_map(np.asarray, fn(draws[i:i + chunk])) for i in range(0, len(draws), chunk)]
        out = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
        logp = out.pop("logp")
        out["p_chosen"] = np.where(np.isnan(out["value"]), np.nan, np.exp(logp)) if "probs" in out else None
        if out["p_chosen"] is None:
            out.pop("p_chosen")
        return out

    def _model(self, model):
        model = model or self.model
        if model is None:
            raise InputError(f"model {self.model_name!r} is not registered here; pass it: "
                             f"result.prediction_errors(data, model=...)")
        return model

    def prediction_errors(self, data: pd.DataFrame | Packed, *, model: Model | None = None, choice_base: int = 0,
                          n_draws: int | None = 400, prob: float = HDI_PROB) -> pd.DataFrame:
        """Per-trial posterior of each subject's values and prediction errors.

        Parameters
        ----------
        data : DataFrame or Packed
            The behavior table the result was fitted to (checked by fingerprint).
        model : Model, optional
            The model, when the result's is not registered here.
        choice_base : int
            Number choices and option columns from 1 (``--choice-base 1``).
        n_draws : int or None
            Evenly thinned posterior draws used (None: all).
        prob : float
            Mass of the highest-density intervals.

        Returns
        -------
        DataFrame
            One row per trial (as :meth:`FitResult.prediction_errors`): the id columns, then for ``value``
            (the value at the cue: the chosen option's, or the summed value of the cues present), ``rpe``
            (``reward - value`` at the outcome) and, for choice models, ``p_chosen`` and ``p_choice_<k>``: the
            posterior mean under the name and the HDI as ``<name>_low``/``<name>_high``.
        """
        model = self._model(model)
        packed, source = self._packed(data, model)
        td = self.trial_draws(packed, model=model, n_draws=n_draws)
        quantities = {"value": td["value"], "rpe": td["rpe"]}
        if "probs" in td:
            quantities["p_chosen"] = td["p_chosen"]
            for k in range(td["probs"].shape[-1]):
                quantities[f"p_choice_{k + choice_base}"] = td["probs"][..., k]
        index = {s: i for i, s in enumerate(packed.subjects)}
        blocks = []
        for s in self.subjects:
            if s not in index:
                raise InputError(f"subject {s} of the result is not in the data")
            j = index[s]
            n = int(packed.n_trials[j])
            block = {"subject": [str(s)] * n}
            if source is not None:
                rows = packed.row_index[j, :n]
                for col in ("session", "trial", "cue", "choice", "reward"):
                    if col in source.columns:
                        v = source[col].to_numpy()[rows]
                        block[col] = v + choice_base if col == "choice" and choice_base else v
            for name, arr in quantities.items():
                a = arr[:, j, :n]
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)          # all-NaN: a missed trial
                    block[name] = np.nanmean(a, axis=0)
                iv = hdi(a, prob)
                block[f"{name}_low"], block[f"{name}_high"] = iv[:, 0], iv[:, 1]
            blocks.append(pd.DataFrame(block))
        return pd.concat(blocks, ignore_index=True)

    def posterior_predictive(self, data: pd.DataFrame | Packed, *, model: Model | None = None,
                             n_draws: int | None = 400, prob: float = HDI_PROB) -> pd.DataFrame:
        """Posterior predictive check of a choice model: by trial number (position in each subject's
        series), the observed fraction of subjects choosing each option and the posterior of the model's
        mean choice probability (over the subjects with a choice on that trial).

        Returns
        -------
        DataFrame
            Columns ``trial``, ``option``, ``n`` (subjects with a choice), ``observed``, ``predicted``
            (posterior mean), ``low``, ``high`` (``prob`` HDI).
        """
        model = self._model(model)
        packed, _ = self._packed(data, model)
        if "choices" not in packed.extra:
            raise InputError(f"model {model.name}: a posterior predictive check of choices needs a choice model")
        td = self.trial_draws(packed, model=model, n_draws=n_draws)
        ch = packed.extra["choices"]
        valid = ch >= 0
        n = valid.sum(axis=0)
        rows = []
        K = td["probs"].shape[-1]
        keep = n > 0
        for k in range(K):
            p = np.where(valid[None], td["probs"][..., k], 0.0).sum(axis=1)[:, keep] / n[keep]   # [M, T']
            obs = ((ch == k) & valid).sum(axis=0)[keep] / n[keep]
            iv = hdi(p, prob)
            rows.append(pd.DataFrame({"trial": np.flatnonzero(keep), "option": k, "n": n[keep], "observed": obs,
                                      "predicted": p.mean(axis=0), "low": iv[:, 0], "high": iv[:, 1]}))
        return pd.concat(rows, ignore_index=True)


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
    group, detail = {}, {}
    if "mu" in d:
        keys = [f"{n}_group" for n in names] + ["sigma"]
        rhat = az.rhat(idata.posterior[keys])
        bulk = az.ess(idata.posterior[keys], method="bulk")
        for j, n in enumerate(names):
            g = _flat(idata.posterior[f"{n}_group"].values)
            group[n] = {"mean": float(g.mean()), "sd": float(g.std(ddof=1)), "hdi": [float(v) for v in hdi(g)]}
            detail[n] = {"mu": float(_flat(d["mu"])[:, j].mean()), "sigma": float(_flat(d["sigma"])[:, j].mean()),
                         "rhat": float(max(float(rhat[f"{n}_group"]), float(rhat["sigma"].values[j]))),
                         "ess_bulk": float(min(float(bulk[f"{n}_group"]), float(bulk["sigma"].values[j])))}
    ll = model.loglik(x, data, np.arange(S, dtype=np.int64))
    provenance = {"model": model.name, "model_options": model.options(), "method": "bayes",
                  "data_fingerprint": data_fingerprint(data), "seed": int(options["seed"]), "versions": versions()}
    if "n_options" in data.extra:
        provenance["n_options"] = int(data.extra["n_options"])
    import jax
    import numpyro

    provenance["versions"].update(jax=jax.__version__, numpyro=numpyro.__version__, arviz=az.__version__)
    provenance["bayes"] = options
    result = BayesResult(
        model=model, method="bayes", subjects=[str(s) for s in data.subjects], param_names=list(names), x=x, se_=sd,
        loglik_=ll, log_prior=np.zeros(S), converged=np.ones(S, bool), n_at_best=np.zeros(S, int), restarts=0,
        n_trials_=np.asarray(data.n_trials, dtype=np.int64).copy(), n_obs_=np.asarray(data.n_obs, dtype=np.int64).copy(),
        at_bound=np.zeros((S, k), bool), provenance=provenance, hdi_=iv, group=group, group_detail=detail,
        diagnostics=diag, criteria=information_criteria(idata), bayes=options, idata=idata)
    problems = diagnostic_problems(diag)
    if problems:
        warnings.warn(SamplingWarning(f"{model.name}: sampler diagnostics missed thresholds: " + "; ".join(problems)
                                      + " (run more warm-up/draws or raise target_accept)"), stacklevel=3)
    return result
