"""Models: parameter specs plus pure, vectorized simulate and log-likelihood functions.

>>> from dopa_rl.models import get_model, list_models
>>> get_model("rw-softmax").param_names
['alpha', 'beta']

Your own learning rule: :func:`choice_model` / :func:`pavlovian_model` build a full model from an update
function, :func:`register_model` names it, and ``dopa_rl.testing.check_model`` checks it (docs/models.md,
"Your own model").  Importing this package loads neither numba nor pandas.
"""
from __future__ import annotations

from dopa_rl.models.base import Model, Packed, Simulation
from dopa_rl.models.family import choice_model, pavlovian_model
from dopa_rl.models.params import Param, ParamSpec
from dopa_rl.models.population import Population, simulate_population
from dopa_rl.models.registry import (ENTRY_POINT_GROUP, get_model, list_models, model_names, register_model,
                                     unregister_model)

__all__ = ["Model", "Packed", "Simulation", "Param", "ParamSpec", "get_model", "list_models", "model_names",
           "register_model", "unregister_model", "choice_model", "pavlovian_model", "ENTRY_POINT_GROUP",
           "Population", "simulate_population"]
