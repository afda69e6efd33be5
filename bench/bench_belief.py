"""Belief-state TD likelihood: the compiled many-lane kernel against the plain per-bin, per-state reference loop
(dopa_rl.testing.reference.belief_td) in the same run, on the Starkweather 90% task.

Usage: PYTHONPATH=src .venv/bin/python bench/bench_belief.py [--trials 1000] [--lanes 64]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from dopa_rl.models import get_model
from dopa_rl.models.belief import starkweather_task
from dopa_rl.testing.reference import belief_td


def best_of(fn, n=3):
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return min(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--lanes", type=int, default=64)
    args = ap.parse_args()
    task = starkweather_task(args.trials, 0.9, 0)
    model = get_model("belief-td", timing=task.timing)
    p = {"alpha": 0.1, "gamma": 0.95, "lick_intercept": 0.5, "lick_slope": 2.0}
    df = model.simulate(p, task, np.random.default_rng(0)).trials
    t_pack = best_of(lambda: model.pack(df))
    data = model.pack(df)
    x = model.check_params(p)[None]
    model.loglik(x, data, [0])                                   # compile (or load the cache)
    rng = np.random.default_rng(1)
    X = model.spec.random_starts(args.lanes, rng)
    lanes = np.zeros(args.lanes, np.int64)
    model.loglik(X, data, lanes)
    t_ref = best_of(lambda: belief_td(model, p, df), n=1)
    ref = belief_td(model, p, df)
    ours = model.loglik(x, data, [0])[0]
    assert abs(ref - ours) < 1e-9 * max(1.0, abs(ref)), (ref, ours)
    t_one = best_of(lambda: model.loglik(x, data, [0]))
    t_many = best_of(lambda: model.loglik(X, data, lanes))
    T, nb = args.trials, data.extra["n_bins"]
    print(f"belief-td, Starkweather 90% task: {T} trials x {nb} bins, {data.extra['phis'].shape[2]} belief features")
    print(f"pack (belief filter over {data.extra['phis'].shape[0]} trial types): {1e3 * t_pack:.1f} ms")
    print(f"reference (plain Python loop, 1 lane):  {T / t_ref:12.0f} trials/s   1x")
    print(f"compiled, 1 lane (serial):              {T / t_one:12.0f} trials/s   {t_ref / t_one:.0f}x")
    print(f"compiled, {args.lanes} lanes (parallel):         {args.lanes * T / t_many:12.0f} lane-trials/s   "
          f"{args.lanes * t_ref / t_many:.0f}x")
    print(f"log-likelihoods agree: reference {ref:.9f}, compiled {ours:.9f}")


if __name__ == "__main__":
    main()
