"""``load_behavior`` against a bare ``pandas.read_csv`` of the same file, in one process, interleaved.

Workload: a bandit table of 2,000 subjects x 200 trials (400,000 rows, 12 columns, 52 MB), written by this
script with the simulator.  Each round reads the file both ways (order alternating); reported are the
median seconds, the median of the per-round ratios, and the peak memory each allocates above what it
returns (tracemalloc peak, numpy and pandas buffers included) and the size of the frame each returns.

Usage: PYTHONPATH=src python bench/bench_load.py [--subjects 2000] [--trials 200] [--rounds 7] [--file F.csv]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tracemalloc

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_fit import simulate  # noqa: E402

from dopa_rl.io.behavior import load_behavior  # noqa: E402


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def peak(fn) -> tuple[float, float]:
    """(peak MiB allocated while ``fn`` runs, MiB of what it returns still allocated)."""
    tracemalloc.start()
    out = fn()
    kept, top = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del out
    return top / 2 ** 20, kept / 2 ** 20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subjects", type=int, default=2000)
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--file", default=None, help="read this table instead of simulating one")
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory()
    path = args.file
    if path is None:
        path = os.path.join(tmp.name, "bandit.csv")
        simulate(args.subjects, args.trials)[1].to_csv(path, index=False)
    ours = lambda: load_behavior(path)
    ref = lambda: pd.read_csv(path)
    ours(), ref()   # warm the page cache and first-use imports
    t_ours, t_ref = [], []
    for r in range(args.rounds):
        pair = [("ours", ours), ("ref", ref)] if r % 2 == 0 else [("ref", ref), ("ours", ours)]
        for name, fn in pair:
            (t_ours if name == "ours" else t_ref).append(timed(fn)[0])
    t_ours, t_ref = np.array(t_ours), np.array(t_ref)
    m_ours, m_ref = peak(ours), peak(ref)
    rows = len(ref())
    print(f"{rows:,} rows, {os.path.getsize(path) / 1e6:.0f} MB; {args.rounds} interleaved rounds; load average "
          f"{os.getloadavg()[0]:.1f}")
    print(f"pandas.read_csv:  {np.median(t_ref):.3f} s   peak {m_ref[0]:7.1f} MiB, returns {m_ref[1]:7.1f} MiB")
    print(f"load_behavior:    {np.median(t_ours):.3f} s   peak {m_ours[0]:7.1f} MiB, returns {m_ours[1]:7.1f} MiB")
    print(f"ratio: time {np.median(t_ours / t_ref):.2f}x (paired median), peak memory {m_ours[0] / m_ref[0]:.2f}x")


if __name__ == "__main__":
    main()
