"""Posterior sampling: dopa_rl's NUTS (numpyro on JAX) against PyMC's NUTS on the same hierarchical model.

Workload (issue 19): S subjects x T trials of a two-armed bandit with a reversal, ``rw-softmax``, hierarchical
(group means and scales on the unconstrained scale, non-centred subject effects), 4 chains x (1000 warm-up
+ 1000 draws).  dopa_rl's wall time includes importing JAX and tracing/compiling (the first fit in the
process; ``--cache`` keeps XLA's persistent compilation cache, which is off here unless asked).  PyMC runs
the same model (bench/bayes_pymc_side.py) in a separate environment, bench/.venv-pymc, which this script
creates on first use with ``python -m venv`` and ``pip install pymc`` (never a dependency of dopa_rl).

Printed: wall times and their ratio, R-hat and bulk ESS per group parameter, and the agreement of the two
posteriors: for each group parameter and subject parameter, (mean_ours - mean_pymc) / sqrt(mcse_ours^2 +
mcse_pymc^2), which is ~N(0, 1) when both sample the same posterior.

``--write-reference FILE`` stores the problem and PyMC's summaries as JSON (the reference
tests/test_bayes_proof.py compares against when the bench environment is absent).

Usage: python bench/bench_bayes.py [--subjects 20] [--trials 100] [--chains 4] [--warmup 1000] [--draws 1000]
                                   [--no-pymc] [--write-reference FILE] [--seed 0]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PYMC_ENV = HERE / ".venv-pymc"
PYMC_SIDE = HERE / "bayes_pymc_side.py"


def pymc_python() -> Path:
    """The bench environment's python, created (venv + pip install pymc) when missing."""
    py = PYMC_ENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PYMC_ENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "--quiet", "pymc"], check=True)
    return py


def problem(S: int, T: int, seed: int, chains: int, warmup: int, draws: int, target_accept: float = 0.8):
    """The simulated data (group: logit alpha ~ N(-0.5, 0.5), log beta ~ N(1.2, 0.3)) and the JSON problem."""
    import numpy as np
    import pandas as pd

    from dopa_rl.models import get_model, simulate_population, tasks

    model = get_model("rw-softmax")
    rng = np.random.default_rng(seed)
    truth = pd.DataFrame({"alpha": 1 / (1 + np.exp(-rng.normal(-0.5, 0.5, S))), "beta": np.exp(rng.normal(1.2, 0.3, S))})
    trials = simulate_population(model, tasks.bandit_task(T), S, seed + 1, truth).trials
    data = model.pack(trials)
    prob = {"choices": data.extra["choices"].tolist(), "rewards": data.rewards.tolist(), "n_options": 2,
            "names": model.spec.names, "lower": [p.lower for p in model.spec], "upper": [p.upper for p in model.spec],
            "transforms": [p.transform for p in model.spec], "prior_mean": [float(v) for v in model.spec.prior_mean()],
            "prior_sd": [float(v) for v in model.spec.prior_sd()], "q0": 0.0, "chains": chains, "warmup": warmup,
            "draws": draws, "target_accept": target_accept, "seed": seed, "cores": 2}
    return model, trials, prob


def run_pymc(prob: dict) -> dict:
    py = pymc_python()
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "problem.json", Path(tmp) / "out.json"
        src.write_text(json.dumps(prob))
        subprocess.run([str(py), str(PYMC_SIDE), str(src), str(dst)], check=True,
                       env={**os.environ, "PYTHONPATH": ""})
        return json.loads(dst.read_text())


def ours_summary(result) -> dict:
    """Mean, sd, bulk ESS and MCSE of mu, sigma and the subject parameters (the PyMC side's layout)."""
    import arviz as az

    post = result.idata.posterior
    out = {}
    for n in ["mu", "sigma", *result.param_names]:
        ds = post[n].to_dataset(name="v")
        out[n] = {"mean": post[n].mean(("chain", "draw")).values.tolist(),
                  "sd": post[n].std(("chain", "draw")).values.tolist(),
                  "ess_bulk": az.ess(ds, method="bulk")["v"].values.tolist(),
                  "mcse": az.mcse(ds)["v"].values.tolist(), "rhat": az.rhat(ds)["v"].values.tolist()}
    return out


