"""TD neural fit: learning parameters of TD(lambda) (CSC) fitted to dopamine responses at cue and outcome.

Workload: one session of 400 Pavlovian trials x 40 time bins (100 ms bins, cue at 0.5 s, reward at 2.0 s
with probability 0.75), dopamine responses = b0 + b1 x RPE + noise at cue and outcome; the three learning
parameters (alpha, gamma, lambda_) fitted with the linear readout profiled out in closed form, 10 restarts.

- ours: :func:`dopa_rl.fit.neural.fit_dopamine` (all restarts stepped together by the batched BFGS, RPEs of
  every lane from one compiled call, standard errors included);
- reference: scipy ``minimize`` (L-BFGS-B, finite-difference gradient) per restart on the same profile
  likelihood, the RPEs from the compiled single-subject ``td_trajectory`` (a plain but not naive loop).

Run: .venv/bin/python bench/bench_neural_fit.py [--trials 400] [--restarts 10] [--repeat 3]
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def make_data(n_trials: int, seed: int = 0):
    from dopa_rl.models import get_model, tasks
    from dopa_rl.models.tasks import TrialTiming

    tm = TrialTiming(bin_s=0.1, cue_onset_s=0.5, outcome_s=2.0, trial_s=3.9)
    model = get_model("td", timing=tm)
    rng = np.random.default_rng(seed)
    truth = {"alpha": 0.15, "gamma": 0.9, "lambda_": 0.7}
    sim = model.simulate(truth, tasks.pavlovian_task(n_trials, p_reward=0.75, timing=tm), rng)
    tr = sim.trials
    tr = tr.assign(dopamine_cue=0.2 + 1.5 * tr["rpe_cue"] + rng.normal(0, 0.3, len(tr)),
                   dopamine_outcome=0.1 + 1.5 * tr["rpe_outcome"] + rng.normal(0, 0.3, len(tr)))
    assert sim.rpe.shape[1] == 40, sim.rpe.shape
    return model, tr.drop(columns=["rpe_cue", "rpe_outcome"]), truth


def reference_fit(model, trials, restarts: int, seed: int = 0):
    from scipy.optimize import minimize

    from dopa_rl.fit.neural import DopamineModel
    from dopa_rl.models import kernels
    from dopa_rl.models.dopamine import profile_loglik

    dm = DopamineModel(model, "neural")
    packed = dm.pack(trials)
    e = packed.extra
    n = int(packed.n_trials[0])
    y_cue, y_out = e["dop_cue"][0, :n], e["dop_outcome"][0, :n]
    cb, ob = model.timing.cue_bin, e["outcome_bins"][0, :n]

    def negll(x):
        th = np.array([x[0], x[1], x[2], 0.0, 0.0])
        rpe, _ = kernels.td_trajectory(th, e["phis"], e["types"][0, :n], ob, packed.rewards[0, :n], packed.resets[0, :n])
        ll = profile_loglik(rpe[:, cb], y_cue).loglik + profile_loglik(rpe[np.arange(n), ob], y_out).loglik
        return -float(ll) if np.isfinite(ll) else 1e10

    rng = np.random.default_rng(seed)
    best = None
    for _ in range(restarts):
        x0 = [rng.uniform(0.02, 0.5), rng.uniform(0.7, 0.99), rng.uniform(0.1, 0.95)]
        r = minimize(negll, x0, method="L-BFGS-B", bounds=[(1e-4, 1 - 1e-4)] * 3)
        if best is None or r.fun < best.fun:
            best = r
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=400)
    ap.add_argument("--restarts", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    from dopa_rl.fit.neural import fit_dopamine

    model, trials, truth = make_data(args.trials)
    fit_dopamine(model, trials.iloc[:50], mode="neural", restarts=2)   # warm-up: load compiled kernels
    reference_fit(model, trials.iloc[:50], 1)
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        res = fit_dopamine(model, trials, mode="neural", restarts=args.restarts)
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    ref = reference_fit(model, trials, args.restarts)
    t_ref = time.perf_counter() - t0
    ours = res.params.iloc[0]
    print(f"TD (CSC) neural fit: {args.trials} trials x 40 bins, 3 learning parameters, {args.restarts} restarts")
    print(f"  ours      {min(times):7.3f} s (best of {args.repeat}; all {', '.join(f'{t:.2f}' for t in times)})  "
          + ", ".join(f"{k}={v:.3f}" for k, v in ours.items()) + f"  loglik {res.loglik_[0]:.2f}")
    print(f"  reference {t_ref:7.3f} s (scipy L-BFGS-B per restart)  alpha={ref.x[0]:.3f}, gamma={ref.x[1]:.3f}, "
          f"lambda_={ref.x[2]:.3f}  loglik {-ref.fun:.2f}")
    print(f"  speed-up {t_ref / min(times):.1f}x; truth " + ", ".join(f"{k}={v}" for k, v in truth.items())
          + f"; target < 5 s: {'met' if min(times) < 5 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
