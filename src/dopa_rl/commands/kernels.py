"""``dopa-rl kernels``: event-kernel (encoding-model) regression of a photometry trace, optionally with a model's
RPE-modulated cue and outcome regressors (docs/event-kernels.md)."""
from __future__ import annotations

import argparse

from dopa_rl.commands.common import add_trials_arguments


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = (
        "Examples:\n"
        "  dopa-rl kernels session.nwb --events cue,outcome,lick --json kernels.json --plots figs/\n"
        "  dopa-rl kernels session.nwb --events cue,outcome,lick --rpe rw-pavlovian   # does the RPE add to the model?\n"
        "  dopa-rl kernels recording.nwb --events reward_cue --window -1 3\n"
        "An event is an events table (lick, reward_cue ...) or a trials-table time column (cue_time, or cue for\n"
        "cue_time).  The trace is the z-scored dF/F of the default photometry pipeline (docs/dopamine.md),\n"
        "resampled to --rate.  --rpe adds cue_rpe and outcome_rpe regressors (impulses scaled by the model's\n"
        "RPE), with the model fitted to the whole trace (rw-pavlovian, td), or at --rpe-params, else at its defaults.")
    p.add_argument("file", metavar="FILE.nwb", help="NWB file with a photometry series (opened read-only)")
    p.add_argument("--events", default="cue,outcome,lick", metavar="NAME,...",
                   help="events to fit kernels for (default cue,outcome,lick)")
    p.add_argument("--rpe", metavar="MODEL", help="add RPE-modulated cue/outcome regressors from MODEL (rw-pavlovian, td ...)")
    p.add_argument("--rpe-params", metavar="NAME=VALUE,...", help="--rpe model parameters instead of fitting them")
    p.add_argument("--indicator", default="dlight", metavar="NAME",
                   help="kernel for fitting the --rpe model to the trace (default dlight; see regress --fit trace)")
    p.add_argument("--window", nargs=2, type=float, default=(-0.5, 3.0), metavar=("START", "STOP"),
                   help="lag window of each kernel, s (default -0.5 3)")
    p.add_argument("--n-basis", type=int, default=12, metavar="N", help="B-spline basis functions per kernel (default 12)")
    p.add_argument("--folds", type=int, default=5, metavar="K", help="contiguous cross-validation blocks (default 5)")
    p.add_argument("--rate", type=float, default=20.0, metavar="HZ",
                   help="resample the trace to this rate before the regression (default 20; 0 = keep)")
    p.add_argument("--series", metavar="NAME", help="photometry series (default: the only one)")
    add_trials_arguments(p, choices=False, columns_example="reward=volume (the trials read for --rpe)")
    p.add_argument("--json", metavar="OUT", help="write r2_cv, unique contributions and kernels as JSON")
    p.add_argument("--plots", metavar="DIR", help="write the kernels figure to DIR")


def _resolve_events(session, names, trials_table):
    """{name: times} and where each came from: an events table, a trials column, or NAME_time."""
    import numpy as np
    import pandas as pd

    from dopa_rl.errors import InputError
    from dopa_rl.io.nwb_read import interval_tables, table_to_frame

    events = session.events()
    tables = interval_tables(session.nwbfile)
    tname = trials_table or "trials"
    if trials_table and tname not in tables:
        raise InputError(f"{session.path}: no interval table named '{trials_table}'")
    trials = table_to_frame(tables[tname]) if tname in tables else pd.DataFrame()
    out, where = {}, {}
    for name in names:
        if name in events:
            out[name], where[name] = np.asarray(events[name], float), "events table"
            continue
        col = next((c for c in (name, f"{name}_time") if c in trials.columns
                    and pd.to_numeric(trials[c], errors="coerce").notna().any()), None)
        if col is None:
            tcols = [c for c in trials.columns if "time" in str(c) and c not in ("start_time", "stop_time")]
            raise InputError(f"{session.path}: --events {name}: no events table or trials time column of that name "
                             f"(events tables: {', '.join(events) or 'none'}; trials time columns: "
                             f"{', '.join(tcols) or 'none'})")
        out[name], where[name] = pd.to_numeric(trials[col], errors="coerce").to_numpy(float), f"trials column {col}"
    return out, where


