"""Population fitting: hierarchical EM on 200 subjects x 500 trials, local-parallel speedup, and cpm-toolbox
side by side in the same run.

Workload (issue 11): a simulated population (unconstrained alpha ~ N(-0.5, 0.8), beta ~ N(-2.3, 0.5)) on a
two-armed 0.8/0.2 bandit with a reversal, ``rw-softmax`` with initial values 0.5 (cpm-toolbox's RLRW starts
there, so both tools fit the same likelihood).  Measured:

* dopa_rl hierarchical EM (``fit(method="hier")``, 10 restarts in the first E step, iBIC with 1000
  population samples): seconds and EM iterations, on all cores and on one thread (the local-parallel
  speedup; subjects x restarts are lanes of one compiled, multi-threaded call);
* dopa_rl per-subject MLE (10 restarts);
* cpm-toolbox, installed from PyPI into its own virtual environment made by this script (never a dependency
  of ours): ``FminBound`` (L-BFGS-B, 10 starts) per subject and ``EmpiricalBayes`` (one chain), each with
  its time (EmpiricalBayes with ``--cpm-em-starts`` starts per subject per iteration, default 2); every tool's fitted parameters are scored with the same likelihood (ours) so the reached
  log-likelihoods compare directly.

Usage: python bench/bench_population.py [--subjects 200] [--trials 500] [--no-cpm] [--cpm-venv DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd

from dopa_rl.fit import fit
from dopa_rl.models import get_model, tasks

MU, SD = np.array([-0.5, -2.3]), np.array([0.8, 0.5])

CPM_SCRIPT = textwrap.dedent(r"""
    import json, sys, time, warnings
    import numpy as np, pandas as pd
    warnings.filterwarnings("ignore")
    from cpm.applications.reinforcement_learning import RLRW
    from cpm.hierarchical import EmpiricalBayes
    from cpm.optimisation import FminBound, minimise

    path, restarts, em_iter, hier = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
    em_starts = int(sys.argv[5])
    data = pd.read_csv(path)
    settings = [[0.5, 0, 1], [5, 0, 50]]          # beta bound 50, as dopa_rl's
    model = RLRW(data=data[data.ppt == data.ppt.iloc[0]], dimensions=2, parameters_settings=settings)
    np.random.seed(0)
    out = {}

    names = sorted(data["ppt"].astype(str).unique())   # groupby order: EmpiricalBayes numbers ppts by it

    def params(fitted):
        fitted = fitted.rename(columns={"x_0": "alpha", "x_1": "temperature"})
        ppt = [names[int(p)] if not isinstance(p, str) else p for p in fitted["ppt"]]
        return {"ppt": ppt, "alpha": fitted["alpha"].tolist(), "temperature": fitted["temperature"].tolist()}

    def optimiser(frame, starts, prior):
        return FminBound(model=model, data=frame.groupby("ppt"), number_of_starts=starts,
                         minimisation=minimise.LogLikelihood.bernoulli, parallel=False, prior=prior, ppt_identifier="ppt",
                         display=False, approx_grad=True, hessian="finite_differences")

    optimiser(data[data.ppt == data.ppt.iloc[0]], 1, False).optimise(display=False)   # numba compilation, untimed
    t = time.perf_counter()
    opt = optimiser(data, restarts, False)
    opt.optimise(display=False)
    out["mle_seconds"] = time.perf_counter() - t
    out["mle"] = params(opt.export())
    if hier:
        t = time.perf_counter()
        opt = optimiser(data, em_starts, True)
        eb = EmpiricalBayes(optimiser=opt, iteration=em_iter, tolerance=1e-3, chain=1, quiet=True)
        eb.optimise()
        out["hier_seconds"] = time.perf_counter() - t
        fitted = eb.fit
        last = fitted[fitted["iteration"] == fitted["iteration"].max()] if "iteration" in fitted else fitted
        out["hier_iterations"] = int(fitted["iteration"].max()) if "iteration" in fitted else None
        out["hier"] = params(last)
    print("CPM_JSON " + json.dumps(out))