def agreement(a: dict, b: dict, names) -> dict:
    """Per variable, the largest |mean_a - mean_b| / sqrt(mcse_a^2 + mcse_b^2) (and over all)."""
    import numpy as np

    z = {}
    for n in names:
        d = np.asarray(a[n]["mean"]) - np.asarray(b[n]["mean"])
        se = np.sqrt(np.asarray(a[n]["mcse"]) ** 2 + np.asarray(b[n]["mcse"]) ** 2)
        z[n] = float(np.max(np.abs(d / se)))
    return z


def fit_ours(trials, chains, warmup, draws, seed):
    from dopa_rl.fit import fit
    from dopa_rl.models import get_model

    t0 = time.perf_counter()
    result = fit(get_model("rw-softmax"), trials, method="bayes", chains=chains, warmup=warmup, draws=draws, seed=seed)
    return result, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, default=20)
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=1000)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-pymc", action="store_true")
    ap.add_argument("--cache", action="store_true", help="keep XLA's persistent compilation cache (default: off)")
    ap.add_argument("--write-reference", metavar="FILE")
    args = ap.parse_args()
    if not args.cache:
        os.environ["DOPA_RL_JAX_CACHE"] = "off"
    print(f"load average before: {os.getloadavg()}")
    t_import = time.perf_counter()
    model, trials, prob = problem(args.subjects, args.trials, args.seed, args.chains, args.warmup, args.draws)
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result, wall = fit_ours(trials, args.chains, args.warmup, args.draws, args.seed)
    print(f"dopa_rl (numpyro NUTS, JAX; {args.subjects} x {args.trials}, {args.chains} chains x ({args.warmup} + "
          f"{args.draws})): {wall:.1f} s wall including JAX import and tracing "
          f"(script start to result: {time.perf_counter() - t_import:.1f} s)")
    for w in caught:
        if "diagnostics" in str(w.message):
            print(f"  warning: {w.message}")
    ours = ours_summary(result)
    for j, n in enumerate(model.spec.names):
        print(f"  group {n}: mu R-hat {ours['mu']['rhat'][j]:.4f} bulk ESS {ours['mu']['ess_bulk'][j]:.0f}; "
              f"sigma R-hat {ours['sigma']['rhat'][j]:.4f} bulk ESS {ours['sigma']['ess_bulk'][j]:.0f}")
    dg = result.diagnostics
    print(f"  all sampled variables: R-hat max {dg['rhat_max']:.4f}, bulk ESS min {dg['ess_bulk_min']:.0f}, "
          f"tail ESS min {dg['ess_tail_min']:.0f}, divergences {dg['divergences']}")
    if args.no_pymc:
        print(f"load average after: {os.getloadavg()}")
        return
    ref = run_pymc(prob)
    print(f"PyMC {ref['pymc']} (NUTS, pytensor scan, {args.chains} chains on 2 cores): {ref['wall_s']:.1f} s wall "
          f"(sampling {ref['sample_s']:.1f} s; pytensor's C cache in ~/.pytensor is kept between runs) -> "
          f"PyMC wall / dopa_rl wall = {ref['wall_s'] / wall:.2f}")
    for j, n in enumerate(model.spec.names):
        print(f"  group {n}: mu R-hat {ref['params']['mu']['rhat'][j]:.4f} bulk ESS "
              f"{ref['params']['mu']['ess_bulk'][j]:.0f}")
    z = agreement(ours, ref["params"], ["mu", "sigma", *model.spec.names])
    print("  agreement, max |mean difference| / MCSE of the difference: "
          + ", ".join(f"{n} {v:.2f}" for n, v in z.items()))
    print(f"load average after: {os.getloadavg()}")
    if args.write_reference:
        out = {"command": "python bench/bench_bayes.py " + " ".join(sys.argv[1:]), "problem": prob, "pymc": ref}
        Path(args.write_reference).write_text(json.dumps(out) + "\n")
        print(f"reference written to {args.write_reference}")


if __name__ == "__main__":
    main()
