"""Parameter specifications: names, bounds, transforms to unconstrained space, default priors.

Fitting works in an unconstrained space ``z``; each parameter maps ``z -> x`` with a transform chosen
from its bounds:

* both bounds finite: scaled logistic, ``x = lower + (upper - lower) * sigmoid(z)``;
* only a lower bound: ``x = lower + exp(z)``;
* no bounds: identity.

Default priors are normal distributions *in unconstrained space* (``prior_mean``, ``prior_sd``), which is
what MAP and hierarchical fitting use.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

from dopa_rl.errors import InputError

__all__ = ["Param", "ParamSpec"]


@dataclass(frozen=True)
class Param:
    """One model parameter.

    Only ``name`` and the bounds are needed (``Param("phi", lower=0, upper=1)``); the rest has defaults.
    ``default`` is a typical value (used for simulation defaults and as one fitting start point; default:
    the middle of a two-sided range, ``lower + 1`` for a lower bound alone, 0 when unbounded);
    ``init_low``/``init_high`` bound the random restarts (natural space; default: the middle 90% of a
    two-sided range, ``lower + [0.1, 5]`` for a lower bound alone, [-1, 1] when unbounded).
    """

    name: str
    lower: float = -math.inf
    upper: float = math.inf
    default: float | None = None
    init_low: float | None = None
    init_high: float | None = None
    prior_mean: float = 0.0
    prior_sd: float = 1.5
    description: str = ""

    def __post_init__(self):
        lo, hi = float(self.lower), float(self.upper)
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise InputError(f"parameter name {self.name!r} must be a Python identifier (e.g. 'alpha')")
        if math.isnan(lo) or math.isnan(hi) or not lo < hi:
            raise InputError(f"parameter {self.name}: need lower < upper (got [{self.lower}, {self.upper}])")
        if math.isfinite(hi) and not math.isfinite(lo):
            raise InputError(f"parameter {self.name}: an upper bound alone is not supported; give a lower bound too")
        if math.isfinite(lo) and math.isfinite(hi):
            default, init = (lo + hi) / 2, (lo + 0.05 * (hi - lo), lo + 0.95 * (hi - lo))
        elif math.isfinite(lo):
            default, init = lo + 1.0, (lo + 0.1, lo + 5.0)
        else:
            default, init = 0.0, (-1.0, 1.0)
        values = {"lower": lo, "upper": hi,
                  "default": default if self.default is None else float(self.default),
                  "init_low": init[0] if self.init_low is None else float(self.init_low),
                  "init_high": init[1] if self.init_high is None else float(self.init_high)}
        for key, v in values.items():
            object.__setattr__(self, key, v)
        problems = []
        if not lo <= values["default"] <= hi:
            problems.append(f"default {values['default']:g} outside [{lo:g}, {hi:g}]")
        if not lo <= values["init_low"] <= values["init_high"] <= hi:
            problems.append(f"start range [{values['init_low']:g}, {values['init_high']:g}] not inside [{lo:g}, {hi:g}]")
        if not (math.isfinite(self.prior_sd) and self.prior_sd > 0 and math.isfinite(self.prior_mean)):
            problems.append("prior_sd must be a positive number and prior_mean finite")
        if problems:
            raise InputError(f"parameter {self.name}: " + "; ".join(problems))

    @property
    def transform(self) -> str:
        lo, hi = math.isfinite(self.lower), math.isfinite(self.upper)
        if lo and hi:
            return "logit"
        if lo:
            return "log"
        if not lo and not hi:
            return "identity"
        raise ValueError(f"parameter {self.name}: an upper bound alone is not supported")

    def to_natural(self, z: np.ndarray | float) -> np.ndarray:
        z = np.asarray(z, dtype=float)
        t = self.transform
        if t == "logit":
            # sigmoid written to stay finite for large |z|
            s = np.where(z >= 0, 1.0 / (1.0 + np.exp(-np.abs(z))), np.exp(-np.abs(z)) / (1.0 + np.exp(-np.abs(z))))
            return self.lower + (self.upper - self.lower) * s
        if t == "log":
            return self.lower + np.exp(z)
        return z.copy()

    def to_unconstrained(self, x: np.ndarray | float) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        t = self.transform
        if t == "logit":
            p = (x - self.lower) / (self.upper - self.lower)
            p = np.clip(p, 1e-12, 1 - 1e-12)
            return np.log(p) - np.log1p(-p)
        if t == "log":
            return np.log(np.maximum(x - self.lower, 1e-300))
        return x.copy()

    def dnatural_dz(self, z: np.ndarray | float) -> np.ndarray:
        """Derivative of the natural value with respect to the unconstrained value (for the delta method)."""
        z = np.asarray(z, dtype=float)
        t = self.transform
        if t == "logit":
            s = (self.to_natural(z) - self.lower) / (self.upper - self.lower)
            return (self.upper - self.lower) * s * (1 - s)
        if t == "log":
            return np.exp(z)
        return np.ones_like(z)

    def check(self, value: float) -> str | None:
        """A problem description if ``value`` is outside the bounds, else None."""
        if not np.isfinite(value):
            return f"{self.name}={value} is not a finite number"
        if value < self.lower or value > self.upper:
            return f"{self.name}={value} is outside [{self.lower:g}, {self.upper:g}]"
        return None


class ParamSpec:
    """An ordered set of parameters with vectorized transforms over arrays of shape ``[..., k]``."""

    def __init__(self, params: Sequence[Param]):
        names = [p.name for p in params]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate parameter names in {names}")
        self.params: tuple[Param, ...] = tuple(params)

    def __iter__(self):
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)

    def __getitem__(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def to_natural(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=float)
        out = np.empty_like(z)
        for j, p in enumerate(self.params):
            out[..., j] = p.to_natural(z[..., j])
        return out

    def to_unconstrained(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        out = np.empty_like(x)
        for j, p in enumerate(self.params):
            out[..., j] = p.to_unconstrained(x[..., j])
        return out

    def jacobian_diag(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=float)
        out = np.empty_like(z)
        for j, p in enumerate(self.params):
            out[..., j] = p.dnatural_dz(z[..., j])
        return out

    def defaults(self) -> dict[str, float]:
        return {p.name: p.default for p in self.params}

    def prior_mean(self) -> np.ndarray:
        return np.array([p.prior_mean for p in self.params])

    def prior_sd(self) -> np.ndarray:
        return np.array([p.prior_sd for p in self.params])

    def random_starts(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` start points in natural space, uniform within each parameter's init range."""
        lo = np.array([p.init_low for p in self.params])
        hi = np.array([p.init_high for p in self.params])
        return lo + (hi - lo) * rng.random((n, len(self.params)))

    def vector(self, values: Mapping[str, float], *, model: str = "model") -> np.ndarray:
        """Natural-space vector from a mapping, validating names and bounds (one error for all problems)."""
        problems = []
        unknown = sorted(set(values) - set(self.names))
        if unknown:
            problems.append(f"unknown parameter(s) {', '.join(unknown)}; {model} takes {', '.join(self.names)}")
        out = []
        for p in self.params:
            v = float(values.get(p.name, p.default))
            msg = p.check(v)
            if msg:
                problems.append(msg)
            out.append(v)
        if problems:
            raise InputError(f"{model} parameters: " + "; ".join(problems))
        return np.array(out)

    def as_dict(self, x: Iterable[float]) -> dict[str, float]:
        return {p.name: float(v) for p, v in zip(self.params, x)}