def _rpe_regressors(args, session, proc, model):
    """(events to add, description of the parameters used)."""
    from dopa_rl.commands.common import parse_model_params
    from dopa_rl.io.behavior import normalize_behavior, parse_column_map
    from dopa_rl.neural.regression import model_rpes
    from dopa_rl.neural.tables import prepare_trials

    from dopa_rl.models.base import require_event_columns

    raw = session.behavior(columns=parse_column_map(args.columns) or None, trials_table=args.trials_table,
                           validate=False)
    require_event_columns(raw, f"--rpe {model.name}", str(args.file))
    raw, counts = prepare_trials(raw)
    trials = normalize_behavior(raw, source=str(args.file))
    for col in ("cue_time", "outcome_time"):
        trials[col] = raw[col].to_numpy(float)
    fixed = parse_model_params(args.rpe_params, model, "--params")
    if fixed is not None:
        params, source = fixed, "given (--rpe-params)"
        info = {}
    else:
        from dopa_rl.neural.trace_fit import fit_trace_model, resolve_kernel

        kernel, kinfo = resolve_kernel(args.indicator, proc.rate, trace=proc.z, t0=proc.t0,
                                       event_times=trials["cue_time"].to_numpy(float))
        f = fit_trace_model(model, proc.z, proc.rate, proc.t0, trials, kernel=kernel, restarts=3)
        params = f["params"]
        source = f"fitted to the whole trace (trace-level, {kinfo['indicator']} kernel)"
        info = {"phi": f["phi"], "kernel": kinfo, "fixed": f["fixed"]}
        prof = f.get("profile")
        if prof is not None:
            from dopa_rl.fit.identification import profile_interval

            (name,) = [k for k in prof if k != "loglik"]
            ident = profile_interval(prof[name], prof["loglik"], f["loglik"], estimate=params[name])
            info["identification"] = {name: ident}
            if ident["flat"]:
                import sys

                source += f"; {name} NOT identified (flat profile likelihood), the RPE regressors are arbitrary"
                print(f"warning: --rpe {model.name}: {name} is not identified by this trace: its profile likelihood "
                      f"is flat over [{ident['range'][0]:.3g}, {ident['range'][1]:.3g}]", file=sys.stderr)
    rp = model_rpes(model, trials, params)
    events = {"cue_rpe": (trials["cue_time"].to_numpy(float), rp["rpe_cue"].to_numpy(float)),
              "outcome_rpe": (trials["outcome_time"].to_numpy(float), rp["rpe_outcome"].to_numpy(float))}
    desc = {"model": model.name, "params": {k: float(v) for k, v in params.items()}, "source": source,
            "excluded": {k: v for k, v in counts.items() if v and k != "uncued"}, **info}
    return events, desc


