"""Dopamine responses regressed on a model's trial-wise reward-prediction errors (statsmodels).

* :func:`model_rpes`: the RPE at cue and outcome of every trial under given parameters (per subject);
* :func:`regress_on_rpe`: OLS ``response ~ const + rpe`` per event and unit (or session);
* :func:`mixed_on_rpe`: MixedLM ``response ~ rpe`` across sessions/subjects with a random intercept;
* :func:`regress_responses`: both on a response table, as a :class:`RegressionResult` (one of the result
  family: ``summary()``, ``to_frame()``, JSON, ``plot()``, ``to_nwb()``), keeping the statsmodels results.

Records use the keys of ``dopa-rl regress --json`` (``event``, ``unit``, ``coef``, ``pvalue``, ``n``...);
a regression that cannot be estimated (too few trials, no variation in the RPE) is reported with
``coef`` values of None and a ``note``, never with NaN numbers.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from dopa_rl.errors import InputError
from dopa_rl.models.base import Model
from dopa_rl.results import Result

__all__ = ["model_rpes", "attach_rpe", "regress_on_rpe", "mixed_on_rpe", "summary_table", "regress_responses",
           "RegressionResult", "RESPONSE_UNITS"]

#: what a per-trial response is, with its unit, by signal (axis labels)
RESPONSE_UNITS = {"photometry": "window mean of z-scored dF/F (SD of the session)",
                  "units": "firing rate in the window (spikes/s)",
                  "table": "response from the table (its own units)"}


def _num(v) -> float | None:
    v = float(v)
    return v if np.isfinite(v) else None


def model_rpes(model: Model, trials: pd.DataFrame, params: pd.DataFrame | Mapping[str, float]) -> pd.DataFrame:
    """``rpe_cue`` and ``rpe_outcome`` for every row of ``trials`` (same order), from ``params`` (one row per
    subject, indexed by subject, or one dict for all).  RW: the cue RPE is the summed value of the cue
    (the pre-cue state predicts nothing) and the outcome RPE is ``r - V``; TD: the errors in the cue and
    outcome bins; choice models: the chosen option's value and its outcome error."""
    df = trials.reset_index(drop=True)
    packed = model.pack_learning(df)  # observation columns (licks) only enter the behaviour likelihood
    X = []
    for subject in packed.subjects:
        if isinstance(params, pd.DataFrame):
            if str(subject) not in params.index.astype(str):
                raise InputError(f"no fitted parameters for subject {subject}")
            row = params.loc[params.index.astype(str) == str(subject)].iloc[0]
            p = {k: float(row[k]) for k in model.param_names if k in row}
        else:
            p = dict(params)
        X.append(model.check_params(p))
    cue, outc = model.rpes(np.array(X), packed, np.arange(packed.n_subjects))
    out = pd.DataFrame({"rpe_cue": np.full(len(df), np.nan), "rpe_outcome": np.full(len(df), np.nan)})
    for s in range(packed.n_subjects):
        n = int(packed.n_trials[s])
        rows = packed.row_index[s, :n]
        out.loc[rows, "rpe_cue"] = cue[s, :n]
        out.loc[rows, "rpe_outcome"] = outc[s, :n]
    return out


def attach_rpe(long: pd.DataFrame, wide_trials: pd.DataFrame, rpes: pd.DataFrame) -> pd.DataFrame:
    """Add the ``rpe`` column to a long response table, matching (subject, session, trial) and event."""
    keys = [c for c in ("subject", "session", "trial") if c in wide_trials.columns]
    r = wide_trials[keys].reset_index(drop=True).astype({k: str for k in keys if k != "trial"})
    r = pd.concat([r, rpes.reset_index(drop=True)], axis=1)
    melted = r.melt(id_vars=keys, value_vars=["rpe_cue", "rpe_outcome"], var_name="event", value_name="rpe")
    melted["event"] = melted["event"].str.replace("rpe_", "", regex=False)
    left = long.astype({k: str for k in keys if k != "trial"})
    return left.merge(melted, on=[*keys, "event"], how="left", validate="many_to_one")


def _record(event, unit, res=None, n=0, note=None, **extra) -> dict:
    if res is None:
        return {"event": event, "unit": unit, "coef": {"const": None, "rpe": None}, "se": {"const": None, "rpe": None},
                "pvalue": {"const": None, "rpe": None}, "n": int(n), "note": note, **extra}
    return {"event": event, "unit": unit,
            "coef": {"const": _num(res.params["const"]), "rpe": _num(res.params["rpe"])},
            "se": {"const": _num(res.bse["const"]), "rpe": _num(res.bse["rpe"])},
            "pvalue": {"const": _num(res.pvalues["const"]), "rpe": _num(res.pvalues["rpe"])},
            "n": int(n), **extra}


