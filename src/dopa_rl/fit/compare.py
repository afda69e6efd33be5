"""Model comparison: information criteria, cross-validated log-likelihood, random-effects model selection.

Random-effects Bayesian model selection (Stephan et al. 2009, NeuroImage 46:1004) treats the model as a
random variable across subjects: model frequencies ``r ~ Dirichlet(alpha0)``, each subject's model
``m_n ~ Categorical(r)``, its data ``p(y_n | m_n = k) = exp(lme[n, k])``.  A variational Bayes iteration gives
the posterior ``q(r) = Dirichlet(alpha)`` and each subject's posterior model probabilities ``g[n, k]``.
Exceedance probabilities ``xp_k = P(r_k > r_j for all j != k)`` are computed here by one-dimensional
quadrature (a Dirichlet is a normalised vector of independent gammas), so they are deterministic, not
sampled.  Rigoux et al. 2014 (NeuroImage 84:971) add the Bayesian omnibus risk ``bor``: the posterior
probability that all models are equally frequent (the null), from the free energy of the RFX model against
the evidence of the null, and the protected exceedance probabilities ``pxp = (1 - bor) xp + bor / K``.
All functions here are pure (arrays in, arrays out).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import integrate, special, stats

from dopa_rl.errors import InputError
from dopa_rl.results import Result

__all__ = ["aic", "bic", "BMSResult", "exceedance_probabilities", "rfx_free_energy", "null_log_evidence", "bms",
           "fold_labels", "block_sessions", "cross_validated_loglik", "Comparison", "compare_models",
           "draw_comparison"]


def aic(loglik, k, n=None) -> np.ndarray:
    """Akaike information criterion ``2k - 2 loglik`` (``n`` unused, for a uniform signature)."""
    return 2.0 * np.asarray(k, float) - 2.0 * np.asarray(loglik, float)


def bic(loglik, k, n) -> np.ndarray:
    """Bayesian information criterion ``k ln(n) - 2 loglik`` with ``n`` observations."""
    return np.asarray(k, float) * np.log(np.maximum(np.asarray(n, float), 1.0)) - 2.0 * np.asarray(loglik, float)


@dataclass
class BMSResult:
    """Random-effects model selection over ``K`` models and ``N`` subjects."""

    models: list[str]
    alpha: np.ndarray           # [K] posterior Dirichlet counts
    expected_r: np.ndarray      # [K] posterior mean model frequencies
    xp: np.ndarray              # [K] exceedance probabilities
    pxp: np.ndarray             # [K] protected exceedance probabilities
    bor: float                  # Bayesian omnibus risk
    g: np.ndarray               # [N, K] posterior probability that subject n uses model k
    free_energy: float          # F1: VB lower bound on log p(y | RFX model)
    null_evidence: float        # F0: log p(y | all frequencies equal)
    iterations: int

    def to_dict(self) -> dict:
        return {
            "models": list(self.models),
            "alpha": dict(zip(self.models, map(float, self.alpha))),
            "expected_frequency": dict(zip(self.models, map(float, self.expected_r))),
            "exceedance": dict(zip(self.models, map(float, self.xp))),
            "protected_exceedance": dict(zip(self.models, map(float, self.pxp))),
            "bor": float(self.bor),
            "free_energy": float(self.free_energy),
            "null_evidence": float(self.null_evidence),
            "iterations": int(self.iterations),
            "posterior_model": [[float(v) for v in row] for row in self.g],
        }

    @classmethod
    def from_dict(cls, d: dict) -> "BMSResult":
        """Rebuild from :meth:`to_dict`."""
        m = list(d["models"])
        vec = lambda key: np.array([float(d[key][k]) for k in m])  # noqa: E731
        return cls(m, vec("alpha"), vec("expected_frequency"), vec("exceedance"), vec("protected_exceedance"),
                   float(d["bor"]), np.array(d["posterior_model"], dtype=float).reshape(-1, len(m)),
                   float(d["free_energy"]), float(d["null_evidence"]), int(d["iterations"]))


def _check_lme(lme) -> np.ndarray:
    lme = np.asarray(lme, dtype=float)
    if lme.ndim != 2 or lme.shape[1] < 2 or lme.shape[0] < 1:
        raise InputError(f"log-evidence matrix must be [subjects, models] with at least 2 models (got shape {lme.shape})")
    if not np.all(np.isfinite(lme)):
        raise InputError("log-evidence matrix has non-finite entries (a failed fit?); refit or drop those subjects")
    return lme


def exceedance_probabilities(alpha) -> np.ndarray:
    """``P(r_k = max_j r_j)`` for ``r ~ Dirichlet(alpha)``, by quadrature.

    With independent ``x_j ~ Gamma(alpha_j)``, ``r = x / sum(x)``, so ``xp_k = int f_k(x) prod_{j != k} F_j(x) dx``.
    """
    alpha = np.asarray(alpha, dtype=float)
    K = alpha.size
    if K == 2:  # exact: r_1 ~ Beta(alpha_1, alpha_2)
        p1 = float(special.betainc(alpha[1], alpha[0], 0.5))  # P(r_1 > 1/2) = I_{1/2}(alpha_2, alpha_1)
        return np.array([p1, 1.0 - p1])
    out = np.empty(K)
    hi = float(stats.gamma.ppf(1 - 1e-14, alpha.max())) + 10.0
    for k in range(K):
        others = np.delete(alpha, k)

        def integrand(x, a=alpha[k], others=others):
            return np.exp(stats.gamma.logpdf(x, a) + np.sum(stats.gamma.logcdf(x, others)))

        pts = [float(stats.gamma.ppf(q, alpha[k])) for q in (0.01, 0.5, 0.99)]
        out[k] = integrate.quad(integrand, 0.0, hi, points=pts, limit=200, epsabs=1e-12, epsrel=1e-10)[0]
    out = np.clip(out, 0.0, None)
    return out / out.sum()


def _dirichlet_log_norm(a: np.ndarray) -> float:
    return float(special.gammaln(a.sum()) - special.gammaln(a).sum())


def rfx_free_energy(lme: np.ndarray, g: np.ndarray, alpha: np.ndarray, alpha0: np.ndarray) -> float:
    """Variational free energy of the RFX model for posteriors ``q(m) = g``, ``q(r) = Dir(alpha)``."""
    elog_r = special.digamma(alpha) - special.digamma(alpha.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        glogg = np.where(g > 0, g * np.log(g), 0.0)
    e_lik = float(np.sum(g * (lme + elog_r[None, :])))
    e_prior_r = _dirichlet_log_norm(alpha0) + float(np.sum((alpha0 - 1) * elog_r))
    e_q_r = _dirichlet_log_norm(alpha) + float(np.sum((alpha - 1) * elog_r))
    return e_lik - float(glogg.sum()) + e_prior_r - e_q_r


def null_log_evidence(lme: np.ndarray) -> float:
    """``log p(y | r = 1/K)``: every subject's evidence averaged over the models with equal weight."""
    K = lme.shape[1]
    return float(np.sum(special.logsumexp(lme, axis=1) - np.log(K)))