def run(args) -> int:
    import json
    import sys
    from pathlib import Path

    import numpy as np

    from dopa_rl.commands.common import check_output_paths
    from dopa_rl.errors import InputError
    from dopa_rl.io import nwb
    from dopa_rl.io.atomic import atomic_write_text
    from dopa_rl.neural.alignment import check_window
    from dopa_rl.neural.kernels import event_kernel_regression
    from dopa_rl.neural.pipeline import PhotometryPipeline

    check_output_paths({"--json": args.json}, inputs=[args.file], folders={"--plots": args.plots})
    check_window(tuple(args.window), "--window")
    names = [n.strip() for n in args.events.split(",") if n.strip()]
    if not names or len(set(names)) != len(names):
        raise InputError(f"--events {args.events!r}: give distinct event names separated by commas")
    if args.n_basis < 4 or args.folds < 2 or args.rate < 0:
        raise InputError("--n-basis must be at least 4, --folds at least 2 and --rate at least 0")
    model = None
    if args.rpe:
        from dopa_rl.models import get_model

        model = get_model(args.rpe)
    elif args.rpe_params:
        raise InputError("--rpe-params needs --rpe MODEL")
    pipe = PhotometryPipeline(resample_hz=args.rate or None)
    with nwb.NWBSession(args.file) as s:
        phot = s.photometry(args.series)
        events, where = _resolve_events(s, names, args.trials_table)
        from dopa_rl.commands.common import warnings_to_stderr

        with warnings_to_stderr(getattr(args, "_flags", None)):   # "use `control_fit` none" in its terms
            proc = pipe.run(phot)
        rpe = None
        if model is not None:
            extra, rpe = _rpe_regressors(args, s, proc, model)
    t_end = proc.t0 + proc.z.size / proc.rate
    for name, times in events.items():
        inside = np.isfinite(times) & (times >= proc.t0) & (times <= t_end)
        if not inside.any():
            raise InputError(f"{args.file}: no '{name}' event inside the recording ({proc.t0:.6g} to {t_end:.6g} s)")
    base = dict(events)
    if model is not None:
        events = {**events, **extra}
    fit = event_kernel_regression(proc.z, proc.rate, events, window=tuple(args.window), n_basis=args.n_basis,
                                  n_folds=args.folds, t0=proc.t0)
    out = {"file": str(args.file), "series": phot.source_path or phot.name, "rate": proc.rate,
           "window": list(args.window), "n_basis": args.n_basis, "folds": args.folds,
           "events": {n: {"source": where.get(n, "RPE-modulated regressor"),
                          "n": int(np.isfinite(np.asarray(events[n][0] if isinstance(events[n], tuple) else events[n],
                                                          float)).sum())} for n in events},
           "r2_cv": fit.r2_cv, "r2_train": fit.r2_train, "lambda": fit.lambda_, "unique": fit.unique,
           "lags": fit.lags.tolist(), "kernels": {k: v.tolist() for k, v in fit.kernels.items()},
           "peaks": {k: _peak(fit.lags, v) for k, v in fit.kernels.items()},
           "collinear": [{**c, "vif": c["vif"] if np.isfinite(c["vif"]) else None} for c in fit.collinear],
           "rpe": rpe, "preprocessing": proc.steps}
    if model is not None:
        without = event_kernel_regression(proc.z, proc.rate, base, window=tuple(args.window), n_basis=args.n_basis,
                                          n_folds=args.folds, t0=proc.t0, unique=False)
        out["rpe"]["r2_cv_without_rpe"] = without.r2_cv
        out["rpe"]["r2_cv_gain"] = fit.r2_cv - without.r2_cv
    text = json.dumps(out, indent=2, allow_nan=False)
    if args.json:
        atomic_write_text(args.json, text + "\n")
    if args.plots:
        from dopa_rl.report.neural import save

        fit.trace_unit = "z-scored dF/F (SD)"
        save(fit.plot(), Path(args.plots) / "event_kernels.png")
    print(f"{out['series']} at {proc.rate:g} Hz: cross-validated R2 {fit.r2_cv:.4f} (train {fit.r2_train:.4f})")
    tangled = fit.inseparable()
    for c in fit.collinear:
        a, b = c["events"]
        print(f"warning: the {a} and {b} kernels cannot be separated: {_collinear_reason(c)}; their kernels, "
              f"peaks and unique dR2 are not interpretable apart (jitter the delay between them, or fit one "
              f"kernel for both)", file=sys.stderr)
    for k in fit.kernels:
        pk = out["peaks"][k]
        note = f"  (not separable from {', '.join(tangled[k])})" if k in tangled else ""
        print(f"  {k:<12} unique dR2 {fit.unique[k]:+.4f}; kernel peak {pk['value']:+.3g} at {pk['lag']:+.3g} s"
              + note)
    if rpe is not None:
        print(f"RPE regressors from {rpe['model']} ({rpe['source']}: "
              + ", ".join(f"{k}={v:.4g}" for k, v in rpe["params"].items())
              + f"): R2 gain {out['rpe']['r2_cv_gain']:+.4f}")
    return 0


def _collinear_reason(c) -> str:
    vif = "inf" if c["vif"] == float("inf") else f"{c['vif']:.3g}"
    lag = c.get("lag")
    if lag is None:
        return f"variance inflation {vif}"
    follower = c["events"][1] if lag["leader"] == c["events"][0] else c["events"][0]
    return (f"{follower} follows {lag['leader']} by {lag['median_s']:.3g} s (SD {lag['sd_s']:.2g} s over {lag['n']} "
            f"pairs), variance inflation {vif}")


def _peak(lags, kernel):
    import numpy as np

    i = int(np.argmax(np.abs(kernel)))
    return {"lag": float(lags[i]), "value": float(kernel[i])}
