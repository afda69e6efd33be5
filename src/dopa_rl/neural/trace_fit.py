"""Trace-level model fits on a preprocessed photometry recording: the front end of ``dopa-rl regress --fit
trace`` and of ``dopa-rl kernels --rpe`` (the maths is :mod:`dopa_rl.models.indicator`; docs/indicator.md).

The named model's own RPE at every event (its ``rpe_events``: RW cue and outcome, compound cues summing their
elements; TD every time bin of every trial; a user's rule as it defines them) is an impulse on the trace's
clock, convolved with the indicator kernel and read out as ``b0 + b1 * x`` with AR(1) noise; the model's
trace parameters (its ``trace_params``: RW and user rules all learning parameters, TD ``alpha`` with
``gamma`` and ``lambda_`` at their defaults) maximise the profile likelihood of the whole trace (readout and
``phi`` profiled).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dopa_rl.errors import InputError

__all__ = ["resolve_kernel", "fit_trace_model"]

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
            raise InputError("`indicator` estimate needs the trace and its event times")
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
        raise InputError(f"`indicator` {indicator!r}: choose one of {', '.join(INDICATORS)}, dlight or estimate")
    if rise_s is not None or decay_s is not None:
        info = {**info, "rise_s": float(rise_s or info["rise_s"]), "decay_s": float(decay_s or info["decay_s"]),
                "source": info["source"] + "; rise/decay set on the command line"}
    if not (info["rise_s"] > 0 and info["decay_s"] > 0):
        raise InputError(f"indicator kernel: rise {info['rise_s']} and decay {info['decay_s']} must be positive")
    return diff_exp_kernel(fs, info["rise_s"], info["decay_s"]), info


def _grid(model, names, n: int) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Candidates over each parameter's range (``n`` in all, as a product over parameters), and the bounds.

    A range is the parameter's bounds where finite (its initial range otherwise), its lower end moved in by
    1% (a learning rate of exactly 0 learns nothing)."""
    per = max(3, int(round(n ** (1.0 / len(names))))) if len(names) > 1 else n
    axes, bounds = [], []
    for name in names:
        p = next(q for q in model.spec if q.name == name)
        lo = p.lower if np.isfinite(p.lower) else p.init_low
        hi = p.upper if np.isfinite(p.upper) else p.init_high
        lo = lo + 0.01 * (hi - lo)
        axes.append(np.linspace(lo, hi, per))
        bounds.append((float(lo), float(hi)))
    mesh = np.array(np.meshgrid(*axes, indexing="ij")).reshape(len(names), -1).T
    return mesh, bounds


def fit_trace_model(model, trace, fs: float, t0: float, trials: pd.DataFrame, *, kernel, restarts: int = 10,
                    grid: int = 40, params=None) -> dict[str, Any]:
    """Fit ``model``'s trace parameters (``params``, default its ``trace_params``; its other parameters at
    their defaults) to the whole ``trace``, through the model's own RPEs (:func:`model_rpe_events`).

    ``trials``: one session's table with ``cue_time``, ``outcome_time``, ``reward`` (and ``cue``).  Returns
    ``{"params": {name: ..}, "b0", "b1", "phi", "sigma", "loglik", "n_trials", "fixed": {..}}`` (``fixed``:
    the learning parameters held at their defaults; ``profile``: when one parameter is fitted,
    ``{name: grid, "loglik": profile log-likelihood on it}`` with the readout profiled out, else ``None``)."""
    from dopa_rl.models.base import require_event_columns
    from dopa_rl.models.indicator import fit_trace, model_rpe_events

    require_event_columns(trials, "the trace-level fit")
    names = list(model.trace_params if params is None else params)
    y = np.asarray(trace, float)
    if not np.all(np.isfinite(y)):
        raise InputError("trace fit: the processed trace has non-finite samples")
    cues = [str(c) for c in trials["cue"].to_numpy(dtype=object)] if "cue" in trials.columns else ["A"] * len(trials)
    events = model_rpe_events(model, cues, trials["cue_time"].to_numpy(float), trials["outcome_time"].to_numpy(float),
                              trials["reward"].to_numpy(float), names=names)
    candidates, bounds = _grid(model, names, grid)
    out = fit_trace(y, fs, events, candidates, kernel=kernel, t0=t0, n_restarts=restarts, bounds=bounds)
    defaults = model.spec.as_dict(model.check_params({}))
    fixed = {n: float(defaults[n]) for n in model.learning_params if n not in names}
    return {"params": {n: float(v) for n, v in zip(names, out["params"])},
            **{k: float(out[k]) for k in ("b0", "b1", "phi", "sigma", "loglik")},
            "n_trials": int(len(trials)), "fixed": fixed,
            "profile": ({names[0]: candidates[:, 0].tolist(), "loglik": [float(v) for v in out["grid_loglik"]]}
                        if len(names) == 1 else None)}
