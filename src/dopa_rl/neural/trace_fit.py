"""Trace-level model fits on a preprocessed photometry recording: the front end of ``dopa-rl regress --fit
trace`` and of ``dopa-rl kernels --rpe`` (the maths is :mod:`dopa_rl.models.indicator`; docs/indicator.md).

The model's RPE at every event (RW: cue and outcome; TD: every time bin of every trial) is an impulse on the
trace's clock, convolved with the indicator kernel and read out as ``b0 + b1 * x`` with AR(1) noise; the
learning rate ``alpha`` maximises the profile likelihood of the whole trace (readout and ``phi`` profiled).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dopa_rl.errors import InputError

__all__ = ["TRACE_MODELS", "resolve_kernel", "fit_trace_model", "check_trial_columns"]

#: models the trace-level fit supports
TRACE_MODELS = ("rw-pavlovian", "td")
_ALIASES = {"dlight": "dlight1.1", "grab-da": "grab-da1m", "gcamp": "gcamp6f"}


def resolve_kernel(indicator: str, fs: float, *, rise_s: float | None = None, decay_s: float | None = None,
                   trace=None, t0: float = 0.0, event_times=None) -> tuple[np.ndarray, dict[str, Any]]:
    """The indicator kernel sampled at ``fs`` and its description (``indicator``, ``rise_s``, ``decay_s``,
    ``source``).  ``indicator``: a name of :data:`dopa_rl.models.indicator.INDICATORS` (``dlight`` is
    dLight1.1), or ``estimate``: the difference of exponentials fitted to the event kernel of ``trace`` at
    ``event_times`` (ridge event-kernel regression, :func:`dopa_rl.neural.kernels.fit_diff_exp`).
    ``rise_s``/``decay_s`` override the named values."""
    from dopa_rl.models.indicator import INDICATORS, diff_exp_kernel

    name = _ALIASES.get(indicator.lower(), indicator.lower())
    if name == "estimate":
        from dopa_rl.neural.kernels import event_kernel_regression, fit_diff_exp

        if trace is None or event_times is None:
            raise InputError("--indicator estimate needs the trace and its event times")
        times = np.asarray(event_times, float)
        fit = event_kernel_regression(trace, fs, {"event": times[np.isfinite(times)]}, window=(-0.5, 3.0),
                                      t0=t0, unique=False)
        est = fit_diff_exp(fit.lags, fit.kernels["event"])
        info = {"indicator": "estimate", "rise_s": est["rise_s"], "decay_s": est["decay_s"],
                "source": f"difference of exponentials fitted to the event kernel (r2 {est['r2']:.3f}, "
                          f"peak {est['peak_s']:.3f} s)"}
    elif name in INDICATORS:
        info = {"indicator": name, **INDICATORS[name], "source": "documented default (docs/indicator.md)"}
    else:
        raise InputError(f"--indicator {indicator!r}: choose one of {', '.join(INDICATORS)}, dlight or estimate")
    if rise_s is not None or decay_s is not None:
        info = {**info, "rise_s": float(rise_s or info["rise_s"]), "decay_s": float(decay_s or info["decay_s"]),
                "source": info["source"] + "; rise/decay set on the command line"}
    if not (info["rise_s"] > 0 and info["decay_s"] > 0):
        raise InputError(f"indicator kernel: rise {info['rise_s']} and decay {info['decay_s']} must be positive")
    return diff_exp_kernel(fs, info["rise_s"], info["decay_s"]), info


def check_trial_columns(trials: pd.DataFrame, what: str, where: str = "") -> None:
    """InputError unless ``trials`` has usable ``cue_time``, ``outcome_time`` and ``reward`` columns."""
    missing = [c for c in ("cue_time", "outcome_time", "reward")
               if c not in trials.columns or pd.to_numeric(trials[c], errors="coerce").isna().all()]
    if missing:
        raise InputError(f"{where + ': ' if where else ''}{what} needs trial column(s) {', '.join(missing)} "
                         f"(map yours with --columns, e.g. --columns reward=volume,outcome_time=reward_on)")


def _cues(trials: pd.DataFrame) -> list[str]:
    return [str(c) for c in trials["cue"].to_numpy(dtype=object)] if "cue" in trials.columns else ["A"] * len(trials)


def fit_trace_model(model, trace, fs: float, t0: float, trials: pd.DataFrame, *, kernel, restarts: int = 10,
                    grid: int = 40) -> dict[str, Any]:
    """Fit ``model`` (rw-pavlovian or td; TD's other parameters at their defaults) to the whole ``trace``.

    ``trials``: one session's table with ``cue_time``, ``outcome_time``, ``reward`` (and ``cue``).  Returns
    ``{"params": {"alpha": ..}, "b0", "b1", "phi", "sigma", "loglik", "n_trials", "fixed": {..}, "profile":
    {"alpha": grid, "loglik": profile log-likelihood on it}}`` (the readout is profiled out in closed form)."""
    from dopa_rl.models.indicator import fit_trace, fit_trace_rw, td_rpe_events

    if model.name not in TRACE_MODELS:
        raise InputError(f"--fit trace: model {model.name} is not supported; use {' or '.join(TRACE_MODELS)}")
    check_trial_columns(trials, "the trace-level fit")
    y = np.asarray(trace, float)
    if not np.all(np.isfinite(y)):
        raise InputError("--fit trace: the processed trace has non-finite samples")
    ct = trials["cue_time"].to_numpy(float)
    ot = trials["outcome_time"].to_numpy(float)
    r = trials["reward"].to_numpy(float)
    alphas = np.linspace(0.01, 1.0, grid)
    if model.name == "rw-pavlovian":
        out = fit_trace_rw(y, fs, _cues(trials), ct, ot, r, kernel=kernel, t0=t0, alpha_grid=alphas,
                           n_restarts=restarts)
        alpha, fixed = out["alpha"], {}
    else:
        fixed = {p.name: float(p.default) for p in model.spec if p.name in ("gamma", "lambda_")}
        events = td_rpe_events(model, _cues(trials), ct, r, names=("alpha",), fixed=fixed, outcome_time=ot)
        out = fit_trace(y, fs, events, alphas[:, None], kernel=kernel, t0=t0, n_restarts=restarts,
                        bounds=[(0.01, 1.0)])
        alpha = out["params"][0]
    return {"params": {"alpha": float(alpha)}, **{k: float(out[k]) for k in ("b0", "b1", "phi", "sigma", "loglik")},
            "n_trials": int(len(trials)), "fixed": fixed,
            "profile": {"alpha": alphas.tolist(), "loglik": [float(v) for v in out["grid_loglik"]]}}
