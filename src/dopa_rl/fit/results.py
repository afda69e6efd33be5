"""Fit results in the statsmodels manner: tables per subject, information criteria, JSON, trajectories."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dopa_rl.models.base import Model, Packed


def _number(v) -> float | None:
    """A float for JSON, or None where it is not finite (a failed fit's -inf log-likelihood, a NaN SE)."""
    return float(v) if np.isfinite(v) else None


@dataclass
class FitResult:
    """The outcome of fitting one model to every subject.

    Arrays are indexed by subject in the order of ``subjects``; parameters are in natural space.
    ``loglik`` is the natural-log likelihood of every observation of the subject (not the posterior,
    even for MAP fits; the log prior at the optimum is in ``log_prior``).
    """

    model: Model
    method: str
    data: Packed
    x: np.ndarray                  # [S, k] fitted parameters
    se_: np.ndarray                # [S, k] standard errors (NaN where the Hessian is not usable)
    loglik_: np.ndarray            # [S]
    log_prior: np.ndarray          # [S] (0 for MLE)
    converged: np.ndarray          # [S] bool
    n_at_best: np.ndarray          # [S] restarts that reached the best value (within 1e-3)
    restarts: int
    source: pd.DataFrame | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    # -- tables -------------------------------------------------------------------------------------
    @property
    def subjects(self) -> list[str]:
        return list(self.data.subjects)

    @property
    def n_params(self) -> int:
        return len(self.model.spec)

    @property
    def params(self) -> pd.DataFrame:
        return pd.DataFrame(self.x, index=pd.Index(self.subjects, name="subject"), columns=self.model.param_names)

    @property
    def se(self) -> pd.DataFrame:
        return pd.DataFrame(self.se_, index=pd.Index(self.subjects, name="subject"), columns=self.model.param_names)

    @property
    def loglik(self) -> pd.Series:
        return pd.Series(self.loglik_, index=pd.Index(self.subjects, name="subject"), name="loglik")

    @property
    def n_obs(self) -> pd.Series:
        return pd.Series(self.data.n_obs, index=pd.Index(self.subjects, name="subject"), name="n_obs")

    @property
    def n_trials(self) -> pd.Series:
        return pd.Series(self.data.n_trials, index=pd.Index(self.subjects, name="subject"), name="n_trials")

    @property
    def aic(self) -> pd.Series:
        return pd.Series(2 * self.n_params - 2 * self.loglik_, index=self.loglik.index, name="aic")

    @property
    def bic(self) -> pd.Series:
        n = np.maximum(self.data.n_obs, 1)
        return pd.Series(self.n_params * np.log(n) - 2 * self.loglik_, index=self.loglik.index, name="bic")

    def to_frame(self) -> pd.DataFrame:
        """One row per subject: parameters, their standard errors (``se_<name>``), fit statistics."""
        df = self.params.copy()
        for name in self.model.param_names:
            df[f"se_{name}"] = self.se[name]
        df["n_trials"] = self.n_trials
        df["loglik"] = self.loglik
        df["aic"] = self.aic
        df["bic"] = self.bic
        df["converged"] = self.converged
        df["restarts_at_best"] = self.n_at_best
        return df

    def summary(self) -> str:
        """A plain-text report: the per-subject table and the totals."""
        frame = self.to_frame()
        cols = self.model.param_names + ["n_trials", "loglik", "aic", "bic"]
        with pd.option_context("display.width", 200, "display.max_columns", 50, "display.max_rows", 200):
            table = frame[cols].to_string(float_format=lambda v: f"{v:.4g}")
        lines = [
            f"Model: {self.model.name}    Method: {self.method}    Subjects: {len(self.subjects)}    "
            f"Restarts: {self.restarts}",
            table,
            f"Total: loglik {self.loglik_.sum():.2f}   AIC {self.aic.sum():.2f}   BIC {self.bic.sum():.2f}",
        ]
        if not self.converged.all():
            bad = [s for s, c in zip(self.subjects, self.converged) if not c]
            lines.append(f"Warning: optimizer did not report convergence for subject(s) {', '.join(bad)}")
        weak = [str(s) for s, n in zip(self.subjects, self.n_at_best) if n < 2]
        if weak and self.restarts > 1:
            lines.append(f"Warning: fewer than 2 restarts reached the best optimum for subject(s) {', '.join(weak)}; "
                         f"the optimum may not be global (use more restarts or --restarts auto)")
        mean = self.params.mean()
        lines.append("Mean parameters: " + ", ".join(f"{k}={v:.4g}" for k, v in mean.items()))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        subjects = []
        for i, s in enumerate(self.subjects):
            subjects.append({
                "subject": str(s),
                "n_trials": int(self.data.n_trials[i]),
                "n_obs": int(self.data.n_obs[i]),
                "params": {k: float(v) for k, v in zip(self.model.param_names, self.x[i])},
                "se": {k: _number(v) for k, v in zip(self.model.param_names, self.se_[i])},
                "loglik": _number(self.loglik_[i]),
                "aic": _number(self.aic.iloc[i]),
                "bic": _number(self.bic.iloc[i]),
                "converged": bool(self.converged[i]),
                "restarts_at_best": int(self.n_at_best[i]),
                "restarts_agree": bool(self.n_at_best[i] >= 2),
            })
        return {
            "model": self.model.name,
            "method": self.method,
            "restarts": int(self.restarts),
            "subjects": subjects,
            "total": {"loglik": _number(self.loglik_.sum()), "aic": _number(self.aic.sum()), "bic": _number(self.bic.sum())},
            **({"meta": self.meta} if self.meta else {}),
        }

    def to_json(self, path=None, indent: int = 2) -> str:
        """The JSON text (non-finite numbers as null); also written atomically to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=indent, allow_nan=False)
        if path is not None:
            from dopa_rl.io.atomic import atomic_write_text

            atomic_write_text(path, text + "\n")
        return text

    def prediction_errors(self) -> pd.DataFrame:
        """Per-trial fitted trajectories (prediction errors, values, choice probabilities) of every subject.

        Rows follow each subject's sessions in their order of appearance, trials in number order within a
        session, and carry ``subject``, ``session`` and ``trial`` when the source had them.
        """
        parts = []
        for i, s in enumerate(self.subjects):
            traj = self.model.trajectories(self.x[i], self.data, i)
            rows = self.data.row_index[i, : int(self.data.n_trials[i])]
            traj.insert(0, "subject", str(s))
            if self.source is not None:
                for col in ("session", "trial", "cue", "choice", "reward"):
                    if col in self.source.columns:
                        traj[col] = self.source[col].to_numpy()[rows]
            parts.append(traj)
        out = pd.concat(parts, ignore_index=True)
        lead = [c for c in ("subject", "session", "trial", "cue", "choice", "reward") if c in out.columns]
        return out[lead + [c for c in out.columns if c not in lead]]
