"""``dopa-rl photometry``: the preprocessing pipeline on one recording and its event-aligned summary."""
from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = ("Examples:\n"
                "  dopa-rl photometry session.nwb --event reward_cue --json phot.json --plots figs/\n"
                "  dopa-rl photometry session.nwb --event cue_time --control-fit bisquare --detrend highpass\n"
                "Steps: low-pass, photobleaching detrend, control fit, dF/F, z-score (see docs/dopamine.md).")
    p.add_argument("file", metavar="FILE.nwb", help="NWB file with a photometry series (opened read-only)")
    p.add_argument("--series", metavar="NAME", help="photometry series name or path (default: the only one)")
    p.add_argument("--event", metavar="NAME_OR_COLUMN",
                   help="events table name (e.g. reward_cue) or trials-table time column (e.g. cue_time); "
                        "default: the trials' cue_time, else the only events table")
    p.add_argument("--trials-table", metavar="NAME", help="interval table holding the trials (default: trials)")
    p.add_argument("--window", nargs=2, type=float, default=(-1.0, 3.0), metavar=("START", "STOP"),
                   help="peri-event window in seconds (default -1 3)")
    p.add_argument("--response", nargs=2, type=float, default=(0.0, 1.0), metavar=("START", "STOP"),
                   help="per-trial response window (default 0 1)")
    p.add_argument("--baseline", nargs=2, type=float, default=(-1.0, 0.0), metavar=("START", "STOP"),
                   help="per-trial baseline window (default -1 0)")
    p.add_argument("--lowpass", type=float, default=None, metavar="HZ",
                   help="zero-phase low-pass cutoff, below the recording's Nyquist frequency; 0 = off (default 10, "
                        "skipped with a note on recordings sampled at 20 Hz or less)")
    p.add_argument("--detrend", default="double-exp", choices=("double-exp", "highpass", "none"),
                   help="photobleaching correction (default double-exp)")
    p.add_argument("--highpass", type=float, default=0.001, metavar="HZ", help="cutoff for --detrend highpass")
    p.add_argument("--control-fit", default="ols", choices=("ols", "huber", "bisquare", "none"),
                   help="fit of the control channel to the signal (default ols)")
    p.add_argument("--fit-epoch", nargs=2, type=float, metavar=("START", "STOP"), help="fit the control on this epoch only")
    p.add_argument("--zscore", default="session", choices=("session", "baseline", "robust"), help="z-score reference")
    p.add_argument("--zscore-epoch", nargs=2, type=float, metavar=("START", "STOP"), help="epoch for --zscore baseline")
    p.add_argument("--resample", type=float, metavar="HZ", help="resample dF/F to this rate")
    p.add_argument("--json", metavar="OUT", help="write the summary and the pipeline's steps as JSON")
    p.add_argument("--plots", metavar="DIR", help="write figures (event-aligned mean, trial heatmap) to DIR")


