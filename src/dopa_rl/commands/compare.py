"""``dopa-rl compare``: fit several models to the same behaviour and compare them (AIC, BIC, iBIC, CV,
random-effects model selection), with a table and a figure; with ``--signal``, RW, TD and ANCCR fitted to
the same dopamine responses (:mod:`dopa_rl.fit.dopamine_compare`)."""
from __future__ import annotations

import argparse

from dopa_rl.commands.fit import add_bayes_arguments, restarts_arg


def add_arguments(p: argparse.ArgumentParser) -> None:
    from dopa_rl.commands.common import add_signal_arguments, add_trials_arguments

    p.epilog = (
        "Examples:\n"
        "  dopa-rl compare choices.csv --models rw-softmax,rw-softmax-sticky,rw-softmax-asym --json cmp.json\n"
        "  dopa-rl compare study.csv --models rw-softmax,rw-softmax-sticky --method hier --plots figs/\n"
        "  dopa-rl compare study.csv --models rw-softmax,rw-softmax-lapse --cv 5\n"
        "  dopa-rl compare study.csv --models rw-softmax,rw-softmax-asym --method bayes   (PSIS-LOO, docs/bayes.md)\n"
        "  dopa-rl compare sessions/ --signal photometry --models rw-pavlovian,td,anccr --json cmp.json --plots figs/\n"
        "  dopa-rl compare trials.csv --signal table --models rw-pavlovian,anccr --columns dopamine_cue=da_cs\n")
    p.add_argument("data", nargs="+", metavar="DATA",
                   help="behavior files (.csv/.tsv/.nwb) or folders of them; with --signal, dopamine sessions")
    p.add_argument("--models", required=True, metavar="A,B,...", help="two or more model names, comma-separated")
    p.add_argument("--method", choices=("mle", "hier", "bayes"), default="mle",
                   help="mle: evidence -BIC/2 per subject; hier: population EM, evidence log p(y | population); "
                        "bayes: NUTS posteriors ranked by PSIS-LOO with its SE")
    p.add_argument("--restarts", type=restarts_arg, default=10, metavar="N|auto", help="restarts per subject (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed for the restart points")
    p.add_argument("--cv", type=int, default=None, metavar="K",
                   help="also K-fold cross-validated log-likelihood (folds over sessions, else trial blocks)")
    add_trials_arguments(p)
    p.add_argument("--scheduler", default=None, metavar="ADDRESS|local:N", help="run the fits on dask.distributed")
    add_signal_arguments(p, required=False)
    p.add_argument("--anccr-grid", metavar="NAME=V1:V2:...,...",
                   help="--signal with anccr: the ANCCR parameter grid (default t_ratio=0.6:1.2:2.4:4.8,"
                        "alpha=0.005:0.01:0.02:0.05:0.1,alpha_r=0.1:0.2:0.5)")
    p.add_argument("--json", metavar="FILE", help="write the comparison as JSON")
    p.add_argument("--plots", metavar="DIR", help="write figures into DIR (created if missing; its parent must exist)")
    add_bayes_arguments(p, posterior=False)


def parse_models(text: str, n_options: int | None = None):
    from dopa_rl.commands.common import models_for_trials
    from dopa_rl.errors import InputError

    names = [n.strip() for n in text.split(",") if n.strip()]
    if len(names) < 2:
        raise InputError(f"--models {text}: name at least 2 models, comma-separated (e.g. rw-softmax,rw-softmax-sticky)")
    if len(set(names)) != len(names):
        raise InputError(f"--models {text}: a model is named twice")
    return models_for_trials(names, n_options)


def write_outputs(outputs: list) -> None:
    """Write rendered ``(path, bytes)`` outputs atomically (a --plots folder is created when missing)."""
    from pathlib import Path

    from dopa_rl.commands.common import make_output_folder
    from dopa_rl.io.atomic import atomic_write_bytes

    for path, data in outputs:
        make_output_folder(Path(path).parent)
        atomic_write_bytes(path, data)


