"""Fit results in the statsmodels manner: tables per subject, information criteria, JSON, trajectories.

A :class:`FitResult` keeps parameters, statistics and provenance (model and its options, method, prior,
a fingerprint of the data, package versions), never the data: :meth:`FitResult.prediction_errors` takes
the data again and checks its fingerprint.  ``to_json()`` and ``FitResult.from_json()`` round-trip.
"""
from __future__ import annotations

import dataclasses
import hashlib
import platform
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dopa_rl.errors import InputError
from dopa_rl.fit.priors import Prior
from dopa_rl.fit.space import at_bound, carried_over
from dopa_rl.models.base import Model, Packed
from dopa_rl.results import Result

__all__ = ["SCHEMA", "data_fingerprint", "versions", "rebuild_model", "FitResult", "make_result"]

SCHEMA = "dopa_rl.fit/1"


def _number(v) -> float | None:
    """A float for JSON, or None where it is not finite (a failed fit's -inf log-likelihood, a NaN SE)."""
    return float(v) if np.isfinite(v) else None


def _float(v) -> float:
    return float("nan") if v is None else float(v)


def data_fingerprint(data: Packed) -> str:
    """A short SHA-256 of what a model sees of the data (subjects, trial counts, session starts, rewards and
    the model's own arrays): equal for the same data however the table was ordered or typed."""
    h = hashlib.sha256()
    h.update("\x1f".join(map(str, data.subjects)).encode())
    for arr in (data.n_trials, data.resets, data.rewards, data.n_obs):
        a = np.ascontiguousarray(arr)
        h.update(str(a.dtype).encode() + str(a.shape).encode() + a.tobytes())
    for key in sorted(data.extra):
        v = data.extra[key]
        h.update(key.encode())
        if isinstance(v, np.ndarray):
            a = np.ascontiguousarray(v)
            h.update(str(a.dtype).encode() + str(a.shape).encode() + a.tobytes())
        else:
            h.update(repr(v).encode())
    return "sha256:" + h.hexdigest()[:20]


def versions() -> dict[str, str]:
    """The versions of dopa_rl, Python and the numerical libraries, for a result's provenance (from the
    installed distributions' metadata: importing numba or scipy only to read a version costs ~0.5 s)."""
    from importlib.metadata import PackageNotFoundError, version

    from dopa_rl import __version__

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "unknown"

    return {"dopa_rl": __version__, "python": platform.python_version(), "numpy": np.__version__,
            "scipy": installed("scipy"), "pandas": pd.__version__, "numba": installed("numba")}


def rebuild_model(name: str, options: dict[str, Any]) -> Model:
    """The model a result names, from its name and :meth:`~dopa_rl.models.base.Model.options` (a dopamine
    fit's options name the wrapped model and the mode)."""
    from dopa_rl.models import get_model

    if "fit" in options and "base" in options:
        from dopa_rl.fit.neural import DopamineModel

        return DopamineModel(rebuild_model(options["base"], options.get("base_options") or {}), options["fit"])
    return get_model(name, **options)


