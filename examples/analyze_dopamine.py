"""The script a lab starts from: one NWB session -> photometry preprocessing -> RW and TD fitted to the
dopamine -> responses regressed on each model's RPEs -> figures.

    python examples/analyze_dopamine.py [--nwb SESSION.nwb] [--out dopamine_out]

Without --nwb, a Pavlovian session (TD learner, alpha 0.15) is simulated and written to OUT/session.nwb first.
Change the pipeline below (low-pass, detrending, control fit, windows) to match your recordings.
"""
import argparse
import sys
from pathlib import Path

from dopa_rl.errors import InputError
from dopa_rl.fit.neural import fit_dopamine
from dopa_rl.models import get_model
from dopa_rl.neural import PhotometryPipeline
from dopa_rl.neural.alignment import peri_event_matrix
from dopa_rl.neural.dataset import load_responses
from dopa_rl.neural.regression import attach_rpe, model_rpes, regress_responses
from dopa_rl.report import neural as figures

def main() -> None:
    """Read (or simulate) a session, preprocess, fit, regress and draw (see the module docstring)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--nwb", help="NWB session with a trials table and photometry (default: simulate one)")
    ap.add_argument("--out", default="dopamine_out", help="folder for the figures")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    path = args.nwb
    if path is None:
        from dopa_rl.io.nwb_write import write_session
        from dopa_rl.io.synthetic import simulate_session

        data = simulate_session("pavlovian", "td", params={"alpha": 0.15, "gamma": 0.95, "lambda_": 0.9}, seed=7,
                                n_trials=300)
        path = write_session(out / "session.nwb", data, overwrite=True)
        print(f"simulated {path} (TD, alpha=0.15, gamma=0.95, lambda_=0.9)")

    # 1. preprocessing: 10 Hz low-pass, double-exponential detrend, OLS control fit, dF/F, session z-score
    pipeline = PhotometryPipeline(lowpass_hz=10.0, detrend="double-exp", control_fit="ols", zscore="session")
    data = load_responses([path], "photometry", pipeline=pipeline, window=(0.0, 0.5), baseline=(-0.5, 0.0))
    proc = data.processed[0]
    print(f"photometry: {proc.name} at {proc.rate:g} Hz, control slope {proc.control_fit.slope:.3g}; "
          f"{len(data.trials)} trials" + (f", excluded {data.excluded}" if data.excluded else ""))
    for step in proc.steps:
        print("   ", step["step"], {k: v for k, v in step.items() if k not in ("step", "signal", "control")})

    # 2. event-aligned figures: early vs late learning, rewarded vs omitted, trial heatmap
    trials = data.trials
    n = len(trials) // 5
    for event in ("cue", "outcome"):
        pe = peri_event_matrix(proc.z, trials[f"{event}_time"], (-1.0, 3.0), rate=proc.rate, t0=proc.t0, warn=False)
        full = pe.full()
        order = trials.index.to_numpy()
        figures.aligned_means(pe.time, full, {"early": order < n, "late": order >= len(trials) - n},
                              out / f"{event}_early_late.png", title=f"{event}-aligned dopamine")
        rewarded = trials["reward"].to_numpy() > 0
        figures.aligned_means(pe.time, full, {"rewarded": rewarded, "omitted": ~rewarded},
                              out / f"{event}_rewarded_omitted.png", title=f"{event}-aligned dopamine")
        figures.trial_heatmap(pe.time, full, out / f"{event}_heatmap.png", title=f"{event}-aligned, one row per trial", label="z-scored dF/F (SD)")

    # 3. fit RW and TD to the dopamine alone, then regress the responses on each model's RPEs
    for name in ("rw-pavlovian", "td"):
        model = get_model(name)
        result = fit_dopamine(model, trials, mode="neural", restarts=5)
        params = result.params
        print(f"{name} fitted to dopamine: " + ", ".join(f"{k}={v:.3g}" for k, v in params.iloc[0].items())
              + f"  (loglik {result.loglik_.sum():.1f})")
        long = attach_rpe(data.long, trials, model_rpes(model, trials, params))
        reg = regress_responses(long, model=name, signal="photometry", params=params, info={"fit": "neural"})
        print(reg.summary())
        for r in reg.records:
            if r["coef"]["rpe"] is not None:
                print(f"    RPE slope at {r['event']}: {r['coef']['rpe']:.3g} (p={r['pvalue']['rpe']:.2g}, n={r['n']})")
        figures.save(reg.plot(), out / f"response_vs_rpe_{name}.png")
    print(f"figures in {out}/")


if __name__ == "__main__":
    try:
        main()
    except InputError as exc:  # a file that is not what the script expects: one line, exit 2
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        sys.exit(2)
