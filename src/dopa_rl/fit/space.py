"""Unconstrained-space helpers shared by every fit (MLE, MAP, restarts, hierarchical, results).

Parameter bounds in z space, the log prior, "at a bound", standard errors from the Hessian (delta
method), snapping to bounds, redrawing non-finite starts, per-subject seeds, the likelihood thread count
and carried-over sessions.  Pure functions over the model and packed data; the fitting modules build on
them, never the other way round.
"""
from __future__ import annotations

import contextlib
import hashlib

import numpy as np

from dopa_rl.fit.priors import Prior
from dopa_rl.models.base import Model, Packed

__all__ = ["require_usable_trials", "Z_BOUND", "Z_BOUND_FREE", "AT_BOUND_Z", "AT_BOUND_REL", "AT_BOUND_LOGIT_Z", "subject_seed", "z_bounds",
           "log_prior", "at_bound", "standard_errors", "snap_to_bounds", "finite_starts", "carried_over"]

Z_BOUND = 25.0          # |z| cap for bounded/positive parameters: beyond it the transform is flat
Z_BOUND_FREE = 1e4      # identity parameters
AT_BOUND_Z = 13.8       # z below which a lower-bounded parameter is within ~1e-6 of its bound (exp(-13.8))
AT_BOUND_REL = 1e-4     # a two-sided parameter within this fraction of its range of a bound is "at the bound"
AT_BOUND_LOGIT_Z = float(np.log((1 - AT_BOUND_REL) / AT_BOUND_REL))   # |z| of that point (9.21)


def require_usable_trials(data: Packed) -> None:
    """Refuse a fit of subjects with fewer than 2 usable trials (InputError naming them)."""
    too_short = [s for s, n in zip(data.subjects, data.n_obs) if n < 2]
    if too_short:
        from dopa_rl.errors import InputError

        raise InputError(f"subject(s) {', '.join(map(str, too_short))} have fewer than 2 usable trials; "
                         f"a fit needs at least 2 (drop them or merge sessions)")


def subject_seed(seed: int, subject) -> np.random.SeedSequence:
    """The seed sequence of one subject: from the run's seed and the subject's id (its text), not its position."""
    digest = hashlib.sha256(str(subject).encode("utf-8")).digest()
    words = [int.from_bytes(digest[i: i + 4], "little") for i in range(0, 16, 4)]
    return np.random.SeedSequence([int(seed) & 0xFFFFFFFF, *words])


