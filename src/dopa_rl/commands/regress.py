"""``dopa-rl regress``: dopamine responses regressed on a model's trial-wise RPEs (OLS and MixedLM)."""
from __future__ import annotations

import argparse

#: library parameters this command names otherwise (cli.py merges them into the flag map: _flags_of)
PARAMETER_FLAGS = {"mode": "--fit"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    from dopa_rl.commands.common import add_signal_arguments, add_trials_arguments

    p.epilog = (
        "Examples:\n"
        "  dopa-rl regress sessions/ --model rw-pavlovian --signal photometry --json reg.json --plots figs/\n"
        "  dopa-rl regress session.nwb --model td --signal units --fit neural\n"
        "  dopa-rl regress session.nwb --model rw-pavlovian --signal photometry --fit trace --indicator dlight\n"
        "  dopa-rl regress trials.csv --model rw-pavlovian --signal table --matrix photometry --rate 25 "
        "--event-at 2.0 --columns subject=id,cue=cs --params alpha=0.1\n")
    p.add_argument("data", nargs="+", metavar="FILES", help="NWB sessions (photometry/units) or CSV/TSV tables")
    p.add_argument("--model", required=True, help="model giving the RPEs: rw-pavlovian, td, rw-softmax ..., or your own as FILE.py:NAME")
    p.add_argument("--fit", default="behavior", choices=("behavior", "neural", "joint", "trace"),
                   help="fit the learning parameters to behavior (default), to the dopamine responses, to both, or "
                        "to the whole photometry trace through the indicator kernel (the model's own RPEs; TD fits alpha)")
    p.add_argument("--indicator", default="dlight", metavar="NAME",
                   help="--fit trace: indicator kernel: dlight (default), gcamp6f/m/s, grab-da1m/1h, or 'estimate' "
                        "(fitted to the cue-locked event kernel of the trace)")
    p.add_argument("--kernel-rise", type=float, metavar="S", help="--fit trace: kernel rise time constant (s)")
    p.add_argument("--kernel-decay", type=float, metavar="S", help="--fit trace: kernel decay time constant (s)")
    p.add_argument("--params", metavar="NAME=VALUE,...", help="use these parameters instead of fitting")
    add_trials_arguments(p, columns_example="subject=mouse,cue=stimulus,dopamine_cue=da_cue,dopamine_outcome=da_rew")
    add_signal_arguments(p, required=True)
    p.add_argument("--restarts", type=int, default=10, metavar="N", help="random restarts per subject (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="OUT", help="write parameters, regressions and exclusions as JSON")
    p.add_argument("--plots", metavar="DIR", help="write figures to DIR")


def run(args) -> int:
    import json
    from pathlib import Path

    import numpy as np
    import pandas as pd

    from dopa_rl.commands.common import check_output_paths, load_signal, parse_model_params, speak_flags
    from dopa_rl.errors import InputError
    from dopa_rl.io.atomic import atomic_write_text
    from dopa_rl.io.behavior import expand_paths
    from dopa_rl.models import get_model
    from dopa_rl.neural.regression import attach_rpe, model_rpes, regress_responses
    from dopa_rl.results import jsonable

    check_output_paths({"--json": args.json}, inputs=expand_paths(args.data), folders={"--plots": args.plots})
    if args.restarts < 1:
        raise InputError(f"--restarts {args.restarts}: must be at least 1")
    model = get_model(args.model)
    fixed = parse_model_params(args.params, model, "--params")
    identification = None
    if args.fit == "trace":
        from dopa_rl.neural.trace_fit import resolve_kernel

        if fixed is not None:
            raise InputError("--params and --fit trace: give one (fixed parameters need no fit)")
        if args.signal != "photometry":
            raise InputError(f"--fit trace fits the whole photometry trace; use --signal photometry, not {args.signal}")
        if args.indicator.lower() != "estimate":
            resolve_kernel(args.indicator, 100.0, rise_s=args.kernel_rise, decay_s=args.kernel_decay)
    data = load_signal(args)
    trials = data.trials
    if args.fit == "trace":
        params, fit_info = _trace_fits(args, model, data)
        identification = {f"{f['subject']}/{f['session']}": f.pop("identification") for f in fit_info["trace_fits"]}
    elif fixed is not None:
        params = pd.DataFrame([fixed] * trials["subject"].nunique(),
                              index=pd.Index(trials["subject"].astype(str).unique(), name="subject"))
        fit_info = {"fit": "fixed"}
    else:
        from dopa_rl.fit.neural import fit_dopamine

        result = fit_dopamine(model, trials, mode=args.fit, restarts=args.restarts, seed=args.seed)
        params = result.params
        if args.fit == "neural":
            from dopa_rl.fit.identification import dopamine_profiles

            identification = dopamine_profiles(model, trials, params)
        fit_info = {"fit": args.fit, "loglik": float(result.loglik_.sum()) if np.isfinite(result.loglik_.sum()) else None,
                    "converged": bool(result.converged.all()),
                    "se": {s: {k: (float(v) if np.isfinite(v) else None) for k, v in row.items()}
                           for s, row in result.se.iterrows()},
                    "at_bound": {s: b for s, b in result.bound_labels().items() if b}}
    rpes = model_rpes(model, trials, params)
    long = attach_rpe(data.long, trials, rpes)
    weak = []
    if identification is not None:
        from dopa_rl.fit.identification import weak_parameters

        weak = weak_parameters(identification)
        fit_info["identification"] = identification
        fit_info["weakly_identified"] = weak
    result = regress_responses(long, model=model.name, signal=args.signal, params=params, info=fit_info,
                               provenance={"preprocessing": data.steps, "excluded": data.excluded})
    out = {**result.to_dict(), "n_trials": int(len(trials)), "excluded": data.excluded, "preprocessing": data.steps}
    text = json.dumps(jsonable(out), indent=2, allow_nan=False)
    if args.json:
        atomic_write_text(args.json, text + "\n")
    if args.plots:
        _plots(Path(args.plots), data, result, trials)
    print(speak_flags(result.summary(), getattr(args, "_flags", {})))
    _warn_weak(weak)
    if data.excluded:
        print("excluded: " + ", ".join(f"{k} {v}" for k, v in data.excluded.items()))
    return 0


def _warn_weak(weak) -> None:
    """One warning on stderr per flat profile (the summary prints such a parameter as not identified)."""
    import sys

    for w in weak:
        print(f"warning: {w['subject']}: {w['param']} is not identified by these data: its profile likelihood is "
              f"flat over [{w['range'][0]:.3g}, {w['range'][1]:.3g}] (it falls by at most {w['drop']:.2g} "
              f"log-likelihood units; 1.92 would reject a value at 95%)", file=sys.stderr)


def _trace_fits(args, model, data):
    """--fit trace: one trace-level fit per file (its processed photometry); params per subject are the mean
    over that subject's sessions."""
    import numpy as np
    import pandas as pd

    from dopa_rl.errors import InputError
    from dopa_rl.fit.identification import profile_interval
    from dopa_rl.models.base import require_event_columns
    from dopa_rl.neural.trace_fit import fit_trace_model, resolve_kernel

    if data.signal != "photometry":
        raise InputError(f"--fit trace fits the whole photometry trace; use --signal photometry, not {data.signal}")
    trials = data.trials
    require_event_columns(trials, "--fit trace", ", ".join(str(f) for f in args.data[:3]))
    keys = list(dict.fromkeys(zip(trials["subject"].astype(str), trials["session"].astype(str))))
    fits, kernel_info = [], None
    from tqdm.auto import tqdm

    for (subject, session), proc in tqdm(list(zip(keys, data.processed)), desc="trace fits", unit="session",
                                         disable=None if len(keys) > 1 else True):
        tr = trials[(trials["subject"].astype(str) == subject).to_numpy() & (trials["session"].astype(str) == session).to_numpy()]
        kernel, info = resolve_kernel(args.indicator, proc.rate, rise_s=args.kernel_rise, decay_s=args.kernel_decay,
                                      trace=proc.z, t0=proc.t0, event_times=tr["cue_time"].to_numpy(float))
        kernel_info = kernel_info or info
        f = fit_trace_model(model, proc.z, proc.rate, proc.t0, tr, kernel=kernel, restarts=args.restarts)
        prof = f.pop("profile")
        ident = {}
        if prof is not None:
            (name,) = [k for k in prof if k != "loglik"]
            ident = {name: profile_interval(prof[name], prof["loglik"], f["loglik"], estimate=f["params"][name])}
        fits.append({"subject": subject, "session": session, "rate": proc.rate, "kernel": info, **f,
                     "identification": ident})
    by_subject = {}
    for f in fits:
        by_subject.setdefault(f["subject"], []).append(f["params"])
    params = pd.DataFrame([{k: float(np.mean([p[k] for p in ps])) for k in ps[0]} for ps in by_subject.values()],
                          index=pd.Index(list(by_subject), name="subject"))
    info = {"fit": "trace", "indicator": kernel_info["indicator"], "kernel": kernel_info,
            "phi": float(np.mean([f["phi"] for f in fits])), "loglik": float(sum(f["loglik"] for f in fits)),
            "fixed": fits[0]["fixed"], "trace_fits": fits}
    return params, info


def _plots(out, data, result, trials) -> None:
    """The figures; those of one session say which one (the first of the inputs), with units on every axis."""
    import numpy as np

    from dopa_rl.neural.alignment import peri_event_matrix
    from dopa_rl.neural.regression import RESPONSE_UNITS
    from dopa_rl.report import neural as fig

    fig.save(result.plot(), out / "response_vs_rpe.png")
    n_sessions = trials.groupby(["subject", "session"]).ngroups
    first = ((trials["subject"].astype(str) == str(trials["subject"].iloc[0]))
             & (trials["session"].astype(str) == str(trials["session"].iloc[0]))).to_numpy()
    which = f"subject {trials['subject'].iloc[0]}, session {trials['session'].iloc[0]}"
    if n_sessions > 1:
        which += f" (first of {n_sessions} sessions)"
    if data.signal == "photometry" and data.processed:
        proc = data.processed[0]
        tr = trials[first]
        n = max(len(tr) // 5, 1)
        z = "z-scored dF/F (SD of the session)"
        for ev in ("cue", "outcome"):
            pe = peri_event_matrix(proc.z, tr[f"{ev}_time"].to_numpy(float), (-1.0, 3.0), rate=proc.rate,
                                   t0=proc.t0, warn=False)
            full = pe.full()
            idx = np.arange(len(tr))
            rewarded = tr["reward"].to_numpy() > 0
            fig.aligned_means(pe.time, full, {f"early (first {n})": idx < n, f"late (last {n})": idx >= len(tr) - n},
                              out / f"{ev}_early_late.png", title=f"{ev}: early vs late learning; {which}", ylabel=z)
            fig.aligned_means(pe.time, full, {"rewarded": rewarded, "omitted": ~rewarded},
                              out / f"{ev}_rewarded_omitted.png", title=f"{ev}: rewarded vs omitted; {which}", ylabel=z)
            fig.trial_heatmap(pe.time, full, out / f"{ev}_heatmap.png", title=f"{ev}-aligned, one row per trial; {which}",
                              label=z)
    elif data.signal == "units":
        from dopa_rl.io import nwb
        from dopa_rl.neural.spikes import psth

        path = data.processed[0]["file"]
        tr = trials[first]
        trains = nwb.read_units(path)
        ids = [u for u in trains if str(u) in data.processed[0]["units"]]
        h = psth(trains, tr["outcome_time"].to_numpy(float), (-1.0, 2.0), 0.05, ids)
        fig.psth_heatmaps(h.time, h.rates, ids, out / "psth_outcome_heatmaps.png",
                          title=f"outcome-aligned firing per unit; {which}")
    elif data.matrices:
        mat, time = data.matrices[0]
        tr = trials.iloc[: len(mat)]
        unit = RESPONSE_UNITS["table"].replace("response", "trace")
        fig.trial_heatmap(time, mat, out / "matrix_heatmap.png",
                          title=f"peri-cue trace of the table, one row per trial; {which}", label=unit)
        cues = tr["cue"].astype(str).to_numpy() if "cue" in tr.columns else np.full(len(mat), "all")
        fig.aligned_means(time, mat, {c: cues == c for c in dict.fromkeys(cues)}, out / "matrix_by_cue.png",
                          title=f"cue-aligned mean by cue; {which}", ylabel=unit)
        n = max(len(mat) // 5, 1)
        idx = np.arange(len(mat))
        fig.aligned_means(time, mat, {f"early (first {n})": idx < n, f"late (last {n})": idx >= len(mat) - n},
                          out / "matrix_early_late.png", title=f"early vs late trials; {which}", ylabel=unit)
