"""Fit two models to a bandit data set, compare them, and plot choices against fitted probabilities.

    python examples/fit_bandit.py [choices.csv] [--out fit_bandit.png]

Without a CSV it simulates one (a two-armed bandit with a reversal, sticky learners).
"""
import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from dopa_rl.fit import fit  # noqa: E402
from dopa_rl.io.behavior import load_behavior  # noqa: E402
from dopa_rl.models import get_model, tasks  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("csv", nargs="?")
ap.add_argument("--out", default="fit_bandit.png")
args = ap.parse_args()

if args.csv:
    data = load_behavior(args.csv)
else:
    rng = np.random.default_rng(0)
    sticky = get_model("rw-softmax-sticky")
    data = pd.concat([sticky.simulate({"alpha": 0.3, "beta": 5.0, "kappa": 1.0}, tasks.bandit_task(300), rng,
                                      subject=str(s)).trials for s in range(6)], ignore_index=True)

fits = {name: fit(get_model(name), data, restarts=5) for name in ("rw-softmax", "rw-softmax-sticky")}
for name, res in fits.items():
    print(f"{name:<20} total AIC {res.aic.sum():8.1f}   BIC {res.bic.sum():8.1f}")
best = min(fits, key=lambda n: fits[n].bic.sum())
print(f"preferred by BIC: {best}")

pe = fits[best].prediction_errors(data)
one = pe[pe.subject == pe.subject.iloc[0]]
fig, ax = plt.subplots(figsize=(9, 3))
ax.plot(one["trial"], one["p_choice_1"], label="fitted P(choose 1)")
ax.plot(one["trial"], one["choice"].rolling(10, center=True).mean(), label="choices (10-trial mean)", alpha=0.7)
ax.set_xlabel("trial")
ax.set_ylabel("P(option 1)")
ax.set_title(f"subject {one.subject.iloc[0]}: {best}")
ax.legend(loc="lower right")
fig.tight_layout()
fig.savefig(args.out, dpi=100)
print(f"figure: {args.out}")
