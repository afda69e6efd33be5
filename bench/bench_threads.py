"""Both cores at the fit level: ``fit`` on 200 subjects x 500 trials x 10 restarts with one thread and with
every thread, interleaved (bench_fit's data, ``rw-softmax``).

Reports the median seconds of each and the median of the per-round ratios (one thread / all threads), and
checks that both give the same fit.  The kernels are loaded before the first timed fit.

Usage: PYTHONPATH=src python bench/bench_threads.py [--subjects 200] [--trials 500] [--restarts 10] [--rounds 5]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_fit import simulate  # noqa: E402

from dopa_rl.fit import fit  # noqa: E402


def main() -> None:
    import numba

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subjects", type=int, default=200)
    ap.add_argument("--trials", type=int, default=500)
    ap.add_argument("--restarts", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    model, df, _ = simulate(args.subjects, args.trials)
    packed = model.pack(df)
    n_all = numba.config.NUMBA_NUM_THREADS
    fit(model, packed, restarts=2, n_jobs=1)   # load the kernels
    times = {1: [], n_all: []}
    fits = {}
    for r in range(args.rounds):
        for jobs in ((1, n_all) if r % 2 == 0 else (n_all, 1)):
            t0 = time.perf_counter()
            fits[jobs] = fit(model, packed, restarts=args.restarts, n_jobs=jobs)
            times[jobs].append(time.perf_counter() - t0)
    one, alln = np.array(times[1]), np.array(times[n_all])
    same = np.allclose(fits[1].x, fits[n_all].x, rtol=1e-10) and np.allclose(fits[1].loglik_, fits[n_all].loglik_)
    print(f"fit {args.subjects} x {args.trials} x {args.restarts} restarts, {args.rounds} interleaved rounds, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"1 thread:  {np.median(one):.3f} s (runs {', '.join(f'{t:.2f}' for t in one)})")
    print(f"{n_all} threads: {np.median(alln):.3f} s (runs {', '.join(f'{t:.2f}' for t in alln)})")
    print(f"speed-up {np.median(one / alln):.2f}x (paired median); same fit: {same}")


if __name__ == "__main__":
    main()
