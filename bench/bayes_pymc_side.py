"""The PyMC side of bench/bench_bayes.py, run by the separate bench environment (bench/.venv-pymc, made by
bench_bayes.py; PyMC is never a dependency of dopa_rl).  It does not import dopa_rl.

Reads a JSON problem (choices [S, T] with -1 for missed, rewards [S, T], the parameter transforms and
priors, the sampler settings) and writes JSON: wall time and, for ``mu``, ``sigma`` and each subject's
natural-space parameters, the posterior mean, sd, bulk ESS and Monte Carlo standard error.

Same hierarchical model as dopa_rl.fit.bayes: mu_j ~ Normal(prior_mean_j, prior_sd_j), sigma_j ~ HalfNormal(1),
u_sj ~ Normal(0, 1), z = mu + sigma * u, x = lower + (upper - lower) * sigmoid(z) (logit parameters), the RW
softmax likelihood of every choice (Q starts at q0, one session per subject).

Usage: bench/.venv-pymc/bin/python bench/bayes_pymc_side.py problem.json out.json
"""
import json
import sys
import time


def main(src, dst):
    t0 = time.perf_counter()
    import arviz as az
    import numpy as np
    import pymc as pm
    import pytensor
    import pytensor.tensor as pt

    prob = json.load(open(src))
    ch = np.asarray(prob["choices"], dtype="int64")
    rw = np.asarray(prob["rewards"], dtype="float64")
    S, T = ch.shape
    K = int(prob["n_options"])
    names = prob["names"]
    lower = np.asarray(prob["lower"], float)
    upper = np.asarray(prob["upper"], float)
    valid = (ch >= 0).astype("float64")
    onehot = (ch[..., None] == np.arange(K)).astype("float64")            # [S, T, K]
    with pm.Model():
        mu = pm.Normal("mu", mu=np.asarray(prob["prior_mean"]), sigma=np.asarray(prob["prior_sd"]), shape=len(names))
        sigma = pm.HalfNormal("sigma", sigma=1.0, shape=len(names))
        u = pm.Normal("u", 0.0, 1.0, shape=(S, len(names)))
        z = mu + sigma * u
        x = lower + (upper - lower) * pm.math.sigmoid(z)
        for j, n in enumerate(names):
            pm.Deterministic(n, x[:, j])
        alpha, beta = x[:, names.index("alpha")], x[:, names.index("beta")]

        def step(oh_t, r_t, q, alpha, beta):
            logp = pt.sum(oh_t * pt.special.log_softmax(beta[:, None] * q, axis=1), axis=1)
            q_new = q + alpha[:, None] * oh_t * (r_t[:, None] - q)
            return q_new, logp

        q_init = pt.as_tensor_variable(np.full((S, K), float(prob["q0"])))
        (_, logps), _ = pytensor.scan(step, sequences=[pt.as_tensor_variable(onehot.transpose(1, 0, 2)),
                                                       pt.as_tensor_variable(rw.T)],
                                      outputs_info=[q_init, None], non_sequences=[alpha, beta])
        pm.Potential("y", pt.sum(logps * valid.T))
        t1 = time.perf_counter()
        idata = pm.sample(draws=prob["draws"], tune=prob["warmup"], chains=prob["chains"], cores=prob.get("cores", 2),
                          target_accept=prob["target_accept"], random_seed=prob["seed"], progressbar=False,
                          compute_convergence_checks=False)
    t2 = time.perf_counter()
    post = idata.posterior
    out = {"wall_s": t2 - t0, "sample_s": t2 - t1, "pymc": pm.__version__, "params": {}}

    def summ(name, values):
        ds = values.to_dataset(name="v")
        return {"mean": values.mean(("chain", "draw")).values.tolist(),
                "sd": values.std(("chain", "draw")).values.tolist(),
                "ess_bulk": az.ess(ds, method="bulk")["v"].values.tolist(),
                "mcse": az.mcse(ds)["v"].values.tolist(), "rhat": az.rhat(ds)["v"].values.tolist()}

    for n in ["mu", "sigma", *names]:
        out["params"][n] = summ(n, post[n])
    json.dump(out, open(dst, "w"))


if __name__ == "__main__":
    main(*sys.argv[1:3])
