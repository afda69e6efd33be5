"""``dopa-rl photometry``: the preprocessing pipeline on one recording, its event-aligned summary, per-trial
window measures, transients and peri-event bootstrap bands (docs/dopamine.md)."""
from __future__ import annotations

import argparse

INDICATOR_CHOICES = ("dlight", "gcamp6f", "gcamp6m", "gcamp6s", "grab-da", "grab-da1m", "grab-da1h")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = ("Examples:\n"
                "  dopa-rl photometry session.nwb --event reward_cue --json phot.json --plots figs/\n"
                "  dopa-rl photometry session.nwb --event cue_time --control-fit bisquare --detrend highpass\n"
                "  dopa-rl photometry drug.nwb --detrend none --fit-epoch 0:1800 --bleach exp --bleach-epoch 0:1800\n"
                "  dopa-rl photometry s.nwb --event cue_time --window cue=0:1 --window late=1:3 --csv trials.csv\n"
                "  dopa-rl photometry s.nwb --transients --indicator gcamp6f --nwb-out s-analysed.nwb\n"
                "  dopa-rl photometry s.nwb --transients --event transients --window peak=-0.5:1   # spontaneous\n"
                "Steps: low-pass, photobleaching detrend, control fit, dF/F, drift removal, z-score "
                "(docs/dopamine.md).")
    p.add_argument("file", metavar="FILE.nwb", help="NWB file with a photometry series (opened read-only)")
    p.add_argument("--series", metavar="NAME", help="photometry series name or path (default: the only one)")
    p.add_argument("--event", metavar="NAME_OR_COLUMN",
                   help="events table name (e.g. reward_cue) or trials-table time column (e.g. cue_time), or "
                        "'transients': the transients detected with --transients (spontaneous activity); "
                        "default: the trials' cue_time, else the only events table")
    p.add_argument("--trials-table", metavar="NAME", help="interval table holding the trials (default: trials)")
    p.add_argument("--window", nargs="+", action="append", metavar="SPEC",
                   help="START STOP: the peri-event window in seconds (default -1 3); or NAME=START:STOP "
                        "(repeatable): a window relative to the event in which each trial's peak, peak time and "
                        "AUC (z x s) of the baseline-subtracted z-score are measured")
    p.add_argument("--response", nargs=2, type=float, default=(0.0, 1.0), metavar=("START", "STOP"),
                   help="per-trial response window of the summary (default 0 1)")
    p.add_argument("--baseline", nargs=2, type=float, default=(-1.0, 0.0), metavar=("START", "STOP"),
                   help="per-trial baseline window, subtracted from every window measure and band (default -1 0)")
    p.add_argument("--lowpass", type=float, default=None, metavar="HZ",
                   help="zero-phase low-pass cutoff, below the recording's Nyquist frequency; 0 = off (default 10, "
                        "skipped with a note on recordings sampled at 20 Hz or less)")
    p.add_argument("--detrend", default="double-exp", choices=("double-exp", "highpass", "none"),
                   help="photobleaching correction of each channel before the control fit (default double-exp)")
    p.add_argument("--highpass", type=float, default=0.001, metavar="HZ", help="cutoff for --detrend highpass")
    p.add_argument("--control-fit", default="ols", choices=("ols", "huber", "bisquare", "none"),
                   help="fit of the control channel to the signal (default ols)")
    p.add_argument("--fit-epoch", nargs="+", metavar="START:STOP",
                   help="estimate the control fit on this epoch only (seconds of the recording, e.g. 0:600 before "
                        "an injection; START STOP also accepted) and apply it to the whole recording")
    p.add_argument("--bleach", default="none", choices=("none", "exp", "double-exp", "poly1", "poly2", "poly3"),
                   help="remove the drift left in dF/F after control subtraction (long recordings): a single or "
                        "double exponential or a polynomial, fitted robustly (default none)")
    p.add_argument("--bleach-epoch", nargs="+", metavar="START:STOP",
                   help="fit the drift on this epoch only and extrapolate it (keeps a drug step after the epoch; "
                        "the epoch should span several of the drift's time constants)")
    p.add_argument("--bleach-fit", default="robust", choices=("robust", "lsq"),
                   help="robust: Tukey bisquare IRLS, transients get no weight (default); lsq: least squares")
    p.add_argument("--zscore", default="session", choices=("session", "baseline", "robust"), help="z-score reference")
    p.add_argument("--zscore-epoch", nargs=2, type=float, metavar=("START", "STOP"), help="epoch for --zscore baseline")
    p.add_argument("--resample", type=float, metavar="HZ", help="resample dF/F to this rate")
    p.add_argument("--trial-type", metavar="COLUMN",
                   help="trials-table column whose values split the trials for the heatmap and bootstrap bands "
                        "(needs --event to be a trials-table time column)")
    p.add_argument("--n-boot", type=int, default=2000, metavar="N",
                   help="bootstrap resamples of the trials for the 95%% bands (default 2000)")
    p.add_argument("--transients", action="store_true",
                   help="detect transients: peaks above a threshold of robust SDs over a sliding baseline")
    p.add_argument("--indicator", choices=INDICATOR_CHOICES, default=None,
                   help="sets the transient defaults (threshold, min width and separation) from the sensor's "
                        "kinetics (default dlight; see docs/dopamine.md)")
    p.add_argument("--transient-threshold", type=float, metavar="SD", help="threshold in robust SDs (1.4826 MAD)")
    p.add_argument("--transient-min-width", type=float, metavar="S", help="minimum time above half the threshold (s)")
    p.add_argument("--transient-min-separation", type=float, metavar="S",
                   help="dips below half the threshold shorter than this are bridged: one transient (s)")
    p.add_argument("--transient-window", type=float, metavar="S", help="sliding baseline window (s, default 15)")
    p.add_argument("--transient-min-dff", type=float, metavar="PERCENT",
                   help="also require this rise in dF/F (percent, e.g. 2) above the sliding median")
    p.add_argument("--json", metavar="OUT", help="write the summary, the pipeline's steps, the per-trial windows and "
                                                 "the transients as JSON")
    p.add_argument("--csv", metavar="OUT.csv", help="write the per-trial window table (needs --window NAME=START:STOP)")
    p.add_argument("--nwb-out", metavar="OUT.nwb",
                   help="write a copy of FILE.nwb with the z-scored trace and the window table in "
                        "processing/photometry_analysis and the transients as an EventsTable")
    p.add_argument("--plots", metavar="DIR", help="write figures (event-aligned mean, trial heatmap, heatmaps with "
                                                  "bootstrap bands per trial type, transients) to DIR")


