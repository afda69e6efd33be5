"""What users import to test their own work.

* :func:`check_model` (``dopa_rl.testing.conformance``): the conformance table every registered model runs
  through, for your own models too; raises :class:`ModelCheckError` naming the failed check;
  :func:`parametrize_with_checks` gives the same checks as one pytest item each (as scikit-learn's).
* :class:`SimulatedDUT` (``dopa_rl.testing.simulated_rig``): a simulated rig device with the "device under
  test" interface of the rig scenario tests.

Names load on first use, so ``check_model`` never imports the rig and ``SimulatedDUT`` never imports numba.
"""
from __future__ import annotations

import importlib

_WHERE = {
    "check_model": "dopa_rl.testing.conformance",
    "ModelCheckError": "dopa_rl.testing.conformance",
    "CHECKS": "dopa_rl.testing.conformance",
    "model_checks": "dopa_rl.testing.conformance",
    "parametrize_with_checks": "dopa_rl.testing.conformance",
    "SimulatedDUT": "dopa_rl.testing.simulated_rig",
    "SimDevice": "dopa_rl.testing.simulated_rig",
}

__all__ = list(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'dopa_rl.testing' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_WHERE))
