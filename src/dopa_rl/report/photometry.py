"""Photometry figures: peri-event heatmaps per trial type with the bootstrap band of the mean against the
pre-event baseline, and the whole trace with its detected transients.

Each function draws one figure and writes it atomically to ``path`` (PNG); nothing is shown on screen.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from dopa_rl.report.neural import _plt, save

__all__ = ["peri_event_bands", "transients_trace"]


def peri_event_bands(groups: Mapping[str, tuple[np.ndarray, object]], path, *, title: str = "",
                     label: str = "z-scored dF/F") -> Path:
    """One column per trial type: its trial x time heatmap over the mean with its bootstrap band.

    Parameters
    ----------
    groups : mapping
        Trial type -> ``(matrix, band)``: the kept trials' rows (trials x time) and the
        :class:`dopa_rl.neural.peri_stats.BootstrapBand` of their baseline-subtracted mean.
    path : path-like
        PNG to write.
    title : str
        Figure title.
    label : str
        Unit of the trace (colour bar and y axis).

    Returns
    -------
    Path
        ``path``.  Below each heatmap: the mean change from baseline with its band, the baseline (0) as
        a dashed line, and a bar under the times where the band excludes it.
    """
    plt = _plt()
    from matplotlib.ticker import MaxNLocator

    n = max(1, len(groups))
    fig, axes = plt.subplots(2, n, figsize=(3.6 * n, 5.4), squeeze=False, sharex="col",
                             gridspec_kw={"height_ratios": [1.6, 1.0]})
    mats = [np.asarray(m) for m, _ in groups.values()]
    finite = np.concatenate([m[np.isfinite(m)].ravel() for m in mats]) if mats else np.zeros(1)
    lim = float(np.percentile(np.abs(finite), 99)) if finite.size else 1.0
    lows = [float(np.min(b.low)) for _, b in groups.values()]
    highs = [float(np.max(b.high)) for _, b in groups.values()]
    ylo, yhi = (min(lows), max(highs)) if lows else (-1.0, 1.0)
    pad = 0.08 * (yhi - ylo or 1.0)
    im = None
    for k, (name, (matrix, band)) in enumerate(groups.items()):
        top, bottom = axes[0, k], axes[1, k]
        t = band.time
        im = top.imshow(matrix, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest",
                        extent=(t[0], t[-1], matrix.shape[0] - 0.5, -0.5))
        top.axvline(0, color="k", lw=0.8)
        top.set_title(f"{name} (n={band.n_trials})", fontsize=9)
        top.set_ylabel("trial" if k == 0 else "")
        top.yaxis.set_major_locator(MaxNLocator(integer=True))
        bottom.fill_between(t, band.low, band.high, color="C0", alpha=0.3, lw=0,
                            label=f"{band.level:.0%} bootstrap band ({band.n_boot} resamples)")
        bottom.plot(t, band.mean, color="C0", lw=1.2, label="mean change from baseline")
        bottom.axhline(0, color="k", lw=0.8, ls="--", label="baseline")
        bottom.axvline(0, color="k", lw=0.6)
        y_bar = ylo - 0.6 * pad
        for a, b in band.intervals():
            bottom.plot([a, b], [y_bar, y_bar], color="C3", lw=3, solid_capstyle="butt")
        bottom.set_ylim(ylo - pad * 1.2, yhi + pad)
        bottom.set_xlabel("time from event (s)")
        bottom.set_ylabel(f"change in {label}" if k == 0 else "")
        if k == 0:
            bottom.plot([], [], color="C3", lw=3, label="band excludes baseline")
            bottom.legend(fontsize=6, frameon=False, loc="upper right")
    if im is not None:
        fig.colorbar(im, ax=list(axes[0]), label=label, shrink=0.9)
    fig.suptitle(title, fontsize=9)
    return save(fig, path)


def transients_trace(time: np.ndarray, z: np.ndarray, transient_times: np.ndarray, path, *, title: str = "",
                     label: str = "z-scored dF/F", max_points: int = 20000) -> Path:
    """The trace (decimated for drawing to at most ``max_points`` points) with a tick above each transient."""
    plt = _plt()
    step = max(1, int(np.ceil(len(z) / max_points)))
    fig, ax = plt.subplots(figsize=(9, 2.8))
    ax.plot(time[::step], z[::step], color="0.3", lw=0.5)
    top = float(np.max(z))
    ax.plot(transient_times, np.full(len(transient_times), top * 1.05), "|", color="C3", ms=6,
            label=f"{len(transient_times)} transients")
    ax.set_xlabel("time (s)")
    ax.set_ylabel(label)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, frameon=False, loc="upper right")
    return save(fig, path)