def _windows(args):
    """(peri-event window, {name: (start, stop)}) from the repeated --window options."""
    from dopa_rl.errors import InputError
    from dopa_rl.neural.peri_stats import parse_named_window

    peri, named = (-1.0, 3.0), {}
    for spec in args.window or []:
        if len(spec) == 1 and "=" in spec[0]:
            name, span = parse_named_window(spec[0], "--window")
            if name in named:
                raise InputError(f"--window {spec[0]}: the name {name!r} is given twice")
            named[name] = span
        elif any("=" in x for x in spec):
            raise InputError(f"--window {' '.join(spec)}: one NAME=START:STOP per --window (repeat the option); "
                             "give FILE.nwb before the options")
        elif len(spec) == 2:
            try:
                peri = (float(spec[0]), float(spec[1]))
            except ValueError:
                raise InputError(f"--window {' '.join(spec)}: expected START STOP in seconds or "
                                 "NAME=START:STOP") from None
        else:
            raise InputError(f"--window {' '.join(spec)}: expected START STOP in seconds or NAME=START:STOP")
    return peri, named


def _epoch(values, option):
    """``START:STOP`` (or ``START STOP``) of an epoch option, or None."""
    from dopa_rl.errors import InputError
    from dopa_rl.neural.peri_stats import parse_span

    if not values:
        return None
    if len(values) == 1:
        return parse_span(values[0], option)
    if len(values) == 2:
        return parse_span(f"{values[0]}:{values[1]}", option)
    raise InputError(f"{option} {' '.join(values)}: expected START:STOP in seconds (e.g. 0:600)")


def _transient_settings(args):
    from dopa_rl.errors import InputError
    from dopa_rl.neural.transients import transient_settings

    given = [o for o, v in (("--indicator", args.indicator), ("--transient-threshold", args.transient_threshold),
                            ("--transient-min-width", args.transient_min_width),
                            ("--transient-min-separation", args.transient_min_separation),
                            ("--transient-window", args.transient_window),
                            ("--transient-min-dff", args.transient_min_dff)) if v is not None]
    if not args.transients:
        if given:
            raise InputError(f"{given[0]} is a transient option; add --transients")
        return None
    try:
        return transient_settings(args.indicator, threshold=args.transient_threshold,
                                  min_width_s=args.transient_min_width, min_separation_s=args.transient_min_separation,
                                  window_s=args.transient_window,
                                  min_dff=None if args.transient_min_dff is None else args.transient_min_dff / 100.0)
    except InputError as exc:
        raise _transient_flags(exc) from None


