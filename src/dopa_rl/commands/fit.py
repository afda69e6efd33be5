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
        "  dopa-rl fit choices.csv --model my_models.py:MODEL   (your own model: docs/models.md)\n"
        "  dopa-rl fit data.csv --model rw-softmax --method bayes --json post.json --posterior post.nc\n"
        "      (posterior by NUTS: needs pip install 'dopa_rl[bayes]'; docs/bayes.md)\n")
    p.add_argument("data", nargs="+", metavar="DATA", help="behavior files (.csv/.tsv/.nwb) or folders of them")
    p.add_argument("--model", required=True, metavar="MODEL",
                   help="model name (see `dopa-rl models`), or your own as FILE.py:NAME or package.module:NAME")
    add_trials_arguments(p, columns_example="subject=mouse_id,choice=lever,reward=outcome")
    p.add_argument("--method", choices=("mle", "map", "hier", "bayes"), default="mle",
                   help="maximum likelihood, MAP with the model's priors, hierarchical (population EM), or bayes "
                        "(hierarchical posterior by NUTS)")
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
    add_bayes_arguments(p)
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.add_argument("--csv", metavar="FILE", help="write the per-subject table as CSV")
    p.add_argument("--prediction-errors", metavar="FILE", help="write per-trial fitted values and prediction errors (CSV; "
                   "--method bayes: posterior means and 94%% HDIs)")
    p.add_argument("--plots", metavar="DIR", help="--method bayes: write the posterior figure and, for choice models, "
                   "the posterior predictive check (ppc.png) into DIR")


BAYES_FLAGS = {"chains": "--chains", "warmup": "--warmup", "draws": "--draws", "target_accept": "--target-accept",
               "chain_method": "--chain-method"}


def bayes_options(args) -> dict:
    """The sampler options of ``--method bayes`` (an InputError naming the flag when one is given to another
    method, or is out of range; jax missing: one line naming the install, before any data is read)."""
    from dopa_rl.errors import InputError

    given = {k: getattr(args, k) for k in BAYES_FLAGS if getattr(args, k) is not None}
    if args.method != "bayes":
        flags = [BAYES_FLAGS[k] for k in given] + (["--per-subject"] if args.per_subject else []) \
            + (["--posterior"] if getattr(args, "posterior", None) else []) \
            + (["--plots"] if getattr(args, "plots", None) and hasattr(args, "posterior") else [])
        if flags:
            raise InputError(f"{', '.join(flags)} apply to --method bayes only")
        return {}
    for key in ("chains", "warmup", "draws"):
        if key in given and given[key] < 1:
            raise InputError(f"{BAYES_FLAGS[key]} {given[key]}: must be at least 1")
    if "target_accept" in given and not 0.0 < given["target_accept"] < 1.0:
        raise InputError(f"--target-accept {given['target_accept']:g}: must be between 0 and 1")
    if args.restarts != 10 or args.scheduler or getattr(args, "jobs", None) is not None:
        raise InputError("--restarts, --scheduler and --jobs apply to the optimising methods, not --method bayes")
    from dopa_rl.fit.bayes import require_jax

    require_jax(given.get("chains", 4))
    return {**given, "hierarchical": not args.per_subject}


def add_bayes_arguments(p: argparse.ArgumentParser, posterior: bool = True) -> None:
    """The sampler options of ``--method bayes`` (fit and compare)."""
    b = p.add_argument_group("--method bayes (NUTS; docs/bayes.md)")
    b.add_argument("--chains", type=int, default=None, metavar="N", help="chains (default 4)")
    b.add_argument("--warmup", type=int, default=None, metavar="N", help="warm-up iterations per chain (default 1000)")
    b.add_argument("--draws", type=int, default=None, metavar="N", help="kept draws per chain (default 1000)")
    b.add_argument("--target-accept", type=float, default=None, metavar="P",
                   help="NUTS target acceptance probability, between 0 and 1 (default 0.8; raise it on divergences)")
    b.add_argument("--chain-method", choices=("vectorized", "parallel", "sequential"), default=None,
                   help="run the chains vectorized in one process (default), one per CPU device, or one after another")
    b.add_argument("--per-subject", action="store_true",
                   help="independent subjects with the model's prior instead of the hierarchical model")
    if posterior:
        b.add_argument("--posterior", metavar="FILE.nc", help="write the draws as ArviZ InferenceData (netCDF)")


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
    check_output_paths({"--json": args.json, "--csv": args.csv, "--prediction-errors": args.prediction_errors,
                        "--posterior": args.posterior}, inputs=inputs, folders={"--plots": args.plots})
    bayes = bayes_options(args)
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
        extra = {"max_iter": args.em_max_iter} if args.method == "hier" else bayes
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
        **bayes,
    }
    # every output is rendered before the first is written, so a failure leaves none of them behind; files
    # before the printed table, so a closed stdout (`| head`) cannot cost them
    outputs = [(args.json, lambda: result.to_json() + "\n"), (args.csv, lambda: result.to_frame().to_csv()),
               (args.prediction_errors,
                lambda: result.prediction_errors(df, choice_base=args.choice_base).to_csv(index=False))]
    if args.plots:
        from pathlib import Path

        from dopa_rl.report.bayes import ppc_figure, result_png

        outputs.append((str(Path(args.plots) / "posterior.png"), lambda: result_png(result)))
        if model.kind == "choice":
            outputs.append((str(Path(args.plots) / "ppc.png"), lambda: ppc_figure(result, df)))
    texts = [(path, render()) for path, render in outputs if path]
    if args.plots:
        from dopa_rl.commands.common import make_output_folder

        make_output_folder(args.plots)
    for path, text in texts:
        if isinstance(text, bytes):
            from dopa_rl.io.atomic import atomic_write_bytes

            atomic_write_bytes(path, text)
        else:
            atomic_write_text(path, text)
    if args.posterior:
        result.to_netcdf(args.posterior)
    print(speak_flags(result.summary(), getattr(args, "_flags", {})))
    if model.kind == "choice":
        k = result.provenance.get("n_options")
        print(f"Options: {k}, numbered {args.choice_base}..{k - 1 + args.choice_base} in the input "
              f"(--choice-base {args.choice_base}{'' if args.n_options else '; from the highest choice, --n-options to fix it'})")
    return 0
