"""Fitting throughput: dopa_rl against a plain reference, measured in the same run.

Workload (issue 2): 200 subjects x 500 trials of a two-armed bandit with a reversal, rw-softmax, 10
restarts per subject.  References:

* ``reference fit``: a per-trial Python-loop likelihood minimised by scipy (L-BFGS-B, numerical
  gradient), timed on a sample of subject-restarts and reported as subject-restarts per second;
* ``C loop``: the 2-option RW-softmax log-likelihood as a plain C loop (gcc -O2), trials per second,
  against our compiled kernel (which also returns the gradient).

Usage: python bench/bench_fit.py [--subjects 200] [--trials 500] [--restarts 10] [--reference-fits 20]
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import tempfile
import time

import numpy as np

from dopa_rl.fit import fit
from dopa_rl.models import get_model, simulate_population, tasks
from dopa_rl.models.base import Packed

C_SOURCE = r"""
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
/* plain 2-option RW-softmax log-likelihood over S subjects x T trials, repeated R times */
int main(int argc, char **argv) {
    int S = atoi(argv[1]), T = atoi(argv[2]), R = atoi(argv[3]);
    FILE *f = fopen(argv[4], "rb");
    int *ch = malloc(sizeof(int) * S * T); double *rw = malloc(sizeof(double) * S * T);
    if (fread(ch, sizeof(int), S * T, f) != (size_t)(S * T)) return 1;
    if (fread(rw, sizeof(double), S * T, f) != (size_t)(S * T)) return 1;
    fclose(f);
    struct timespec a, b; double total = 0;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int r = 0; r < R; r++) {
        double alpha = 0.3 + 1e-4 * r, beta = 3.0;
        for (int s = 0; s < S; s++) {
            double q0 = 0, q1 = 0, ll = 0;
            for (int t = 0; t < T; t++) {
                int c = ch[s * T + t]; double d = beta * (q1 - q0);
                /* log P(c) = -log(1 + exp(-(l_c - l_other))) */
                double x = c ? d : -d;
                ll += -log1p(exp(-x));
                if (c) q1 += alpha * (rw[s * T + t] - q1); else q0 += alpha * (rw[s * T + t] - q0);
            }
            total += ll;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double sec = (b.tv_sec - a.tv_sec) + 1e-9 * (b.tv_nsec - a.tv_nsec);
    printf("%.9f %.6f\n", sec, total);
    return 0;
}
"""


def reference_loglik(params, choices, rewards):
    """Per-trial Python loop, the way a first implementation looks."""
    alpha, beta = params
    q = [0.0, 0.0]
    ll = 0.0
    for c, r in zip(choices, rewards):
        m = max(beta * q[0], beta * q[1])
        lse = m + math.log(math.exp(beta * q[0] - m) + math.exp(beta * q[1] - m))
        ll += beta * q[c] - lse
        q[c] += alpha * (r - q[c])
    return ll


def reference_fit(choices, rewards, rng):
    from scipy.optimize import minimize

    x0 = [rng.uniform(0.05, 0.95), rng.uniform(0.5, 10)]
    res = minimize(lambda p: -reference_loglik(p, choices, rewards), x0, method="L-BFGS-B",
                   bounds=[(1e-6, 1 - 1e-6), (1e-6, 50)])
    return res


def simulate(n_subjects: int, n_trials: int, seed: int = 0):
    model = get_model("rw-softmax")
    pop = simulate_population(
        model, tasks.bandit_task(n_trials), n_subjects, seed, subjects=[str(s) for s in range(n_subjects)],
        params=lambda rng: {"alpha": rng.uniform(0.1, 0.9), "beta": float(np.exp(rng.uniform(0, np.log(10))))})
    return model, pop.trials, pop.params.drop(columns="subject")


def c_loop_rate(packed: Packed, repeats: int = 50) -> float | None:
    """Trials per second of a plain C loop on the same data (None when gcc is missing)."""
    if not shutil.which("gcc"):
        return None
    with tempfile.TemporaryDirectory() as d:
        src, exe, data = (os.path.join(d, n) for n in ("rw.c", "rw", "data.bin"))
        with open(src, "w") as f:
            f.write(C_SOURCE)
        subprocess.run(["gcc", "-O2", "-o", exe, src, "-lm"], check=True)
        ch = packed.extra["choices"].astype(np.int32)
        with open(data, "wb") as f:
            f.write(ch.tobytes())
            f.write(packed.rewards.astype(np.float64).tobytes())
        S, T = ch.shape
        out = subprocess.run([exe, str(S), str(T), str(repeats), data], check=True, capture_output=True, text=True)
        sec = float(out.stdout.split()[0])
        return S * T * repeats / sec


def kernel_rate(model, packed: Packed, lanes_per_subject: int = 10, repeats: int = 5) -> tuple[float, float]:
    """Trials per second of our kernel (log-likelihood and gradient), on all cores and on one."""
    import numba

    S = packed.n_subjects
    lanes = np.repeat(np.arange(S), lanes_per_subject)
    x = np.tile([0.3, 3.0], (lanes.size, 1))
    # the value + gradient kernel a fit runs (model.loglik now runs the value-only one: bench_kernels.py)
    model._loglik_grad_natural(x, packed, lanes)  # compile / load
    rates = []
    for threads in (numba.config.NUMBA_NUM_THREADS, 1):
        numba.set_num_threads(threads)
        t0 = time.perf_counter()
        for _ in range(repeats):
            model._loglik_grad_natural(x, packed, lanes)
        rates.append(packed.n_trials.sum() * lanes_per_subject * repeats / (time.perf_counter() - t0))
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    return rates[0], rates[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subjects", type=int, default=200)
    ap.add_argument("--trials", type=int, default=500)
    ap.add_argument("--restarts", type=int, default=10)
    ap.add_argument("--reference-fits", type=int, default=20, help="subject-restarts timed with the reference")
    args = ap.parse_args()

    model, df, truth = simulate(args.subjects, args.trials)
    packed = model.pack(df)
    print(f"workload: {args.subjects} subjects x {args.trials} trials, rw-softmax, {args.restarts} restarts, "
          f"{os.cpu_count()} cores")

    rng = np.random.default_rng(1)
    ch, rw = packed.extra["choices"], packed.rewards
    t0 = time.perf_counter()
    for i in range(args.reference_fits):
        s = i % args.subjects
        reference_fit(ch[s].tolist(), rw[s].tolist(), rng)
    ref_rate = args.reference_fits / (time.perf_counter() - t0)

    fit(model, df.iloc[: 2 * args.trials], restarts=1, n_jobs=1)  # load compiled kernels once
    t0 = time.perf_counter()
    result = fit(model, df, restarts=args.restarts)
    ours_sec = time.perf_counter() - t0
    ours_rate = args.subjects * args.restarts / ours_sec

    ll_true = model.loglik(truth[["alpha", "beta"]].to_numpy(), model.pack(df), np.arange(args.subjects))
    r_alpha = np.corrcoef(truth["alpha"], result.params["alpha"])[0, 1]
    r_beta = np.corrcoef(np.log(truth["beta"]), np.log(result.params["beta"]))[0, 1]

    print(f"reference (Python loop + scipy, 1 core): {ref_rate:10.1f} subject-restarts/s  "
          f"({args.reference_fits} timed)")
    print(f"dopa_rl fit (all cores):                 {ours_rate:10.1f} subject-restarts/s  "
          f"whole fit {ours_sec:.2f} s")
    print(f"speed-up: {ours_rate / ref_rate:.0f}x   (target >= 50x, whole fit < 15 s)")
    print(f"recovery: r(alpha) {r_alpha:.3f}, r(log beta) {r_beta:.3f}; fitted loglik - true loglik: "
          f"min {np.min(result.loglik_ - ll_true):.4f}")

    c_rate = c_loop_rate(packed)
    k_all, k_one = kernel_rate(model, packed)
    if c_rate:
        print(f"likelihood: C loop (gcc -O2, value only, 1 core) {c_rate / 1e6:.1f} M trials/s; "
              f"ours (value + gradient) {k_one / 1e6:.1f} M trials/s on 1 core = {c_rate / k_one:.2f}x slower, "
              f"{k_all / 1e6:.1f} M trials/s on all cores")
    else:
        print(f"likelihood: ours (value + gradient) {k_one / 1e6:.1f} M trials/s on 1 core (no gcc for the C reference)")


if __name__ == "__main__":
    main()
