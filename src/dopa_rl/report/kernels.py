"""Figure for the event-kernel encoding model (matplotlib, Agg-safe); returns a Figure, callers save it."""
from __future__ import annotations

from matplotlib.figure import Figure

__all__ = ["event_kernels_figure"]


def event_kernels_figure(fit: dict, truth: dict | None = None) -> Figure:
    """Estimated event kernels (one panel per event), true kernels dashed when given; a kernel that cannot
    be separated from another (``fit["collinear"]``) is drawn in red and says so in its title."""
    names = list(fit["kernels"])
    tangled: dict[str, list[str]] = {}
    for c in fit.get("collinear", []):
        a, b = c["events"]
        tangled.setdefault(a, []).append(b)
        tangled.setdefault(b, []).append(a)
    fig = Figure(figsize=(2.6 * len(names), 2.6))
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names):
        ax.plot(fit["lags"], fit["kernels"][name], color="C3" if name in tangled else "C0", label="estimated")
        if truth and name in truth:
            ax.plot(fit["lags"], truth[name], "k--", lw=1, label="true")
        ax.axvline(0, color="0.7", lw=0.5)
        title = f"{name}  (unique dR2 {fit.get('unique', {}).get(name, float('nan')):.3f})"
        if name in tangled:
            title += f"\nnot separable from {', '.join(tangled[name])}"
        ax.set_title(title, fontsize=8, color="C3" if name in tangled else "k")
        ax.set_xlabel("lag from event (s)")
    axes[0].set_ylabel("kernel (z-scored dF/F)")
    fig.tight_layout()
    return fig
