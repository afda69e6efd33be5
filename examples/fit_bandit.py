"""Fit two models to a bandit data set, compare them, and plot choices against fitted probabilities.

    python examples/fit_bandit.py [choices.csv] [--out fit_bandit.png]

Without a CSV it simulates one (a two-armed bandit with a reversal, sticky learners).
"""
import argparse
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from dopa_rl.errors import InputError  # noqa: E402
from dopa_rl.fit import fit  # noqa: E402
from dopa_rl.io.behavior import load_behavior  # noqa: E402
from dopa_rl.models import get_model, simulate_population, tasks  # noqa: E402

def main() -> None:
    """Fit, compare and plot (see the module docstring)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("csv", nargs="?")
    ap.add_argument("--out", default="fit_bandit.png")
    args = ap.parse_args()

    if args.csv:
        data = load_behavior(args.csv)
    else:
        sticky = get_model("rw-softmax-sticky")
        data = simulate_population(sticky, tasks.bandit_task(300), 6, 0, {"alpha": 0.3, "beta": 5.0, "kappa": 1.0}).trials

    fits = {name: fit(get_model(name), data, restarts=5) for name in ("rw-softmax", "rw-softmax-sticky")}
    for name, res in fits.items():
        print(f"{name:<20} total AIC {res.aic.sum():8.1f}   BIC {res.bic.sum():8.1f}")
    best = min(fits, key=lambda n: fits[n].bic.sum())
    print(f"preferred by BIC: {best}")
    # why: the sticky model's extra parameter (kappa) must buy more likelihood than the criterion charges for it
    plain, sticky_fit = fits["rw-softmax"], fits["rw-softmax-sticky"]
    gain = sticky_fit.loglik_.sum() - plain.loglik_.sum()
    n_subjects = len(plain.subjects)
    bic_cost = 0.5 * np.log(plain.n_obs.to_numpy()).sum()   # per extra parameter and subject: ln(n) / 2 in loglik
    print(f"kappa adds {gain:.1f} to the log-likelihood over {n_subjects} subjects (fitted kappa: mean "
          f"{sticky_fit.params['kappa'].mean():.2f}); AIC charges {n_subjects:.0f} for the extra parameters and BIC "
          f"{bic_cost:.1f} (ln(trials)/2 per subject), so AIC prefers "
          f"{'rw-softmax-sticky' if gain > n_subjects else 'rw-softmax'} and BIC "
          f"{'rw-softmax-sticky' if gain > bic_cost else 'rw-softmax'}: with this little data per subject, BIC's "
          f"stronger penalty can prefer the simpler model even though the learners were sticky")

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


if __name__ == "__main__":
    try:
        main()
    except InputError as exc:  # a file that is not what the script expects: one line, exit 2
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        sys.exit(2)
