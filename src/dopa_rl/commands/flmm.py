"""``dopa-rl flmm``: functional linear mixed models of a trial x time signal (fastFMM's fui; docs/flmm.md)."""
from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    from dopa_rl.commands.common import add_trials_arguments

    p.epilog = (
        "Examples:\n"
        "  dopa-rl flmm binary.csv --formula 'photometry ~ cs + (cs | id)' --rate 25 --event-at 2.0 \\\n"
        "      --json out.json --plots figs/\n"
        "  dopa-rl flmm binary.csv --formula 'photometry ~ cs + (cs | id)' --formula 'photometry ~ cs + (1 | id)' \\\n"
        "      --rate 25 --event-at 2.0          # AIC/BIC of both; bands, --json and --plots of the first\n"
        "  dopa-rl flmm sub-*.nwb --formula 'photometry ~ rpe_cue + (1 | subject)' --rpe rw-pavlovian --window -1 3\n"
        "A table holds one row per trial: covariates, the grouping column and the signal in columns\n"
        "PREFIX.1 ... PREFIX.N (PREFIX is the formula's outcome), sampled at --rate with the event at --event-at\n"
        "seconds after the first column.  NWB files give the trials table as covariates and the z-scored dF/F of\n"
        "the default photometry pipeline (docs/dopamine.md) aligned to --event (a trials time column) in --window.\n"
        "--rpe MODEL adds the columns rpe_cue and rpe_outcome: the model's per-trial RPEs, its learning\n"
        "parameters fitted to the per-trial dopamine responses (--response, --baseline) or to the behaviour\n"
        "(--rpe-fit behavior), or fixed by --rpe-params.  Times in the output are seconds from the event.")
    p.add_argument("data", nargs="+", metavar="TABLE_OR_NWB", help="a CSV/TSV table, or NWB sessions with photometry")
    p.add_argument("--formula", action="append", required=True, metavar="'Y ~ X + (Z | GROUP)'",
                   help="lme4-style model with one random-effects term; repeat to compare random-effect "
                        "structures by AIC/BIC (the first is the one reported)")
    p.add_argument("--rate", type=float, metavar="HZ",
                   help="table: sampling rate of the PREFIX.1...N columns (required); NWB: resample the trace to HZ")
    p.add_argument("--event-at", type=float, metavar="S", help="table: time of the event in the trace, seconds after its first column (required)")
    p.add_argument("--event", default="cue_time", metavar="COLUMN", help="NWB: trials time column to align to (default cue_time)")
    p.add_argument("--window", nargs=2, type=float, default=(-1.0, 3.0), metavar=("START", "STOP"),
                   help="NWB: seconds around the event (default -1 3)")
    p.add_argument("--series", metavar="NAME", help="NWB: photometry series (default: the only one)")
    add_trials_arguments(p, choices=False, columns_example="subject=id,cue=cs,reward=water")
    p.add_argument("--rpe", metavar="MODEL", help="add the per-trial RPEs of MODEL (rw-pavlovian, td ...) as rpe_cue, rpe_outcome")
    p.add_argument("--rpe-fit", default="neural", choices=("neural", "behavior"),
                   help="fit the --rpe model to the per-trial dopamine responses (default) or to the behaviour")
    p.add_argument("--rpe-params", metavar="NAME=VALUE,...", help="--rpe model parameters instead of fitting them")
    p.add_argument("--response", nargs=2, type=float, default=(0.0, 0.5), metavar=("START", "STOP"),
                   help="--rpe-fit neural: per-trial response window after the event (default 0 0.5)")
    p.add_argument("--baseline", nargs=2, type=float, default=(-0.5, 0.0), metavar=("START", "STOP"),
                   help="--rpe-fit neural: baseline window subtracted (default -0.5 0)")
    p.add_argument("--bootstrap", type=int, metavar="N", help="bands of the first formula from N cluster-bootstrap resamples of the groups "
                                                              "(default: the analytic bands)")
    p.add_argument("--level", type=float, default=0.95, help="band coverage (default 0.95)")
    p.add_argument("--outcome-at", type=float, metavar="S",
                   help="mark the outcome S seconds after the event on the figures (NWB: the median outcome delay)")
    p.add_argument("--unit", metavar="TEXT", help="unit of the signal for the axes (default: 'signal units' for a table, 'z-scored dF/F (SD)' for NWB)")
    p.add_argument("--engine", default="reml", choices=("reml", "statsmodels"),
                   help="pointwise fits: batched REML (default) or one statsmodels MixedLM per time point")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="OUT", help="write the first model's coefficients and bands as JSON")
    p.add_argument("--plots", metavar="DIR", help="write the coefficient figures to DIR")


