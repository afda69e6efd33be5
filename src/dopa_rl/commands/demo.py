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
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: is a file; the demo needs a folder for its files")
    out.mkdir(parents=True, exist_ok=True)
    model = get_model("rw-softmax")
    print(f"1/4 simulating a two-armed bandit with a reversal: {args.subjects} subjects x {args.trials} trials")
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
    print("2/4 fitting rw-softmax by maximum likelihood (10 restarts per subject)")
    result = fit(model, load_behavior(table), restarts=10)
    result.to_json(out / "fit.json")
    print(result.summary())
    print("3/4 recovered vs true parameters")
    true = pd.DataFrame(truth).set_index("subject")
    both = true.join(result.params.add_suffix("_fit"))
    print(both.round(3).to_string())
    for name in ("alpha", "beta"):
        a, b = both[name], both[f"{name}_fit"]
        if name == "beta":
            a, b = np.log(a), np.log(b)
        print(f"    correlation true vs fitted {'log ' if name == 'beta' else ''}{name}: {np.corrcoef(a, b)[0, 1]:.3f}")
    nwb_path = _nwb_step(out, args.seed)
    print(f"files in {out}/: bandit_choices.csv, fit.json, {nwb_path.name}")
    return 0


def _nwb_step(out, seed: int):
    """Step 4: a Pavlovian TD session written to NWB with synthetic dopamine, read back and summarised."""
    import numpy as np

    from dopa_rl.fit import fit
    from dopa_rl.io import nwb
    from dopa_rl.io.behavior import load_behavior
    from dopa_rl.io.synthetic import simulate_sessions
    from dopa_rl.models import get_model

    print("4/4 a Pavlovian session (TD learner) written to NWB with licks, dopamine photometry and units")
    path = simulate_sessions(task="pavlovian", model="td", n_subjects=1, n_sessions=1, out=out / "pavlovian_td.nwb",
                             seed=seed, params={"alpha": 0.15, "gamma": 0.95, "lambda_": 0.9}, progress=False)[0]
    trials = load_behavior(path)
    phot = nwb.read_photometry(path)
    units = nwb.read_units(path)
    print(f"    {path}: {len(trials)} trials, photometry {len(phot.signal)} samples at {phot.rate:g} Hz "
          f"(+ control channel), {len(units)} units")
    t, sig = phot.timestamps, phot.signal

    def response(times):
        """Mean signal 0-0.5 s after each event minus the 0.5 s before it."""
        out_ = []
        for e in times:
            pre = sig[(t >= e - 0.5) & (t < e)]
            post = sig[(t >= e) & (t < e + 0.5)]
            out_.append(post.mean() - pre.mean() if len(pre) and len(post) else np.nan)
        return np.array(out_)

    rewarded = trials["reward"].to_numpy() > 0
    cue, outc = response(trials["cue_time"]), response(trials["outcome_time"])
    n = max(len(trials) // 15, 5)
    early, late = slice(0, n), slice(len(trials) - n, len(trials))
    print(f"    dopamine at the cue:    first {n} trials {np.nanmean(cue[early]):+.4f}, last {n} {np.nanmean(cue[late]):+.4f}")
    print(f"    dopamine at the reward: first {n} trials {np.nanmean(outc[early][rewarded[early]]):+.4f}, "
          f"last {n} {np.nanmean(outc[late][rewarded[late]]):+.4f}  (the response moves from reward to cue)")
    result = fit(get_model("td"), trials, restarts=5)
    fitted = ", ".join(f"{k}={v:.3g}" for k, v in result.params.iloc[0].items())
    print(f"    TD fitted to the anticipatory licks read from NWB: {fitted} (true alpha=0.15, gamma=0.95, lambda_=0.9;"
          f" licks alone constrain TD weakly)")
    return path
