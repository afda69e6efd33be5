"""Fitting cost against the number of subjects: 2,000 subjects must cost at most 12x 200 (issue 8).

Same model (rw-softmax), trials (200 per subject, a two-armed bandit with a reversal), restarts and
machine, in one run.  Also times packing the behavior table alone (one grouping pass, linear in rows),
which was quadratic in subjects before.

Usage: python bench/bench_scale.py [--small 200] [--large 2000] [--trials 200] [--restarts 10] [--repeats 3]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from dopa_rl.fit import fit
from dopa_rl.models import get_model, simulate_population, tasks


def best_time(fn, repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", type=int, default=200)
    ap.add_argument("--large", type=int, default=2000)
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--restarts", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3, help="best of N timings (default 3)")
    args = ap.parse_args()
    model = get_model("rw-softmax")
    task = tasks.bandit_task(args.trials)
    t0 = time.perf_counter()
    big = simulate_population(model, task, args.large, 0).trials
    sim_s = time.perf_counter() - t0
    small = big[big["subject"].isin({str(s + 1) for s in range(args.small)})].reset_index(drop=True)
    fit(model, small.iloc[: 2 * args.trials], restarts=1)  # load the compiled kernels once
    print(f"workload: rw-softmax, {args.trials} trials per subject, {args.restarts} restarts; "
          f"simulating {args.large} subjects took {sim_s:.2f} s")
    rows = {}
    for label, df in ((args.small, small), (args.large, big)):
        pack = best_time(lambda: model.pack(df), args.repeats)
        whole = best_time(lambda: fit(model, df, restarts=args.restarts), args.repeats)
        rows[label] = (pack, whole)
        print(f"{label:>6} subjects ({len(df):>7} rows): pack {pack * 1e3:8.1f} ms   fit {whole:7.2f} s   "
              f"({label * args.restarts / whole:,.0f} subject-restarts/s)")
    ratio = rows[args.large][1] / rows[args.small][1]
    pack_ratio = rows[args.large][0] / rows[args.small][0]
    n = args.large / args.small
    print(f"fit cost ratio {args.large} vs {args.small} subjects: {ratio:.2f}x for {n:g}x the subjects "
          f"(target <= 12x); packing {pack_ratio:.2f}x")


if __name__ == "__main__":
    main()
