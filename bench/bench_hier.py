"""Hierarchical EM on 200 subjects x 500 trials: time, estimates and the sampled evidence with its error.

Workload: bench_population.py's (unconstrained alpha ~ N(-0.5, 0.8), beta ~ N(-2.3, 0.5), two-armed 0.8/0.2
bandit with a reversal, ``rw-softmax`` with q0 0.5), 10 restarts in the first E step.  Prints the seconds of
``fit(method="hier")`` (compiled kernels loaded beforehand, untimed), the EM iterations, the population and
the iBIC with its Monte Carlo standard error when the result reports one; ``--out FILE.npz`` keeps the
estimates so two versions' results can be compared; ``--reference`` also computes a precise evidence
(importance sampling to a standard error of 0.02 on the summed log evidence) to score the iBIC against.

The comparison with the previous version is made from outside, paired and interleaved, with the same
script on both source trees (bench/README.md gives the commands):

    farm-bench -n 5 -- env PYTHONPATH=src python bench/bench_hier.py \\
        --vs 'env PYTHONPATH=OLD/src python bench/bench_hier.py'

Usage: PYTHONPATH=src python bench/bench_hier.py [--subjects 200] [--trials 500] [--jobs N] [--out F.npz]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_population import population  # noqa: E402

from dopa_rl.fit import fit  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subjects", type=int, default=200)
    ap.add_argument("--trials", type=int, default=500)
    ap.add_argument("--restarts", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=None)
    ap.add_argument("--out", default=None, help="write x, pop_mean, pop_sd, ibic, log_evidence here (.npz)")
    ap.add_argument("--reference", action="store_true", help="also a precise evidence (standard error 0.02)")
    args = ap.parse_args()

    model, df, truth = population(args.subjects, args.trials, args.seed)
    packed = model.pack(df)
    small = df[df.subject.isin(df.subject.unique()[:2])]
    fit(model, small, method="hier", restarts=1, max_iter=1)   # load the compiled kernels, untimed
    t0 = time.perf_counter()
    res = fit(model, packed, method="hier", restarts=args.restarts, seed=args.seed, n_jobs=args.jobs)
    sec = time.perf_counter() - t0
    se = getattr(res, "ibic_se", float("nan"))
    rmse = np.sqrt(np.mean((res.x - truth) ** 2, axis=0))
    print(f"hier {args.subjects} x {args.trials}: {sec:.2f} s, {res.em_iterations} EM iterations "
          f"(converged {res.em_converged}); pop mean {np.round(res.pop_mean, 4).tolist()} sd "
          f"{np.round(res.pop_sd, 4).tolist()}; iBIC {res.ibic:.2f} (MC SE {se:.3g}); total loglik "
          f"{res.loglik_.sum():.3f}; RMSE alpha {rmse[0]:.4f} beta {rmse[1]:.3f}; load {os.getloadavg()[0]:.1f}")
    if args.reference:
        from dopa_rl.fit.hierarchical import importance_log_evidence, posterior_covariance

        z = model.spec.to_unconstrained(res.x)
        cov = posterior_covariance(-model.hessian_z(z, packed, np.arange(packed.n_subjects)), res.pop_sd)
        ev, ev_se, draws = importance_log_evidence(model, packed, res.pop_mean, res.pop_sd, z, cov,
                                                   np.random.default_rng(12345), target_se=0.02, max_draws=1 << 17)
        total = float(np.sum(ev))
        print(f"reference evidence: sum log p(y_s | population) {total:.3f} +- {np.sqrt(np.sum(ev_se ** 2)):.3f} "
              f"({int(draws.sum())} draws); this fit's: {np.sum(res.log_evidence):.3f} "
              f"(difference {np.sum(res.log_evidence) - total:+.3f})")
    if args.out:
        np.savez(args.out, x=res.x, pop_mean=res.pop_mean, pop_sd=res.pop_sd, ibic=res.ibic,
                 log_evidence=res.log_evidence, seconds=sec, loglik=res.loglik_)


if __name__ == "__main__":
    main()
