"""Figures for the distributional-RL unit analysis (matplotlib, Agg-safe).

Every function returns a ``matplotlib.figure.Figure`` built with the object API (no pyplot state), so
callers decide where to save it.  Units flagged by the analysis (reversal point at a range end,
implausible slopes) are drawn open and grey and counted in the legend: they are shown, not hidden.
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

__all__ = ["response_by_magnitude_figure", "tau_vs_reversal_figure", "decoded_distribution_figure",
           "axis_label", "to_axis"]


def axis_label(result: dict, response_unit: str = "spikes/s") -> str:
    """The x label of the axis the reversal points live on."""
    if result.get("axis", {}).get("name") == "utility":
        return f"empirical utility (population mean response, {response_unit})"
    return "reward magnitude (uL)"


def to_axis(result: dict, magnitudes) -> np.ndarray:
    """Magnitudes mapped onto the result's axis (linear interpolation of the utility axis between the
    task's magnitudes; the magnitudes themselves on the magnitude axis)."""
    ax = result.get("axis")
    m = np.asarray(magnitudes, float)
    if not ax or ax["name"] != "utility":
        return m
    return np.interp(m, ax["magnitudes"], ax["values"])


def _flagged(units) -> np.ndarray:
    return np.array([bool(u.get("flags")) for u in units], bool)


def response_by_magnitude_figure(result: dict, *, max_units: int = 40, response_unit: str = "spikes/s") -> Figure:
    """Each unit's mean outcome response (``mean_response``, uncued trials shifted onto the cued ones)
    against the result's axis (utility or magnitude), coloured by tau, reversal points marked; flagged
    units dashed grey."""
    units = result["units"][:max_units]
    x = np.asarray(result["axis"]["values"], float)
    mean = np.array([[np.nan if v is None else v for v in u["mean_response"]] for u in units], float).T
    taus = np.array([np.nan if u["tau"] is None else u["tau"] for u in units], float)
    flagged = _flagged(units)
    fig = Figure(figsize=(5.5, 4))
    ax = fig.add_subplot()
    from matplotlib import colormaps
    cmap = colormaps["coolwarm"]
    for i, u in enumerate(units):
        bad = flagged[i] or not (0 <= taus[i] <= 1)
        c = "0.6" if bad else cmap(taus[i])
        ax.plot(x, mean[:, i], "--" if flagged[i] else "-", marker="o", color=c, ms=3, lw=1,
                mfc="none" if flagged[i] else c)
        if u["reversal_point"] is not None:
            ax.plot(u["reversal_point"], 0, "|", color=c, ms=10)
    ax.axhline(0, color="k", lw=0.5, ls=":")
    ax.set_xlabel(axis_label(result, response_unit))
    ax.set_ylabel(f"outcome response, baseline-subtracted ({response_unit})")
    ax.set_title(f"mean response of {len(units)} units (colour: tau; dashed grey: {int(flagged.sum())} flagged)",
                 fontsize=9)
    fig.tight_layout()
    return fig


def tau_vs_reversal_figure(result: dict, true_tau=None, true_reversal=None, *, response_unit: str = "spikes/s") -> Figure:
    """Asymmetry tau against reversal point per unit (all trials), flagged units open, with the split-half
    r (random halves and alternate trials) in the title."""
    rp = np.array([np.nan if u["reversal_point"] is None else u["reversal_point"] for u in result["units"]])
    tau = np.array([np.nan if u["tau"] is None else u["tau"] for u in result["units"]])
    flagged = _flagged(result["units"])
    fig = Figure(figsize=(4.5, 4.2))
    ax = fig.add_subplot()
    ax.plot(rp[~flagged], tau[~flagged], "o", ms=4, color="C0", label=f"units ({int((~flagged).sum())})")
    if flagged.any():
        ax.plot(rp[flagged], tau[flagged], "o", ms=5, mfc="none", color="C3", label=f"flagged ({int(flagged.sum())})")
    if true_tau is not None and true_reversal is not None:
        ax.plot(true_reversal, true_tau, "x", color="0.5", ms=4, label="true")
    ax.legend(frameon=False, fontsize=8)
    sh, alt = result.get("split_half") or {}, result.get("split_half_alternate") or {}
    parts = []
    if sh.get("r") is not None:
        parts.append(f"split-half r = {sh['r']:.2f} [{sh['interval'][0]:.2f}, {sh['interval'][1]:.2f}], "
                     f"p = {sh['p']:.2g}")
    if alt.get("r") is not None:
        parts.append(f"alternate trials r = {alt['r']:.2f}, p = {alt['p']:.2g}")
    if parts:
        ax.set_title("\n".join(parts), fontsize=8)
    ax.set_xlabel(f"reversal point, {axis_label(result, response_unit)}", fontsize=8)
    ax.set_ylabel("asymmetry tau = s+ / (s+ + s-)")
    fig.tight_layout()
    return fig


def decoded_distribution_figure(result: dict, true_values=None, true_probs=None, *,
                                response_unit: str = "spikes/s", true_label: str = "true") -> Figure:
    """The decoded reward density on the result's axis, against the true distribution (stems, mapped onto
    the same axis) when given."""
    dec = result["decoded"]
    fig = Figure(figsize=(5.5, 3.2))
    ax = fig.add_subplot()
    ax.plot(dec["support"], dec["density"], color="C0", label="decoded")
    if true_values is not None:
        tv = to_axis(result, true_values)
        tp = np.ones_like(tv) / tv.size if true_probs is None else np.asarray(true_probs, float)
        ax2 = ax.twinx()
        ax2.stem(tv, tp, linefmt="0.5", markerfmt="o", basefmt=" ", label=true_label)
        ax2.set_ylabel(f"{true_label} probability", fontsize=8)
        ax2.set_ylim(0, None)
    ax.set_xlabel(axis_label(result, response_unit))
    ax.set_ylabel("decoded density (per axis unit)")
    ax.set_title(f"reward distribution decoded from {dec.get('n_units', '?')} units' expectiles", fontsize=9)
    ax.set_ylim(0, None)
    fig.tight_layout()
    return fig