def summarise(args):
    """Run the pipeline; returns (summary dict, peri-event matrix)."""
    import warnings

    import numpy as np

    from dopa_rl.errors import InputError
    from dopa_rl.io import nwb
    from dopa_rl.neural.alignment import check_window, peri_event_matrix, window_measures
    from dopa_rl.neural.dataset import event_times
    from dopa_rl.neural.pipeline import PhotometryPipeline

    for option in ("window", "response", "baseline"):
        check_window(getattr(args, option), f"--{option}")
    lowpass = 10.0 if args.lowpass is None else args.lowpass
    pipe = PhotometryPipeline(lowpass_hz=lowpass or None, detrend=args.detrend, highpass_hz=args.highpass,
                              control_fit=args.control_fit, fit_epoch=tuple(args.fit_epoch) if args.fit_epoch else None,
                              zscore=args.zscore, zscore_epoch=tuple(args.zscore_epoch) if args.zscore_epoch else None,
                              resample_hz=args.resample)
    with nwb.NWBSession(args.file) as s:
        phot = s.photometry(args.series)
        name, times = event_times(s, args.event, args.trials_table)
    rate = float(phot.rate) if phot.rate else float(1.0 / np.median(np.diff(phot.timestamps)))
    if args.lowpass and args.lowpass >= rate / 2:
        raise InputError(f"--lowpass {args.lowpass:g}: at or above the Nyquist frequency {rate / 2:g} Hz of "
                         f"{phot.source_path or phot.name} (sampled at {rate:g} Hz); give a lower cutoff, or --lowpass 0 "
                         f"for none")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        proc = pipe.run(phot)
        pe = peri_event_matrix(proc.z, times, tuple(args.window), rate=proc.rate, t0=proc.t0)
    if pe.n_events == 0:
        raise InputError(f"{args.file}: none of the {len(times)} '{name}' events has its {args.window[0]:g} to "
                         f"{args.window[1]:g} s window inside the recording ({proc.t0:.6g} to "
                         f"{proc.timestamps[-1]:.6g} s)")
    mean = pe.mean()
    after = pe.time > 0
    i = int(np.flatnonzero(after)[np.argmax(mean[after])]) if after.any() else int(np.argmax(mean))
    meas = window_measures(pe.matrix, pe.time, tuple(args.response), tuple(args.baseline))
    cf = proc.control_fit
    summary = {
        "file": str(args.file), "series": phot.source_path or phot.name, "rate": proc.rate, "event": name,
        "control_fit": None if cf is None else {"slope": cf.slope, "intercept": cf.intercept, "method": cf.method,
                                                "n_samples": cf.n_samples},
        "n_events": pe.n_events, "excluded": pe.excluded, "peak_z": float(mean[i]), "peak_time": float(pe.time[i]),
        "response": {"window": list(args.response), "baseline": list(args.baseline),
                     **{k: float(meas[k].mean()) for k in ("mean", "peak", "auc")}},
        "pipeline": pipe.params(), "steps": proc.steps,
        "warnings": [str(w.message) for w in caught] + proc.notes,
    }
    return summary, pe


def run(args) -> int:
    import json
    from pathlib import Path

    from dopa_rl.commands.common import check_output_paths, speak_flags
    from dopa_rl.errors import InputError
    from dopa_rl.io.atomic import atomic_write_text

    check_output_paths({"--json": args.json}, inputs=[args.file], folders={"--plots": args.plots})
    summary, pe = summarise(args)
    summary["warnings"] = [speak_flags(w, getattr(args, "_flags", {})) for w in summary["warnings"]]
    text = json.dumps(summary, indent=2, allow_nan=False)
    if args.json:
        atomic_write_text(args.json, text + "\n")
    if args.plots:
        from dopa_rl.report import neural as fig

        out = Path(args.plots)
        fig.aligned_means(pe.time, pe.matrix, {summary["event"]: [True] * pe.n_events}, out / "event_aligned_mean.png",
                          title=f"{Path(args.file).name}: {summary['event']}")
        fig.trial_heatmap(pe.time, pe.matrix, out / "trial_heatmap.png",
                          title=f"{Path(args.file).name}: {summary['event']}-aligned, one row per event",
                          label="z-scored dF/F (SD of the session)")
    cf = summary["control_fit"]
    fit_text = "no control fit" if cf is None else f"control fit ({cf['method']}) slope {cf['slope']:.4g}, intercept {cf['intercept']:.4g}"
    print(f"{summary['series']} at {summary['rate']:g} Hz: {fit_text}")
    print(f"{summary['n_events']} '{summary['event']}' events"
          + (f" ({sum(summary['excluded'].values())} excluded: {summary['excluded']})" if summary["excluded"] else "")
          + f"; event-aligned z peak {summary['peak_z']:.3g} at {summary['peak_time']:+.3g} s")
    for w in summary["warnings"]:
        print(f"warning: {w}")
    return 0
