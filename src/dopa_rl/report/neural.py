"""Dopamine figures: event-aligned means with error bands (split by learning stage and outcome), trial x
time heatmaps, PSTH heatmaps per unit, (the response-vs-RPE figure is ``RegressionResult.plot()``).

Each function draws one figure and writes it atomically to ``path`` (PNG); nothing is shown on screen.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["aligned_means", "trial_heatmap", "psth_heatmaps", "save"]


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save(fig, path) -> Path:
    """Write ``fig`` to ``path`` atomically (format from the suffix, PNG by default) and close it."""

    from dopa_rl.io.atomic import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")
    _plt().close(fig)
    return path


def aligned_means(time: np.ndarray, matrix: np.ndarray, groups: Mapping[str, np.ndarray], path, *,
                  title: str = "", ylabel: str = "z-scored dF/F") -> Path:
    """Mean +- SEM of the rows of ``matrix`` in each group (label -> boolean row mask)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for label, mask in groups.items():
        rows = matrix[np.asarray(mask, bool)]
        rows = rows[np.isfinite(rows).all(axis=1)]
        if len(rows) == 0:
            continue
        m = rows.mean(axis=0)
        se = rows.std(axis=0, ddof=1) / np.sqrt(len(rows)) if len(rows) > 1 else np.zeros_like(m)
        (line,) = ax.plot(time, m, label=f"{label} (n={len(rows)})")
        ax.fill_between(time, m - se, m + se, color=line.get_color(), alpha=0.25, lw=0)
    ax.axvline(0, color="k", lw=0.8, ls="--")
    ax.set_xlabel("time from event (s)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    return save(fig, path)


def trial_heatmap(time: np.ndarray, matrix: np.ndarray, path, *, title: str, label: str) -> Path:
    """Trial x time heatmap (trials top to bottom in order)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4))
    finite = matrix[np.isfinite(matrix)]
    lim = float(np.percentile(np.abs(finite), 99)) if finite.size else 1.0
    im = ax.imshow(matrix, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest",
                   extent=(time[0], time[-1], matrix.shape[0] - 0.5, -0.5))
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel("time from event (s)")
    ax.set_ylabel("trial")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, label=label)
    return save(fig, path)


def psth_heatmaps(time: np.ndarray, rates: np.ndarray, unit_ids, path, *, title: str = "") -> Path:
    """One trial x time rate heatmap per unit (``rates[u, trial, bin]``, Hz), side by side."""
    plt = _plt()
    n = max(1, len(unit_ids))
    cols = min(n, 4)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        if k >= len(unit_ids):
            ax.axis("off")
            continue
        im = ax.imshow(rates[k], aspect="auto", cmap="viridis", interpolation="nearest",
                       extent=(time[0], time[-1], rates.shape[1] - 0.5, -0.5))
        ax.axvline(0, color="w", lw=0.8)
        ax.set_title(f"unit {unit_ids[k]}", fontsize=8)
        ax.set_xlabel("time from event (s)", fontsize=7)
        ax.set_ylabel("trial", fontsize=7)
        fig.colorbar(im, ax=ax, label="firing rate (spikes/s)")
    fig.suptitle(title, fontsize=9)
    return save(fig, path)