def bms(lme, models: list[str] | None = None, alpha0=None, *, tol: float = 1e-10, max_iter: int = 10000) -> BMSResult:
    """Random-effects BMS on ``lme`` [subjects, models] (natural-log evidences, e.g. ``-BIC/2``)."""
    lme = _check_lme(lme)
    N, K = lme.shape
    models = list(models) if models is not None else [f"m{k + 1}" for k in range(K)]
    if len(models) != K:
        raise InputError(f"{len(models)} model names for {K} columns of log evidence")
    alpha0 = np.ones(K) if alpha0 is None else np.asarray(alpha0, dtype=float)
    alpha = alpha0.copy()
    for it in range(1, max_iter + 1):
        log_u = lme + (special.digamma(alpha) - special.digamma(alpha.sum()))[None, :]
        g = np.exp(log_u - special.logsumexp(log_u, axis=1, keepdims=True))
        new = alpha0 + g.sum(axis=0)
        change = np.max(np.abs(new - alpha))
        alpha = new
        if change < tol:
            break
    log_u = lme + (special.digamma(alpha) - special.digamma(alpha.sum()))[None, :]
    g = np.exp(log_u - special.logsumexp(log_u, axis=1, keepdims=True))
    f1 = rfx_free_energy(lme, g, alpha, alpha0)
    f0 = null_log_evidence(lme)
    bor = float(special.expit(f0 - f1))  # 1 / (1 + exp(F1 - F0))
    xp = exceedance_probabilities(alpha)
    pxp = (1 - bor) * xp + bor / K
    return BMSResult(models, alpha, alpha / alpha.sum(), xp, pxp, bor, g, f1, f0, it)


