"""Photometry preprocessing of a 1-hour, 1 kHz, two-channel recording, end to end, against references
measured in the same run.

Recording: a simulated session (500 Pavlovian trials, dLight-like transients from the RPEs, bleaching,
motion artefacts shared with the isosbestic channel), 3,600,001 samples per channel, in memory.

Timed (best of --repeat):

- ours, default pipeline: 10 Hz zero-phase low-pass of both channels, double-exponential detrend (fitted on
  1 s bin means), OLS control fit, dF/F, z-score, peri-cue matrix (-1..+3 s) for the 500 cues and the
  per-trial measures (mean, peak, peak time, AUC);
- ours with the reference's steps (no detrending, isosbestic dF/F), for a like-for-like ratio;
- ours with the robust (bisquare IRLS) control fit instead of OLS; and the robust fit alone;
- reference: a plain numpy/scipy pipeline written the obvious way (``butter`` + ``filtfilt`` on each
  channel, ``np.polyfit`` control fit, dF/F and z-score, a Python loop over events for the matrix);
- ``--rlm``: statsmodels RLM (Tukey bisquare) on every sample, what GuPPy's IRWLS default runs;
- ``--guppy``: GuPPy's own steps (``guppy-neuro`` from PyPI, installed into a separate virtual environment
  made here, ``--guppy-venv``): its moving-average filter, IRWLS control fit, dF/F and z-score, on the same
  arrays (saved to a temporary folder).

Run: .venv/bin/python bench/bench_photometry.py [--repeat 3] [--rlm] [--guppy]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_recording(duration: float, rate: float):
    from dopa_rl.io.synthetic import DopamineObservation, simulate_session

    obs = DopamineObservation(photometry_rate=rate, n_units=1)
    s = simulate_session("pavlovian", "rw", seed=0, n_trials=500, observation=obs, duration_s=duration)
    return s.photometry[0], s.trials["cue_time"].to_numpy(float)


def ours(phot, cues, control_fit="ols", detrend="double-exp"):
    from dopa_rl.neural import PhotometryPipeline, peri_event_matrix, window_measures

    proc = PhotometryPipeline(lowpass_hz=10.0, detrend=detrend, control_fit=control_fit).run(phot)
    pe = peri_event_matrix(proc.z, cues, (-1.0, 3.0), rate=proc.rate, t0=proc.t0, warn=False)
    m = window_measures(pe.matrix, pe.time, (0.0, 1.0), (-1.0, 0.0))
    return proc, pe, m


def reference(t, sig, ctl, rate, cues):
    """The plain numpy/scipy pipeline (isosbestic convention, no detrending)."""
    from scipy.signal import butter, filtfilt

    b, a = butter(2, 10.0, fs=rate)
    s = filtfilt(b, a, sig)
    c = filtfilt(b, a, ctl)
    slope, intercept = np.polyfit(c, s, 1)
    fitted = intercept + slope * c
    dff = (s - fitted) / fitted
    z = (dff - dff.mean()) / dff.std()
    n_pre, n_post = int(rate), int(3 * rate)
    rows, means, peaks = [], [], []
    for e in cues:
        i = int(np.searchsorted(t, e))
        if i - n_pre < 0 or i + n_post >= len(z):
            continue
        row = z[i - n_pre: i + n_post + 1]
        base = row[:n_pre].mean()
        rows.append(row)
        means.append(row[n_pre: n_pre + int(rate)].mean() - base)
        peaks.append(row[n_pre: n_pre + int(rate)].max() - base)
    return slope, np.array(rows), np.array(means)


def best(fn, repeat):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


GUPPY_SCRIPT = r"""
import json, sys, time
import numpy as np
from guppy.analysis import control_fit, filtering, z_score
d = sys.argv[1]
t, s, c = (np.load(f"{d}/{k}.npy") for k in ("t", "signal", "control"))
times = {}
t0 = time.perf_counter(); fs = filtering.filterSignal(100, s); fc = filtering.filterSignal(100, c)
times["moving-average filter (100 samples), both channels"] = time.perf_counter() - t0
t0 = time.perf_counter(); model = control_fit.fit(fc, fs, method="IRWLS")
times["IRWLS control fit (statsmodels RLM, Tukey)"] = time.perf_counter() - t0
t0 = time.perf_counter(); fitted = control_fit.predict(model, fc); dff = z_score.deltaFF(fs, fitted)
z = z_score.z_score_computation(dff, t, "standard z-score", 0, 0)
times["dF/F and z-score"] = time.perf_counter() - t0
print(json.dumps({"times": times, "slope": model.slope, "z_sd": float(np.std(z))}))
"""


def run_guppy(venv: Path, t, sig, ctl) -> dict | str:
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    check = subprocess.run([str(py), "-c", "import guppy.analysis.control_fit"], capture_output=True)
    if check.returncode != 0:
        inst = subprocess.run([str(py), "-m", "pip", "install", "-q", "guppy-neuro"], capture_output=True, text=True)
        if inst.returncode != 0:
            return "guppy-neuro did not install: " + (inst.stderr.strip().splitlines() or ["?"])[-1]
    with tempfile.TemporaryDirectory() as d:
        for k, v in (("t", t), ("signal", sig), ("control", ctl)):
            np.save(f"{d}/{k}.npy", v)
        r = subprocess.run([str(py), "-c", GUPPY_SCRIPT, d], capture_output=True, text=True)
    if r.returncode != 0:
        return "GuPPy's steps failed: " + (r.stderr.strip().splitlines() or ["?"])[-1]
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=3600.0, help="recording length in s (default 3600)")
    ap.add_argument("--rate", type=float, default=1000.0, help="sampling rate in Hz (default 1000)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--rlm", action="store_true", help="also time statsmodels RLM on every sample")
    ap.add_argument("--guppy", action="store_true", help="also time GuPPy's steps (installs guppy-neuro in a venv)")
    ap.add_argument("--guppy-venv", default=str(Path(tempfile.gettempdir()) / "dopa_rl_bench_guppy_venv"))
    args = ap.parse_args()

    from dopa_rl.neural import photometry as P

    t0 = time.perf_counter()
    phot, cues = make_recording(args.duration, args.rate)
    n = len(phot.signal)
    print(f"recording: {n:,} samples x 2 channels at {args.rate:g} Hz ({n / args.rate / 3600:.2f} h), "
          f"{len(cues)} cues; made in {time.perf_counter() - t0:.1f} s")
    ours(phot, cues)  # warm-up (imports, scipy filter design)
    t_ours, (proc, pe, m) = best(lambda: ours(phot, cues), args.repeat)
    t_rob, (proc_r, _, _) = best(lambda: ours(phot, cues, "bisquare"), args.repeat)
    t_same, _ = best(lambda: ours(phot, cues, "ols", "none"), args.repeat)
    t_ref, (ref_slope, ref_rows, ref_means) = best(
        lambda: reference(phot.timestamps, phot.signal, phot.control, args.rate, cues), args.repeat)
    s_lp, c_lp = P.lowpass(phot.signal, args.rate, 10.0), P.lowpass(phot.control, args.rate, 10.0)
    t_fit_rob, fit_rob = best(lambda: P.fit_control(s_lp, c_lp, "bisquare"), args.repeat)
    t_fit_all, fit_all = best(lambda: P.fit_control(s_lp, c_lp, "bisquare", max_samples=None), 1)
    t_fit_ols, fit_ols = best(lambda: P.fit_control(s_lp, c_lp, "ols"), args.repeat)
    print(f"{'':58s} {'seconds':>8s} {'vs reference':>12s}")
    rows = [
        ("reference: plain numpy/scipy pipeline (filtfilt, polyfit, loop)", t_ref),
        ("ours, default (low-pass, double-exp, OLS, dF/F, z, 500 trials)", t_ours),
        ("ours, the reference's steps (no detrend: isosbestic dF/F)", t_same),
        ("ours, robust bisquare control fit instead of OLS", t_rob),
        ("robust fit alone, ours (bisquare IRLS, <= 200k samples)", t_fit_rob),
        ("robust fit alone, ours on every sample", t_fit_all),
        ("OLS control fit alone, ours", t_fit_ols),
    ]
    if args.rlm:
        import statsmodels.api as sm

        t_rlm, rlm = best(lambda: sm.RLM(s_lp, sm.add_constant(c_lp), M=sm.robust.norms.TukeyBiweight()).fit(), 1)
        rows.append(("statsmodels RLM (Tukey) on every sample, GuPPy's default fit", t_rlm))
    for label, sec in rows:
        print(f"{label:58s} {sec:8.3f} {sec / t_ref:11.2f}x")
    print(f"control slope: ours OLS {proc.control_fit.slope:.4f} (detrended), bisquare {fit_rob.slope:.4f} "
          f"(every sample {fit_all.slope:.4f}, OLS {fit_ols.slope:.4f}; raw low-passed), reference polyfit "
          f"{ref_slope:.4f}" + (f", statsmodels RLM {rlm.params[1]:.4f}" if args.rlm else ""))
    print(f"peri-cue matrix {pe.matrix.shape}; mean cue response {m['mean'].mean():.3f} z (reference "
          f"{ref_means.mean():.3f} z, isosbestic convention without detrending)")
    print(f"targets: end to end < 1 s: {'met' if t_ours < 1 else 'NOT met'} ({t_ours:.3f} s); robust fit < 1 s: "
          f"{'met' if t_fit_rob < 1 else 'NOT met'} ({t_fit_rob:.3f} s)")
    if args.guppy:
        g = run_guppy(Path(args.guppy_venv), phot.timestamps, phot.signal, phot.control)
        if isinstance(g, str):
            print(g)
        else:
            total = sum(g["times"].values())
            for label, sec in g["times"].items():
                print(f"GuPPy {label:52s} {sec:8.3f} {sec / t_ref:11.2f}x")
            print(f"GuPPy total {total:.3f} s ({total / t_ours:.1f}x ours); its control slope {g['slope']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
