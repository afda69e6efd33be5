"""Priors for MAP (and, per EM iteration, hierarchical) fitting: explicit objects passed to ``fit``.

A :class:`Prior` is a normal distribution over each parameter *in unconstrained space* (the space the
optimiser works in, see :mod:`dopa_rl.models.params`).  ``Prior.default(model)`` is the model spec's
``prior_mean``/``prior_sd``; ``Prior.normal(model, mean=..., sd=...)`` overrides some of them (in
unconstrained units); a population prior of hierarchical fitting is a ``Prior`` like any other.  The
means and sds are ``[k]`` (one prior for every subject) or ``[S, k]`` (one per subject).

The default priors assume rewards of order 1 (a reward of 1 per rewarded trial): a value ``Q`` of order
1 makes ``beta`` of order 1-10 and lick slopes of order 1.  Rewards in other units (uL, drops) put the
likelihood's optimum far into the prior's tail; rescale them, or widen the prior.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from dopa_rl.errors import InputError

__all__ = ["Prior"]


@dataclass(frozen=True, eq=False)
class Prior:
    """Independent normal priors in unconstrained space: ``z_j ~ Normal(mean_j, sd_j)``."""

    names: tuple[str, ...]
    mean: np.ndarray
    sd: np.ndarray
    family: str = "normal"

    def __post_init__(self):
        k = len(self.names)
        mean = np.asarray(self.mean, dtype=float)
        sd = np.asarray(self.sd, dtype=float)
        problems = []
        if self.family != "normal":
            problems.append(f"family {self.family!r} is not supported (use 'normal')")
        for what, arr in (("mean", mean), ("sd", sd)):
            if arr.ndim not in (1, 2) or arr.shape[-1] != k:
                problems.append(f"{what} must be [k] or [S, k] with k = {k} ({', '.join(self.names)}); got shape "
                                f"{arr.shape}")
            elif not np.all(np.isfinite(arr)):
                problems.append(f"{what} must be finite")
        if not problems and np.any(sd <= 0):
            problems.append("sd must be > 0")
        if problems:
            raise InputError("prior: " + "; ".join(problems))
        object.__setattr__(self, "names", tuple(self.names))
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "sd", sd)

    # -- constructors -------------------------------------------------------------------------------
    @classmethod
    def default(cls, model) -> "Prior":
        """The model spec's default priors (``prior_mean``, ``prior_sd`` of each parameter)."""
        return cls(tuple(model.spec.names), model.spec.prior_mean(), model.spec.prior_sd())

    @classmethod
    def normal(cls, model, mean: Mapping[str, float] | Sequence[float] | np.ndarray | None = None,
               sd: Mapping[str, float] | Sequence[float] | np.ndarray | None = None) -> "Prior":
        """Normal priors in unconstrained space; parameters not named in a mapping keep their defaults."""
        base = cls.default(model)
        return cls(base.names, _values(mean, base.mean, base.names, "mean"), _values(sd, base.sd, base.names, "sd"))

    # -- maths (z [..., k] unconstrained; with [S, k] priors, z's leading axis is the subject) -------------
    def rows(self, subjects: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Mean and sd for the given subject index of each row (or the shared [k] prior)."""
        if self.mean.ndim == 1 and self.sd.ndim == 1:
            return self.mean, self.sd
        if subjects is None:
            raise InputError("prior: per-subject priors need the subject of each row")
        mean = self.mean if self.mean.ndim == 2 else np.broadcast_to(self.mean, self.sd.shape)
        sd = self.sd if self.sd.ndim == 2 else np.broadcast_to(self.sd, mean.shape)
        return mean[subjects], sd[subjects]

    def logpdf(self, z: np.ndarray, subjects: np.ndarray | None = None) -> np.ndarray:
        mu, sd = self.rows(subjects)
        d = (np.asarray(z, dtype=float) - mu) / sd
        return -0.5 * np.sum(d * d, axis=-1) - np.sum(np.log(sd * np.sqrt(2 * np.pi)), axis=-1)

    def grad(self, z: np.ndarray, subjects: np.ndarray | None = None) -> np.ndarray:
        """d logpdf / dz."""
        mu, sd = self.rows(subjects)
        return -(np.asarray(z, dtype=float) - mu) / sd**2

    def precision(self, subjects: np.ndarray | None = None) -> np.ndarray:
        """Diagonal of -d2 logpdf / dz2, [k] or [rows, k]."""
        return 1.0 / self.rows(subjects)[1] ** 2

    def check_model(self, model) -> None:
        if list(self.names) != list(model.spec.names):
            raise InputError(f"prior is for parameters {', '.join(self.names)}; model {model.name} has "
                             f"{', '.join(model.spec.names)}")
        if self.mean.ndim == 2 or self.sd.ndim == 2:
            rows = {a.shape[0] for a in (self.mean, self.sd) if a.ndim == 2}
            if len(rows) > 1:
                raise InputError("prior: per-subject mean and sd have different numbers of subjects")

    def n_subjects(self) -> int | None:
        for a in (self.mean, self.sd):
            if a.ndim == 2:
                return a.shape[0]
        return None

    # -- JSON ----------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"family": self.family, "space": "unconstrained", "names": list(self.names),
                "mean": self.mean.tolist(), "sd": self.sd.tolist()}

    @classmethod
    def from_dict(cls, d: Mapping) -> "Prior":
        try:
            return cls(tuple(d["names"]), np.asarray(d["mean"], float), np.asarray(d["sd"], float),
                       d.get("family", "normal"))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"prior: not a prior description ({exc})") from None

    def __repr__(self) -> str:
        if self.mean.ndim == 1 and self.sd.ndim == 1:
            body = ", ".join(f"{n}~N({m:.3g}, {s:.3g})" for n, m, s in zip(self.names, self.mean, self.sd))
        else:
            body = f"per-subject, {self.n_subjects()} subjects"
        return f"Prior({body}; unconstrained space)"


def _values(given, default: np.ndarray, names, what: str) -> np.ndarray:
    if given is None:
        return default
    if isinstance(given, Mapping):
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise InputError(f"prior {what}: unknown parameter(s) {', '.join(unknown)}; the model has "
                             f"{', '.join(names)}")
        return np.array([float(given.get(n, d)) for n, d in zip(names, default)])
    return np.asarray(given, dtype=float)
