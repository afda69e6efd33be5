"""Figures for the distributional-RL unit analysis (matplotlib, Agg-safe).

Every function returns a ``matplotlib.figure.Figure`` built with the object API (no pyplot state), so
callers decide where to save it.
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from dopa_rl.neural.distributional import response_by_magnitude

__all__ = ["response_by_magnitude_figure", "tau_vs_reversal_figure", "decoded_distribution_figure"]


def response_by_magnitude_figure(responses, magnitudes, result: dict, *, max_units: int = 40, title: str = "",
                                 ylabel: str = "outcome response, baseline-subtracted") -> Figure:
    """Mean outcome response vs reward magnitude per unit, coloured by tau (with its colour bar), reversal points
    marked; ``title`` says which session is drawn, ``ylabel`` the response with its unit."""
    levels, mean, _ = response_by_magnitude(responses, magnitudes)
    units = result["units"][:max_units]
    taus = np.array([np.nan if u["tau"] is None else u["tau"] for u in units], float)
    fig = Figure(figsize=(5, 4))
    ax = fig.add_subplot()
    from matplotlib import colormaps
    cmap = colormaps["coolwarm"]
    for i, u in enumerate(units):
        c = cmap(taus[i]) if np.isfinite(taus[i]) else "0.5"
        ax.plot(levels, mean[:, i], "-o", color=c, ms=3, lw=1)
        if u["reversal_point"] is not None:
            ax.plot(u["reversal_point"], 0, "|", color=c, ms=10)
    ax.axhline(0, color="k", lw=0.5, ls=":")
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    fig.colorbar(ScalarMappable(Normalize(0.0, 1.0), cmap), ax=ax, label="asymmetry tau (grey: not estimated)")
    ax.set_xlabel("reward magnitude (task units); ticks on 0: reversal points")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{title + ': ' if title else ''}response by magnitude, {len(units)} unit(s)", fontsize=8)
    fig.tight_layout()
    return fig


def tau_vs_reversal_figure(result: dict, true_tau=None, true_reversal=None) -> Figure:
    """Asymmetry tau against reversal point per unit, with the split-half r in the title."""
    rp = np.array([np.nan if u["reversal_point"] is None else u["reversal_point"] for u in result["units"]])
    tau = np.array([np.nan if u["tau"] is None else u["tau"] for u in result["units"]])
    fig = Figure(figsize=(4, 4))
    ax = fig.add_subplot()
    ax.plot(rp, tau, "o", ms=4, label="estimated")
    if true_tau is not None and true_reversal is not None:
        ax.plot(true_reversal, true_tau, "x", color="0.5", ms=4, label="true")
        ax.legend(frameon=False)
    sh = result.get("split_half", {})
    if sh:
        ax.set_title(f"split-half r = {sh['r']:.2f} [{sh['interval'][0]:.2f}, {sh['interval'][1]:.2f}], "
                     f"p = {sh['p']:.2g}", fontsize=8)
    ax.set_xlabel("reversal point (reward magnitude, task units)")
    ax.set_ylabel("asymmetry tau = s+ / (s+ + s-)")
    fig.tight_layout()
    return fig


def decoded_distribution_figure(result: dict, true_values=None, true_probs=None) -> Figure:
    """The decoded reward density against the true distribution (stems) when given."""
    dec = result["decoded"]
    fig = Figure(figsize=(5, 3))
    ax = fig.add_subplot()
    ax.plot(dec["support"], dec["density"], color="C0", label="decoded")
    if true_values is not None:
        tv = np.asarray(true_values, float)
        tp = np.ones_like(tv) / tv.size if true_probs is None else np.asarray(true_probs, float)
        ax2 = ax.twinx()
        ax2.stem(tv, tp, linefmt="0.5", markerfmt="o", basefmt=" ", label="true")
        ax2.set_ylabel("true probability")
        ax2.set_ylim(0, None)
    ax.set_xlabel("reward magnitude (task units)")
    ax.set_ylabel("decoded density (per unit of magnitude)")
    ax.set_ylim(0, None)
    fig.tight_layout()
    return fig