def _transient_flags(exc):
    """The InputError with the transient parameters named by their flags."""
    from dopa_rl.errors import InputError

    msg = str(exc)
    for k, v in {"`threshold`": "--transient-threshold", "`min_width_s`": "--transient-min-width",
                 "`min_separation_s`": "--transient-min-separation", "`window_s`": "--transient-window",
                 "`min_dff`": "--transient-min-dff", "`indicator`": "--indicator"}.items():
        msg = msg.replace(k, v)
    return InputError(msg)


def _trial_types(session, args, event_name, n_events):
    """Labels of the events' trials from --trial-type, or None."""
    import numpy as np

    from dopa_rl.errors import InputError
    from dopa_rl.io.nwb_read import interval_tables, table_to_frame

    if not args.trial_type:
        return None
    tables = interval_tables(session.nwbfile)
    tname = args.trials_table or "trials"
    if tname not in tables:
        raise InputError(f"--trial-type {args.trial_type}: {args.file} has no interval table '{tname}'")
    trials = table_to_frame(tables[tname])
    if event_name in session.events() or event_name not in trials.columns:
        raise InputError(f"--trial-type needs --event to be a time column of the '{tname}' table (its columns: "
                         f"{', '.join(map(str, trials.columns))}); '{event_name}' is an events table")
    if args.trial_type not in trials.columns:
        raise InputError(f"--trial-type {args.trial_type}: no such column in the '{tname}' table (columns: "
                         f"{', '.join(map(str, trials.columns))})")
    col = trials[args.trial_type]
    labels = np.where(col.isna(), "", col.astype(str).str.strip()).astype(object)
    if len(labels) != n_events:
        raise InputError(f"--trial-type {args.trial_type}: {len(labels)} trials but {n_events} '{event_name}' times")
    return labels


def summarise(args):
    """Read the file, run :func:`dopa_rl.neural.photometry_analysis.analyse_photometry`; returns
    ``(summary dict for --json, PhotometryAnalysis)``."""
    import numpy as np

    from dopa_rl.commands.common import speak_flags
    from dopa_rl.errors import InputError
    from dopa_rl.io import nwb
    from dopa_rl.neural.alignment import check_window
    from dopa_rl.neural.dataset import event_times
    from dopa_rl.neural.photometry_analysis import TRANSIENT_EVENTS, analyse_photometry
    from dopa_rl.neural.pipeline import PhotometryPipeline

    # library names this command spells otherwise
    args._flags = {**getattr(args, "_flags", {}), "named_windows": "--window", "trial_types": "--trial-type",
                   "event_times": "--event"}
    peri, named = _windows(args)
    check_window(peri, "--window")
    for option in ("response", "baseline"):
        check_window(getattr(args, option), f"--{option}")
    if args.csv and not named:
        raise InputError("--csv writes the per-trial window table: name at least one --window NAME=START:STOP")
    if args.n_boot < 100:
        raise InputError(f"--n-boot {args.n_boot}: at least 100 resamples are needed for a 95% band")
    settings = _transient_settings(args)
    lowpass = 10.0 if args.lowpass is None else args.lowpass
    pipe = PhotometryPipeline(lowpass_hz=lowpass or None, detrend=args.detrend, highpass_hz=args.highpass,
                              control_fit=args.control_fit, fit_epoch=_epoch(args.fit_epoch, "--fit-epoch"),
                              zscore=args.zscore, zscore_epoch=tuple(args.zscore_epoch) if args.zscore_epoch else None,
                              resample_hz=args.resample, bleach=args.bleach, bleach_robust=args.bleach_fit == "robust",
                              bleach_epoch=_epoch(args.bleach_epoch, "--bleach-epoch"))
    spontaneous = args.event == TRANSIENT_EVENTS
    if spontaneous and settings is None:
        raise InputError(f"--event {TRANSIENT_EVENTS} aligns to the detected transients: add --transients")
    if spontaneous and args.trial_type:
        raise InputError(f"--trial-type needs --event to be a trials-table time column, not {TRANSIENT_EVENTS}")
    with nwb.NWBSession(args.file) as s:
        phot = s.photometry(args.series)
        if spontaneous:
            name, times, types = TRANSIENT_EVENTS, TRANSIENT_EVENTS, None
        else:
            name, times = event_times(s, args.event, args.trials_table)
            types = _trial_types(s, args, name, len(times))
    rate = float(phot.rate) if phot.rate else float(1.0 / np.median(np.diff(phot.timestamps)))
    if args.lowpass and args.lowpass >= rate / 2:
        raise InputError(f"--lowpass {args.lowpass:g}: at or above the Nyquist frequency {rate / 2:g} Hz of "
                         f"{phot.source_path or phot.name} (sampled at {rate:g} Hz); give a lower cutoff, or --lowpass 0 "
                         f"for none")
    try:
        res = analyse_photometry(phot, times, pipeline=pipe, event=name, window=peri, named_windows=named,
                                 baseline=tuple(args.baseline), response=tuple(args.response), trial_types=types,
                                 trial_type=args.trial_type, transients=settings, n_boot=args.n_boot)
    except InputError as exc:
        msg = str(exc)
        raise _transient_flags(InputError(f"{args.file}: {msg}" if msg.startswith("none of the") else msg)) from None
    summary = {"file": str(args.file), "series": phot.source_path or phot.name, **res.summary(),
               "pipeline": pipe.params()}
    summary["warnings"] = [speak_flags(w, args._flags) for w in summary["warnings"]]
    return summary, res