def _table(args, path, formulas):
    """Covariates, signal matrix and time axis of a CSV/TSV table."""
    import numpy as np

    from dopa_rl.errors import InputError
    from dopa_rl.io.behavior import read_table
    from dopa_rl.neural.tables import matrix_from_table

    outcome = formulas[0].outcome
    if args.rate is None or args.event_at is None:
        raise InputError(f"{path}: a table's signal needs --rate HZ and --event-at S (the sampling rate of the "
                         f"{outcome}.1 ... columns and the event's time after the first)")
    if tuple(args.window) != (-1.0, 3.0):
        raise InputError("--window applies to NWB files; a table's trace is used as it is")
    raw = read_table(path, sorted({f.group for f in formulas}))
    Y, time = matrix_from_table(raw, outcome, args.rate, args.event_at)
    if Y.shape[1] < 8:
        raise InputError(f"{path}: only {Y.shape[1]} {outcome} columns; a functional model needs at least 8")
    data = raw.drop(columns=[c for c in raw.columns if c.startswith(outcome) and c[len(outcome):].lstrip("._").isdigit()])
    if not np.isfinite(Y).any():
        raise InputError(f"{path}: the {outcome} columns hold no numbers")
    return data, Y, time, {"source": "table", "file": str(path), "rate_hz": args.rate, "event_at_s": args.event_at}


def _nwb(args, paths, formulas):
    """Trials (with RPE-ready columns) and the photometry aligned to ``--event`` of every NWB session."""
    import numpy as np
    import pandas as pd

    from dopa_rl.commands.common import trials_options
    from dopa_rl.errors import InputError
    from dopa_rl.io import nwb
    from dopa_rl.neural.alignment import check_window, peri_event_matrix
    from dopa_rl.neural.dataset import load_responses
    from dopa_rl.neural.pipeline import PhotometryPipeline

    if args.event_at is not None:
        raise InputError("--event-at applies to tables; for NWB files name the event with --event COLUMN")
    window = check_window(args.window, "--window")
    if args.rate is not None:
        with nwb.NWBSession(paths[0]) as s:
            phot = s.photometry(args.series)
        native = float(phot.rate) if phot.rate else float(1.0 / np.median(np.diff(phot.timestamps)))
        if args.rate <= 0 or args.rate > native * (1 + 1e-9):
            raise InputError(f"--rate {args.rate:g}: {paths[0]} is sampled at {native:g} Hz; give a rate above 0 "
                             f"and at most that (the trace is resampled down to it), or omit --rate")
    opts = trials_options(args)
    loaded = load_responses(paths, "photometry", columns=opts["columns"], trials_table=opts["trials_table"],
                            pipeline=PhotometryPipeline(resample_hz=args.rate), series=args.series,
                            window=tuple(args.response), baseline=tuple(args.baseline))
    trials = loaded.trials
    if args.event not in trials.columns:
        cols = [c for c in trials.columns if str(c).endswith("_time")]
        raise InputError(f"--event {args.event}: no such trials column (time columns: {', '.join(cols) or 'none'})")
    keys = list(dict.fromkeys(zip(trials["subject"].astype(str), trials["session"].astype(str))))
    rows, time, rates = [], None, set()
    for (subject, session), proc in zip(keys, loaded.processed):
        sel = ((trials["subject"].astype(str) == subject) & (trials["session"].astype(str) == session)).to_numpy()
        pe = peri_event_matrix(proc.z, trials.loc[sel, args.event].to_numpy(float), window, rate=proc.rate,
                               t0=proc.t0, warn=False)
        if time is not None and len(pe.time) != len(time):
            raise InputError(f"the sessions are sampled at different rates ({', '.join(f'{r:g}' for r in sorted(rates | {proc.rate}))} Hz); "
                             "give --rate HZ to resample them all to one")
        time = pe.time
        rates.add(proc.rate)
        full = np.full((sel.sum(), len(pe.time)), np.nan)
        full[pe.kept] = pe.matrix
        rows.append(pd.DataFrame(full, index=np.flatnonzero(sel)))
    Y = pd.concat(rows).sort_index().to_numpy()
    info = {"source": "nwb", "files": [str(p) for p in paths], "event": args.event, "window_s": list(window),
            "rate_hz": sorted(rates)[0], "preprocessing": loaded.steps, "excluded": loaded.excluded}
    if "outcome_time" in trials.columns and args.event == "cue_time" and args.outcome_at is None:
        delay = (trials["outcome_time"] - trials["cue_time"]).to_numpy(float)
        if np.isfinite(delay).any():
            info["outcome_delay_s"] = float(np.nanmedian(delay))
    return trials, Y, time, info


