"""Figures for the distributional, ANCCR, indicator and event-kernel analyses (matplotlib, Agg-safe).

Every function returns a ``matplotlib.figure.Figure`` built with the object API (no pyplot state), so
callers decide where to save it.
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from dopa_rl.analysis.distributional import response_by_magnitude

__all__ = ["response_by_magnitude_figure", "tau_vs_reversal_figure", "decoded_distribution_figure",
           "event_kernels_figure"]


def response_by_magnitude_figure(responses, magnitudes, result: dict, *, max_units: int = 40) -> Figure:
    """Mean outcome response vs reward magnitude per unit, coloured by tau, reversal points marked."""
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
    ax.set_xlabel("reward magnitude")
    ax.set_ylabel("response (baseline-subtracted)")
    ax.set_title("response by magnitude (colour: tau)")
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
    ax.set_xlabel("reversal point")
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
    ax.set_xlabel("reward magnitude")
    ax.set_ylabel("decoded density")
    ax.set_ylim(0, None)
    fig.tight_layout()
    return fig


def event_kernels_figure(fit: dict, truth: dict | None = None) -> Figure:
    """Estimated event kernels (one panel per event), true kernels dashed when given."""
    names = list(fit["kernels"])
    fig = Figure(figsize=(2.6 * len(names), 2.6))
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names):
        ax.plot(fit["lags"], fit["kernels"][name], label="estimated")
        if truth and name in truth:
            ax.plot(fit["lags"], truth[name], "k--", lw=1, label="true")
        ax.axvline(0, color="0.7", lw=0.5)
        ax.set_title(f"{name}  (unique dR2 {fit.get('unique', {}).get(name, float('nan')):.3f})", fontsize=8)
        ax.set_xlabel("lag (s)")
    axes[0].set_ylabel("kernel")
    fig.tight_layout()
    return fig
