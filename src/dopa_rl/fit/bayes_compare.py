"""Model comparison by posterior predictive accuracy: PSIS-LOO over subjects (``compare --method bayes``).

Each model is fitted by :func:`dopa_rl.fit.mle.fit` with ``method="bayes"``; :func:`arviz.compare` ranks them by
the expected log pointwise predictive density (elpd, PSIS-LOO, one point per subject) with its standard
error and the standard error of each model's difference from the best (``dse``), and stacking weights.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dopa_rl.errors import InputError
from dopa_rl.models.base import Model
from dopa_rl.results import Result

__all__ = ["BAYES_COMPARISON_SCHEMA", "BayesComparison", "compare_bayes"]

BAYES_COMPARISON_SCHEMA = "dopa_rl.bayes_compare/1"
_COLUMNS = ("rank", "elpd_loo", "se", "elpd_diff", "dse", "p_loo", "weight", "pareto_k_max", "rhat_max",
            "divergences")


@dataclass
class BayesComparison(Result):
    """Models ranked by PSIS-LOO (best first): ``table`` one row per model (``_COLUMNS``); ``fits`` the
    :class:`~dopa_rl.fit.bayes_result.BayesResult` of each (not kept through JSON)."""

    table: pd.DataFrame
    options: dict[str, Any] = field(default_factory=dict)
    fits: dict[str, Any] = field(default_factory=dict)

    kind = "comparison"
    schema = BAYES_COMPARISON_SCHEMA
    description = "models compared by PSIS-LOO (expected log predictive density over subjects, with its SE)"

    @property
    def best(self) -> str:
        """The model with the highest elpd."""
        return str(self.table.index[0])

    def to_frame(self) -> pd.DataFrame:
        """The ranking as a table.

        Returns
        -------
        pandas.DataFrame
            One row per model, best first (index: model).
        """
        return self.table.copy()

    def summary(self) -> str:
        """The ranking as text.

        Returns
        -------
        str
            Each model's elpd +- SE and its difference from the best +- dSE, best first.
        """
        rows = [f"Models compared by PSIS-LOO over {self.options.get('n_subjects', '?')} subjects "
                f"(elpd: higher is better; dse: SE of the difference from the best)"]
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            rows.append(self.table.to_string(float_format=lambda v: f"{v:.4g}"))
        t = self.table
        if len(t) > 1:
            diff, dse = float(t["elpd_diff"].iloc[1]), float(t["dse"].iloc[1])
            clear = "" if diff > 2 * dse else " (less than 2 SE: not a clear difference)"
            rows.append(f"Best: {self.best}, ahead of {t.index[1]} by {diff:.2f} +- {dse:.2f} elpd{clear}")
        bad = [m for m in t.index if t.loc[m, "pareto_k_max"] > 0.7]
        if bad:
            rows.append(f"Warning: Pareto k > 0.7 for {', '.join(bad)}: PSIS-LOO is unreliable for some subjects")
        return "\n".join(rows)

    def _draw(self, fig, **options) -> None:
        ax = fig.subplots()
        t = self.table
        y = np.arange(len(t))[::-1]
        ax.errorbar(t["elpd_loo"], y, xerr=t["se"], fmt="o", label="elpd (PSIS-LOO) +- SE")
        ax.set_yticks(y, list(t.index), fontsize=8)
        ax.set_xlabel("expected log predictive density over subjects (nats)")
        ax.legend(fontsize=7, frameon=False)
        ax.set_title("models compared by PSIS-LOO", fontsize=9)

    def to_dict(self) -> dict:
        return {"schema": self.schema, "method": "bayes", "options": self.options,
                "models": [{"model": str(m), **{c: (None if not np.isfinite(v) else float(v))
                                                for c, v in row.items()}} for m, row in self.table.iterrows()]}

    @classmethod
    def from_dict(cls, d: dict) -> "BayesComparison":
        try:
            if d.get("schema") != BAYES_COMPARISON_SCHEMA:
                raise ValueError(f"schema {d.get('schema')!r}")
            table = pd.DataFrame([{c: (np.nan if m[c] is None else m[c]) for c in _COLUMNS} for m in d["models"]],
                                 index=pd.Index([m["model"] for m in d["models"]], name="model"))
            table["rank"] = table["rank"].astype(int)
            table["divergences"] = table["divergences"].astype(int)
            return cls(table=table, options=dict(d.get("options") or {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not a dopa_rl Bayesian comparison ({type(exc).__name__}: {exc})") from None


def compare_bayes(models: list[Model], data: pd.DataFrame, *, seed: int = 0, **options) -> BayesComparison:
    """Fit every model by NUTS (``fit(..., method="bayes", **options)``) and rank them by PSIS-LOO.

    Parameters
    ----------
    models : list of Model
        Two or more models of one kind.
    data : DataFrame
        The behavior table.
    seed : int
        Sampler seed (the same for every model).
    **options
        ``chains``, ``warmup``, ``draws``, ``target_accept``, ``hierarchical``, ``chain_method``.

    Returns
    -------
    BayesComparison
    """
    import arviz as az

    from dopa_rl.fit.mle import fit

    if len(models) < 2:
        raise InputError("compare_bayes: give at least 2 models")
    fits = {m.name: fit(m, data, method="bayes", seed=seed, **options) for m in models}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pareto k warnings: reported in the table
        table = az.compare({n: r.idata for n, r in fits.items()}, ic="loo")
    out = pd.DataFrame({
        "rank": table["rank"].astype(int), "elpd_loo": table["elpd_loo"], "se": table["se"],
        "elpd_diff": table["elpd_diff"], "dse": table["dse"], "p_loo": table["p_loo"], "weight": table["weight"],
        "pareto_k_max": [fits[n].criteria["loo"]["pareto_k_max"] for n in table.index],
        "rhat_max": [fits[n].diagnostics["rhat_max"] for n in table.index],
        "divergences": [int(fits[n].diagnostics["divergences"]) for n in table.index],
    }, index=pd.Index(list(table.index), name="model"))
    n_subj = len(next(iter(fits.values())).subjects)
    return BayesComparison(table=out, options={"seed": int(seed), "n_subjects": n_subj, **options}, fits=fits)
