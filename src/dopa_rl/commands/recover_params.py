"""``dopa-rl recover-params``: parameter recovery (one model) or model recovery (several) on simulated data."""
from __future__ import annotations

import argparse

from dopa_rl.commands.fit import restarts_arg

TASKS = ("bandit", "pavlovian")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = (
        "Examples:\n"
        "  dopa-rl recover-params --model rw-softmax --subjects 40 --trials 200 --plots figs/\n"
        "  dopa-rl recover-params --model rw-softmax --subjects 40 --trials 60 --method hier --json rec.json\n"
        "  dopa-rl recover-params --models rw-softmax,rw-softmax-sticky --subjects 30 --trials 150 "
        "--reversal-every 30 --params beta=1:5,kappa=1:2.5\n")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--model", help="parameter recovery for this model")
    g.add_argument("--models", metavar="A,B,...", help="model recovery over these models (confusion matrices)")
    p.add_argument("--subjects", type=int, default=40, metavar="N", help="simulated subjects (per model; default 40)")
    p.add_argument("--trials", type=int, default=200, metavar="T", help="trials per subject (default 200)")
    p.add_argument("--task", choices=TASKS, default=None, help="task (default: bandit for choice models)")
    p.add_argument("--reversal-every", type=int, default=None, metavar="K", help="bandit: reverse the arms every K trials")
    p.add_argument("--params", default=None, metavar="NAME=V|NAME=LO:HI,...",
                   help="fix a parameter or draw it uniformly in LO..HI (default: the model's prior, narrowed)")
    p.add_argument("--method", choices=("mle", "map", "hier"), default="mle", help="fitting method (default mle)")
    p.add_argument("--restarts", type=restarts_arg, default=10, metavar="N|auto", help="restarts per subject (default 10)")
    p.add_argument("--seed", type=int, default=0, help="random seed for the simulation and the restarts")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS|local:N", help="run the fits on dask.distributed")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.add_argument("--plots", metavar="DIR", help="write figures into DIR (created if missing; its parent must exist)")


def parse_population(text: str | None) -> dict:
    from dopa_rl.errors import InputError

    out = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        try:
            if not sep:
                raise ValueError
            lo, colon, hi = value.partition(":")
            out[name.strip()] = (float(lo), float(hi)) if colon else float(value)
        except ValueError:
            raise InputError(f"--params: '{part}' is not NAME=NUMBER or NAME=LOW:HIGH (e.g. --params beta=1:5,kappa=2)") from None
    return out


def run(args) -> int:
    import json
    from pathlib import Path

    from dopa_rl.commands.common import check_output_paths, speak_flags
    from dopa_rl.commands.compare import parse_models, write_outputs
    from dopa_rl.errors import InputError
    from dopa_rl.fit.recovery import draw_population, recover_models, recover_parameters
    from dopa_rl.fit.schedulers import get_scheduler, parse_scheduler
    from dopa_rl.models import get_model, tasks

    check_output_paths({"--json": args.json}, folders={"--plots": args.plots})
    if args.subjects < 2 or args.trials < 2:
        raise InputError(f"--subjects {args.subjects} --trials {args.trials}: both must be at least 2")
    if args.reversal_every is not None and args.reversal_every < 1:
        raise InputError(f"--reversal-every {args.reversal_every}: must be at least 1")
    if args.restarts != "auto" and args.restarts < 1:
        raise InputError(f"--restarts {args.restarts}: must be at least 1 (or auto)")
    parse_scheduler(args.scheduler)
    models = [get_model(args.model)] if args.model else parse_models(args.models)
    kinds = {m.kind for m in models}
    if len(kinds) > 1:
        raise InputError(f"--models {args.models}: mixes {' and '.join(sorted(kinds))} models")
    kind = kinds.pop()
    task_name = args.task or ("bandit" if kind == "choice" else "pavlovian")
    if (task_name == "bandit") != (kind == "choice"):
        raise InputError(f"--task {task_name} does not suit {kind} model(s) {', '.join(m.name for m in models)}")
    if task_name == "bandit":
        task = tasks.bandit(args.trials, reversal_every=args.reversal_every) if args.reversal_every else \
            tasks.bandit_task(args.trials)
    else:
        if args.reversal_every:
            raise InputError("--reversal-every applies to --task bandit")
        task = tasks.pavlovian_task(args.trials, p_reward=0.75)
    population = parse_population(args.params)
    per_model = {}
    for m in models:  # validate the population for every model before any work
        own = {k: v for k, v in population.items() if k in m.param_names}
        draw_population(m, 1, __import__("numpy").random.default_rng(0), own)
        per_model[m.name] = own
    unused = set(population) - {k for own in per_model.values() for k in own}
    if unused:
        raise InputError(f"--params: no model here has parameter(s) {', '.join(sorted(unused))}")
    if args.method == "map" and not args.model:
        raise InputError("--method map applies to parameter recovery; model recovery uses mle or hier")
    with get_scheduler(args.scheduler) as scheduler:
        if args.model:
            rec = recover_parameters(models[0], task, args.subjects, seed=args.seed, method=args.method,
                                     restarts=args.restarts, params=per_model[models[0].name], scheduler=scheduler)
        else:
            rec = recover_models(models, task, args.subjects, seed=args.seed, method=args.method,
                                 restarts=args.restarts, params=per_model, scheduler=scheduler)
    outputs = []  # rendered before the first file is written
    if args.json:
        outputs.append((args.json, (json.dumps(rec.to_dict(), indent=2, allow_nan=False, default=float) + "\n").encode()))
    if args.plots:
        from dopa_rl.report.population import confusion_figure, recovery_figure

        if args.model:
            outputs.append((Path(args.plots) / "recovery.png", recovery_figure(rec)))
        else:
            outputs.append((Path(args.plots) / "model_recovery.png", confusion_figure(rec)))
    write_outputs(outputs)
    print(speak_flags(rec.summary(), getattr(args, "_flags", {})))
    return 0
