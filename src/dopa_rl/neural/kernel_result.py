"""The result of an event-kernel regression (:func:`dopa_rl.neural.kernels.event_kernel_regression`), one of
the result family (:class:`dopa_rl.results.Result`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dopa_rl.errors import InputError
from dopa_rl.results import Result

__all__ = ["KernelResult"]


@dataclass
class KernelResult(Result):
    """Event kernels fitted to a photometry trace by cross-validated ridge regression.

    ``lags`` [n_lags] in s from the event; ``kernels``: per event, the kernel over ``lags`` (trace units per
    unit of event amplitude); ``coef``: per event, its basis weights; ``r2_cv`` (pooled over contiguous
    folds) and ``r2_train``; ``lambda_``: the ridge penalty chosen; ``intercept``; ``unique``: per event, the
    drop in cross-validated R^2 without it (None when not computed); ``settings``: rate, window, basis,
    folds and t0 of the fit; ``trace_unit``: what the trace is (axis labels); ``collinear``: pairs of
    events whose kernels cannot be separated (``{"events": [a, b], "vif", "lag"}``,
    :func:`dopa_rl.neural.kernels.kernel_collinearity`).
    """

    lags: np.ndarray
    kernels: dict[str, np.ndarray]
    r2_cv: float
    r2_train: float
    lambda_: float
    intercept: float
    coef: dict[str, np.ndarray]
    unique: dict[str, float] | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    trace_unit: str = "trace units"
    provenance: dict[str, Any] = field(default_factory=dict)
    collinear: list[dict] = field(default_factory=list)

    kind = "kernels"
    schema = "dopa_rl.kernels/1"
    description = "event-kernel (encoding-model) regression of a photometry trace"

    def inseparable(self) -> dict[str, list[str]]:
        """Per event, the events its kernel cannot be separated from (``collinear``); events not listed are fine."""
        out: dict[str, list[str]] = {}
        for c in self.collinear:
            a, b = c["events"]
            out.setdefault(a, []).append(b)
            out.setdefault(b, []).append(a)
        return out

    def to_frame(self) -> pd.DataFrame:
        """The event kernels.

        Returns
        -------
        pandas.DataFrame
            One row per lag (``lag_s``), one column per event kernel.
        """
        return pd.DataFrame({"lag_s": self.lags, **{k: v for k, v in self.kernels.items()}})

    def events_frame(self) -> pd.DataFrame:
        """One row per event: unique contribution, kernel peak (largest absolute value) and its lag."""
        rows = []
        tangled = self.inseparable()
        for name, k in self.kernels.items():
            i = int(np.argmax(np.abs(k)))
            rows.append({"event": name, "unique_r2": np.nan if self.unique is None else self.unique[name],
                         "peak": float(k[i]), "peak_lag_s": float(self.lags[i]),
                         "not_separable_from": ",".join(tangled.get(name, []))})
        return pd.DataFrame(rows)

    @property
    def provenance_info(self) -> dict[str, Any]:
        return {**self.settings, **self.provenance, "r2_cv": self.r2_cv, "r2_train": self.r2_train,
                "lambda": self.lambda_, "intercept": self.intercept, "trace_unit": self.trace_unit}

    def summary(self) -> str:
        lines = [f"Event kernels: cross-validated R2 {self.r2_cv:.4f} (train {self.r2_train:.4f}), "
                 f"lambda {self.lambda_:.4g}"]
        for r in self.events_frame().itertuples():
            u = "" if np.isnan(r.unique_r2) else f"unique dR2 {r.unique_r2:+.4f}; "
            note = f"  (not separable from {r.not_separable_from.replace(',', ', ')})" if r.not_separable_from else ""
            lines.append(f"  {r.event:<12} {u}kernel peak {r.peak:+.3g} at {r.peak_lag_s:+.3g} s{note}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"schema": self.schema, "lags": self.lags, "kernels": self.kernels, "r2_cv": self.r2_cv,
                "r2_train": self.r2_train, "lambda": self.lambda_, "intercept": self.intercept, "coef": self.coef,
                "unique": self.unique, "settings": self.settings, "trace_unit": self.trace_unit,
                "provenance": self.provenance,
                "collinear": [{**c, "vif": c["vif"] if np.isfinite(c["vif"]) else None} for c in self.collinear]}

    @classmethod
    def from_dict(cls, d: dict) -> "KernelResult":
        # the family's docstring (Result.from_dict); nothing is left out
        try:
            if d.get("schema") != cls.schema:
                raise ValueError(f"schema {d.get('schema')!r}, not {cls.schema!r}")
            arr = lambda v: np.array([np.nan if x is None else x for x in v], dtype=float)  # noqa: E731
            return cls(lags=arr(d["lags"]), kernels={k: arr(v) for k, v in d["kernels"].items()},
                       r2_cv=float(d["r2_cv"]), r2_train=float(d["r2_train"]), lambda_=float(d["lambda"]),
                       intercept=float(d["intercept"]), coef={k: arr(v) for k, v in d["coef"].items()},
                       unique=None if d.get("unique") is None else {k: float(v) for k, v in d["unique"].items()},
                       settings=dict(d.get("settings") or {}), trace_unit=str(d.get("trace_unit", "trace units")),
                       provenance=dict(d.get("provenance") or {}),
                       collinear=[{**c, "vif": float("inf") if c.get("vif") is None else float(c["vif"])}
                                  for c in d.get("collinear") or []])
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not a dopa_rl event-kernel result ({type(exc).__name__}: {exc})") from None

    def _draw(self, fig, truth: dict | None = None, **options) -> None:
        """One panel per event kernel (true kernels dashed when given), with its unique contribution."""
        names = list(self.kernels)
        tangled = self.inseparable()
        fig.set_size_inches(max(2.8 * len(names), 4.0), 3.2)
        axes = fig.subplots(1, len(names), squeeze=False)[0]
        for ax, name in zip(axes, names):
            ax.plot(self.lags, self.kernels[name], color="C3" if name in tangled else "C0", label="estimated")
            if truth and name in truth:
                ax.plot(self.lags, truth[name], "k--", lw=1, label="true")
            ax.axvline(0, color="0.7", lw=0.5)
            u = "" if self.unique is None else f" (unique dR2 {self.unique[name]:.3f})"
            sep = f"\nnot separable from {', '.join(tangled[name])}" if name in tangled else ""
            ax.set_title(f"{name} kernel{u}{sep}", fontsize=8, color="C3" if name in tangled else "k")
            ax.set_xlabel(f"lag from {name} (s)")
            ax.legend(fontsize=6, frameon=False)
        axes[0].set_ylabel(f"kernel ({self.trace_unit} per event)")
        fig.suptitle(f"event kernels (cross-validated R2 {self.r2_cv:.3f})", fontsize=9)
