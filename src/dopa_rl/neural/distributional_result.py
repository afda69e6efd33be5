"""The result of the distributional-RL unit analysis (:func:`dopa_rl.neural.distributional.pooled_analysis`),
one of the result family (:class:`dopa_rl.results.Result`), with its three figures.

Units flagged by the analysis (reversal point at a range end, implausible slopes) are drawn open and grey /
red and counted in the legends: they are shown, not hidden.
"""
from __future__ import annotations

from pathlib import Path

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dopa_rl.errors import InputError
from dopa_rl.results import Result

__all__ = ["DistributionalResult", "PANELS"]

#: what :meth:`DistributionalResult.plot` can draw (``panel=``)
PANELS = ("tau", "responses", "decoded")


def _arr(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], float)


@dataclass
class DistributionalResult(Result):
    """Reversal points, asymmetries, split-half tests and the decoded reward distribution of a population
    of dopamine units (docs/distributional.md).

    ``units``: per unit ``unit``, ``session``, ``reversal_point`` (on ``axis``), ``tau``, ``slope_pos``,
    ``slope_neg``, ``flags`` (why its estimate is doubtful; empty when it is not) and ``mean_response`` (per
    magnitude); ``axis``: ``name`` (utility or magnitude), ``magnitudes`` and their ``values`` on the axis;
    ``estimator`` (count or fit); ``trial_type_shift`` (added to uncued responses; None when not pooled);
    ``split_half`` (``r`` median over random splits, ``interval``, ``p``, ``n_units``) and
    ``split_half_alternate`` (``r``, ``p``, ``n_units``); ``decoded`` (``support``, ``density``,
    ``n_units``; None when not decoded); ``n_trials``, ``n_excluded``, ``sessions`` (per session its counts
    and own split-half result); ``settings``: how it was made; ``response_unit``: the responses' unit.
    """

    units: list[dict]
    axis: dict
    estimator: str
    split_half: dict
    split_half_alternate: dict
    n_trials: int
    n_excluded: int
    sessions: list[dict]
    trial_type_shift: float | None = None
    decoded: dict | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    response_unit: str = "spikes/s"

    kind = "distributional"
    schema = "dopa_rl.distributional/1"
    description = "distributional-RL analysis of dopamine units: reversal points, asymmetries, split-half test"

    @property
    def flagged(self) -> list[dict]:
        """``[{"unit", "session", "flags"}]`` of every flagged unit (all of them stay in every test)."""
        return [{"unit": u["unit"], "session": u["session"], "flags": list(u["flags"])} for u in self.units
                if u["flags"]]

    def to_frame(self) -> pd.DataFrame:
        """One row per unit.

        Returns
        -------
        pandas.DataFrame
            Session, unit, reversal point, tau, slopes, flags (comma-separated) and the mean response at each
            magnitude (``mean_<magnitude>``).
        """
        rows = []
        for u in self.units:
            row = {"session": u["session"], "unit": str(u["unit"]),
                   **{k: np.nan if u[k] is None else u[k] for k in ("reversal_point", "tau", "slope_pos", "slope_neg")},
                   "flags": ",".join(u["flags"])}
            for m, v in zip(self.axis["magnitudes"], u.get("mean_response") or []):
                row[f"mean_{m:g}"] = np.nan if v is None else v
            rows.append(row)
        return pd.DataFrame(rows)

    @property
    def provenance_info(self) -> dict[str, Any]:
        return {**self.settings, "estimator": self.estimator, "axis": self.axis["name"],
                "trial_type_shift": self.trial_type_shift, "split_half": self.split_half,
                "split_half_alternate": self.split_half_alternate, "n_trials": self.n_trials,
                "n_excluded": self.n_excluded}

    def summary(self) -> str:
        sh, alt = self.split_half, self.split_half_alternate
        lines = [f"{len(self.units)} units in {len(self.sessions)} session(s), {self.n_trials} trials used",
                 f"estimator {self.estimator} on the {self.axis['name']} axis"
                 + (f"; uncued responses shifted by {self.trial_type_shift:+.3g} onto the cued ones"
                    if self.trial_type_shift is not None else "")]
        if sh.get("r") is None:
            lines.append("split-half reversal point vs tau: r undefined (no unit has both slopes)")
        else:
            lines.append(f"split-half reversal point vs tau: r = {sh['r']:.3f} (95% of splits {sh['interval'][0]:.3f} "
                         f"to {sh['interval'][1]:.3f}), p = {sh['p']:.3g}, {sh['n_units']} units, "
                         f"{self.settings.get('n_splits', '?')} random splits")
        if alt.get("r") is not None:
            lines.append(f"alternate trials: r = {alt['r']:.3f}, p = {alt['p']:.3g}, {alt['n_units']} units")
        flagged = self.flagged
        lines.append(f"flagged (kept in every test): {len(flagged)} of {len(self.units)} units")
        many = len(self.sessions) > 1
        lines += [f"  {f['session']}:{f['unit']}: {', '.join(f['flags'])}" if many
                  else f"  unit {f['unit']}: {', '.join(f['flags'])}" for f in flagged]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"schema": self.schema, "estimator": self.estimator, "axis": self.axis,
                "trial_type_shift": self.trial_type_shift, "units": self.units, "flagged": self.flagged,
                "split_half": self.split_half, "split_half_alternate": self.split_half_alternate,
                **({"decoded": self.decoded} if self.decoded is not None else {}),
                "n_trials": self.n_trials, "n_excluded": self.n_excluded, "sessions": self.sessions,
                "settings": self.settings, "response_unit": self.response_unit}

    @classmethod
    def from_dict(cls, d: dict) -> "DistributionalResult":
        # the family's docstring (Result.from_dict); also reads `dopa-rl distributional --json` output
        try:
            if d.get("schema") != cls.schema:
                raise ValueError(f"schema {d.get('schema')!r}, not {cls.schema!r}")
            return cls(units=[dict(u, flags=list(u.get("flags") or [])) for u in d["units"]], axis=dict(d["axis"]),
                       estimator=str(d["estimator"]), split_half=dict(d["split_half"]),
                       split_half_alternate=dict(d["split_half_alternate"]), n_trials=int(d["n_trials"]),
                       n_excluded=int(d["n_excluded"]), sessions=list(d["sessions"]),
                       trial_type_shift=d.get("trial_type_shift"), decoded=d.get("decoded"),
                       settings=dict(d.get("settings") or {}), response_unit=str(d.get("response_unit", "spikes/s")))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not a dopa_rl distributional result ({type(exc).__name__}: {exc})") from None

    # -- figures --------------------------------------------------------------------------------------
    def axis_label(self) -> str:
        """The x label of the axis the reversal points live on."""
        if self.axis.get("name") == "utility":
            return f"empirical utility (population mean response, {self.response_unit})"
        return "reward magnitude (uL)"

    def to_axis(self, magnitudes) -> np.ndarray:
        """Magnitudes mapped onto the axis (linear interpolation of the utility axis between the task's
        magnitudes; the magnitudes themselves on the magnitude axis)."""
        m = np.asarray(magnitudes, float)
        if self.axis.get("name") != "utility":
            return m
        return np.interp(m, self.axis["magnitudes"], self.axis["values"])

    def _draw(self, fig, panel: str = "tau", **options) -> None:
        if panel not in PANELS:
            raise InputError(f"panel must be one of {', '.join(PANELS)}, not {panel!r}")
        ax = fig.add_subplot()
        {"tau": self._draw_tau, "responses": self._draw_responses, "decoded": self._draw_decoded}[panel](ax, **options)

    def _draw_tau(self, ax, true_tau=None, true_reversal=None) -> None:
        """Asymmetry tau against reversal point per unit (all trials), flagged units open, split-half r in
        the title; true taus and expectiles (already on the axis) as crosses when given."""
        rp, tau = _arr(u["reversal_point"] for u in self.units), _arr(u["tau"] for u in self.units)
        bad = np.array([bool(u["flags"]) for u in self.units], bool)
        ax.figure.set_size_inches(4.8, 4.4)
        ax.plot(rp[~bad], tau[~bad], "o", ms=4, color="C0", label=f"units ({int((~bad).sum())})")
        if bad.any():
            ax.plot(rp[bad], tau[bad], "o", ms=5, mfc="none", color="C3", label=f"flagged ({int(bad.sum())})")
        if true_tau is not None and true_reversal is not None:
            ax.plot(true_reversal, true_tau, "x", color="0.5", ms=4, label="true")
        ax.legend(frameon=False, fontsize=8)
        sh, alt = self.split_half, self.split_half_alternate
        parts = []
        if sh.get("r") is not None:
            parts.append(f"split-half r = {sh['r']:.2f} [{sh['interval'][0]:.2f}, {sh['interval'][1]:.2f}], "
                         f"p = {sh['p']:.2g}")
        if alt.get("r") is not None:
            parts.append(f"alternate trials r = {alt['r']:.2f}, p = {alt['p']:.2g}")
        ax.set_title("\n".join(parts) if parts else "asymmetry vs reversal point", fontsize=8)
        ax.set_xlabel(f"reversal point, {self.axis_label()}", fontsize=8)
        ax.set_ylabel("asymmetry tau = s+ / (s+ + s-)")

    def _draw_responses(self, ax, max_units: int = 40) -> None:
        """Each unit's mean outcome response (uncued trials shifted onto the cued ones) against the axis,
        coloured by tau, reversal points marked; flagged units dashed grey."""
        from matplotlib import colormaps

        units = self.units[:max_units]
        x = np.asarray(self.axis["values"], float)
        cmap = colormaps["coolwarm"]
        n_bad = 0
        ax.figure.set_size_inches(5.8, 4.2)
        for u in units:
            y = _arr(u.get("mean_response") or [None] * x.size)
            t = np.nan if u["tau"] is None else u["tau"]
            flagged = bool(u["flags"])
            n_bad += flagged
            c = "0.6" if flagged or not (0 <= t <= 1) else cmap(t)
            ax.plot(x, y, "--" if flagged else "-", marker="o", color=c, ms=3, lw=1, mfc="none" if flagged else c)
            if u["reversal_point"] is not None:
                ax.plot(u["reversal_point"], 0, "|", color=c, ms=10)
        ax.axhline(0, color="k", lw=0.5, ls=":")
        ax.set_xlabel(self.axis_label())
        ax.set_ylabel(f"outcome response, baseline-subtracted ({self.response_unit})")
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        ax.figure.colorbar(ScalarMappable(Normalize(0.0, 1.0), cmap), ax=ax,
                           label="asymmetry tau = s+ / (s+ + s-)")
        files = [Path(str(f)).name for f in (p.get("file") for p in self.sessions) if f]
        where = (", ".join(files[:2]) + (f" +{len(files) - 2} more" if len(files) > 2 else "")) if files else ""
        ax.set_title((f"{where}\n" if where else "") + f"mean response of {len(units)} units "
                     f"(colour: tau; dashed grey: {n_bad} flagged)", fontsize=9)

    def _draw_decoded(self, ax, true_values=None, true_probs=None, true_label: str = "true") -> None:
        """The decoded reward density on the axis, against a reference distribution (stems, mapped onto the
        axis) when given."""
        if self.decoded is None:
            raise InputError("this result has no decoded distribution (decode=False or fewer than 2 units)")
        ax.figure.set_size_inches(5.8, 3.4)
        ax.plot(self.decoded["support"], self.decoded["density"], color="C0", label="decoded")
        if true_values is not None:
            tv = self.to_axis(true_values)
            tp = np.ones_like(tv) / tv.size if true_probs is None else np.asarray(true_probs, float)
            ax2 = ax.twinx()
            ax2.stem(tv, tp, linefmt="0.5", markerfmt="o", basefmt=" ", label=true_label)
            ax2.set_ylabel(f"{true_label} probability", fontsize=8)
            ax2.set_ylim(0, None)
        ax.set_xlabel(self.axis_label())
        ax.set_ylabel("decoded density (per axis unit)")
        ax.set_title(f"reward distribution decoded from {self.decoded.get('n_units', '?')} units' expectiles",
                     fontsize=9)
        ax.set_ylim(0, None)
