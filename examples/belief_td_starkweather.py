"""Belief-state TD on the tasks of Starkweather et al. (2017): the reward RPE against reward time in a 100%- and
a 90%-rewarded task (belief TD vs CSC TD), and the learning parameters recovered from simulated dopamine.

    python examples/belief_td_starkweather.py [--out-dir .]

Writes belief_td_signature.png and belief_td_recovery.png into --out-dir (docs/belief-td.md shows them).
"""
import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from dopa_rl.fit.neural import fit_dopamine  # noqa: E402
from dopa_rl.models import get_model  # noqa: E402
from dopa_rl.models.belief import starkweather_task  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--out-dir", default=".", help="folder for the two figures (must exist)")
args = ap.parse_args()
out = Path(args.out_dir)
started = time.perf_counter()


def reward_rpes(model, params, task, seed=0):
    """Every bin's TD error [T, n_bins], rewards, outcome bins of the task run by ``model``."""
    tm = task.timing
    rewards = task.draw_rewards(np.random.default_rng(seed))
    ob = tm.cue_bin + np.round(task.delays_s / tm.bin_s).astype(int)
    return model.run(params, list(task.cues), rewards, ob)[0], rewards, ob


# ---------------------------------------------------------------- 1. the signature (trials 1501-3000 of each task)
models = {"belief TD": ("belief-td", {"alpha": 0.1, "gamma": 0.98}),
          "CSC TD": ("td", {"alpha": 0.1, "gamma": 0.98, "lambda_": 0.0})}
fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
curves = {}
for j, (label, (name, params)) in enumerate(models.items()):
    for p, colour in ((1.0, "tab:blue"), (0.9, "tab:red")):
        task = starkweather_task(3000, p, 1)
        rpe, rew, ob = reward_rpes(get_model(name, timing=task.timing), params, task)
        keep = (rew > 0) & (np.arange(task.n_trials) >= 1500)
        d = np.round(task.delays_s, 2)
        levels = np.unique(d[keep])
        mean = np.array([rpe[keep & (d == v), ob[keep & (d == v)]].mean() for v in levels])
        sem = np.array([rpe[keep & (d == v), ob[keep & (d == v)]].std() / np.sqrt((keep & (d == v)).sum())
                        for v in levels])
        curves[(label, p)] = (levels, mean)
        axes[j].errorbar(levels, mean, sem, color=colour, marker="o", ms=4, label=f"{int(p * 100)}% rewarded")
        if name == "belief-td" and p == 0.9:
            tm = task.timing
            t = np.arange(rpe.shape[1]) * tm.bin_s - tm.cue_onset_s
            for v, shade in zip((1.2, 2.0, 2.8), (0.35, 0.6, 0.9)):
                sel = keep & (d == v)
                axes[2].plot(t, rpe[sel].mean(axis=0), color=plt.cm.Reds(shade), label=f"reward at {v:g} s")
            om = (rew == 0) & (np.arange(task.n_trials) >= 1500)
            axes[2].plot(t, rpe[om].mean(axis=0), "k--", label="omitted")
    axes[j].set_title(label)
    axes[j].set_xlabel("reward time after the cue (s)")
    axes[j].set_ylabel("TD error at reward")
    axes[j].legend(fontsize=8)
axes[2].set_title("belief TD, 90% task: time course")
axes[2].axvline(0, color="grey", lw=0.5)
axes[2].set_xlabel("time from cue (s)")
axes[2].set_ylabel("TD error")
axes[2].legend(fontsize=7)
fig.tight_layout()
fig.savefig(out / "belief_td_signature.png", dpi=100)
plt.close(fig)


def late_slope(levels, mean):
    late = levels >= 2.0
    return np.polyfit(levels[late], mean[late], 1)[0]


for (label, p), (levels, mean) in curves.items():
    print(f"{label:9s} {int(p * 100):3d}% task: reward RPE {mean[0]:.3f} at {levels[0]:g} s, {mean[-1]:.3f} at "
          f"{levels[-1]:g} s; late slope {late_slope(levels, mean):+.3f} per s")

# ---------------------------------------------------------------- 2. recovery from simulated dopamine
rng = np.random.default_rng(7)
truths = [{"alpha": float(a), "gamma": float(g)} for a, g in zip(rng.uniform(0.05, 0.35, 8), rng.uniform(0.88, 0.98, 8))]
rows = []
for k, tp in enumerate(truths):
    task = starkweather_task(300, 0.9, 10 + k)
    rpe, rew, ob = reward_rpes(get_model("belief-td", timing=task.timing), tp, task, seed=20 + k)
    tm = task.timing
    r = np.random.default_rng(30 + k)
    i = np.arange(task.n_trials)
    ct = np.cumsum(r.exponential(8, task.n_trials) + 5.0)
    rows.append(pd.DataFrame({"subject": f"m{k}", "cue": "A", "trial": i, "reward": rew, "cue_time": ct,
                              "outcome_time": ct + (ob - tm.cue_bin) * tm.bin_s,
                              "dopamine_cue": 0.1 + rpe[:, tm.cue_bin] + r.normal(0, 0.15, task.n_trials),
                              "dopamine_outcome": 0.1 + rpe[i, ob] + r.normal(0, 0.15, task.n_trials)}))
table = pd.concat(rows, ignore_index=True)
res = fit_dopamine(get_model("belief-td", timing=task.timing), table, mode="neural", restarts=3, seed=0)
fitted = res.params.loc[[f"m{k}" for k in range(len(truths))]]
fig, axes = plt.subplots(1, 2, figsize=(8, 3.6))
for ax, name, lim in ((axes[0], "alpha", (0, 0.4)), (axes[1], "gamma", (0.86, 1.0))):
    true = np.array([t[name] for t in truths])
    ax.plot(lim, lim, color="grey", lw=0.5)
    ax.plot(true, fitted[name], "o")
    ax.set_xlim(lim)
    ax.set_ylim(lim)
    ax.set_xlabel(f"true {name}")
    ax.set_ylabel(f"fitted {name}")
    r_ = np.corrcoef(true, fitted[name])[0, 1]
    ax.set_title(f"{name}: r = {r_:.3f}")
    print(f"recovery {name}: r = {r_:.3f}, largest error {np.max(np.abs(fitted[name] - true)):.3f}")
fig.suptitle("belief TD fitted to simulated dopamine (8 sessions x 300 trials, 90% task, noise sd 0.15)", fontsize=9)
fig.tight_layout()
fig.savefig(out / "belief_td_recovery.png", dpi=100)
plt.close(fig)
print(f"figures: {out / 'belief_td_signature.png'}, {out / 'belief_td_recovery.png'} "
      f"({time.perf_counter() - started:.1f} s)")