def run(args) -> int:
    from pathlib import Path

    from dopa_rl.commands.common import check_output_paths, speak_flags, trials_options, warnings_to_stderr
    from dopa_rl.errors import InputError
    from dopa_rl.fit.compare import compare_models
    from dopa_rl.fit.schedulers import get_scheduler, parse_scheduler
    from dopa_rl.io.behavior import expand_paths, load_behavior

    check_output_paths({"--json": args.json}, inputs=expand_paths(args.data), folders={"--plots": args.plots})
    if args.signal:
        return run_dopamine(args)
    given = [opt for opt, v in (("--series", args.series), ("--matrix", args.matrix), ("--rate", args.rate),
                                ("--event-at", args.event_at), ("--units", args.units),
                                ("--anccr-grid", args.anccr_grid)) if v is not None]
    if given:
        raise InputError(f"{given[0]} compares models on dopamine responses: say where they are with "
                         "--signal photometry|units|table")
    models = parse_models(args.models, args.n_options)
    if args.restarts != "auto" and args.restarts < 1:
        raise InputError(f"--restarts {args.restarts}: must be at least 1 (or auto)")
    if args.cv is not None and args.cv < 2:
        raise InputError(f"--cv {args.cv}: cross-validation needs at least 2 folds")
    parse_scheduler(args.scheduler)
    kinds = {m.kind for m in models}
    if len(kinds) > 1:
        raise InputError(f"--models {args.models}: mixes {' and '.join(sorted(kinds))} models; compare models of one kind")
    from dopa_rl.commands.fit import bayes_options

    bayes = bayes_options(args)
    if bayes and args.cv is not None:
        raise InputError("--cv applies to --method mle/hier; --method bayes ranks by PSIS-LOO")
    df = load_behavior(args.data, **trials_options(args))
    for m in models:
        missing = [c for c in m.required_columns if c not in df.columns]
        if missing:
            raise InputError(f"{', '.join(map(str, args.data))}: model {m.name} needs column(s) {', '.join(missing)}; "
                             f"columns present: {', '.join(df.columns)} (map yours with --columns STD=YOURS)")
    try:
        with get_scheduler(args.scheduler) as scheduler, warnings_to_stderr(getattr(args, "_flags", None)):
            if bayes:
                from dopa_rl.fit.bayes_compare import compare_bayes

                comp = compare_bayes(models, df, seed=args.seed, **bayes)
            else:
                comp = compare_models(models, df, method=args.method, restarts=args.restarts, seed=args.seed,
                                      cv_folds=args.cv, scheduler=scheduler)
    except InputError as exc:
        raise InputError(f"{', '.join(map(str, args.data))}: {exc}") from None
    # everything is rendered before the first file is written, so a failure leaves none behind
    text = speak_flags(comp.summary(), getattr(args, "_flags", {}))
    outputs = []
    if args.json:
        import json

        outputs.append((args.json, (json.dumps(comp.to_dict(), indent=2, allow_nan=False) + "\n").encode()))
    if args.plots:
        if bayes:
            from dopa_rl.report.bayes import result_png

            outputs.append((Path(args.plots) / "compare.png", result_png(comp)))
        else:
            from dopa_rl.report.population import comparison_figure

            outputs.append((Path(args.plots) / "compare.png", comparison_figure(comp)))
    write_outputs(outputs)
    print(text)
    return 0


def parse_anccr_grid(text: str | None) -> dict | None:
    """``"t_ratio=0.6:1.2:2.4,alpha=0.01:0.05"`` -> ``{"t_ratio": [0.6, 1.2, 2.4], "alpha": [0.01, 0.05]}``."""
    from dopa_rl.errors import InputError
    from dopa_rl.models.anccr import ANCCR_DEFAULTS

    if not text:
        return None
    grid = {}
    for part in text.split(","):
        name, sep, values = part.partition("=")
        name = name.strip()
        try:
            vals = [float(v) for v in values.split(":") if v.strip()]
        except ValueError:
            vals = []
        if not sep or name not in ANCCR_DEFAULTS or not vals or name in grid:
            raise InputError(f"--anccr-grid {part!r}: give NAME=V1:V2:... with NAME one of {', '.join(ANCCR_DEFAULTS)}"
                             " (each named once)")
        grid[name] = vals
    return grid


def run_dopamine(args) -> int:
    """``--signal``: RW/TD (neural fits) and ANCCR on the same dopamine responses, per session."""
    from pathlib import Path

    from dopa_rl.commands.common import load_signal, speak_flags, warnings_to_stderr
    from dopa_rl.errors import InputError
    from dopa_rl.fit.dopamine_compare import compare_dopamine, dopamine_models

    for opt, bad in (("--method hier", args.method == "hier"), ("--method bayes", args.method == "bayes"),
                     ("--cv", args.cv is not None),
                     ("--scheduler", args.scheduler is not None), ("--choice-base", args.choice_base != 0),
                     ("--n-options", args.n_options is not None)):
        if bad:
            raise InputError(f"{opt} is for behaviour; with --signal each session is fitted by maximum likelihood")
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    if len(names) < 2 or len(set(names)) != len(names):
        raise InputError(f"--models {args.models}: name at least 2 different models, comma-separated "
                         "(e.g. rw-pavlovian,td,anccr)")
    try:
        models = dopamine_models(names)
    except InputError as exc:
        raise InputError(f"--models: {exc}") from None
    grid = parse_anccr_grid(args.anccr_grid)
    if grid is not None:
        takes = [j for j, m in enumerate(models) if "grid" in m.options()]
        if not takes:
            raise InputError("--anccr-grid: anccr is not among --models")
        for j in takes:
            models[j] = models[j].with_options(grid=grid)
    if args.restarts != "auto" and args.restarts < 1:
        raise InputError(f"--restarts {args.restarts}: must be at least 1 (or auto)")
    data = load_signal(args)
    where = ", ".join(map(str, args.data[:3])) + (" ..." if len(args.data) > 3 else "")
    try:
        with warnings_to_stderr(getattr(args, "_flags", None)):
            comp = compare_dopamine(data.trials, models, signal=args.signal, restarts=args.restarts, seed=args.seed)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None
    text = speak_flags(comp.summary(), getattr(args, "_flags", {}))
    outputs = []
    if args.json:
        import json

        out = {**comp.to_dict(), "n_trials": int(len(data.trials)), "excluded": data.excluded,
               "preprocessing": data.steps}
        outputs.append((args.json, (json.dumps(out, indent=2, allow_nan=False) + "\n").encode()))
    if args.plots:
        from dopa_rl.report.population import comparison_figure

        outputs.append((Path(args.plots) / "compare.png", comparison_figure(comp)))
    write_outputs(outputs)
    print(text)
    if data.excluded:
        print("excluded: " + ", ".join(f"{k} {v}" for k, v in data.excluded.items()))
    return 0