def _usable(d: pd.DataFrame) -> tuple[pd.DataFrame, str | None]:
    d = d[np.isfinite(d["response"].to_numpy(float)) & np.isfinite(d["rpe"].to_numpy(float))]
    if len(d) < 3:
        return d, f"only {len(d)} trial(s) with a response and an RPE"
    if np.ptp(d["rpe"].to_numpy(float)) == 0:
        return d, "the RPE does not vary across these trials"
    if np.ptp(d["response"].to_numpy(float)) == 0:
        return d, "the response does not vary across these trials"
    return d, None


def _key(col: pd.Series) -> pd.Series:
    """Text group labels with missing values as "-" (pandas 3 keeps None as missing even after astype(str))."""
    return col.map(lambda v: "-" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)).astype(object)


def _unit(v: str) -> str | None:
    return None if v == "-" else v


def regress_on_rpe(long: pd.DataFrame, *, by: tuple[str, ...] = ("subject", "session", "unit"),
                   fits: list | None = None) -> list[dict]:
    """OLS ``response ~ const + rpe`` for each event and each group of ``by`` (default: one regression per
    session and unit; ``by=("unit",)`` pools sessions).  Returns one record per regression; ``fits``, when
    given, receives the statsmodels results in the same order (None where a regression was not estimated)."""
    import statsmodels.api as sm

    if "rpe" not in long.columns:
        raise InputError("response table has no 'rpe' column; run a model first (attach_rpe)")
    out = []
    keys = ["event", *[b for b in by if b in long.columns]]
    for key, d in long.groupby([_key(long[k]) for k in keys], sort=False):
        key = key if isinstance(key, tuple) else (key,)
        info = dict(zip(keys, key))
        unit = _unit(info.get("unit", "-"))
        extra = {k: v for k, v in info.items() if k not in ("event", "unit")}
        d, note = _usable(d)
        if note:
            out.append(_record(info["event"], unit, n=len(d), note=note, model="ols", **extra))
            if fits is not None:
                fits.append(None)
            continue
        X = sm.add_constant(d["rpe"].to_numpy(float).reshape(-1, 1), has_constant="add")
        res = sm.OLS(d["response"].to_numpy(float), pd.DataFrame(X, columns=["const", "rpe"])).fit()
        if fits is not None:
            fits.append(res)
        out.append(_record(info["event"], unit, res, len(d), model="ols", rsquared=_num(res.rsquared), **extra))
    return out


def mixed_on_rpe(long: pd.DataFrame, *, groups: str = "session", fits: list | None = None) -> list[dict]:
    """MixedLM ``response ~ rpe`` per event, random intercept per ``groups``: ``session`` (each subject's
    sessions apart) or ``subject``.  Units are pooled (their ids are not comparable across sessions).
    ``fits``, when given, receives the statsmodels results (None where not estimated)."""
    import statsmodels.formula.api as smf

    if groups not in long.columns:
        raise InputError(f"response table has no '{groups}' column for the random intercept")
    out = []
    label = _key(long["subject"]) + "/" + _key(long["session"]) if groups == "session" and "subject" in long.columns \
        else _key(long[groups])
    if "unit" in long.columns and (_key(long["unit"]) != "-").any():
        label = label + "/" + _key(long["unit"])  # each unit its own intercept
    long = long.assign(_group=label.to_numpy())
    for event, d in long.groupby("event", sort=False):
        unit = None
        d, note = _usable(d)
        n_groups = d["_group"].nunique()
        if note is None and n_groups < 2:
            note = f"only {n_groups} {groups}: a random intercept needs at least 2 (use OLS)"
        if note:
            out.append(_record(event, unit, n=len(d), note=note, model="mixedlm", groups=groups))
            if fits is not None:
                fits.append(None)
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter; failures are reported below
            res = smf.mixedlm("response ~ rpe", d, groups="_group").fit(reml=True)
        if fits is not None:
            fits.append(res)
        ren = {"Intercept": "const"}
        fitted = SimpleNamespace(params=res.params.rename(ren), bse=res.bse.rename(ren), pvalues=res.pvalues.rename(ren))
        out.append(_record(event, unit, fitted, len(d), model="mixedlm", groups=groups, n_groups=int(n_groups),
                           group_var=_num(res.cov_re.iloc[0, 0]), converged=bool(res.converged)))
    return out


