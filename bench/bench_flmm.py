"""``dopa_rl.neural.flmm`` (fastFMM fui, analytic pointwise and joint bands) against a plain pointwise
statsmodels loop, measured in the same run.

Data: the real Jeong et al. (2022) dLight trial x time matrix ``binary.csv`` (690 trials x 125 points,
7 mice) from the shared data folder, formula ``photometry ~ cs + (cs | id)`` (the tutorial's model).

- reference: for each of the 125 time points, ``MixedLM(y, X, groups, exog_re=Z).fit(reml=True)`` and
  nothing else (no smoothing, no bands);
- ours: ``fit_flmm(..., inference="analytic")``: the pointwise fits (batched REML over all time points), the
  smoothing, the covariance surfaces, the analytic variance of the smoothed coefficients and the joint-band
  quantiles.  Also printed: the time of our pointwise step alone, and at how many time points the
  reference's REML log-likelihood falls short of ours (its optimiser stopping early).

Target: ours no slower than 2x the reference.  Run:
  PYTHONPATH=src /work/main/.venv/bin/python bench/bench_flmm.py [--repeat 1] [--formula "photometry ~ cs + (cs | id)"]
"""
from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real" / "jeong2022_dlight_cs" / "binary.csv"


def reference(Y, X, Z, groups):
    from statsmodels.regression.mixed_linear_model import MixedLM

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.array([MixedLM(Y[:, l], X, groups, exog_re=Z).fit(reml=True).llf for l in range(Y.shape[1])])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--formula", default="photometry ~ cs + (cs | id)")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    from dopa_rl.neural.flmm import design, fit_flmm, parse_formula
    from dopa_rl.neural.flmm_reml import reml_columns
    from dopa_rl.neural.tables import matrix_from_table

    df = pd.read_csv(args.data)
    f = parse_formula(args.formula)
    Y, t = matrix_from_table(df, f.outcome, 25.0, 2.0)
    X, _, Z, _, groups = design(f, df)
    ref, ours, step1 = [], [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        ref_llf = reference(Y, X, Z, groups)
        ref.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        res = fit_flmm(df[["id", "cs"]], Y, f, t)
        ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        pw = reml_columns(Y, X, Z, groups)
        step1.append(time.perf_counter() - t0)
    r, o = min(ref), min(ours)
    short = ~(ref_llf >= pw.llf - 1e-3)
    print(f"data: {args.data} ({Y.shape[0]} trials x {Y.shape[1]} points, {len(np.unique(groups))} groups)")
    print(f"formula: {args.formula}")
    print(f"reference pointwise MixedLM loop: {r:.2f} s")
    print(f"flmm (fit, smoothing, analytic pointwise + joint bands): {o:.2f} s  ratio {o / r:.2f}x (target <= 2x)")
    print(f"  of which the pointwise REML fits: {min(step1):.2f} s")
    print(f"reference REML log-likelihood below ours by > 1e-3 at {int(short.sum())} of {len(short)} time points "
          f"(largest shortfall {np.nanmax(np.where(short, pw.llf - ref_llf, 0)):.3g}; non-finite {int((~np.isfinite(ref_llf)).sum())})")
    print(f"AIC {res.aic:.3f}  BIC {res.bic:.3f}  joint q {', '.join(f'{q:.3f}' for q in res.qn)}")


if __name__ == "__main__":
    main()
