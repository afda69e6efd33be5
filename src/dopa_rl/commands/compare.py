"""``dopa-rl compare``: fit several models to the same behaviour and compare them (AIC, BIC, iBIC, CV,
random-effects model selection), with a table and a figure."""
from __future__ import annotations

import argparse

from dopa_rl.commands.fit import restarts_arg


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = (
        "Examples:\n"
        "  dopa-rl compare choices.csv --models rw-softmax,rw-softmax-sticky,rw-softmax-asym --json cmp.json\n"
        "  dopa-rl compare study.csv --models rw-softmax,rw-softmax-sticky --method hier --plots figs/\n"
        "  dopa-rl compare study.csv --models rw-softmax,rw-softmax-lapse --cv 5\n")
    p.add_argument("data", nargs="+", metavar="DATA", help="behavior files (.csv/.tsv/.nwb) or folders of them")
    p.add_argument("--models", required=True, metavar="A,B,...", help="two or more model names, comma-separated")
    p.add_argument("--method", choices=("mle", "hier"), default="mle",
                   help="mle: evidence -BIC/2 per subject; hier: population EM, evidence log p(y | population)")
    p.add_argument("--restarts", type=restarts_arg, default=10, metavar="N|auto", help="restarts per subject (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed for the restart points")
    p.add_argument("--cv", type=int, default=None, metavar="K",
                   help="also K-fold cross-validated log-likelihood (folds over sessions, else trial blocks)")
    p.add_argument("--columns", default=None, metavar="STD=YOURS,...", help="map standard columns to yours")
    p.add_argument("--choice-base", type=int, choices=(0, 1), default=0, help="first option number in your data")
    p.add_argument("--trials-table", default=None, metavar="NAME", help="NWB TimeIntervals table holding the trials")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS|local:N", help="run the fits on dask.distributed")
    p.add_argument("--json", metavar="FILE", help="write the comparison as JSON")
    p.add_argument("--plots", metavar="DIR", help="write figures into DIR (created if missing; its parent must exist)")


def parse_models(text: str):
    from dopa_rl.errors import InputError
    from dopa_rl.models import get_model

    names = [n.strip() for n in text.split(",") if n.strip()]
    if len(names) < 2:
        raise InputError(f"--models {text}: name at least 2 models, comma-separated (e.g. rw-softmax,rw-softmax-sticky)")
    if len(set(names)) != len(names):
        raise InputError(f"--models {text}: a model is named twice")
    return [get_model(n) for n in names]


def check_plots_dir(path: str | None) -> None:
    from pathlib import Path

    from dopa_rl.errors import InputError

    if not path:
        return
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InputError(f"--plots {path} is a file; give a folder")
    if not p.exists() and not p.parent.is_dir():
        raise InputError(f"--plots {path}: folder {p.parent} does not exist")


def write_outputs(outputs: list) -> None:
    """Write rendered ``(path, bytes)`` outputs atomically (a --plots folder is created when missing)."""
    from pathlib import Path

    from dopa_rl.io.atomic import atomic_write_bytes

    for path, data in outputs:
        Path(path).parent.mkdir(exist_ok=True)
        atomic_write_bytes(path, data)


def run(args) -> int:
    from pathlib import Path

    from dopa_rl.commands.common import check_output_paths
    from dopa_rl.errors import InputError
    from dopa_rl.fit.compare import compare_models
    from dopa_rl.fit.schedulers import get_scheduler, parse_scheduler
    from dopa_rl.io.behavior import expand_paths, load_behavior, parse_column_map

    check_output_paths({"--json": args.json}, inputs=expand_paths(args.data))
    check_plots_dir(args.plots)
    models = parse_models(args.models)
    if args.restarts != "auto" and args.restarts < 1:
        raise InputError(f"--restarts {args.restarts}: must be at least 1 (or auto)")
    if args.cv is not None and args.cv < 2:
        raise InputError(f"--cv {args.cv}: cross-validation needs at least 2 folds")
    parse_scheduler(args.scheduler)
    kinds = {m.kind for m in models}
    if len(kinds) > 1:
        raise InputError(f"--models {args.models}: mixes {' and '.join(sorted(kinds))} models; compare models of one kind")
    df = load_behavior(args.data, columns=parse_column_map(args.columns), choice_base=args.choice_base,
                       trials_table=args.trials_table)
    for m in models:
        missing = [c for c in m.required_columns if c not in df.columns]
        if missing:
            raise InputError(f"{', '.join(map(str, args.data))}: model {m.name} needs column(s) {', '.join(missing)}; "
                             f"columns present: {', '.join(df.columns)} (map yours with --columns STD=YOURS)")
    try:
        with get_scheduler(args.scheduler) as scheduler:
            comp = compare_models(models, df, method=args.method, restarts=args.restarts, seed=args.seed,
                                  cv_folds=args.cv, scheduler=scheduler)
    except InputError as exc:
        raise InputError(f"{', '.join(map(str, args.data))}: {exc}") from None
    # everything is rendered before the first file is written, so a failure leaves none behind
    text = comp.summary()
    outputs = []
    if args.json:
        import json

        outputs.append((args.json, (json.dumps(comp.to_dict(), indent=2, allow_nan=False) + "\n").encode()))
    if args.plots:
        from dopa_rl.report.population import comparison_figure

        outputs.append((Path(args.plots) / "compare.png", comparison_figure(comp)))
    write_outputs(outputs)
    print(text)
    return 0