def summary_table(records: list[dict]) -> str:
    """The usual table: one line per regression with coefficients, SE, p-value and n."""
    rows = []
    for r in records:
        c, s, p = r["coef"], r.get("se", {}), r["pvalue"]
        fmt = lambda v, f=".4g": "-" if v is None else format(v, f)  # noqa: E731
        rows.append({"model": r.get("model", "ols"), "event": r["event"], "unit": r["unit"] or "-",
                     **{k: r[k] for k in ("subject", "session") if k in r},
                     "const": fmt(c["const"]), "rpe": fmt(c["rpe"]), "se_rpe": fmt(s.get("rpe")),
                     "p_rpe": fmt(p["rpe"], ".3g"), "n": r["n"], "note": r.get("note") or ""})
    return pd.DataFrame(rows).fillna("-").to_string(index=False) if rows else "(no regressions)"


def _flat(record: dict) -> dict:
    out = {k: record.get(k) for k in ("model", "event", "unit", "subject", "session", "groups")}
    for part, prefix in (("coef", ""), ("se", "se_"), ("pvalue", "p_")):
        for name in ("const", "rpe"):
            v = (record.get(part) or {}).get(name)
            out[f"{prefix}{name}"] = np.nan if v is None else float(v)
    out["n"] = int(record["n"])
    out["note"] = record.get("note") or ""
    return out


