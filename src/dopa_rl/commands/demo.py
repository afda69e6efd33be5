"""``dopa-rl demo``: the end-to-end demo on built-in defaults."""
from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = "Example: dopa-rl demo --out demo_out"
    p.add_argument("--out", default="demo_out", metavar="DIR", help="folder for the demo's files (default demo_out)")
    p.add_argument("--subjects", type=int, default=20, metavar="N", help="simulated subjects (default 20)")
    p.add_argument("--trials", type=int, default=400, metavar="T", help="trials per subject (default 400)")
    p.add_argument("--seed", type=int, default=1)


def run(args) -> int:
    from pathlib import Path

    import numpy as np
    import pandas as pd

    from dopa_rl.errors import InputError
    from dopa_rl.fit import fit
    from dopa_rl.io.atomic import atomic_write_text
    from dopa_rl.io.behavior import load_behavior
    from dopa_rl.models import get_model, tasks

    if args.subjects < 2 or args.trials < 20:
        raise InputError("demo: use at least --subjects 2 and --trials 20")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = get_model("rw-softmax")
    print(f"1/3 simulating a two-armed bandit with a reversal: {args.subjects} subjects x {args.trials} trials")
    root = np.random.SeedSequence(args.seed)
    frames, truth = [], []
    for s, seq in enumerate(root.spawn(args.subjects)):
        rng = np.random.default_rng(seq)
        p = {"alpha": rng.uniform(0.1, 0.8), "beta": float(np.exp(rng.uniform(np.log(1.0), np.log(12.0))))}
        truth.append({"subject": str(s + 1), **p})
        frames.append(model.simulate(p, tasks.bandit_task(args.trials), rng, subject=str(s + 1)).trials)
    table = out / "bandit_choices.csv"
    atomic_write_text(table, pd.concat(frames, ignore_index=True).to_csv(index=False))
    print(f"    wrote {table}")
    print("2/3 fitting rw-softmax by maximum likelihood (10 restarts per subject)")
    result = fit(model, load_behavior(table), restarts=10)
    result.to_json(out / "fit.json")
    print(result.summary())
    print("3/3 recovered vs true parameters")
    true = pd.DataFrame(truth).set_index("subject")
    both = true.join(result.params, rsuffix="_fit")
    print(both.round(3).to_string())
    for name in ("alpha", "beta"):
        a, b = both[name], both[f"{name}_fit"]
        if name == "beta":
            a, b = np.log(a), np.log(b)
        print(f"    correlation true vs fitted {'log ' if name == 'beta' else ''}{name}: {np.corrcoef(a, b)[0, 1]:.3f}")
    print(f"files in {out}/: bandit_choices.csv, fit.json")
    return 0
