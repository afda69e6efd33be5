"""Figures of a live session, from its NWB file: what was plotted is returned too, so it can be checked.

* :func:`licks_value_figure`: anticipatory licks per trial and the online model's value, per trial type;
* :func:`rpe_figure`: the online model's RPE at cue and at outcome over trials;
* :func:`raster_figure`: lick raster around cue onset (one row per trial, trial types in colour).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["RASTER_WINDOW", "licks_value_figure", "rpe_figure", "raster_figure", "session_figures"]

RASTER_WINDOW = (-1.0, 3.0)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path


def licks_value_figure(trials: pd.DataFrame, path: Path) -> dict:
    """Anticipatory licks and the model's value per trial, by trial type; returns the plotted data."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4))
    ax2 = ax.twinx()
    data = {}
    for i, (name, g) in enumerate(trials.groupby("trial_type", sort=True)):
        c = f"C{i}"
        ax.plot(g["trial"], g["licks"], ".", color=c, alpha=0.5, label=f"{name} licks")
        smooth = g["licks"].rolling(10, min_periods=1).mean()
        ax.plot(g["trial"], smooth, "-", color=c, alpha=0.6)
        ax2.plot(g["trial"], g["value"], "-", color=c, lw=2, label=f"{name} model value")
        data[str(name)] = {"trial": g["trial"].tolist(), "licks": g["licks"].tolist(), "value": g["value"].tolist()}
    ax.set_xlabel("trial")
    ax.set_ylabel("anticipatory licks per trial (cue to outcome)")
    ax2.set_ylabel("online model value (reward units)")
    ax.legend(loc="upper left", fontsize=8)
    ax2.legend(loc="lower right", fontsize=8)
    ax.set_title("Anticipatory licking and the online model's value")
    _save(fig, path)
    return data


def rpe_figure(trials: pd.DataFrame, path: Path) -> dict:
    """Cue and outcome prediction errors per trial, by trial type; returns the plotted data."""
    plt = _plt()
    fig, axes = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    data = {}
    for i, (name, g) in enumerate(trials.groupby("trial_type", sort=True)):
        axes[0].plot(g["trial"], g["rpe_cue"], ".-", color=f"C{i}", ms=3, lw=0.8, label=str(name))
        rew = g["reward"] > 0
        if rew.any():   # a type never rewarded (CS-) gets no "rewarded" entry
            axes[1].plot(g["trial"][rew], g["rpe_outcome"][rew], "o", color=f"C{i}", ms=3, label=f"{name} rewarded")
        if (~rew).any():
            axes[1].plot(g["trial"][~rew], g["rpe_outcome"][~rew], "x", color=f"C{i}", ms=4,
                         label=f"{name} {'omitted' if rew.any() else 'unrewarded'}")
        data[str(name)] = {"trial": g["trial"].tolist(), "rpe_cue": g["rpe_cue"].tolist(),
                           "rpe_outcome": g["rpe_outcome"].tolist()}
    axes[0].set_ylabel("RPE at cue (reward units)")
    axes[1].set_ylabel("RPE at outcome (reward units)")
    axes[1].set_xlabel("trial")
    for a in axes:
        a.axhline(0, color="k", lw=0.5)
        a.legend(fontsize=7, ncol=2)
    axes[0].set_title("Online model prediction errors")
    _save(fig, path)
    return data


def raster_figure(trials: pd.DataFrame, lick_times: np.ndarray, path: Path) -> dict:
    """Lick raster aligned to the cue, one row per trial, coloured by trial type; returns the plotted data."""
    plt = _plt()
    lo, hi = RASTER_WINDOW
    fig, ax = plt.subplots(figsize=(6, 6))
    names = sorted(trials["trial_type"].unique())
    rows = []
    for row, tr in enumerate(trials.itertuples()):
        rel = lick_times[(lick_times >= tr.cue_time + lo) & (lick_times < tr.cue_time + hi)] - tr.cue_time
        rows.append(rel.tolist())
        ax.plot(rel, np.full(len(rel), row), "|", color=f"C{names.index(tr.trial_type)}", ms=3)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], ls="none", marker="|", ms=8, color=f"C{i}", label=f"{n} trials") for i, n in enumerate(names)]
    outcome = float(np.median(trials["outcome_time"] - trials["cue_time"])) if len(trials) else 0.0
    ax.axvline(0, color="k", lw=0.8)
    ax.axvline(outcome, color="k", lw=0.8, ls="--")
    ax.set_xlim(lo, hi)
    ax.set_xlabel("time from cue onset (s); dashed: outcome")
    ax.set_ylabel("trial")
    ax.set_title("Licks around the cue, one row per trial")
    if handles:
        ax.legend(handles=handles, fontsize=7, loc="upper right")
    _save(fig, path)
    return {"window_s": [lo, hi], "licks_rel_s": rows}


def session_figures(nwb_path: str | Path, folder: str | Path) -> dict:
    """Write the three PNG figures of a session file into ``folder``; returns {figure: plotted data}."""
    from dopa_rl.io import nwb

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with nwb.NWBSession(nwb_path) as s:
        trials = s.behavior()
        events = s.events()
    lick = np.asarray(events.get("lick", np.zeros(0)))
    return {"licks_value.png": licks_value_figure(trials, folder / "licks_value.png"),
            "rpe.png": rpe_figure(trials, folder / "rpe.png"),
            "lick_raster.png": raster_figure(trials, lick, folder / "lick_raster.png")}