@dataclass
class FitResult(Result):
    """The outcome of fitting one model to every subject (a :class:`dopa_rl.results.Result`).

    Arrays are indexed by subject in the order of ``subjects``; parameters are in natural space.
    ``loglik`` is the natural-log likelihood of every observation of the subject (not the posterior,
    even for MAP fits; the log prior at the optimum is in ``log_prior``).  ``at_bound`` [S, k] marks
    parameters that ended at a bound (their standard errors are NaN).
    """

    model: Model | None
    method: str
    subjects: list[str]
    param_names: list[str]
    x: np.ndarray                  # [S, k] fitted parameters
    se_: np.ndarray                # [S, k] standard errors (NaN where the Hessian is not usable)
    loglik_: np.ndarray            # [S]
    log_prior: np.ndarray          # [S] (0 for MLE)
    converged: np.ndarray          # [S] bool
    n_at_best: np.ndarray          # [S] independent restarts that reached the best value (within 1e-3)
    restarts: int                  # the most restarts any subject ran
    n_trials_: np.ndarray          # [S]
    n_obs_: np.ndarray             # [S] observations in the likelihood (for BIC)
    at_bound: np.ndarray           # [S, k] bool
    model_name: str = ""
    prior: Prior | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    n_restarts_: np.ndarray | None = None   # [S] independent restarts each subject ran (default: restarts)
    edge_best: np.ndarray | None = None     # [S] the best came from auto's edge search, not a restart

    kind = "fit"
    schema = SCHEMA
    description = "model fitted to behaviour: parameters per subject with standard errors and fit statistics"

    def __post_init__(self):
        if not self.model_name and self.model is not None:
            self.model_name = self.model.name
        S = len(self.subjects)
        if self.n_restarts_ is None:
            self.n_restarts_ = np.full(S, int(self.restarts), dtype=np.int64)
        if self.edge_best is None:
            self.edge_best = np.zeros(S, bool)

    # -- tables -------------------------------------------------------------------------------------
    @property
    def _index(self) -> pd.Index:
        return pd.Index(list(self.subjects), name="subject")

    @property
    def n_params(self) -> int:
        return len(self.param_names)

    @property
    def params(self) -> pd.DataFrame:
        return pd.DataFrame(self.x, index=self._index, columns=list(self.param_names))

    @property
    def se(self) -> pd.DataFrame:
        return pd.DataFrame(self.se_, index=self._index, columns=list(self.param_names))

    @property
    def loglik(self) -> pd.Series:
        return pd.Series(self.loglik_, index=self._index, name="loglik")

    @property
    def n_obs(self) -> pd.Series:
        return pd.Series(self.n_obs_, index=self._index, name="n_obs")

    @property
    def n_trials(self) -> pd.Series:
        return pd.Series(self.n_trials_, index=self._index, name="n_trials")

    @property
    def aic(self) -> pd.Series:
        return pd.Series(2 * self.n_params - 2 * self.loglik_, index=self._index, name="aic")

    @property
    def bic(self) -> pd.Series:
        n = np.maximum(self.n_obs_, 1)
        return pd.Series(self.n_params * np.log(n) - 2 * self.loglik_, index=self._index, name="bic")

    def bound_labels(self) -> pd.Series:
        """Per subject, the parameters at a bound ("" when none)."""
        return pd.Series([",".join(n for n, b in zip(self.param_names, row) if b) for row in self.at_bound],
                         index=self._index, name="at_bound")

    def to_frame(self) -> pd.DataFrame:
        """One row per subject.

        Returns
        -------
        pandas.DataFrame
            Parameters, their standard errors (``se_<name>``), fit statistics, and ``at_bound`` naming the
            parameters that ended at a bound (NaN standard errors).
        """
        df = self.params.copy()
        for name in self.param_names:
            df[f"se_{name}"] = self.se[name]
        df["n_trials"] = self.n_trials
        df["loglik"] = self.loglik
        df["aic"] = self.aic
        df["bic"] = self.bic
        df["converged"] = self.converged
        df["restarts"] = self.n_restarts_
        df["restarts_at_best"] = self.n_at_best
        df["edge_search_best"] = self.edge_best
        df["at_bound"] = self.bound_labels()
        return df

    def summary(self) -> str:
        """A plain-text report: the per-subject table and the totals.

        Returns
        -------
        str
            The report, as ``dopa-rl fit`` prints it, with its warnings (subjects at a bound, restarts that disagree).
        """
        frame = self.to_frame()
        flagged = frame["at_bound"] != ""
        shown = frame[list(self.param_names) + ["n_trials", "loglik", "aic", "bic"]].copy()
        if self.restarts > 1:  # restarts run and how many of them reached the best
            shown["restarts"] = frame["restarts"]
            shown["at_best"] = frame["restarts_at_best"]
        if flagged.any():
            for j, name in enumerate(self.param_names):
                mark = self.at_bound[:, j]
                if mark.any():  # "50*": the value sits at a bound of the parameter
                    shown[name] = [f"{v:.4g}*" if b else f"{v:.4g}" for v, b in zip(frame[name], mark)]
        with pd.option_context("display.width", 200, "display.max_columns", 50, "display.max_rows", 200):
            table = shown.to_string(float_format=lambda v: f"{v:.4g}")
        lines = [
            f"Model: {self.model_name}    Method: {self.method}    Subjects: {len(self.subjects)}    "
            f"Restarts: {'auto, at most ' if self.meta.get('restarts') == 'auto' else ''}{self.restarts}",
            table,
            f"Total: loglik {self.loglik_.sum():.2f}   AIC {self.aic.sum():.2f}   BIC {self.bic.sum():.2f}",
        ]
        if flagged.any():
            lines.append(f"* at a bound (standard error NaN) for {int(flagged.sum())} subject(s): "
                         + "; ".join(f"{s}: {b}" for s, b in frame.loc[flagged, "at_bound"].head(5).items())
                         + (" ..." if flagged.sum() > 5 else ""))
        if not self.converged.all():
            bad = [s for s, c in zip(self.subjects, self.converged) if not c]
            lines.append(f"Warning: optimizer did not report convergence for subject(s) {', '.join(bad)}")
        edge = [str(s) for s, e in zip(self.subjects, self.edge_best) if e]
        if edge:
            lines.append(f"Note: the best optimum of subject(s) {', '.join(edge)} was found by the search from the "
                         f"edges of the parameter range, better than every restart")
        weak = [str(s) for s, n, e in zip(self.subjects, self.n_at_best, self.edge_best) if n < 2 and not e]
        if weak and self.restarts > 1:
            lines.append(f"Warning: fewer than 2 restarts reached the best optimum for subject(s) {', '.join(weak)}; "
                         f"the optimum may not be global (use more `restarts` or `restarts` auto)")
        mean = self.params.mean()
        lines.append("Mean parameters: " + ", ".join(f"{k}={v:.4g}" for k, v in mean.items()))
        return "\n".join(lines)

    def _draw(self, fig, **options) -> None:
        """One panel per parameter: each subject's estimate (labelled by id) with its standard error."""
        axes = fig.subplots(1, self.n_params, squeeze=False)[0]
        fig.set_size_inches(max(3.0 * self.n_params, 4.0), 3.4)
        ids = [str(s) for s in self.subjects]
        y = np.arange(len(ids))
        for j, (ax, name) in enumerate(zip(axes, self.param_names)):
            se = np.where(np.isfinite(self.se_[:, j]), self.se_[:, j], 0.0)
            ax.errorbar(self.x[:, j], y, xerr=se, fmt="o", ms=3, lw=1, label="estimate +- SE")
            if self.at_bound[:, j].any():
                ax.plot(self.x[self.at_bound[:, j], j], y[self.at_bound[:, j]], "x", color="C3", label="at a bound")
            ax.set_yticks(y, ids if j == 0 else [""] * len(ids), fontsize=7)
            ax.set_xlabel(f"{name} (model units)")
            ax.legend(fontsize=6, frameon=False)
        axes[0].set_ylabel("subject (id)")
        fig.suptitle(f"{self.model_name} fitted by {self.method}: parameters per subject", fontsize=9)

    # -- JSON ---------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        subjects = []
        names = list(self.param_names)
        for i, s in enumerate(self.subjects):
            subjects.append({
                "subject": str(s),
                "n_trials": int(self.n_trials_[i]),
                "n_obs": int(self.n_obs_[i]),
                "params": {k: float(v) for k, v in zip(names, self.x[i])},
                "se": {k: _number(v) for k, v in zip(names, self.se_[i])},
                "at_bound": [k for k, b in zip(names, self.at_bound[i]) if b],
                "loglik": _number(self.loglik_[i]),
                "log_prior": _number(self.log_prior[i]),
                "aic": _number(self.aic.iloc[i]),
                "bic": _number(self.bic.iloc[i]),
                "converged": bool(self.converged[i]),
                "restarts": int(self.n_restarts_[i]),
                "restarts_at_best": int(self.n_at_best[i]),
                "restarts_agree": bool(self.n_at_best[i] >= 2),
                "edge_search_best": bool(self.edge_best[i]),
            })
        return {
            "schema": SCHEMA,
            "model": self.model_name,
            "method": self.method,
            "restarts": int(self.restarts),
            "param_names": names,
            "prior": self.prior.to_dict() if self.prior is not None else None,
            "provenance": self.provenance,
            "subjects": subjects,
            "total": {"loglik": _number(self.loglik_.sum()), "aic": _number(self.aic.sum()), "bic": _number(self.bic.sum())},
            **({"meta": self.meta} if self.meta else {}),
        }

    @classmethod
    def from_dict(cls, d: dict, model: Model | None = None) -> "FitResult":
        """Rebuild a result from :meth:`to_dict`; non-finite numbers (stored as null) come back as NaN.

        A posterior fit (``method`` "bayes") comes back as a :class:`~dopa_rl.fit.bayes_result.BayesResult`.

        Parameters
        ----------
        d : dict
            What :meth:`to_dict` gave (or its JSON read back).
        model : Model, optional
            The model fitted; rebuilt from the registry (its name and options) when not given.

        Returns
        -------
        FitResult
            The result.
        """
        if isinstance(d, dict) and d.get("method") == "bayes" and cls is FitResult:
            from dopa_rl.fit.bayes_result import BayesResult

            return BayesResult.from_dict(d, model)
        try:
            names = list(d["param_names"])
            subs = d["subjects"]
            name = d["model"]
            prov = d.get("provenance") or {}
            if model is None:
                try:
                    model = rebuild_model(name, prov.get("model_options") or {})
                except InputError:
                    model = None  # a user's model that is not registered here: pass it to prediction_errors
            rows = lambda key: np.array([[_float(s[key][n]) for n in names] for s in subs], dtype=float).reshape(-1, len(names))
            return cls(
                model=model, method=d["method"], subjects=[str(s["subject"]) for s in subs], param_names=names,
                x=rows("params"), se_=rows("se"),
                loglik_=np.array([_float(s["loglik"]) for s in subs]),
                log_prior=np.array([_float(s.get("log_prior", 0.0)) for s in subs]),
                converged=np.array([bool(s["converged"]) for s in subs]),
                n_at_best=np.array([int(s["restarts_at_best"]) for s in subs]),
                restarts=int(d["restarts"]),
                n_trials_=np.array([int(s["n_trials"]) for s in subs], dtype=np.int64),
                n_obs_=np.array([int(s["n_obs"]) for s in subs], dtype=np.int64),
                at_bound=np.array([[n in s.get("at_bound", []) for n in names] for s in subs], dtype=bool).reshape(-1, len(names)),
                model_name=name, prior=Prior.from_dict(d["prior"]) if d.get("prior") else None,
                provenance=prov, meta=d.get("meta") or {},
                n_restarts_=np.array([int(s.get("restarts", d["restarts"])) for s in subs], dtype=np.int64),
                edge_best=np.array([bool(s.get("edge_search_best", False)) for s in subs], dtype=bool),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not a dopa_rl fit result ({type(exc).__name__}: {exc})") from None

    # -- NWB ----------------------------------------------------------------------------------------
    def nwb_tables(self, data: pd.DataFrame | None = None):
        """:meth:`dopa_rl.results.Result.nwb_tables`, with the per-trial values and prediction errors of
        ``data`` (the table the result was fitted to: :meth:`prediction_errors`) when given."""
        tables = super().nwb_tables()
        if data is not None:
            tables = dataclasses.replace(tables, per_trial=self.prediction_errors(data))
        return tables

    def to_nwb(self, nwbfile: Any, *, name: str | None = None, data: pd.DataFrame | None = None) -> Any:
        """Add the result to an open NWB file (:meth:`dopa_rl.results.Result.to_nwb`).

        ``FitResult.from_json(read_results(path)[name].result_json)`` gives the result back, its model rebuilt with
        the same options.

        Parameters
        ----------
        nwbfile : pynwb.NWBFile
            Open for writing.
        name : str, optional
            As :meth:`dopa_rl.results.Result.to_nwb` (default ``"dopa_rl_fit"``).
        data : pandas.DataFrame, optional
            The behaviour table it was fitted to: then the ``per_trial`` values and prediction errors are written
            too.

        Returns
        -------
        pynwb.base.ProcessingModule
            The module, holding the parameters, the provenance (model and its exact options, method, data
            fingerprint, versions) and the whole result as JSON.
        """
        from dopa_rl.results import _io

        return _io("add_to_nwb")(nwbfile, self.nwb_tables(data), name=name)

    # -- trajectories -------------------------------------------------------------------------------
    def prediction_errors(self, data: pd.DataFrame | Packed, *, model: Model | None = None,
                          choice_base: int = 0) -> pd.DataFrame:
        """Per-trial fitted trajectories (prediction errors, values, choice probabilities) of every subject,
        for ``data``: the behavior table (or packed data) this result was fitted to (checked by fingerprint).

        Rows follow each subject's sessions in their order of appearance, trials in number order within a
        session, and carry ``subject``, ``session``, ``trial``, ``cue``, ``choice`` and ``reward`` when the
        table has them.  ``choice_base=1`` numbers choices and the per-option columns (``q_1``, ``p_choice_1``)
        from 1, as in a file read with ``--choice-base 1``.
        """
        model = model or self.model
        if model is None:
            raise InputError(f"model {self.model_name!r} is not registered here; pass it: "
                             f"result.prediction_errors(data, model=...)")
        source = data.reset_index(drop=True) if isinstance(data, pd.DataFrame) else None
        packed = model.pack(source) if source is not None else data
        if self.provenance.get("carry_over"):
            packed = carried_over(packed)
        want = self.provenance.get("data_fingerprint")
        if want and data_fingerprint(packed) != want:
            raise InputError(f"these data are not the data the result was fitted to (fingerprint "
                             f"{data_fingerprint(packed)}, fitted {want}); pass the same behavior table")
        index = {s: i for i, s in enumerate(packed.subjects)}
        parts = []
        for i, s in enumerate(self.subjects):
            if s not in index:
                raise InputError(f"subject {s} of the result is not in the data")
            j = index[s]
            traj = model.trajectories(self.x[i], packed, j)
            rows = packed.row_index[j, : int(packed.n_trials[j])]
            traj.insert(0, "subject", str(s))
            if source is not None:
                for col in ("session", "trial", "cue", "choice", "reward"):
                    if col in source.columns:
                        traj[col] = source[col].to_numpy()[rows]
            parts.append(traj)
        out = pd.concat(parts, ignore_index=True)
        if choice_base:
            if "choice" in out.columns:
                out["choice"] = out["choice"] + choice_base
            ren = {}
            for c in out.columns:
                for prefix in ("q_", "p_choice_"):
                    if c.startswith(prefix) and c[len(prefix):].isdigit():
                        ren[c] = f"{prefix}{int(c[len(prefix):]) + choice_base}"
            out = out.rename(columns=ren)
        lead = [c for c in ("subject", "session", "trial", "cue", "choice", "reward") if c in out.columns]
        return out[lead + [c for c in out.columns if c not in lead]]


def make_result(model: Model, method: str, packed: Packed, z, x, se, ll, rf, restarts, seed: int,
                prior: Prior | None, cls=FitResult, **extra) -> FitResult:
    """The result object of a fit (``rf``: the :class:`~dopa_rl.fit.restarts.RestartFit` of the subject step)."""
    S = packed.n_subjects
    provenance = {
        "model": model.name, "model_options": model.options(), "method": method,
        "data_fingerprint": data_fingerprint(packed), "seed": int(seed),
        "restarts": restarts if restarts == "auto" else int(restarts), "versions": versions(),
    }
    if "n_options" in packed.extra:
        provenance["n_options"] = int(packed.extra["n_options"])
    meta = {"lane_evaluations": int(rf.evaluations), "starts_redrawn": int(rf.redrawn)}
    if restarts == "auto":
        meta["restarts"] = "auto"
    return cls(
        model=model, method=method, subjects=[str(s) for s in packed.subjects], param_names=list(model.param_names),
        x=x, se_=se, loglik_=ll,
        log_prior=prior.logpdf(z, np.arange(S)) if prior is not None else np.zeros(S),
        converged=rf.converged & np.isfinite(ll),
        n_at_best=np.asarray(rf.n_at_best, dtype=int), restarts=int(rf.n_restarts.max(initial=0)),
        n_trials_=np.asarray(packed.n_trials, dtype=np.int64).copy(), n_obs_=np.asarray(packed.n_obs, dtype=np.int64).copy(),
        at_bound=at_bound(model, z), prior=prior, provenance=provenance, meta=meta,
        n_restarts_=np.asarray(rf.n_restarts, dtype=np.int64).copy(), edge_best=np.asarray(rf.edge_best, bool).copy(),
        **extra,
    )