def _add_rpes(args, data, Y, time, info):
    """``rpe_cue`` and ``rpe_outcome`` columns from the ``--rpe`` model, fitted through :mod:`dopa_rl.fit`."""
    import numpy as np
    import pandas as pd

    from dopa_rl.commands.common import parse_model_params
    from dopa_rl.errors import InputError
    from dopa_rl.io.behavior import normalize_behavior, parse_column_map
    from dopa_rl.models import get_model
    from dopa_rl.neural.regression import model_rpes
    from dopa_rl.neural.tables import responses_from_matrix

    model = get_model(args.rpe)
    if info["source"] == "table":
        trials = normalize_behavior(data, columns=parse_column_map(args.columns) or None, source=info["file"])
        if len(trials) != len(data):
            raise InputError(f"--rpe: {len(data) - len(trials)} trial rows could not be read as behaviour")
        trials["dopamine_cue"] = responses_from_matrix(Y, time, tuple(args.response), tuple(args.baseline))
    else:
        trials = data
    if args.rpe_params:
        params = parse_model_params(args.rpe_params, model, "--rpe-params")
        source = "given (--rpe-params)"
    else:
        from dopa_rl.fit.neural import fit_dopamine

        fit_rows = trials if args.rpe_fit == "behavior" else trials[np.isfinite(trials["dopamine_cue"].to_numpy(float))]
        fit = fit_dopamine(model, fit_rows.reset_index(drop=True), mode=args.rpe_fit, restarts=5, seed=args.seed)
        params = fit.params
        source = f"fitted to the {'per-trial dopamine responses' if args.rpe_fit == 'neural' else 'behaviour'}"
    rp = model_rpes(model, trials, params)
    data = data.copy()
    data["rpe_cue"] = rp["rpe_cue"].to_numpy(float)
    data["rpe_outcome"] = rp["rpe_outcome"].to_numpy(float)
    table = params if isinstance(params, pd.DataFrame) else pd.DataFrame([params])
    info["rpe"] = {"model": model.name, "source": source,
                   "params": {str(i): {k: float(v) for k, v in row.items()} for i, row in table.iterrows()}}
    return data