@dataclass
class RegressionResult(Result):
    """Dopamine responses regressed on a model's trial-wise RPEs.

    ``records``: one per regression (OLS per event and session/unit, MixedLM pooled over sessions), with the
    keys of ``dopa-rl regress --json``; ``fits``: the statsmodels results in the same order (None where a
    regression could not be estimated; not stored in JSON, so a result read back has none); ``responses``:
    the per-trial response table with its ``rpe`` column; ``params``: the learning parameters per subject
    that gave the RPEs; ``info``: how they were obtained (``fit``: behavior, neural, joint, trace or fixed,
    and that fit's statistics).
    """

    model: str
    signal: str
    params: pd.DataFrame
    records: list[dict]
    responses: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)
    fits: list = field(default_factory=list, repr=False)
    provenance: dict[str, Any] = field(default_factory=dict)

    kind = "regression"
    schema = "dopa_rl.regression/1"
    description = "dopamine responses regressed on a model's trial-wise reward-prediction errors"

    def to_frame(self) -> pd.DataFrame:
        """One row per regression.

        Returns
        -------
        pandas.DataFrame
            Model (ols/mixedlm), event, unit, subject, session, coefficients, their standard errors and p-values,
            n, and a note where it could not be estimated.
        """
        frame = pd.DataFrame([_flat(r) for r in self.records])
        return frame.dropna(axis=1, how="all") if len(frame) else frame

    def per_trial(self) -> pd.DataFrame:
        return self.responses

    @property
    def provenance_info(self) -> dict[str, Any]:
        return {"model": self.model, "signal": self.signal, **self.provenance,
                "params_by_subject": {str(s): dict(row) for s, row in self.params.iterrows()},
                **{k: v for k, v in self.info.items() if k in ("fit", "loglik", "converged", "indicator")}}

    def summary(self) -> str:
        """A plain-text report.

        The learning parameters (mean, and per subject when there are several, ``*`` marking a value at a bound
        of the parameter as ``dopa-rl fit`` does), then one line per regression.

        Returns
        -------
        str
            The report, as ``dopa-rl regress`` prints it.
        """
        # a parameter whose profile likelihood is flat in every fit (info["weakly_identified"], from
        # dopa_rl.fit.identification) is not a measurement: say so instead of printing its value
        weak = self.info.get("weakly_identified") or []
        n_fits = len(self.info.get("identification") or {})
        flat = {p for p in self.params.columns if n_fits and sum(w["param"] == p for w in weak) == n_fits}
        mean = ", ".join(f"{k}=not identified" if k in flat else f"{k}={v:.4g}" for k, v in self.params.mean().items())
        lines = [f"model {self.model} ({self.info.get('fit', '?')}): {mean}"]
        bound = {str(s): b for s, b in (self.info.get("at_bound") or {}).items() if b}
        if len(self.params) > 1 or bound:
            shown = self.params.copy().astype(object)
            for s, names in bound.items():
                for name in names.split(","):
                    if s in shown.index.astype(str) and name in shown.columns:
                        i = list(shown.index.astype(str)).index(s)
                        shown.iat[i, list(shown.columns).index(name)] = f"{float(self.params.iat[i, list(shown.columns).index(name)]):.4g}*"
            table = shown.to_string(float_format=lambda v: f"{v:.4g}", formatters={
                c: (lambda v: v if isinstance(v, str) else f"{v:.4g}") for c in shown.columns})
            lines.append(table)
        if bound:
            lines.append(f"* at a bound (standard error NaN) for {len(bound)} subject(s): "
                         + "; ".join(f"{s}: {b}" for s, b in list(bound.items())[:5])
                         + (" ..." if len(bound) > 5 else "") + "; the RPEs of those subjects rest on a bound value")
        lines.append(summary_table(self.records))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"schema": self.schema, "model": self.model, "signal": self.signal, **self.info,
                "params": {k: float(self.params[k].mean()) for k in self.params.columns},
                "params_by_subject": {str(s): {k: float(v) for k, v in row.items()} for s, row in self.params.iterrows()},
                "regressions": self.records, "provenance": self.provenance,
                "responses": {c: self.responses[c].tolist() for c in self.responses.columns}}

    @classmethod
    def from_dict(cls, d: dict) -> "RegressionResult":
        # the family's docstring (Result.from_dict); the statsmodels results are not stored, so not rebuilt
        try:
            if d.get("schema") != cls.schema:
                raise ValueError(f"schema {d.get('schema')!r}, not {cls.schema!r}")
            skip = {"schema", "model", "signal", "params", "params_by_subject", "regressions", "provenance",
                    "responses"}
            by = d["params_by_subject"]
            params = pd.DataFrame.from_dict(by, orient="index").rename_axis("subject")
            responses = pd.DataFrame({c: [np.nan if v is None else v for v in vals] if c in ("response", "rpe")
                                      else vals for c, vals in d["responses"].items()})
            return cls(model=d["model"], signal=d["signal"], params=params, records=list(d["regressions"]),
                       responses=responses, info={k: v for k, v in d.items() if k not in skip},
                       provenance=dict(d.get("provenance") or {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not a dopa_rl regression result ({type(exc).__name__}: {exc})") from None

    def _line(self, event: str) -> tuple[float, float, str] | None:
        """The slope drawn for ``event``: the table's pooled MixedLM estimate when there is one, else its
        single OLS estimate (several OLS rows and no MixedLM: none, the table has no one slope)."""
        rows = [r for r in self.records if r["event"] == event and r["coef"]["rpe"] is not None]
        mixed = [r for r in rows if r.get("model") == "mixedlm"]
        if mixed:
            r = mixed[0]
            return r["coef"]["const"], r["coef"]["rpe"], f"MixedLM slope {r['coef']['rpe']:.3g} (pooled, table)"
        if len(rows) == 1:
            r = rows[0]
            return r["coef"]["const"], r["coef"]["rpe"], f"OLS slope {r['coef']['rpe']:.3g} (table)"
        return None

    def _draw(self, fig, **options) -> None:
        """Response against RPE at cue and at outcome, with the slope of the table."""
        long = self.responses
        events = [e for e in ("cue", "outcome") if (long["event"] == e).any()] or ["outcome"]
        fig.set_size_inches(4.4 * len(events), 3.6)
        axes = fig.subplots(1, len(events), squeeze=False)[0]
        n_sessions = long.groupby(["subject", "session"]).ngroups if {"subject", "session"} <= set(long.columns) else 1
        for ax, ev in zip(axes, events):
            d = long[(long["event"] == ev) & np.isfinite(long["response"]) & np.isfinite(long["rpe"])]
            ax.scatter(d["rpe"], d["response"], s=6, alpha=0.4, label=f"trials ({len(d)}, {n_sessions} session(s))")
            line = self._line(ev)
            if line is not None and len(d):
                b0, b1, label = line
                xs = np.linspace(d["rpe"].min(), d["rpe"].max(), 50)
                ax.plot(xs, b0 + b1 * xs, color="C3", label=label)
            ax.set_xlabel(f"{self.model} RPE at {ev} (reward units)")
            ax.set_ylabel(RESPONSE_UNITS.get(self.signal, "response"))
            ax.set_title(f"{self.signal} response at {ev} vs model RPE", fontsize=9)
            ax.legend(fontsize=7, frameon=False)


def regress_responses(long: pd.DataFrame, *, model: str, signal: str, params: pd.DataFrame,
                      info: Mapping[str, Any] | None = None, provenance: Mapping[str, Any] | None = None
                      ) -> RegressionResult:
    """OLS per event and session/unit, plus MixedLM pooled over sessions when there are several, on a
    response table with an ``rpe`` column (:func:`attach_rpe`); see :class:`RegressionResult`."""
    fits: list = []
    records = regress_on_rpe(long, fits=fits)
    if {"subject", "session"} <= set(long.columns) and long.groupby(["subject", "session"]).ngroups > 1:
        records += mixed_on_rpe(long, groups="session", fits=fits)
    return RegressionResult(model=model, signal=signal, params=params, records=records, responses=long,
                            info=dict(info or {}), fits=fits, provenance=dict(provenance or {}))
