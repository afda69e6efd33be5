"""Your own model: Rescorla-Wagner with forgetting, written with public imports only.

After each trial the chosen option learns, ``Q[c] += alpha * (r - Q[c])``, and every unchosen option decays
toward 0 at rate ``phi``, ``Q[k] -= phi * Q[k]``.  The library adds the softmax choice (``beta``), session
resets, missed trials, fitting, simulation and prediction errors.

    python examples/rw_forgetting.py                 # simulate learners, fit them, run check_model
    dopa-rl fit choices.csv --model examples/rw_forgetting.py:MODEL
    dopa-rl simulate --task bandit --model examples/rw_forgetting.py:MODEL --subjects 5 --out sim.csv
"""
from dopa_rl.models import Param, choice_model


def forgetting_update(q, choice, reward, theta):
    """Update the option values ``q`` in place after a trial; ``theta`` = (alpha, phi)."""
    alpha, phi = theta[0], theta[1]
    for k in range(q.shape[0]):
        if k == choice:
            q[k] += alpha * (reward - q[k])
        else:
            q[k] -= phi * q[k]


MODEL = choice_model("rw-forgetting", params=[Param("alpha", lower=0, upper=1), Param("phi", lower=0, upper=1)],
                     update=forgetting_update, description="Rescorla-Wagner with forgetting of unchosen options")


def main() -> None:
    import argparse

    import numpy as np
    import pandas as pd

    from dopa_rl.fit import fit
    from dopa_rl.models import tasks
    from dopa_rl.testing import check_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, default=8)
    ap.add_argument("--trials", type=int, default=400)
    ap.add_argument("--no-check", action="store_true", help="skip dopa_rl.testing.check_model")
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    truth = pd.DataFrame({"alpha": rng.uniform(0.2, 0.6, args.subjects), "phi": rng.uniform(0.05, 0.5, args.subjects),
                          "beta": rng.uniform(2.0, 8.0, args.subjects)}, index=[str(s + 1) for s in range(args.subjects)])
    task = tasks.bandit_task(args.trials)
    data = pd.concat([MODEL.simulate(row.to_dict(), task, rng, subject=s).trials for s, row in truth.iterrows()],
                     ignore_index=True)
    result = fit(MODEL, data, restarts=5, progress=False)
    print(result.summary())
    for name in MODEL.param_names:
        r = np.corrcoef(truth[name], result.params[name].to_numpy())[0, 1]
        print(f"{name:<6} recovered: correlation with the truth {r:.2f}")
    if not args.no_check:
        print(check_model(MODEL))


if __name__ == "__main__":
    main()