def run(args) -> int:
    import sys

    from dopa_rl.commands.common import check_output_paths, make_output_folder, warnings_to_stderr
    from dopa_rl.errors import InputError
    from dopa_rl.io.atomic import atomic_write_text
    from dopa_rl.io.behavior import expand_paths
    from dopa_rl.neural.flmm import fit_flmm, parse_formula

    files = expand_paths(args.data)
    check_output_paths({"--json": args.json}, inputs=files, folders={"--plots": args.plots})
    formulas = [parse_formula(f) for f in args.formula]
    if len({f.outcome for f in formulas}) > 1:
        raise InputError("--formula: every model must have the same outcome (" + ", ".join(f.outcome for f in formulas) + ")")
    if args.bootstrap is not None and args.bootstrap < 10:
        raise InputError(f"--bootstrap {args.bootstrap}: give at least 10 resamples")
    if not 0 < args.level < 1:
        raise InputError(f"--level {args.level}: give a coverage between 0 and 1, e.g. 0.95")
    if args.rpe_params and not args.rpe:
        raise InputError("--rpe-params needs --rpe MODEL")
    nwb_files = [p for p in files if p.suffix.lower() == ".nwb"]
    if nwb_files and len(nwb_files) != len(files):
        raise InputError("give either NWB sessions or one table, not both")
    if not nwb_files and len(files) != 1:
        raise InputError(f"give one table (got {len(files)} files)")
    with warnings_to_stderr(args._flags):
        if nwb_files:
            data, Y, time, info = _nwb(args, nwb_files, formulas)
            unit = args.unit or "z-scored dF/F (SD)"
        else:
            data, Y, time, info = _table(args, files[0], formulas)
            unit = args.unit or "signal units"
        if args.rpe:
            data = _add_rpes(args, data, Y, time, info)
        event_name = str(info["event"]).removesuffix("_time") if "event" in info else "event"
        events = {event_name: 0.0}
        outcome = args.outcome_at if args.outcome_at is not None else info.get("outcome_delay_s")
        if outcome is not None:
            events["outcome"] = float(outcome)
        results = []
        for k, f in enumerate(formulas):
            inference = "bootstrap" if args.bootstrap and k == 0 else "analytic"
            results.append(fit_flmm(data, Y, f, time, inference=inference, n_boot=args.bootstrap or 200,
                                    level=args.level, seed=args.seed, engine=args.engine, signal_unit=unit,
                                    events=events, settings=info))
    main = results[0]
    if args.json:
        import json

        from dopa_rl.results import jsonable

        atomic_write_text(args.json, json.dumps(jsonable(main.report()), indent=2, allow_nan=False) + "\n")
    if args.plots:
        from dopa_rl.report.flmm import save_flmm_figures

        save_flmm_figures(main, make_output_folder(args.plots), event_name=event_name)
    print(main.summary())
    if len(results) > 1:
        print("model comparison (means over time points; lower is better):")
        best_aic = min(r.aic for r in results)
        best_bic = min(r.bic for r in results)
        for r in results:
            marks = (" <- lowest AIC" if r.aic == best_aic else "") + (" <- lowest BIC" if r.bic == best_bic else "")
            print(f"  AIC {r.aic:10.3f}  BIC {r.bic:10.3f}  {r.formula}{marks}")
    if "rpe" in info:
        shown = "; ".join(f"{who}: " + ", ".join(f"{k}={v:.4g}" for k, v in ps.items())
                          for who, ps in info["rpe"]["params"].items())
        print(f"rpe_cue/rpe_outcome from {info['rpe']['model']} ({info['rpe']['source']}) at {shown}")
    for r in results:
        if r.settings.get("not_converged"):
            print(f"warning: {r.formula}: the mixed model did not converge at {r.settings['not_converged']} of "
                  f"{len(r.time)} time points", file=sys.stderr)
    dropped = main.settings.get("dropped_trials", 0)
    if dropped:
        print(f"note: {dropped} trials left out (signal missing inside the window)")
    return 0
