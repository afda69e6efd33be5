"""``dopa-rl models``: list the models and their parameters."""
from __future__ import annotations

import argparse
import json
import math


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = "Example: dopa-rl models --json models.json"
    p.add_argument("name", nargs="?", help="show one model only (a name, or FILE.py:NAME for your own)")
    p.add_argument("--json", metavar="FILE", help="also write the list as JSON")


def run(args) -> int:
    from dopa_rl.commands.common import check_output_paths
    from dopa_rl.io.atomic import atomic_write_text
    from dopa_rl.models import get_model, list_models

    check_output_paths({"--json": args.json})
    models = [get_model(args.name)] if args.name else list_models()
    for m in models:
        print(m.describe())
    if args.json:
        data = [{"name": m.name, "kind": m.kind, "description": m.description,
                 "required_columns": list(m.required_columns),
                 "params": [{"name": p.name, "lower": _bound(p.lower), "upper": _bound(p.upper), "default": p.default,
                             "description": p.description} for p in m.spec]} for m in models]
        atomic_write_text(args.json, json.dumps(data, indent=2, default=str, allow_nan=False) + "\n")
    return 0


def _bound(value: float) -> float | None:
    """A parameter bound for JSON: null where unbounded (JSON has no Infinity)."""
    return value if math.isfinite(value) else None
