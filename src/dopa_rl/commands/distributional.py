"""``dopa-rl distributional``: reversal points, asymmetries, split-half test and decoded reward distribution
of dopamine units in a variable-magnitude task, by Dabney et al. (2020)'s procedure (docs/distributional.md)."""
from __future__ import annotations

import argparse

from dopa_rl.commands.common import add_trials_arguments


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = (
        "Examples:\n"
        "  dopa-rl distributional session.nwb --signal units --json dist.json --plots figs/\n"
        "  dopa-rl distributional a.nwb b.nwb --signal units --magnitude-column volume_ul --cued-column cued --use uncued\n"
        "  dopa-rl distributional responses.csv --signal table --unit-prefix unit_\n"
        "One session per file; units are estimated on their own session's trials and pooled for the utility\n"
        "axis, the split-half test and the decoding.  Trials without a reward (missing or 0), without an outcome\n"
        "time or of unknown type are excluded and counted.  Units whose reversal point lands at an end of the\n"
        "range or whose slopes are implausible are flagged (table, JSON, figure), never dropped.")
    p.add_argument("data", nargs="+", metavar="FILES", help="NWB files with units, or CSV/TSV tables (--signal table)")
    p.add_argument("--signal", default="units", choices=("units", "table"),
                   help="units: spikes in the NWB units table (default); table: one column per unit in a CSV/TSV")
    p.add_argument("--magnitude-column", default="reward", metavar="NAME",
                   help="trials column with the reward magnitude (default reward)")
    p.add_argument("--cued-column", metavar="NAME",
                   help="trials column saying whether the trial was cued (1/0, true/false); default 'cued' if present")
    p.add_argument("--use", default="all", choices=("all", "cued", "uncued"), help="which trial types to analyse")
    add_trials_arguments(p, choices=False, columns_example="outcome_time=reward_on")
    p.add_argument("--units", metavar="ID,...", help="units to use (default: all)")
    p.add_argument("--unit-prefix", default="unit_", metavar="PREFIX",
                   help="--signal table: columns PREFIX<id> hold each unit's outcome response (default unit_)")
    p.add_argument("--window", nargs=2, type=float, default=(0.2, 0.6), metavar=("START", "STOP"),
                   help="response window after the outcome, s (default 0.2 0.6, Dabney et al.)")
    p.add_argument("--baseline", nargs=2, type=float, default=(-1.0, 0.0), metavar=("START", "STOP"),
                   help="baseline window around --baseline-event, s (default -1 0)")
    p.add_argument("--baseline-event", default="first", choices=("first", "outcome"),
                   help="first: the trial's first event, cue_time on cued trials and outcome_time on uncued ones "
                        "(default, Dabney et al.); outcome: outcome_time on every trial")
    p.add_argument("--estimator", default="count", choices=("count", "fit"),
                   help="count: Dabney et al.'s counting zero-crossing and no-intercept slopes (default); "
                        "fit: piecewise-linear least-squares fit")
    p.add_argument("--axis", default="utility", choices=("utility", "magnitude"),
                   help="utility: the population's mean response at each magnitude (default, Dabney et al.); "
                        "magnitude: the reward magnitudes as given")
    p.add_argument("--splits", type=int, default=1000, metavar="N", help="random half splits (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="OUT", help="write units, split_half, decoded and exclusions as JSON")
    p.add_argument("--plots", metavar="DIR", help="write figures to DIR")


def run(args) -> int:
    import json
    from pathlib import Path

    import numpy as np

    from dopa_rl.commands.common import check_output_paths, warnings_to_stderr
    from dopa_rl.errors import InputError
    from dopa_rl.io.atomic import atomic_write_text
    from dopa_rl.io.behavior import expand_paths, parse_column_map
    from dopa_rl.neural.distributional import pooled_analysis
    from dopa_rl.neural.outcome_responses import load_outcome_responses
    from dopa_rl.results import jsonable

    files = expand_paths(args.data)
    check_output_paths({"--json": args.json}, inputs=files, folders={"--plots": args.plots})
    if args.splits < 10:
        raise InputError(f"--splits {args.splits}: use at least 10 random splits")
    units = [u.strip() for u in args.units.split(",") if u.strip()] if args.units else None
    columns = parse_column_map(args.columns)
    sessions = []
    from tqdm.auto import tqdm

    with warnings_to_stderr(getattr(args, "_flags", None)):
        for path in tqdm(files, desc="reading sessions", unit="file", disable=None if len(files) > 1 else True):
            sessions.append(load_outcome_responses(
                path, args.signal, magnitude_column=args.magnitude_column, cued_column=args.cued_column,
                columns=columns, trials_table=args.trials_table, window=tuple(args.window),
                baseline=tuple(args.baseline), baseline_event=args.baseline_event, units=units,
                unit_prefix=args.unit_prefix))
        untyped = [s["file"] for s in sessions if s["trial_type"] is None]
        if args.use != "all" and untyped:
            raise InputError(f"{untyped[0]}: --use {args.use} needs a trial-type column (no 'cued' column; name "
                             "yours with --cued-column NAME)")
        if sum(s["responses"].shape[1] for s in sessions) < 3:
            raise InputError(f"{files[0]}: the split-half test needs at least 3 units in all")
        for s in sessions:
            if np.unique(s["magnitudes"]).size < 3:
                raise InputError(f"{s['file']}: {np.unique(s['magnitudes']).size} distinct reward magnitudes; "
                                 "reversal points need at least 3")
        if len(files) > 1:
            for s in sessions:  # unit ids are per file
                s["label"] = s["file"]
        result = pooled_analysis(sessions, use=args.use, rng=np.random.default_rng(args.seed), n_splits=args.splits,
                                 estimator=args.estimator, axis=args.axis)
    result.response_unit = "spikes/s" if args.signal == "units" else "response units"
    result.settings.update(signal=args.signal, window=list(args.window), baseline=list(args.baseline),
                           baseline_event=args.baseline_event, files=[str(f) for f in files])
    for s, per in zip(sessions, result.sessions):
        per["file"] = s["file"]
        per["excluded"] = {**s["excluded"], **({f"not_{args.use}": per["n_excluded"]} if per["n_excluded"] else {})}
        per["n_read"] = s["n_read"]
    excluded: dict[str, int] = {}
    for per in result.sessions:
        for k, v in per["excluded"].items():
            excluded[k] = excluded.get(k, 0) + v
    out = {**result.to_dict(), "signal": args.signal, "use": args.use, "window": list(args.window),
           "baseline": list(args.baseline), "baseline_event": args.baseline_event, "n_splits": args.splits,
           "excluded": excluded}
    truths = [s["truth"] for s in sessions if s["truth"]]
    if truths:
        out["true"] = {"magnitudes": truths[0]["magnitudes"], "probabilities": truths[0]["probabilities"]}
    text = json.dumps(jsonable(out), indent=2, allow_nan=False)
    if args.json:
        atomic_write_text(args.json, text + "\n")
    if args.plots:
        _plots(Path(args.plots), sessions, result, truths)
    lines = result.summary().split("\n")
    if excluded:
        lines[0] += f"; excluded: {', '.join(f'{k} {v}' for k, v in excluded.items())}"
    print("\n".join(lines))
    return 0


def _plots(out, sessions, result, truths) -> None:
    import numpy as np

    from dopa_rl.report.neural import save

    save(result.plot(panel="responses"), out / "response_by_magnitude.png")
    true_tau = true_rp = None
    taus = [t["tau"] for t in truths]
    if truths and len(truths) == len(sessions) and all(taus) and sum(map(len, taus)) == len(result.units):
        from dopa_rl.models.distributional import expectile

        true_tau = np.concatenate([np.asarray(t, float) for t in taus])
        true_rp = result.to_axis(np.concatenate([expectile(t["magnitudes"], np.asarray(t["tau"], float),
                                                           t["probabilities"]) for t in truths]))
    save(result.plot(panel="tau", true_tau=true_tau, true_reversal=true_rp), out / "tau_vs_reversal.png")
    if result.decoded is not None:
        if truths:
            tv, tp, label = truths[0]["magnitudes"], truths[0]["probabilities"], "true"
        else:  # a recording: the task's distribution is the magnitudes' frequencies over the trials used
            tv, counts = np.unique(np.concatenate([s["magnitudes"] for s in sessions]), return_counts=True)
            tp, label = counts / counts.sum(), "task (trial frequencies)"
        save(result.plot(panel="decoded", true_values=tv, true_probs=tp, true_label=label),
             out / "decoded_distribution.png")
