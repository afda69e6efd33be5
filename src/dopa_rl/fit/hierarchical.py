"""Hierarchical fitting: expectation-maximisation with a Laplace approximation (Huys et al. 2011).

Each subject's unconstrained parameters ``z_s ~ N(mu, diag(sd^2))`` (the population).  One EM iteration:

* E step: every subject's MAP estimate under the population as its prior (all subjects and restarts in one
  batch of the batched BFGS), and the Laplace posterior covariance ``Sigma_s = H_s^-1`` from the Hessian of
  the negative log posterior there;
* M step: ``mu = mean_s z_s``, ``sd^2 = mean_s (z_s^2 + diag Sigma_s) - mu^2``.

The first iteration runs every restart; later ones start from the previous estimate and the defaults (the
start points are fixed by seed and subject id, so the evidence is not noisy from new random starts).  EM
stops when the Laplace log marginal likelihood changes by less than ``tol`` and the population moves less
than ``tol`` (in z units).  The population mean's standard error is ``(sum_s 1 / (sd^2 + v_s))^-1/2`` with
``v_s`` the likelihood-only variance of subject s's estimate (the marginal of an estimate around ``mu``).
E steps stop each subject at the optimiser's tolerance; only the final subject step polishes (see
:mod:`dopa_rl.fit.restarts`), so the reported estimates are those of a polished fit.

The integrated BIC (iBIC) is ``-2 sum_s log p(y_s | mu, sd) + 2k ln(N_obs)`` with ``2k`` population
parameters.  ``log p(y_s | mu, sd)`` is estimated by importance sampling (:func:`importance_log_evidence`):
draws from a defensive mixture of a multivariate t around the subject's Laplace posterior and the population
itself, as many as it takes (sized by a pilot) to bring the Monte Carlo standard error of the summed log
evidence to ``evidence_se`` (0.25); the error is reported (``log_evidence_se``, ``ibic_se``).  ``evidence="prior"`` keeps the
plain estimator ``log mean_m p(y_s | z_m)``, ``z_m ~ N(mu, sd^2)`` (:func:`sampled_log_evidence`).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dopa_rl.errors import InputError
from dopa_rl.fit.priors import Prior
from dopa_rl.fit.restarts import fit_restarts_on
from dopa_rl.fit.results import FitResult, _number, make_result
from dopa_rl.fit.space import _progress, _threads, require_usable_trials
from dopa_rl.models.base import Model, Packed

__all__ = ["SD_FLOOR", "EVIDENCE_METHODS", "HierarchicalResult", "m_step", "posterior_covariance",
           "laplace_log_evidence", "mean_standard_error", "sampled_log_evidence", "log_mean_exp_se",
           "importance_log_evidence", "fit_hierarchical"]

SD_FLOOR = 1e-2       # smallest population sd (z units): a population collapsed onto a point stops EM
EVIDENCE_METHODS = ("importance", "prior")
IS_FIRST = 32         # pilot importance draws per subject (they size the sample; the estimate draws afresh)
IS_DF = 10.0          # degrees of freedom of the t proposal around each subject's Laplace posterior
IS_DEFENSIVE = 0.05   # share of the proposal drawn from the population itself (bounds every weight)


@dataclass
class HierarchicalResult(FitResult):
    """A :class:`FitResult` (``method="hier"``: per-subject estimates shrunk to the population, Laplace SEs)
    plus the population: ``pop_mean``/``pop_sd`` [k] of the unconstrained parameters, ``pop_mean_se``,
    ``ibic`` and its Monte Carlo standard error ``ibic_se``, per-subject ``log_evidence`` (sampled
    ``log p(y_s | population)``), its standard error ``log_evidence_se`` and the draws it took
    (``evidence_draws``), and EM convergence."""

    pop_mean: np.ndarray = None
    pop_sd: np.ndarray = None
    pop_mean_se: np.ndarray = None
    ibic: float = float("nan")
    log_evidence: np.ndarray = None
    log_evidence_se: np.ndarray = None
    ibic_se: float = float("nan")
    evidence_draws: np.ndarray = None
    em_iterations: int = 0
    em_converged: bool = False
    em_history: list = field(default_factory=list)

    def population(self) -> pd.DataFrame:
        """One row per parameter: population mean and sd in unconstrained space, the mean's SE, and the
        population median and central 95% range in natural units."""
        if self.model is None:
            raise InputError(f"model {self.model_name!r} is not registered here; its transforms are unknown")
        spec = self.model.spec
        lo = spec.to_natural(self.pop_mean - 1.96 * self.pop_sd)
        hi = spec.to_natural(self.pop_mean + 1.96 * self.pop_sd)
        return pd.DataFrame({
            "transform": [p.transform for p in spec], "mean": self.pop_mean, "sd": self.pop_sd,
            "mean_se": self.pop_mean_se, "median": spec.to_natural(self.pop_mean), "q025": lo, "q975": hi,
        }, index=pd.Index(spec.names, name="parameter"))

    def summary(self) -> str:
        """A plain-text report: the per-subject table and the totals.

        Returns
        -------
        str
            The report, as ``dopa-rl fit --method hier`` prints it.
        """
        pop = self.population()
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            table = pop.to_string(float_format=lambda v: f"{v:.4g}")
        state = "converged" if self.em_converged else "NOT converged (raise max_iter)"
        return (super().summary() + f"\nPopulation (EM {state} after {self.em_iterations} iterations; "
                f"unconstrained mean/sd, natural median and 95% range):\n{table}\niBIC {self.ibic:.2f}"
                + (f" (Monte Carlo SE {self.ibic_se:.2g})" if np.isfinite(self.ibic_se) else ""))

    def to_dict(self) -> dict:
        out = super().to_dict()
        names = list(self.param_names)
        out["population"] = {
            "space": "unconstrained",
            "transform": {p.name: p.transform for p in self.model.spec},
            "mean": dict(zip(names, map(float, self.pop_mean))),
            "sd": dict(zip(names, map(float, self.pop_sd))),
            "mean_se": {k: _number(v) for k, v in zip(names, self.pop_mean_se)},
            "median": dict(zip(names, map(float, self.model.spec.to_natural(self.pop_mean)))),
        }
        out["ibic"] = _number(self.ibic)
        out["ibic_se"] = _number(self.ibic_se)
        out["em"] = {"iterations": int(self.em_iterations), "converged": bool(self.em_converged)}
        se = self.log_evidence_se if self.log_evidence_se is not None else np.full(len(self.log_evidence), np.nan)
        for d, ev, e in zip(out["subjects"], self.log_evidence, se):
            d["log_evidence"] = _number(ev)
            d["log_evidence_se"] = _number(e)
        return out


    @classmethod
    def from_dict(cls, d: dict, model: Model | None = None) -> "HierarchicalResult":
        """Rebuild from :meth:`to_dict` (the population, iBIC, EM state and per-subject evidence included; the EM
        history is not stored).

        Parameters
        ----------
        d : dict
            A hierarchical fit's :meth:`to_dict`.
        model : Model, optional
            Default: the one the result names, from the registry.

        Returns
        -------
        HierarchicalResult
            The fit with its population and EM state.
        """
        out = FitResult.from_dict.__func__(cls, d, model)
        try:
            pop, names = d["population"], out.param_names
            out.pop_mean = np.array([float(pop["mean"][n]) for n in names])
            out.pop_sd = np.array([float(pop["sd"][n]) for n in names])
            out.pop_mean_se = np.array([np.nan if pop["mean_se"][n] is None else float(pop["mean_se"][n]) for n in names])
            out.ibic = np.nan if d.get("ibic") is None else float(d["ibic"])
            out.log_evidence = np.array([np.nan if s.get("log_evidence") is None else float(s["log_evidence"])
                                         for s in d["subjects"]])
            out.log_evidence_se = np.array([np.nan if s.get("log_evidence_se") is None else float(s["log_evidence_se"])
                                            for s in d["subjects"]])
            out.ibic_se = np.nan if d.get("ibic_se") is None else float(d["ibic_se"])
            out.em_iterations = int(d["em"]["iterations"])
            out.em_converged = bool(d["em"]["converged"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not a dopa_rl hierarchical fit result ({type(exc).__name__}: {exc})") from None
        return out


# ------------------------------------------------------------------------------------------- pure maths
def m_step(z: np.ndarray, post_var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Population mean and sd from estimates ``z`` [S, k] and posterior variances ``post_var`` [S, k]."""
    mu = z.mean(axis=0)
    var = np.mean(z * z + post_var, axis=0) - mu * mu
    return mu, np.sqrt(np.maximum(var, SD_FLOOR ** 2))


