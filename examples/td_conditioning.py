"""Simulate TD learning in Pavlovian conditioning and plot the RPE moving from the reward to the cue.

    python examples/td_conditioning.py [--out td_conditioning.png]
"""
import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from dopa_rl.models import get_model, tasks  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--out", default="td_conditioning.png")
args = ap.parse_args()

model = get_model("td")
sim = model.simulate({"alpha": 0.15, "gamma": 0.95, "lambda_": 0.9}, tasks.omission(200, 40, p_omit=0.25),
                     np.random.default_rng(0))
tm = sim.task.timing
t = np.arange(sim.rpe.shape[1]) * tm.bin_s - tm.cue_onset_s
omitted = np.flatnonzero((sim.trials.phase == "probe") & (sim.trials.reward == 0))[0]

fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.5))
for trial in (0, 5, 20, 60, 199):
    a.plot(t, sim.rpe[trial], label=f"trial {trial + 1}")
a.plot(t, sim.rpe[omitted], "k--", label="reward omitted")
a.axvline(0, color="grey", lw=0.5)
a.axvline(tm.outcome_s - tm.cue_onset_s, color="grey", lw=0.5)
a.set_xlabel("time from cue (s)")
a.set_ylabel("TD error")
a.legend(fontsize=7)
b.plot(sim.rpe[:, tm.cue_bin], label="at cue")
b.plot(sim.rpe[:, tm.outcome_bin], label="at reward time")
b.set_xlabel("trial")
b.legend()
fig.tight_layout()
fig.savefig(args.out, dpi=100)
print(f"cue RPE: first trial {sim.rpe[0, tm.cue_bin]:.2f}, last {sim.rpe[199, tm.cue_bin]:.2f}; "
      f"reward RPE: first {sim.rpe[0, tm.outcome_bin]:.2f}, last {sim.rpe[199, tm.outcome_bin]:.2f}; "
      f"omission {sim.rpe[omitted, tm.outcome_bin]:.2f}")
print(f"figure: {args.out}")
