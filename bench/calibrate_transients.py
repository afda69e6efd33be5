"""False transients in white noise low-passed at 10 Hz (the pipeline's default), per indicator and threshold.

The default thresholds in ``dopa_rl.neural.transients.THRESHOLDS`` are the lowest of 3, 3.5, ... at which
``--hours`` hours of such noise (100 Hz, seed 7) give none.  Prints one row per indicator:
false transients at each threshold, and the lowest threshold with none.

    PYTHONPATH=src .venv/bin/python bench/calibrate_transients.py --hours 8
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from dopa_rl.models.indicator import INDICATORS
from dopa_rl.neural.photometry import lowpass
from dopa_rl.neural.transients import detect_transients, transient_settings

NAMES = {"dlight1.1": "dlight", "gcamp6f": "gcamp6f", "gcamp6m": "gcamp6m", "gcamp6s": "gcamp6s",
         "grab-da1m": "grab-da1m", "grab-da1h": "grab-da1h"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hours", type=int, default=8)
    ap.add_argument("--rate", type=float, default=100.0)
    a = ap.parse_args()
    rng = np.random.default_rng(7)
    noise = [lowpass(rng.normal(size=int(3600 * a.rate)), a.rate, 10.0) for _ in range(a.hours)]
    grid = np.arange(3.0, 6.01, 0.5)
    t0 = time.perf_counter()
    for key in INDICATORS:
        counts = []
        for k in grid:
            s = transient_settings(NAMES[key], threshold=float(k))
            counts.append(sum(len(detect_transients(z, a.rate, settings=s)) for z in noise))
        lowest = next((float(k) for k, c in zip(grid, counts) if c == 0), None)
        print(f"{key:10s} " + " ".join(f"{k:g}:{c}" for k, c in zip(grid, counts)) + f"  -> lowest with none: {lowest}")
    print(f"{a.hours} h of noise per threshold; {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
