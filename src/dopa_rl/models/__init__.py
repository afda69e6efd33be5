"""Models: parameter specs plus pure, vectorized simulate and log-likelihood functions.

>>> from dopa_rl.models import get_model, list_models
>>> get_model("rw-softmax").param_names
['alpha', 'beta']
"""
from __future__ import annotations

from dopa_rl.errors import InputError
from dopa_rl.models.base import Model, Packed, Simulation
from dopa_rl.models.params import Param, ParamSpec
from dopa_rl.models.population import Population, simulate_population


def _registry() -> dict[str, Model]:
    from dopa_rl.models.rw import choice_models, pavlovian_models
    from dopa_rl.models.td import td_models

    return {**choice_models(), **pavlovian_models(), **td_models()}


def list_models() -> list[Model]:
    """Every registered model, in a stable order."""
    return list(_registry().values())


def model_names() -> list[str]:
    return list(_registry())


def get_model(name: str, **options) -> Model:
    """The model registered as ``name``.

    Options: ``q0`` (initial value) and ``n_options`` for choice models; ``representation`` and ``timing``
    for TD models.  Unknown names raise an InputError listing the known ones.
    """
    reg = _registry()
    if name not in reg:
        raise InputError(f"unknown model {name!r}; choose one of: {', '.join(reg)}")
    if not options:
        return reg[name]
    if name.startswith("rw-softmax"):
        from dopa_rl.models.rw import choice_models

        allowed = {"q0", "n_options"}
        _check_options(name, options, allowed)
        return choice_models(**options)[name]
    if name.startswith("td"):
        from dopa_rl.models.td import TDModel

        _check_options(name, options, {"timing", "representation", "n_micro", "sigma", "trace_tau_s"})
        rep = options.pop("representation", reg[name].representation)
        timing = options.pop("timing", None)
        return TDModel(name, rep, timing, **options)
    raise InputError(f"model {name} takes no options (got {', '.join(options)})")


def _check_options(name: str, options: dict, allowed: set[str]) -> None:
    bad = sorted(set(options) - allowed)
    if bad:
        raise InputError(f"model {name}: unknown option(s) {', '.join(bad)}; allowed: {', '.join(sorted(allowed))}")


__all__ = ["Model", "Packed", "Simulation", "Param", "ParamSpec", "get_model", "list_models", "model_names",
           "Population", "simulate_population"]