def fold_labels(sessions: np.ndarray, n_trials_in_session: np.ndarray | None, k: int) -> tuple[str, np.ndarray]:
    """Fold of every trial of one subject: over sessions when it has at least ``k`` of them, else over
    ``k`` contiguous trial blocks of each session.  Returns ``("sessions" | "blocks", fold[n])``."""
    sessions = np.asarray(sessions)
    codes, uniq = _factorize(sessions)
    if len(uniq) >= k:
        return "sessions", codes % k
    fold = np.empty(sessions.size, dtype=int)
    for c in range(len(uniq)):
        idx = np.flatnonzero(codes == c)
        fold[idx] = np.minimum((np.arange(idx.size) * k) // max(idx.size, 1), k - 1)
    return "blocks", fold


def _factorize(values: np.ndarray):
    import pandas as pd

    codes, uniq = pd.factorize(pd.Series(values).astype(str))
    return codes, uniq


# --------------------------------------------------------------------------- fitting several models
def block_sessions(df, k: int):
    """``(df with a 'fold' column, kind)``: each subject's trials assigned to ``k`` folds (sessions when it has
    at least ``k``, else contiguous blocks of each session; a block then becomes a session of its own, so the
    model's values restart at each block both in training and in the test)."""
    import pandas as pd

    df = df.reset_index(drop=True).copy()
    if "session" not in df.columns:
        df["session"] = "1"
    df["fold"] = -1
    kinds = set()
    for subj, rows in df.groupby(df["subject"].astype(str), sort=False).groups.items():
        rows = np.asarray(rows)
        sub = df.loc[rows]
        if "trial" in sub.columns:
            order = np.lexsort([sub["trial"].to_numpy(), pd.factorize(sub["session"].astype(str))[0]])
            rows = rows[order]
        kind, fold = fold_labels(df.loc[rows, "session"].to_numpy(), None, k)
        kinds.add(kind)
        df.loc[rows, "fold"] = fold
        if kind == "blocks":
            df.loc[rows, "session"] = df.loc[rows, "session"].astype(str) + "#block" + fold.astype(str)
    return df, ("sessions" if kinds == {"sessions"} else "blocks" if kinds == {"blocks"} else "mixed")


def cross_validated_loglik(model, df, k: int = 5, *, method: str = "mle", restarts=5, seed: int = 0,
                           scheduler=None) -> tuple[np.ndarray, str]:
    """Held-out log-likelihood per subject [S] summed over ``k`` folds (see :func:`block_sessions`): each fold
    fits every subject on the other folds (all subjects in one batch) and scores the held-out trials."""
    from dopa_rl.fit.mle import fit

    if k < 2:
        raise InputError(f"cross-validation needs at least 2 folds (got {k})")
    data, kind = block_sessions(df, k)
    subjects = list(dict.fromkeys(data["subject"].astype(str)))
    total = np.zeros(len(subjects))
    for f in range(k):
        train, test = data[data["fold"] != f], data[data["fold"] == f]
        res = fit(model, train.drop(columns="fold"), method=method, restarts=restarts, seed=seed, progress=False,
                  scheduler=scheduler)
        packed = model.pack(test.drop(columns="fold"))
        pos = {s: i for i, s in enumerate(res.subjects)}
        idx = np.array([pos[s] for s in packed.subjects])
        ll = model.loglik(res.x[idx], packed, np.arange(packed.n_subjects, dtype=np.int64))
        where = {s: i for i, s in enumerate(subjects)}
        for s, v in zip(packed.subjects, ll):
            total[where[s]] += v
    return total, kind


def draw_comparison(fig, comp) -> None:
    """Draw a comparison (``models``, ``subjects``, ``log_evidence`` [S, K], ``bms``; ``unit``: what a row
    is, "subject" by default) on ``fig``: left, each subject's log evidence relative to its best model
    (columns labelled with the subjects' ids); right, the posterior model frequencies and protected
    exceedance probabilities of random-effects selection."""
    K = len(comp.models)
    unit = getattr(comp, "unit", "subject")
    fig.set_size_inches(max(7.5, 4.5 + 0.25 * len(comp.subjects)), 4.2)
    ax = fig.subplots(1, 2, squeeze=False)[0]
    rel = comp.log_evidence - comp.log_evidence.max(axis=1, keepdims=True)
    im = ax[0].imshow(np.maximum(rel.T, -20), aspect="auto", cmap="viridis", vmin=-20, vmax=0)
    ax[0].set_yticks(range(K), comp.models)
    ids = [str(s) for s in comp.subjects]
    step = max(1, len(ids) // 20)
    ax[0].set_xticks(range(0, len(ids), step), ids[::step], rotation=90 if len(ids) > 6 else 0, fontsize=7)
    ax[0].set_xlabel(f"{unit} (id)")
    evidence = "-BIC/2" if comp.method == "mle" else "log p(y | population)"
    ax[0].set_title(f"log evidence ({evidence}) minus the {unit}'s best", fontsize=9)
    fig.colorbar(im, ax=ax[0], shrink=0.8, label="log evidence - best (nats; clipped at -20)")
    x = np.arange(K)
    ax[1].bar(x - 0.2, comp.bms.expected_r, 0.4, label="expected model frequency")
    ax[1].bar(x + 0.2, comp.bms.pxp, 0.4, label="protected exceedance probability")
    ax[1].set_xticks(x, comp.models, rotation=20)
    ax[1].set_ylim(0, 1)
    ax[1].set_ylabel("probability")
    ax[1].set_title(f"random-effects selection ({len(ids)} {unit}s; BOR {comp.bms.bor:.2g})", fontsize=9)
    ax[1].legend(fontsize=7)


@dataclass
class Comparison(Result):
    """Several models fitted to the same subjects: per-subject evidence, totals and random-effects selection.

    A member of the result family (:class:`dopa_rl.results.Result`): :meth:`summary`, :meth:`to_frame` (one
    row per model), :meth:`to_json`/:meth:`from_json` (the fits included), :meth:`plot`, :meth:`to_nwb`.
    """

    kind = "comparison"
    schema = "dopa_rl.comparison/1"
    description = "model comparison on the same subjects (information criteria, random-effects selection)"

    models: list[str]
    subjects: list[str]
    method: str
    fits: list                   # FitResult (or HierarchicalResult) per model
    log_evidence: np.ndarray     # [S, K] -BIC/2 (mle) or log p(y_s | population) (hier)
    bms: BMSResult
    cv_loglik: np.ndarray | None = None   # [S, K]
    cv_kind: str | None = None

    def table(self):
        import pandas as pd

        rows = []
        for j, (name, r) in enumerate(zip(self.models, self.fits)):
            row = {"model": name, "k": r.n_params, "loglik": float(r.loglik_.sum()), "aic": float(r.aic.sum()),
                   "bic": float(r.bic.sum())}
            if self.method == "hier":
                row["ibic"] = float(r.ibic)
            if self.cv_loglik is not None:
                row["cv_loglik"] = float(self.cv_loglik[:, j].sum())
            row.update(best_subjects=int(np.sum(np.argmax(self.log_evidence, axis=1) == j)),
                       frequency=float(self.bms.expected_r[j]), xp=float(self.bms.xp[j]), pxp=float(self.bms.pxp[j]))
            rows.append(row)
        return pd.DataFrame(rows).set_index("model")

    def to_frame(self):
        """One row per model.

        Returns
        -------
        pandas.DataFrame
            Parameters, log-likelihood, AIC, BIC (iBIC, cross-validated log-likelihood), subjects best fitted, and
            the random-effects frequency, exceedance and protected exceedance.
        """
        return self.table()

    def _draw(self, fig, **options) -> None:
        draw_comparison(fig, self)

    @property
    def provenance_info(self) -> dict:
        return {"method": self.method, "models": list(self.models),
                "model_provenance": [dict(getattr(r, "provenance", {}) or {}) for r in self.fits]}

    def summary(self) -> str:
        import pandas as pd

        with pd.option_context("display.width", 200, "display.max_columns", 30):
            table = self.table().to_string(float_format=lambda v: f"{v:.4g}")
        evidence = "-BIC/2" if self.method == "mle" else "log p(y | population), sampled"
        lines = [f"Subjects: {len(self.subjects)}    Method: {self.method}    Evidence: {evidence}", table,
                 f"Bayesian omnibus risk: {self.bms.bor:.3g}    best by protected exceedance: "
                 f"{self.models[int(np.argmax(self.bms.pxp))]}"]
        if self.cv_kind:
            lines.append(f"Cross-validated log-likelihood: folds over {self.cv_kind}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        table = self.table()
        out = {"schema": self.schema, "method": self.method, "models": self.models, "subjects": self.subjects,
               "totals": {m: {k: (float(v) if np.isfinite(v) else None) for k, v in row.items()}
                          for m, row in table.to_dict(orient="index").items()},
               "rfx": self.bms.to_dict(),
               "log_evidence": {s: dict(zip(self.models, map(float, row))) for s, row in zip(self.subjects, self.log_evidence)},
               "posterior_model": {s: dict(zip(self.models, map(float, row))) for s, row in zip(self.subjects, self.bms.g)}}
        if self.cv_loglik is not None:
            out["cv"] = {"folds_over": self.cv_kind,
                         "loglik": {s: dict(zip(self.models, map(float, row))) for s, row in zip(self.subjects, self.cv_loglik)}}
        out["fits"] = [r.to_dict() for r in self.fits]
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "Comparison":
        # the family's docstring (Result.from_dict); each model's fit is rebuilt with it
        from dopa_rl.fit.hierarchical import HierarchicalResult
        from dopa_rl.fit.results import FitResult

        try:
            if d.get("schema") != cls.schema:
                raise ValueError(f"schema {d.get('schema')!r}, not {cls.schema!r}")
            models, subjects = list(d["models"]), [str(s) for s in d["subjects"]]
            kind = HierarchicalResult if d["method"] == "hier" else FitResult
            fits = [kind.from_dict(f) for f in d["fits"]]
            lme = np.array([[float(d["log_evidence"][s][m]) for m in models] for s in subjects])
            rfx = dict(d["rfx"])
            out = cls(models, subjects, d["method"], fits, lme, BMSResult.from_dict(rfx))
            if "cv" in d:
                out.cv_kind = d["cv"]["folds_over"]
                out.cv_loglik = np.array([[float(d["cv"]["loglik"][s][m]) for m in models] for s in subjects])
            return out
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not a dopa_rl model comparison ({type(exc).__name__}: {exc})") from None


def compare_models(models: list, df, *, method: str = "mle", restarts=10, seed: int = 0, cv_folds: int | None = None,
                   scheduler=None, progress: bool | None = None, **hier_options) -> Comparison:
    """Fit every model in ``models`` (Model objects) to ``df`` and compare them (see :class:`Comparison`)."""
    from dopa_rl.fit.mle import fit

    if len(models) < 2:
        raise InputError("model comparison needs at least 2 models")
    if method not in ("mle", "hier"):
        raise InputError(f"comparison method {method!r}: use mle or hier")
    fits = [fit(m, df, method=method, restarts=restarts, seed=seed, progress=progress, scheduler=scheduler,
                **hier_options) for m in models]
    subjects = list(fits[0].subjects)
    for r in fits[1:]:
        if list(r.subjects) != subjects:
            raise InputError("models were fitted to different subjects (a model dropped some rows?)")
    if method == "mle":
        lme = np.stack([-0.5 * r.bic.to_numpy() for r in fits], axis=1)
    else:
        lme = np.stack([r.log_evidence for r in fits], axis=1)
    names = [m.name for m in models]
    result = Comparison(names, subjects, method, fits, lme, bms(lme, names))
    if cv_folds:
        cols = [cross_validated_loglik(m, df, cv_folds, method="mle" if method == "mle" else "map",
                                       restarts=restarts, seed=seed, scheduler=scheduler) for m in models]
        result.cv_loglik = np.stack([c[0] for c in cols], axis=1)
        result.cv_kind = cols[0][1]
    return result
