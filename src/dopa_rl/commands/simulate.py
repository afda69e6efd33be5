"""``dopa-rl simulate``: behavior tables (CSV) or whole NWB sessions from a task and a model."""
from __future__ import annotations

import argparse
from pathlib import Path

TASKS = ("bandit", "pavlovian", "acquisition", "extinction", "partial", "omission", "blocking", "overexpectation")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = (
        "Examples:\n"
        "  dopa-rl simulate --task bandit --model rw-softmax --subjects 20 --trials 400 --out choices.csv\n"
        "  dopa-rl simulate --task pavlovian --model td --subjects 2 --sessions 3 --out sessions/\n"
        "A .csv/.tsv OUT gets a behavior table (true parameters in OUT_params.csv); a .nwb OUT or a folder\n"
        "gets NWB sessions with licks, photometry and units built from the model's prediction errors.")
    p.add_argument("--task", choices=TASKS, default="bandit", help="task schedule (default: bandit)")
    p.add_argument("--model", default="rw", help="rw, td, any name from `dopa-rl models`, or your own model as "
                   "FILE.py:NAME or package.module:NAME (default: rw)")
    p.add_argument("--subjects", type=int, default=1, metavar="N", help="number of simulated subjects")
    p.add_argument("--sessions", type=int, default=1, metavar="K", help="sessions per subject")
    p.add_argument("--trials", type=int, default=None, metavar="T", help="trials per session (task default if omitted)")
    p.add_argument("--params", default=None, metavar="NAME=VALUE,...",
                   help="fixed parameters for every subject (default: drawn per subject within the model's ranges)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", required=True, metavar="OUT", help="OUT.csv, OUT.tsv, OUT.nwb or a folder for NWB files")
    p.add_argument("--overwrite", action="store_true", help="replace output files that exist (default: refuse)")
    p.add_argument("--carry-over", action="store_true",
                   help="a subject's sessions continue from the values learned in the previous one (CSV output; "
                        "default: each session starts afresh)")


def parse_params(text: str | None) -> dict[str, float] | None:
    from dopa_rl.errors import InputError

    if not text:
        return None
    out = {}
    for part in text.split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise InputError(f"--params: '{part}' is not NAME=NUMBER (example: --params alpha=0.3,beta=4)") from None
        if not sep:
            raise InputError(f"--params: '{part}' is not NAME=NUMBER (example: --params alpha=0.3,beta=4)")
    return out


def run(args) -> int:
    from dopa_rl.errors import InputError

    params = parse_params(args.params)
    if args.subjects < 1 or args.sessions < 1:
        raise InputError(f"--subjects {args.subjects} --sessions {args.sessions}: both must be at least 1")
    if args.trials is not None and args.trials < 1:
        raise InputError(f"--trials {args.trials}: must be at least 1")
    from dopa_rl.commands.common import check_output_paths, refuse_existing

    out = Path(args.out)
    if out.is_dir() and out.suffix:
        raise InputError(f"--out {out} is a folder; give a file name, or a folder name without a suffix")
    # a file's folder must exist; a folder of sessions is created when missing (its parent must exist)
    check_output_paths({"--out": str(out)} if out.suffix else {}, folders={} if out.suffix else {"--out": str(out)})
    if out.suffix.lower() in (".csv", ".tsv", ".txt"):
        refuse_existing("--out", [out, out.with_name(out.stem + "_params" + out.suffix)], args.overwrite)
        return _simulate_table(args, params, out)
    if out.suffix and out.suffix.lower() != ".nwb":
        raise InputError(f"--out {out}: use a .csv/.tsv table, a .nwb file or a folder")
    from dopa_rl.io.synthetic import session_paths, simulate_sessions

    if args.task not in ("bandit", "pavlovian"):
        raise InputError(f"--task {args.task}: NWB sessions are simulated for --task pavlovian or bandit; "
                         f"write a .csv to simulate {args.task}")
    refuse_existing("--out", [out] if out.suffix else session_paths(out, args.subjects, args.sessions), args.overwrite)
    paths = simulate_sessions(task=args.task, model=args.model, n_subjects=args.subjects, n_sessions=args.sessions,
                              out=out, seed=args.seed, params=params, n_trials=args.trials)
    for p in paths:
        print(p)
    return 0


def _simulate_table(args, params, out: Path) -> int:
    from dopa_rl.errors import InputError
    from dopa_rl.io.atomic import atomic_write_text
    from dopa_rl.models import get_model, simulate_population, tasks
    from dopa_rl.models.registry import model_for_task

    model = get_model(model_for_task("bandit" if args.task == "bandit" else "pavlovian", args.model))
    task = tasks.make_task(args.task, args.trials)
    if model.kind != task.kind:
        raise InputError(f"--model {model.name} is a {model.kind} model; it cannot run --task {args.task}")
    pop = simulate_population(model, task, args.subjects, args.seed, params, n_sessions=args.sessions,
                              carry_over=args.carry_over)
    df = pop.trials
    sep = "\t" if out.suffix.lower() == ".tsv" else ","
    params_path = out.with_name(out.stem + "_params" + out.suffix)
    atomic_write_text(out, df.to_csv(index=False, sep=sep))
    atomic_write_text(params_path, pop.params.to_csv(index=False, sep=sep))
    print(f"wrote {len(df)} trials of {args.subjects} subject(s) to {out}; true parameters in {params_path}")
    return 0