""")


def population(n_subjects: int, n_trials: int, seed: int):
    model = get_model("rw-softmax", q0=0.5)
    rng = np.random.default_rng(seed)
    x = model.spec.to_natural(MU + SD * rng.standard_normal((n_subjects, 2)))
    task = tasks.bandit_task(n_trials)
    df = pd.concat([model.simulate({"alpha": a, "beta": b}, task, rng, subject=f"s{i:03d}").trials
                    for i, (a, b) in enumerate(x)], ignore_index=True)
    return model, df, x


def cpm_venv(path: Path | None) -> Path:
    """A virtual environment with cpm-toolbox from PyPI (made once; reused when ``path`` already has it)."""
    path = path or Path(tempfile.gettempdir()) / "dopa_rl-bench-cpm-venv"
    py = path / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    if subprocess.run([str(py), "-c", "import cpm"], capture_output=True).returncode != 0:
        subprocess.run([str(py), "-m", "pip", "install", "-q", "cpm-toolbox[numba]"], check=True)
    return py


def run_cpm(py: Path, df: pd.DataFrame, restarts: int, em_iter: int, hier: bool, em_starts: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bandit.csv"
        pd.DataFrame({"ppt": df["subject"], "arm_1": 1, "arm_2": 2, "reward_1": df["reward"], "reward_2": df["reward"],
                      "response": df["choice"], "observed": df["choice"]}).to_csv(path, index=False)
        script = Path(tmp) / "cpm_fit.py"
        script.write_text(CPM_SCRIPT)
        proc = subprocess.run([str(py), str(script), str(path), str(restarts), str(em_iter), "1" if hier else "0",
                               str(em_starts)],
                              capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""})
    for line in proc.stdout.splitlines():
        if line.startswith("CPM_JSON "):
            return json.loads(line[len("CPM_JSON "):])
    raise RuntimeError(f"cpm-toolbox run failed:\n{proc.stderr[-3000:]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subjects", type=int, default=200)
    ap.add_argument("--trials", type=int, default=500)
    ap.add_argument("--restarts", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=2, help="best of this many runs for dopa_rl's timings")
    ap.add_argument("--no-cpm", action="store_true", help="skip cpm-toolbox")
    ap.add_argument("--cpm-no-hier", action="store_true", help="cpm-toolbox per-subject fits only")
    ap.add_argument("--cpm-em-iterations", type=int, default=20, help="cap on cpm-toolbox EM iterations")
    ap.add_argument("--cpm-em-starts", type=int, default=2,
                    help="starts per subject in each cpm-toolbox EM iteration (its examples use 2; new random ones each time)")
    ap.add_argument("--cpm-venv", type=Path, default=None, help="virtual environment for cpm-toolbox (made if missing)")
    args = ap.parse_args()

    model, df, truth = population(args.subjects, args.trials, args.seed)
    packed = model.pack(df)
    S = packed.n_subjects
    lanes = np.arange(S, dtype=np.int64)
    print(f"load average before: {os.getloadavg()[0]:.2f} (2-core machine shared with other work)")
    print(f"workload: {S} subjects x {args.trials} trials, rw-softmax (q0 0.5), {args.restarts} restarts")
    for jobs in (None, 1):  # load the compiled kernels (serial and parallel variants) before timing
        fit(model, packed, method="hier", restarts=2, max_iter=2, n_samples=10, n_jobs=jobs)

    def best_of(**kw):
        times, out = [], None
        for _ in range(args.repeat):
            t = time.perf_counter()
            out = fit(model, packed, **kw)
            times.append(time.perf_counter() - t)
        return out, min(times)

    rows = []
    hier, t_hier = best_of(method="hier", restarts=args.restarts)
    hier1, t_hier1 = best_of(method="hier", restarts=args.restarts, n_jobs=1)
    same = np.allclose(hier.x, hier1.x, rtol=1e-6, atol=1e-9)
    mle, t_mle = best_of(restarts=args.restarts)
    rmse = lambda x: np.sqrt(np.mean((x - truth) ** 2, axis=0))
    rows.append(("dopa_rl hierarchical EM, all cores", t_hier, hier.em_iterations, hier.loglik_.sum(), rmse(hier.x)))
    rows.append(("dopa_rl hierarchical EM, 1 thread", t_hier1, hier1.em_iterations, hier1.loglik_.sum(), rmse(hier1.x)))
    rows.append(("dopa_rl per-subject MLE, all cores", t_mle, None, mle.loglik_.sum(), rmse(mle.x)))
    print(f"hierarchical: {t_hier:.2f} s, {hier.em_iterations} EM iterations (converged {hier.em_converged}), "
          f"iBIC {hier.ibic:.1f}; one thread {t_hier1:.2f} s -> local-parallel speedup {t_hier1 / t_hier:.2f}x "
          f"(same estimates: {same})")
    print("population mean (z): " + ", ".join(f"{n} {m:.3f} +- {s:.3f} (true {t:.2f})" for n, m, s, t in
                                                zip(model.param_names, hier.pop_mean, hier.pop_mean_se, MU)))

    if not args.no_cpm:
        try:
            py = cpm_venv(args.cpm_venv)
            res = run_cpm(py, df, args.restarts, args.cpm_em_iterations, not args.cpm_no_hier, args.cpm_em_starts)
        except (subprocess.CalledProcessError, RuntimeError, OSError) as exc:
            print(f"cpm-toolbox: not run ({exc})")
            res = None
        if res:
            order = {s: i for i, s in enumerate(packed.subjects)}
            for key, label, iters in (("mle", "cpm-toolbox FminBound per subject, 1 process", None),
                                      ("hier", f"cpm-toolbox EmpiricalBayes, 1 chain, {args.cpm_em_starts} starts/iteration",
                                       res.get("hier_iterations"))):
                if key not in res:
                    continue
                p = res[key]
                x = np.zeros((S, 2))
                for s, a, b in zip(p["ppt"], p["alpha"], p["temperature"]):
                    x[order[str(s)]] = [a, b]
                ll = model.loglik(x, packed, lanes)
                rows.append((label, res[f"{key}_seconds"], iters, ll.sum(), rmse(x)))
                if key == "mle":
                    short = int(np.sum(ll < mle.loglik_ - 1e-3))
                    print(f"cpm-toolbox per-subject: {short} subject(s) short of dopa_rl's optimum by > 1e-3")

    print(f"\n| | seconds | EM iterations | total loglik (our likelihood) | RMSE alpha | RMSE beta |")
    print("|---|---|---|---|---|---|")
    for label, sec, iters, ll, err in rows:
        print(f"| {label} | {sec:.2f} | {iters if iters is not None else '-'} | {ll:.2f} | {err[0]:.4f} | {err[1]:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