def run(args) -> int:
    import json
    from pathlib import Path

    from dopa_rl.commands.common import check_output_paths
    from dopa_rl.io.atomic import atomic_write_text

    check_output_paths({"--json": args.json, "--csv": args.csv, "--nwb-out": args.nwb_out}, inputs=[args.file],
                       folders={"--plots": args.plots})
    if args.nwb_out and Path(args.nwb_out).suffix.lower() != ".nwb":
        from dopa_rl.errors import InputError

        raise InputError(f"--nwb-out {args.nwb_out}: the file name must end in .nwb")
    summary, res = summarise(args)
    pe, proc = res.peri, res.processed
    text = json.dumps(summary, indent=2, allow_nan=False)
    if args.nwb_out:
        from dopa_rl.io.nwb_photometry_out import write_photometry_analysis

        prov = {k: summary[k] for k in ("series", "event", "pipeline", "steps")}
        prov["windows"] = summary.get("windows", {}).get("windows")
        prov["baseline"] = list(args.baseline)
        prov["transient_settings"] = summary.get("transients", {}).get("settings")
        write_photometry_analysis(args.file, args.nwb_out, z=proc.z, rate=proc.rate, t0=proc.t0, provenance=prov,
                                  windows=res.windows, transients=res.transients)
    if args.json:
        atomic_write_text(args.json, text + "\n")
    if args.csv:
        from dopa_rl.io.atomic import atomic_path

        with atomic_path(Path(args.csv)) as tmp:
            res.windows.to_csv(tmp, index=False)
    if args.plots:
        from dopa_rl.report import neural as fig
        from dopa_rl.report import photometry as pfig

        out = Path(args.plots)
        fname = Path(args.file).name
        fig.aligned_means(pe.time, pe.matrix, {summary["event"]: [True] * pe.n_events}, out / "event_aligned_mean.png",
                          title=f"{fname}: {summary['event']}")
        fig.trial_heatmap(pe.time, pe.matrix, out / "trial_heatmap.png",
                          title=f"{fname}: {summary['event']}-aligned, one row per event",
                          label="z-scored dF/F (SD of the session)")
        if res.bands:
            pfig.peri_event_bands(res.bands, out / "trial_type_bands.png",
                                  title=f"{fname}: {summary['event']}-aligned by {args.trial_type or 'all trials'}; "
                                        f"band: 95% bootstrap of the mean change from baseline {args.baseline[0]:g} "
                                        f"to {args.baseline[1]:g} s")
        if res.transients is not None:
            pfig.transients_trace(proc.timestamps, proc.z, res.transients["timestamp"].to_numpy(),
                                  out / "transients.png", title=f"{fname}: transients")
    cf = summary["control_fit"]
    fit_text = "no control fit" if cf is None else f"control fit ({cf['method']}) slope {cf['slope']:.4g}, intercept {cf['intercept']:.4g}"
    if cf is not None and cf.get("epoch"):
        fit_text += f" on {cf['epoch'][0]:g} to {cf['epoch'][1]:g} s"
    print(f"{summary['series']} at {summary['rate']:g} Hz: {fit_text}")
    print(f"{summary['n_events']} '{summary['event']}' events"
          + (f" ({sum(summary['excluded'].values())} excluded: {summary['excluded']})" if summary["excluded"] else "")
          + f"; event-aligned z peak {summary['peak_z']:.3g} at {summary['peak_time']:+.3g} s")
    for k, v in summary.get("windows", {}).get("mean", {}).items():
        print(f"window {k}: {v['n']} trials, mean peak {v['peak']:.3g} z, mean AUC {v['auc']:.3g} z*s")
    if "transients" in summary:
        t = summary["transients"]
        print(f"{t['n']} transients ({t['per_minute']:.3g} per minute) above "
              f"{t['settings']['threshold_sd']:g} robust SD")
    for w in summary["warnings"]:
        print(f"warning: {w}")
    return 0