def posterior_covariance(h_ll: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """Laplace covariances [S, k, k] from the negative log-likelihood Hessians ``h_ll`` plus the prior's
    precision; where that is not positive definite, the prior's covariance (the data say nothing)."""
    H = h_ll + np.diag(1.0 / sd ** 2)[None]
    out = np.empty_like(H)
    for s in range(H.shape[0]):
        try:
            if not np.all(np.isfinite(H[s])):
                raise np.linalg.LinAlgError
            np.linalg.cholesky(H[s])
            out[s] = np.linalg.inv(H[s])
        except np.linalg.LinAlgError:
            out[s] = np.diag(sd ** 2)
    return out


def laplace_log_evidence(loglik: np.ndarray, z: np.ndarray, mu: np.ndarray, sd: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """``log p(y_s | mu, sd)`` by Laplace: log joint at the mode + ``k/2 log 2 pi + 1/2 log det Sigma_s``."""
    k = z.shape[1]
    d = (z - mu) / sd
    log_prior = -0.5 * np.sum(d * d, axis=1) - np.sum(np.log(sd)) - 0.5 * k * np.log(2 * np.pi)
    logdet = np.linalg.slogdet(cov)[1]
    return loglik + log_prior + 0.5 * k * np.log(2 * np.pi) + 0.5 * logdet


def mean_standard_error(h_ll: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """SE of the population mean [k]: ``(sum_s 1 / (sd^2 + v_s))^-1/2``, ``v_s`` the likelihood-only
    variance of subject s's estimate (diagonal of the inverse likelihood Hessian; infinite where flat)."""
    v = np.full((h_ll.shape[0], h_ll.shape[1]), np.inf)
    for s in range(h_ll.shape[0]):
        try:
            np.linalg.cholesky(h_ll[s])
            v[s] = np.diag(np.linalg.inv(h_ll[s]))
        except np.linalg.LinAlgError:
            pass
    return 1.0 / np.sqrt(np.sum(1.0 / (sd ** 2 + v), axis=0))


def sampled_log_evidence(model: Model, data: Packed, mu: np.ndarray, sd: np.ndarray, n_samples: int,
                         rng: np.random.Generator, block: int = 250) -> np.ndarray:
    """``log mean_m p(y_s | z_m)`` per subject [S], ``z_m ~ N(mu, sd^2)``, the same draws for all subjects."""
    from scipy import special

    S, k = data.n_subjects, len(mu)
    zs = mu + sd * rng.standard_normal((n_samples, k))
    xs = model.spec.to_natural(zs)
    acc = np.full(S, -np.inf)
    for a in range(0, n_samples, block):
        xb = xs[a: a + block]
        m = xb.shape[0]
        lanes = np.repeat(np.arange(S, dtype=np.int64), m)
        ll = model.loglik(np.tile(xb, (S, 1)), data, lanes).reshape(S, m)
        ll = np.where(np.isfinite(ll), ll, -np.inf)
        acc = np.logaddexp(acc, special.logsumexp(ll, axis=1))
    return acc - np.log(n_samples)


def log_mean_exp_se(log_w: np.ndarray) -> tuple[float, float]:
    """``log mean exp(log_w)`` and its Monte Carlo standard error (delta method: ``sd(w) / (sqrt(M) mean(w))``)."""
    log_w = np.asarray(log_w, dtype=float)
    M = log_w.size
    top = np.max(log_w)
    if not np.isfinite(top):
        return float(top), float("inf")
    w = np.exp(log_w - top)
    mean = w.mean()
    se = float(np.sqrt(w.var(ddof=1) / M) / mean) if M > 1 else float("inf")
    return float(top + np.log(mean)), se


def _log_t(d2: np.ndarray, logdet: np.ndarray, k: int, df: float) -> np.ndarray:
    """Log density of a k-variate t (``df``) at squared Mahalanobis distance ``d2`` from its centre."""
    from scipy.special import gammaln

    return (gammaln((df + k) / 2) - gammaln(df / 2) - 0.5 * k * np.log(df * np.pi) - 0.5 * logdet
            - 0.5 * (df + k) * np.log1p(d2 / df))


def importance_log_evidence(model: Model, data: Packed, mu: np.ndarray, sd: np.ndarray, z_hat: np.ndarray,
                            cov: np.ndarray, rng: np.random.Generator, *, target_se: float = 0.25,
                            max_draws: int = 4096, first: int = IS_FIRST) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``log p(y_s | mu, sd)`` per subject [S] by importance sampling, its standard error [S] and the draws
    [S] it took.

    Proposal for subject s: ``(1 - IS_DEFENSIVE) t_IS_DF(z_hat[s], cov[s]) + IS_DEFENSIVE N(mu, sd^2)`` (the
    Laplace posterior with heavier tails, mixed with the population so no weight exceeds
    ``p(y_s | z) / IS_DEFENSIVE``); weights ``p(y_s | z) N(z; mu, sd^2) / q(z)`` from the value-only
    likelihood.  A pilot of ``first`` draws per subject measures each subject's relative weight variance
    ``v_s``; the draws that bring the standard error of the summed log evidence ``sqrt(sum_s v_s / M_s)`` to
    ``target_se`` at the fewest draws are ``M_s ~ sqrt(v_s) sum_j sqrt(v_j) / target_se^2`` (at least
    ``first``, at most ``max_draws``).  The estimate uses fresh draws only: choosing a sample's size from
    the same draws biases it (a sample that missed the low weights looks both higher and surer).
    """
    S, k = z_hat.shape
    sd = np.asarray(sd, dtype=float)
    chol = np.empty_like(cov)
    for s in range(S):
        try:
            chol[s] = np.linalg.cholesky(cov[s])
        except np.linalg.LinAlgError:
            chol[s] = np.diag(sd)
    logdet = 2 * np.sum(np.log(np.abs(np.einsum("sii->si", chol))), axis=1)
    log_pop_norm = -np.sum(np.log(sd)) - 0.5 * k * np.log(2 * np.pi)

    def log_weights(counts: np.ndarray) -> list[np.ndarray]:
        subj = np.repeat(np.arange(S), counts)
        n = subj.size
        from_pop = rng.random(n) < IS_DEFENSIVE
        u = rng.standard_normal((n, k))
        scale = np.sqrt(IS_DF / rng.chisquare(IS_DF, n))
        z = np.where(from_pop[:, None], mu + sd * u,
                     z_hat[subj] + np.einsum("nij,nj->ni", chol[subj], u) * scale[:, None])
        dev = np.linalg.solve(chol[subj], (z - z_hat[subj])[..., None])[..., 0]
        log_t = _log_t(np.sum(dev * dev, axis=1), logdet[subj], k, IS_DF)
        dp = (z - mu) / sd
        log_pop = -0.5 * np.sum(dp * dp, axis=1) + log_pop_norm
        log_q = np.logaddexp(np.log1p(-IS_DEFENSIVE) + log_t, np.log(IS_DEFENSIVE) + log_pop)
        ll = model.loglik(model.spec.to_natural(z), data, subj.astype(np.int64))
        lw = np.where(np.isfinite(ll), ll, -np.inf) + log_pop - log_q
        return np.split(lw, np.cumsum(counts)[:-1])

    pilot = log_weights(np.full(S, first))
    rel_sd = np.array([log_mean_exp_se(w)[1] for w in pilot]) * np.sqrt(first)   # sd(w) / mean(w) per draw
    rel_sd = np.where(np.isfinite(rel_sd), rel_sd, np.inf)
    want = rel_sd * np.sum(np.minimum(rel_sd, 1e6)) / float(target_se) ** 2
    counts = np.clip(np.ceil(np.where(np.isfinite(want), want, max_draws)), first, max_draws).astype(np.int64)
    out = np.array([log_mean_exp_se(w) for w in log_weights(counts)])
    return out[:, 0], out[:, 1], counts + first


# ------------------------------------------------------------------------------------------------ EM
def fit_hierarchical(model: Model, data: pd.DataFrame | Packed, *, restarts=10, seed: int = 0, max_iter: int = 200,
                     tol: float = 1e-3, n_samples: int = 1000, evidence: str = "importance",
                     evidence_se: float = 0.25, scheduler=None, n_jobs: int | None = None,
                     progress: bool | None = None) -> HierarchicalResult:
    """Fit ``model`` to every subject with a population prior estimated by EM (see the module docstring).

    ``evidence``: how ``log p(y_s | population)`` (and so the iBIC) is sampled: "importance" (default; draws
    until the summed log evidence has a Monte Carlo standard error of at most ``evidence_se``, at most
    ``n_samples`` per subject) or "prior" (``n_samples`` population draws shared by every subject, error
    estimated the same way); ``scheduler``: a :mod:`dopa_rl.fit.schedulers` object (None: this process, all
    cores)."""
    if max_iter < 1:
        raise InputError(f"max_iter must be >= 1 (got {max_iter})")
    if evidence not in EVIDENCE_METHODS:
        raise InputError(f"evidence must be one of {', '.join(EVIDENCE_METHODS)} (got {evidence!r})")
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 2:
        raise InputError(f"n_samples must be an integer >= 2 (got {n_samples!r})")
    if not (isinstance(evidence_se, (int, float)) and evidence_se > 0):
        raise InputError(f"evidence_se must be a number > 0 (got {evidence_se!r})")
    packed = model.pack(data.reset_index(drop=True)) if isinstance(data, pd.DataFrame) else data
    S, k = packed.n_subjects, len(model.spec)
    if S < 2:
        raise InputError(f"hierarchical fitting needs at least 2 subjects (got {S}); use `method` map for one")
    require_usable_trials(packed)
    mu, sd = model.spec.prior_mean().astype(float), model.spec.prior_sd().astype(float)
    names = tuple(model.spec.names)
    disable = (not sys.stderr.isatty()) if progress is None else not progress
    history, warm, prev_ev, converged = [], None, None, False
    subjects_all = np.arange(S, dtype=np.int64)
    with _threads(n_jobs), _progress(disable, total=max_iter, desc=f"EM {model.name}", unit="it",
                                file=sys.stderr) as bar:
        for it in range(1, max_iter + 1):
            rf = fit_restarts_on(scheduler, model, packed, restarts if it == 1 else 1, seed, Prior(names, mu, sd),
                                 warm=warm, polish=False)
            z = rf.z
            if it == 1:
                first_step = rf
            h_ll = -model.hessian_z(z, packed, subjects_all)
            cov = posterior_covariance(h_ll, sd)
            ll = model.loglik(model.spec.to_natural(z), packed, subjects_all)
            ev = float(np.sum(laplace_log_evidence(ll, z, mu, sd, cov)))
            new_mu, new_sd = m_step(z, np.einsum("sii->si", cov))
            move = max(np.max(np.abs(new_mu - mu)), np.max(np.abs(new_sd - sd)))
            history.append({"iteration": it, "log_evidence": ev, "mean": new_mu.tolist(), "sd": new_sd.tolist()})
            bar.update(1)
            bar.set_postfix(evidence=f"{ev:.2f}")
            done = prev_ev is not None and abs(ev - prev_ev) < tol and move < tol
            mu, sd, warm, prev_ev = new_mu, new_sd, z, ev
            if done:
                converged = True
                bar.total = bar.n   # converged early: the bar ends at 100 %, not at n of max_iter
                bar.refresh()
                break
        # final subject step under the final population, with its Laplace errors
        rf = fit_restarts_on(scheduler, model, packed, 1, seed, Prior(names, mu, sd), warm=warm)
        z = rf.z
        x = model.spec.to_natural(z)
        ll = model.loglik(x, packed, subjects_all)
        h_ll = -model.hessian_z(z, packed, subjects_all)
        cov = posterior_covariance(h_ll, sd)
        se = np.sqrt(np.clip(np.einsum("sii->si", cov), 0, None)) * np.abs(model.spec.jacobian_diag(z))
        rng = np.random.default_rng([int(seed), 1])
        if evidence == "importance":
            log_ev, log_ev_se, draws = importance_log_evidence(model, packed, mu, sd, z, cov, rng,
                                                               target_se=float(evidence_se), max_draws=int(n_samples))
        else:
            log_ev, log_ev_se = _prior_evidence_se(model, packed, mu, sd, int(n_samples), rng)
            draws = np.full(S, int(n_samples))
    n_total = float(np.sum(packed.n_obs))
    ibic = float(-2 * np.sum(log_ev) + 2 * k * np.log(n_total))
    ibic_se = float(2 * np.sqrt(np.sum(log_ev_se ** 2)))

    # restarts and their agreement are those of the first subject step (the later ones are warm starts)
    rf.n_at_best, rf.n_restarts, rf.edge_best = first_step.n_at_best, first_step.n_restarts, first_step.edge_best
    result = make_result(
        model, "hier", packed, z, x, se, ll, rf, restarts, seed, Prior(names, mu, sd), cls=HierarchicalResult,
        pop_mean=mu, pop_sd=sd, pop_mean_se=mean_standard_error(h_ll, sd), ibic=ibic, log_evidence=log_ev,
        log_evidence_se=log_ev_se, ibic_se=ibic_se, evidence_draws=draws,
        em_iterations=len(history), em_converged=converged, em_history=history)
    result.provenance["evidence"] = {"method": evidence, "target_se": float(evidence_se),
                                     "max_draws": int(n_samples), "draws": int(np.sum(draws))}
    if restarts != "auto":
        result.restarts = int(restarts)
    return result


def _prior_evidence_se(model, data, mu, sd, n_samples, rng):
    """:func:`sampled_log_evidence` with each subject's standard error (the same estimator, kept per draw)."""
    S, k = data.n_subjects, len(mu)
    zs = mu + sd * rng.standard_normal((n_samples, k))
    lanes = np.repeat(np.arange(S, dtype=np.int64), n_samples)
    ll = model.loglik(np.tile(model.spec.to_natural(zs), (S, 1)), data, lanes).reshape(S, n_samples)
    ll = np.where(np.isfinite(ll), ll, -np.inf)
    out = np.array([log_mean_exp_se(row) for row in ll])
    return out[:, 0], out[:, 1]
