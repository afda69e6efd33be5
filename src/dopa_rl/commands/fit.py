"""``dopa-rl fit``: fit a model to behavior (CSV/TSV tables or NWB sessions)."""
from __future__ import annotations

import argparse

from dopa_rl.commands.common import add_trials_arguments


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = (
        "Examples:\n"
        "  dopa-rl fit choices.csv --model rw-softmax --json fit.json\n"
        "  dopa-rl fit lab.tsv --model rw-softmax-sticky --columns subject=mouse_id,choice=lever,reward=outcome "
        "--choice-base 1\n"
        "  dopa-rl fit sessions/ --model rw-pavlovian --method map\n"
        "  dopa-rl fit study.csv --model rw-softmax --method hier --json hier.json   (population EM)\n"
        "  dopa-rl fit study.csv --model rw-softmax-asym --restarts auto --scheduler local:2\n"
        "  dopa-rl fit choices.csv --model my_models.py:MODEL   (your own model: docs/models.md)\n")
    p.add_argument("data", nargs="+", metavar="DATA", help="behavior files (.csv/.tsv/.nwb) or folders of them")
    p.add_argument("--model", required=True, metavar="MODEL",
                   help="model name (see `dopa-rl models`), or your own as FILE.py:NAME or package.module:NAME")
    add_trials_arguments(p, columns_example="subject=mouse_id,choice=lever,reward=outcome")
    p.add_argument("--method", choices=("mle", "map", "hier"), default="mle",
                   help="maximum likelihood, MAP with the model's priors, or hierarchical (population EM)")
    p.add_argument("--restarts", type=restarts_arg, default=10, metavar="N|auto",
                   help="random restarts per subject (default 10); auto: 10 per parameter, then more until 3 "
                        "reach the best optimum (at most 200), then a search from the parameter range's edges")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS|local:N",
                   help="run the subject fits on a dask.distributed scheduler (or a LocalCluster of N processes)")
    p.add_argument("--em-max-iter", type=int, default=200, metavar="N", help="most EM iterations for --method hier")
    p.add_argument("--seed", type=int, default=0, help="seed for the restart points")
    p.add_argument("--jobs", type=int, default=None, metavar="N", help="threads evaluating the likelihood (default: all cores)")
    p.add_argument("--carry-over", action="store_true",
                   help="carry learned values over from one session to the next (default: each session starts afresh)")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.add_argument("--csv", metavar="FILE", help="write the per-subject table as CSV")
    p.add_argument("--prediction-errors", metavar="FILE", help="write per-trial fitted values and prediction errors (CSV)")


def restarts_arg(text: str):
    """``--restarts``: a whole number or ``auto`` (argparse reports anything else as a usage error, exit 2)."""
    if text == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of restarts or 'auto'") from None


def run(args) -> int:
    from dopa_rl.commands.common import check_output_paths, speak_flags, warnings_to_stderr
    from dopa_rl.errors import InputError
    from dopa_rl.fit import fit
    from dopa_rl.io.atomic import atomic_write_text
    from dopa_rl.commands.common import models_for_trials, trials_options
    from dopa_rl.io.behavior import expand_paths, load_behavior
    from dopa_rl.models.base import require_columns

    inputs = expand_paths(args.data)
    check_output_paths({"--json": args.json, "--csv": args.csv, "--prediction-errors": args.prediction_errors},
                       inputs=inputs)
    if args.restarts != "auto" and args.restarts < 1:
        raise InputError(f"--restarts {args.restarts}: must be at least 1 (or auto)")
    if args.em_max_iter < 1:
        raise InputError(f"--em-max-iter {args.em_max_iter}: must be at least 1")
    from dopa_rl.fit.schedulers import get_scheduler, parse_scheduler

    parse_scheduler(args.scheduler)
    (model,) = models_for_trials([args.model], args.n_options)
    options = trials_options(args)
    columns = options["columns"] or {}
    where = ", ".join(map(str, args.data))
    with warnings_to_stderr(getattr(args, "_flags", None)):
        df = load_behavior(args.data, **options)
        require_columns(df, model, source=where)
        extra = {"max_iter": args.em_max_iter} if args.method == "hier" else {}
        try:
            with get_scheduler(args.scheduler) as scheduler:
                result = fit(model, df, method=args.method, restarts=args.restarts, seed=args.seed, n_jobs=args.jobs,
                             carry_over=args.carry_over, scheduler=scheduler, **extra)
        except InputError as exc:  # problems found while packing the data: say which input they come from
            raise InputError(f"{where}: {exc}") from None
    # what it takes to run this fit again
    result.provenance["cli"] = {
        "model": args.model, "inputs": [str(p) for p in inputs], "columns": columns, "choice_base": args.choice_base,
        "n_options": args.n_options, "trials_table": args.trials_table, "method": result.method,
        "restarts": args.restarts, "seed": args.seed, "jobs": args.jobs, "carry_over": args.carry_over,
        "scheduler": args.scheduler, **({"em_max_iter": args.em_max_iter} if args.method == "hier" else {}),
    }
    # every output is rendered before the first is written, so a failure leaves none of them behind; files
    # before the printed table, so a closed stdout (`| head`) cannot cost them
    outputs = [(args.json, lambda: result.to_json() + "\n"), (args.csv, lambda: result.to_frame().to_csv()),
               (args.prediction_errors,
                lambda: result.prediction_errors(df, choice_base=args.choice_base).to_csv(index=False))]
    texts = [(path, render()) for path, render in outputs if path]
    for path, text in texts:
        atomic_write_text(path, text)
    print(speak_flags(result.summary(), getattr(args, "_flags", {})))
    if model.kind == "choice":
        k = result.provenance.get("n_options")
        print(f"Options: {k}, numbered {args.choice_base}..{k - 1 + args.choice_base} in the input "
              f"(--choice-base {args.choice_base}{'' if args.n_options else '; from the highest choice, --n-options to fix it'})")
    return 0
