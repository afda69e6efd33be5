"""Which compiled code runs a batch of lanes (no numba import here).

A lane is one parameter row applied to one subject's data.  Batches of at least ``PARALLEL_MIN_LANES`` run
on numba's threads; smaller ones serially.  The RW choice variants (:mod:`dopa_rl.models._choice_kernels`)
also have ahead-of-time compiled serial drivers (:mod:`dopa_rl.models.aot`): while this process has not
loaded numba, a batch of at most ``AOT_MAX_WORK`` lane-trials runs there, so a small fit never pays numba's
start-up; once numba is loaded, the JIT kernels (parallel where the batch is large) serve every batch.
"""
from __future__ import annotations

import sys

import numpy as np

__all__ = ["PARALLEL_MIN_LANES", "AOT_MAX_WORK", "variant_name", "rw_choice_loglik_variant"]

#: below this many lanes the serial driver wins (thread start-up costs more than the work)
PARALLEL_MIN_LANES = 32
#: lanes x trials up to which a batch runs on the ahead-of-time serial kernel while numba is not loaded
AOT_MAX_WORK = 400_000


def variant_name(grad: bool, asym: bool, sticky: bool, lapse: bool) -> str:
    """The key of an RW choice variant in :data:`dopa_rl.models._choice_kernels.KERNELS` and the AOT module."""
    return ("g" if grad else "v") + ("a" if asym else "s") + ("k" if sticky else "") + ("e" if lapse else "")


def rw_choice_loglik_variant(theta, lanes, choices, rewards, resets, n_trials, n_options, q0, *, asym: bool,
                             sticky: bool, lapse: bool, grad: bool, aot: bool | None = None):
    """The RW choice log-likelihood specialised to the parameters a model frees (``theta`` [L, k] in the
    model's spec order: alpha or alpha_pos/alpha_neg, beta[, kappa][, epsilon]; ``q0`` fixed): the
    log-likelihood [L], and with ``grad`` its gradient [L, k] too.

    ``aot``: False forces the JIT; True uses the ahead-of-time kernel when it is built; None chooses as the
    module docstring says."""
    name = variant_name(grad, asym, sticky, lapse)
    theta = np.ascontiguousarray(theta, dtype=float)
    lanes = np.asarray(lanes, dtype=np.int64)
    args = (theta, lanes, np.asarray(choices, dtype=np.int64), np.asarray(rewards, dtype=float),
            np.asarray(resets, dtype=np.bool_), np.asarray(n_trials, dtype=np.int64), int(n_options), float(q0))
    if aot is None:
        aot = "numba" not in sys.modules and theta.shape[0] * args[2].shape[1] <= AOT_MAX_WORK
    if aot:
        from dopa_rl.models.aot import load

        mod = load()
        if mod is not None:
            return getattr(mod, name)(*args)
    from dopa_rl.models._choice_kernels import KERNELS

    serial, parallel = KERNELS[name]
    return (parallel if theta.shape[0] >= PARALLEL_MIN_LANES else serial)(*args)
