"""Figure for the event-kernel encoding model (matplotlib, Agg-safe); returns a Figure, callers save it."""
from __future__ import annotations

from matplotlib.figure import Figure

__all__ = ["event_kernels_figure"]


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
