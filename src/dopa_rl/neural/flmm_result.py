"""The result of a functional linear mixed model (:func:`dopa_rl.neural.flmm.fit_flmm`), one of the result family
(:class:`dopa_rl.results.Result`): coefficient functions over trial time with pointwise and joint bands."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dopa_rl.errors import InputError
from dopa_rl.results import Result

__all__ = ["FLMMResult", "BAND_KEYS"]

#: the per-coefficient arrays of :meth:`FLMMResult.bands` (and of ``dopa-rl flmm --json``)
BAND_KEYS = ("time_s", "estimate", "pointwise_low", "pointwise_high", "joint_low", "joint_high")


@dataclass
class FLMMResult(Result):
    """Smoothed coefficient functions of a functional mixed model with pointwise and joint bands.

    ``names`` the fixed effects (patsy's column names: ``Intercept``, ``cs``...); ``time`` [L] seconds from
    the event; ``estimate`` (p, L) the smoothed coefficients, ``unsmoothed`` (p, L) the pointwise REML
    estimates before smoothing, ``sd`` (p, L) the standard deviation of the smoothed coefficients and ``qn``
    (p,) the joint-band multiplier of each (pointwise bands ``estimate +- z sd``, joint bands ``estimate +- qn
    sd``); ``aic``/``bic`` the means over time of the pointwise values (fastFMM's ``colMeans(mod$aic)``) and
    ``aic_pointwise``/``bic_pointwise`` the values; ``inference`` analytic or bootstrap; ``settings`` how the
    fit was made (smoothing parameters, resamples, rate...); ``signal_unit`` the unit of the signal (axis
    labels); ``events``: marks drawn on the figures, seconds from the event (``{"cue": 0.0, "outcome": 1.5}``).
    ``cov`` (p, L, L), the covariance of the smoothed coefficients, is kept in memory only (not in JSON).
    """

    formula: str
    names: list[str]
    time: np.ndarray
    estimate: np.ndarray
    unsmoothed: np.ndarray
    sd: np.ndarray
    qn: np.ndarray
    aic_pointwise: np.ndarray
    bic_pointwise: np.ndarray
    n_trials: int
    n_groups: int
    inference: str = "analytic"
    level: float = 0.95
    settings: dict[str, Any] = field(default_factory=dict)
    signal_unit: str = "signal units"
    events: dict[str, float] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    cov: np.ndarray | None = field(default=None, repr=False, compare=False)

    kind = "flmm"
    schema = "dopa_rl.flmm/1"
    description = "functional linear mixed model (fastFMM fui) of a trial x time signal"

    # -- numbers --------------------------------------------------------------------------------------
    @property
    def aic(self) -> float:
        """Mean over time points of the pointwise AIC."""
        return float(np.mean(self.aic_pointwise))

    @property
    def bic(self) -> float:
        """Mean over time points of the pointwise BIC."""
        return float(np.mean(self.bic_pointwise))

    def _index(self, name: str) -> int:
        if name not in self.names:
            raise InputError(f"no coefficient {name!r}; the model has {', '.join(self.names)}")
        return self.names.index(name)

    def bands(self, name: str) -> dict[str, np.ndarray]:
        """The coefficient function ``name`` with its bands, keyed by :data:`BAND_KEYS`."""
        from scipy import stats

        j = self._index(name)
        z = stats.norm.ppf(0.5 + self.level / 2)
        b, sd = self.estimate[j], self.sd[j]
        return {"time_s": self.time, "estimate": b, "pointwise_low": b - z * sd, "pointwise_high": b + z * sd,
                "joint_low": b - self.qn[j] * sd, "joint_high": b + self.qn[j] * sd}

    def intervals(self, name: str, band: str = "joint") -> list[tuple[float, float, int]]:
        """Runs of time points where the ``band`` (``"joint"`` or ``"pointwise"``) of ``name`` excludes 0.

        Returns
        -------
        list of (start_s, stop_s, sign)
            First and last time point of each run (seconds from the event) and the sign of the coefficient
            there (+1 above 0, -1 below).
        """
        if band not in ("joint", "pointwise"):
            raise InputError(f"band {band!r}: choose joint or pointwise")
        b = self.bands(name)
        sign = np.where(b[f"{band}_low"] > 0, 1, np.where(b[f"{band}_high"] < 0, -1, 0))
        out = []
        k = 0
        while k < len(sign):
            if sign[k] == 0:
                k += 1
                continue
            j = k
            while j + 1 < len(sign) and sign[j + 1] == sign[k]:
                j += 1
            out.append((float(self.time[k]), float(self.time[j]), int(sign[k])))
            k = j + 1
        return out

    def report(self) -> dict:
        """What ``dopa-rl flmm --json`` writes: ``formula``, ``n_trials``, ``n_groups``, ``aic``, ``bic`` and,
        per coefficient, the arrays of :data:`BAND_KEYS` (time in seconds from the event)."""
        return {"formula": self.formula, "n_trials": int(self.n_trials), "n_groups": int(self.n_groups),
                "aic": self.aic, "bic": self.bic,
                "coefficients": {n: {k: np.asarray(v, float).tolist() for k, v in self.bands(n).items()}
                                 for n in self.names}}

    # -- the result family ----------------------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """One row per coefficient and time point.

        Returns
        -------
        pandas.DataFrame
            Coefficient, time (s from the event), smoothed and unsmoothed estimate, sd and the four band edges
            (pointwise and joint, low and high).
        """
        parts = []
        for j, name in enumerate(self.names):
            b = self.bands(name)
            parts.append(pd.DataFrame({"coefficient": name, "time_s": self.time, "estimate": b["estimate"],
                                       "unsmoothed": self.unsmoothed[j], "sd": self.sd[j],
                                       **{k: b[k] for k in BAND_KEYS[2:]}}))
        return pd.concat(parts, ignore_index=True)

    @property
    def provenance_info(self) -> dict[str, Any]:
        return {"formula": self.formula, "inference": self.inference, "level": self.level, "aic": self.aic,
                "bic": self.bic, "n_trials": self.n_trials, "n_groups": self.n_groups,
                "qn": dict(zip(self.names, map(float, self.qn))), **self.settings, **self.provenance}

    def summary(self) -> str:
        lines = [f"Functional mixed model {self.formula}: {self.n_trials} trials, {self.n_groups} groups, "
                 f"{len(self.time)} time points ({self.time[0]:+.3g} to {self.time[-1]:+.3g} s from the event)",
                 f"  AIC {self.aic:.3f}  BIC {self.bic:.3f} (means over time points); {self.inference} "
                 f"{self.level:.0%} bands"]
        for j, name in enumerate(self.names):
            joint = self.intervals(name, "joint")
            point = self.intervals(name, "pointwise")
            lines.append(f"  {name}: joint multiplier {self.qn[j]:.3f}; joint band excludes 0 "
                         + (_runs(joint) if joint else "nowhere")
                         + "; pointwise " + (_runs(point) if point else "nowhere"))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"schema": self.schema, "formula": self.formula, "names": list(self.names), "time": self.time,
                "estimate": self.estimate, "unsmoothed": self.unsmoothed, "sd": self.sd, "qn": self.qn,
                "aic_pointwise": self.aic_pointwise, "bic_pointwise": self.bic_pointwise,
                "n_trials": int(self.n_trials), "n_groups": int(self.n_groups), "inference": self.inference,
                "level": self.level, "settings": self.settings, "signal_unit": self.signal_unit,
                "events": self.events, "provenance": self.provenance}

    @classmethod
    def from_dict(cls, d: dict) -> "FLMMResult":
        # the family's docstring (Result.from_dict)
        try:
            if d.get("schema") != cls.schema:
                raise ValueError(f"schema {d.get('schema')!r}, not {cls.schema!r}")
            arr = vec = _floats
            return cls(formula=str(d["formula"]), names=[str(n) for n in d["names"]], time=vec(d["time"]),
                       estimate=arr(d["estimate"]), unsmoothed=arr(d["unsmoothed"]), sd=arr(d["sd"]),
                       qn=vec(d["qn"]), aic_pointwise=vec(d["aic_pointwise"]), bic_pointwise=vec(d["bic_pointwise"]),
                       n_trials=int(d["n_trials"]), n_groups=int(d["n_groups"]), inference=str(d["inference"]),
                       level=float(d["level"]), settings=dict(d.get("settings") or {}),
                       signal_unit=str(d.get("signal_unit", "signal units")),
                       events={str(k): float(v) for k, v in (d.get("events") or {}).items()},
                       provenance=dict(d.get("provenance") or {}))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise InputError(f"not a dopa_rl functional mixed model result ({type(exc).__name__}: {exc})") from None

    def _draw(self, fig, coefficients: list[str] | None = None, titles: dict[str, str] | None = None,
              event_name: str = "event", **options) -> None:
        """One panel per coefficient, as in Loewinger et al. (2025, Fig. 3): the estimate over trial time, the
        pointwise band (dark) inside the joint band (light), 0 marked, and the ``events`` as vertical lines."""
        names = list(coefficients or self.names)
        for n in names:
            self._index(n)
        fig.set_size_inches(max(3.4 * len(names), 4.2), 3.4)
        axes = fig.subplots(1, len(names), squeeze=False)[0]
        pct = f"{self.level:.0%}"
        for ax, name in zip(axes, names):
            b = self.bands(name)
            t = self.time
            ax.fill_between(t, b["joint_low"], b["joint_high"], color="0.82", lw=0, label=f"joint {pct} band")
            ax.fill_between(t, b["pointwise_low"], b["pointwise_high"], color="0.6", lw=0,
                            label=f"pointwise {pct} band")
            ax.plot(t, b["estimate"], color="k", lw=1.4, label="estimate")
            ax.axhline(0.0, color="C3", lw=0.8, ls="--")
            for k, (ev, at) in enumerate(self.events.items()):
                ax.axvline(at, color=f"C{k}", lw=0.9, ls=":", label=f"{ev} ({at:+.3g} s)")
            title = (titles or {}).get(name, name)
            joint = self.intervals(name, "joint")
            ax.set_title(f"{title}\njoint band excludes 0: {_runs(joint) if joint else 'nowhere'}", fontsize=8)
            ax.set_xlabel(f"time from {event_name} (s)")
            ax.set_xlim(t[0], t[-1])
        axes[0].set_ylabel(f"coefficient ({self.signal_unit} per unit)")
        axes[0].legend(fontsize=6, frameon=False, loc="best")
        fig.suptitle(f"{self.formula}  ({self.n_trials} trials, {self.n_groups} groups; {self.inference} bands)",
                     fontsize=9)


def _floats(v) -> np.ndarray:
    """JSON numbers (``null`` for NaN, nested lists for matrices) as a float array."""
    a = np.array(v, dtype=object)
    return np.where(a == None, np.nan, a).astype(float)  # noqa: E711


def _runs(runs) -> str:
    return ", ".join(f"{a:+.2f} to {b:+.2f} s ({'>' if s > 0 else '<'} 0)" for a, b, s in runs)