def z_bounds(model: Model) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds [k] of the unconstrained parameters the optimizer searches."""
    hi = np.array([Z_BOUND if p.transform != "identity" else Z_BOUND_FREE for p in model.spec])
    return -hi, hi


def log_prior(model: Model, z: np.ndarray, prior: Prior | None = None) -> np.ndarray:
    """Normal log density of unconstrained parameters [..., k] under ``prior`` (default: the model's)."""
    return (prior or Prior.default(model)).logpdf(z)


def at_bound(model: Model, z: np.ndarray) -> np.ndarray:
    """[..., k] True where a parameter sits at a bound: within ``AT_BOUND_REL`` (1e-4) of the range of a
    two-sided bound, or within 1e-6 of a lower bound alone, where the transform is flat and the curvature
    says nothing (a standard error there would be small, finite and wrong)."""
    z = np.asarray(z, dtype=float)
    out = np.zeros(z.shape, dtype=bool)
    for j, p in enumerate(model.spec):
        if p.transform == "logit":
            out[..., j] = np.abs(z[..., j]) >= AT_BOUND_LOGIT_Z
        elif p.transform == "log":
            out[..., j] = z[..., j] <= -AT_BOUND_Z
    return out


def standard_errors(model: Model, data: Packed, z: np.ndarray, method: str, prior: Prior | None = None) -> np.ndarray:
    """Natural-space standard errors [S, k] from the Hessian in unconstrained space (delta method).

    A parameter at a bound gets NaN and the others' come from the Hessian with it held fixed (its row is
    only finite-difference noise there); NaN throughout where the rest is not positive definite (not
    identified)."""
    S, k = z.shape
    H = -model.hessian_z(z, data, np.arange(S))
    if method == "map":
        prec = (prior or Prior.default(model)).precision(np.arange(S))
        H = H + np.broadcast_to(prec, (S, k))[:, :, None] * np.eye(k)[None]
    se = np.full((S, k), np.nan)
    jac = np.abs(model.spec.jacobian_diag(z))
    free_all = ~at_bound(model, z)
    for s in range(S):
        free = free_all[s]
        Hs = H[s][np.ix_(free, free)]
        if not free.any() or not np.all(np.isfinite(Hs)):
            continue
        evals = np.linalg.eigvalsh(Hs)
        if evals.min() > 1e-9 * max(1.0, evals.max()):
            se[s, free] = np.sqrt(np.clip(np.diag(np.linalg.inv(Hs)), 0, None)) * jac[s, free]
    return se


def snap_to_bounds(model: Model, data: Packed, z: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                   prior: Prior | None = None) -> np.ndarray:
    """Move parameters that stopped near a bound (where the logistic transform is flat, so the gradient in
    ``z`` is below tolerance while the likelihood still rises toward the bound) onto the bound, one subject
    at a time, wherever that does not lower the objective (log-likelihood, plus the log prior for MAP)."""
    near = at_bound(model, z)
    rows = np.flatnonzero(near.any(axis=1))
    if rows.size == 0:
        return z
    z = z.copy()
    cand = z[rows].copy()
    cand[near[rows]] = np.where(cand[near[rows]] > 0, np.broadcast_to(hi, cand.shape)[near[rows]],
                                np.broadcast_to(lo, cand.shape)[near[rows]])
    both = np.concatenate([z[rows], cand])
    lanes = np.concatenate([rows, rows]).astype(np.int64)
    obj = model.loglik(model.spec.to_natural(both), data, lanes)
    if prior is not None:
        obj = obj + prior.logpdf(both, lanes)
    old, new = obj[: rows.size], obj[rows.size:]
    better = np.isfinite(new) & (new >= old)
    z[rows[better]] = cand[better]
    return z


def finite_starts(model: Model, data: Packed, z: np.ndarray, lane_subject: np.ndarray, seed: int,
                  centre: np.ndarray, rounds: int = 30, restart_index: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Start points [L, k] (unconstrained) whose log-likelihood is finite: a start where it is not is
    redrawn in the parameter's start range (seeded by subject and restart), then, if still not finite,
    pulled halfway toward ``centre`` (the prior mean, [k] or [L, k]) each round.  Returns the starts and how
    many lanes were moved; lanes still not finite stay (they are reported as not converged).  Redraws are
    seeded by the run's seed, the subject's id and ``restart_index`` (default: the lane's position among
    its subject's lanes), so they never depend on the subject's position in the data."""

    z = np.array(z, dtype=float)
    ll = model.loglik(model.spec.to_natural(z), data, lane_subject)
    bad = np.flatnonzero(~np.isfinite(ll))
    moved = bad.size
    if restart_index is None:
        restarts = np.bincount(lane_subject, minlength=1)
        first = np.concatenate([[0], np.cumsum(restarts)[:-1]])
        restart_index = np.arange(len(lane_subject)) - first[lane_subject]
    centre = np.broadcast_to(np.asarray(centre, dtype=float), z.shape)
    for r in range(rounds):
        if bad.size == 0:
            break
        if r < rounds - 6:  # redraws first (a region with finite likelihood may be small), then pull in
            for lane in bad:
                s = int(lane_subject[lane])
                rng = np.random.default_rng([*subject_seed(seed, data.subjects[s]).entropy, int(restart_index[lane]), r, 7])
                z[lane] = model.spec.to_unconstrained(model.spec.random_starts(1, rng)[0])
        else:
            z[bad] = centre[bad] + 0.5 ** (r - (rounds - 6) + 1) * (z[bad] - centre[bad])
        ll_bad = model.loglik(model.spec.to_natural(z[bad]), data, lane_subject[bad])
        bad = bad[~np.isfinite(ll_bad)]
    return z, int(moved)


class _NoBar:
    """What a disabled tqdm bar does (nothing), without importing tqdm (~0.2 s of a small fit's start-up)."""

    def __init__(self, total=None, **_):
        self.total, self.n = total, 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n=1):
        self.n += n

    def set_postfix(self, *args, **kwargs):
        pass

    def refresh(self):
        pass


def _progress(disable: bool, **kwargs):
    """A tqdm bar (``tqdm.auto``: a notebook widget in Jupyter), or :class:`_NoBar` when it is disabled."""
    if disable:
        return _NoBar(**kwargs)
    from tqdm.auto import tqdm

    return tqdm(disable=False, **kwargs)


@contextlib.contextmanager
def _threads(n_jobs: int | None):
    if n_jobs is None:   # numba is not even imported: a small fit may never need it (dopa_rl.models.lanes)
        yield
        return
    import numba

    old = numba.get_num_threads()
    numba.set_num_threads(max(1, min(int(n_jobs), numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(old)


def carried_over(data: Packed) -> Packed:
    """The same data with values carried over from one session to the next: only each subject's first trial
    starts afresh (by default every session does)."""
    import dataclasses

    resets = np.zeros_like(data.resets)
    resets[data.n_trials > 0, 0] = True
    return dataclasses.replace(data, resets=resets)
