"""``check_model(model)``: the conformance table every registered model passes, for your own models too.

>>> from dopa_rl.models import get_model
>>> from dopa_rl.testing import check_model
>>> report = check_model(get_model("rw-softmax"))      # doctest: +SKIP
>>> print(report)                                      # doctest: +SKIP
rw-softmax: 9 checks passed in 1.2 s; recovery (Spearman) alpha 1.00, beta 0.94

Checks, in order (:data:`CHECKS`); the first that fails raises :class:`ModelCheckError` naming it:

* ``parameters``: defaults and start ranges inside the bounds, a non-empty parameter list;
* ``seed_reproducibility``: the same seed simulates exactly the same table and prediction errors, another
  seed a different one (a simulate that ignores its ``rng`` fails here);
* ``transforms_round_trip``: natural -> unconstrained -> natural returns the values, the inverse too,
  extreme unconstrained values stay inside the bounds, and the Jacobian matches differences;
* ``bad_parameters_raise``: out-of-bound, non-finite and unknown parameters make ``simulate`` raise InputError;
* ``parameters_matter``: changing any one parameter changes the log-likelihood (a likelihood that
  ignores a parameter fails here);
* ``lanes_equal_loop``: many lanes in one vectorised call (the parallel path) equal lane-by-lane calls,
  and equal an independent per-trial loop (:mod:`dopa_rl.testing.reference`, or ``reference=``) on data
  with several sessions and missed trials;
* ``model_interface``: ``options()`` round-trips through JSON (the rebuilt model gives the same RPEs), the
  many-lane ``rpes`` are finite where trials are, and the online learner stepped through each subject's
  trials (several sessions, missed trials) gives the same cue and outcome RPEs to 1e-12;
* ``gradient``: the gradient the fitter uses (analytic where the model has one) matches central differences;
* ``recovery``: simulate subjects, one parameter varied at a time over its start range, and fit them: each
  fitted log-likelihood is at least that at the true parameters, and every parameter's estimates
  correlate with the truth (Spearman >= ``min_correlation``; ``weak`` parameters, which the task cannot
  identify, need only finite fits).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping

import numpy as np

from dopa_rl.errors import DopaRLError, InputError

__all__ = ["CHECKS", "ModelCheckError", "ModelCheckReport", "check_model", "model_checks", "parametrize_with_checks"]

CHECKS = ("parameters", "seed_reproducibility", "transforms_round_trip", "bad_parameters_raise",
          "parameters_matter", "lanes_equal_loop", "model_interface", "gradient", "recovery")


class ModelCheckError(DopaRLError, AssertionError):
    """A conformance check failed: ``check`` names it, the message says what differed."""

    def __init__(self, model: str, check: str, detail: str):
        self.model, self.check, self.detail = model, check, detail
        super().__init__(f"check_model({model}): check '{check}' failed: {detail}")


def _default_task(model, n_trials: int, *, compounds: bool = False):
    from dopa_rl.models import tasks

    if model.kind == "choice":
        return tasks.bandit_task(n_trials)
    if model.kind == "pavlovian":
        if compounds:
            n = max(n_trials // 3, 2)
            return tasks.overexpectation(n, n, max(n_trials - 2 * n, 1))
        return tasks.partial_reinforcement(n_trials, 0.7)
    return None


def _simulate_table(model, truth: np.ndarray, task, rng, *, sessions: int = 1, gaps: bool = False):
    """A behaviour table of one subject per row of ``truth`` (natural space), ``sessions`` sessions each;
    with ``gaps``, some choices (choice models) or lick counts (Pavlovian) are blanked."""
    import pandas as pd

    frames = []
    for s, x in enumerate(truth):
        for k in range(sessions):
            frames.append(model.simulate(model.spec.as_dict(x), task, rng, subject=f"s{s}", session=str(k + 1)).trials)
    df = pd.concat(frames, ignore_index=True)
    if gaps:
        rows = rng.choice(len(df), size=max(len(df) // 25, 1), replace=False)
        col = "choice" if model.kind == "choice" and "choice" in df.columns else "licks" if "licks" in df.columns else None
        if col is not None:
            df[col] = df[col].astype(float)
            df.loc[rows, col] = np.nan
    return df


class _Checker:
    def __init__(self, model, *, task, reference, n_subjects, n_trials, restarts, min_correlation, seed, weak=()):
        self.model, self.spec = model, model.spec
        self.task_arg, self.reference = task, reference
        self.n_subjects, self.n_trials, self.restarts = n_subjects, n_trials, restarts
        self.min_correlation, self.seed = min_correlation, seed
        self.weak = tuple(weak)
        self.correlations: dict[str, float] = {}

    def fail(self, check: str, detail: str):
        raise ModelCheckError(self.model.name, check, detail)

    def task(self, n_trials: int, **kw):
        task = self.task_arg if self.task_arg is not None else _default_task(self.model, n_trials, **kw)
        if task is None:
            self.fail("parameters", f"kind {self.model.kind!r} has no default task; pass check_model(model, task=...)")
        return task

    def rng(self, k: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, k])

    # -- checks -----------------------------------------------------------------------------------------
    def parameters(self):
        if len(self.spec) == 0:
            self.fail("parameters", "the model has no parameters")
        for p in self.spec:
            if not (p.lower <= p.default <= p.upper and p.lower <= p.init_low <= p.init_high <= p.upper):
                self.fail("parameters", f"{p.name}: default {p.default} or start range [{p.init_low}, {p.init_high}] "
                                        f"outside [{p.lower}, {p.upper}]")

    def seed_reproducibility(self):
        task, p = self.task(60), self.spec.defaults()
        a = self.model.simulate(p, task, np.random.default_rng(7))
        b = self.model.simulate(p, task, np.random.default_rng(7))
        if not (a.trials.equals(b.trials) and np.array_equal(a.rpe, b.rpe, equal_nan=True)):
            self.fail("seed_reproducibility", "two simulations with the same seed differ")
        c = self.model.simulate(p, task, np.random.default_rng(8))
        if a.trials.equals(c.trials):
            self.fail("seed_reproducibility", "seeds 7 and 8 simulate identical tables: simulate ignores its rng")
        timing = [col for col in ("start_time", "stop_time", "cue_time", "outcome_time") if col in a.trials.columns]
        if a.trials.drop(columns=timing).equals(c.trials.drop(columns=timing)):
            self.fail("seed_reproducibility", "seeds 7 and 8 simulate the same behaviour (only event times differ): "
                                              "the learner's random draws ignore the rng")

    def transforms_round_trip(self):
        rng = self.rng(1)
        x = self.spec.random_starts(50, rng)
        for j, p in enumerate(self.spec):       # points near each finite bound too
            if math.isfinite(p.lower):
                span = (p.upper - p.lower) if math.isfinite(p.upper) else 1.0
                x[:5, j] = p.lower + span * np.array([1e-6, 1e-4, 1e-3, 1e-2, 0.1])
            if math.isfinite(p.upper):
                x[5:10, j] = p.upper - (p.upper - p.lower) * np.array([1e-6, 1e-4, 1e-3, 1e-2, 0.1])
        back = self.spec.to_natural(self.spec.to_unconstrained(x))
        scale = np.array([max(abs(p.lower) if math.isfinite(p.lower) else 1.0,
                              abs(p.upper) if math.isfinite(p.upper) else 1.0, 1.0) for p in self.spec])
        err = np.abs(back - x) / scale
        if not np.all(err < 1e-8):
            i, j = np.unravel_index(np.argmax(err), err.shape)
            self.fail("transforms_round_trip", f"{self.spec.names[j]}={x[i, j]!r} comes back as {back[i, j]!r}")
        z = rng.uniform(-5, 5, size=(50, len(self.spec)))
        zz = self.spec.to_unconstrained(self.spec.to_natural(z))
        if not np.allclose(zz, z, rtol=1e-6, atol=1e-6):
            j = int(np.argmax(np.max(np.abs(zz - z), axis=0)))
            self.fail("transforms_round_trip", f"{self.spec.names[j]}: unconstrained -> natural -> unconstrained moves")
        far = self.spec.to_natural(np.array([[-1e3] * len(self.spec), [1e3] * len(self.spec)]))
        for j, p in enumerate(self.spec):
            if not (np.all(np.isfinite(far[:, j]) | ~np.isfinite([p.lower, p.upper]))
                    and np.all((far[:, j] >= p.lower) & (far[:, j] <= p.upper))):
                self.fail("transforms_round_trip", f"{p.name}: extreme unconstrained values leave [{p.lower}, {p.upper}]")
        h = 1e-6
        num = (self.spec.to_natural(z + h) - self.spec.to_natural(z - h)) / (2 * h)
        if not np.allclose(self.spec.jacobian_diag(z), num, rtol=1e-5, atol=1e-8):
            self.fail("transforms_round_trip", "jacobian_diag differs from differences of to_natural")

    def bad_parameters_raise(self):
        task, ok = self.task(10), self.spec.defaults()
        bad_sets = [({"no_such_parameter": 1.0}, "an unknown parameter")]
        for p in self.spec:
            bad_sets.append(({p.name: math.nan}, f"{p.name}=nan"))
            bad_sets.append(({p.name: math.inf}, f"{p.name}=inf"))
            if math.isfinite(p.lower):
                bad_sets.append(({p.name: p.lower - 1.0}, f"{p.name} below its lower bound"))
            if math.isfinite(p.upper):
                bad_sets.append(({p.name: p.upper + 1.0}, f"{p.name} above its upper bound"))
        for change, what in bad_sets:
            try:
                self.model.simulate({**ok, **change}, task, np.random.default_rng(0))
            except InputError:
                continue
            except Exception as exc:
                self.fail("bad_parameters_raise", f"{what}: simulate raised {type(exc).__name__}, not InputError")
            self.fail("bad_parameters_raise", f"{what}: simulate accepted it")

    def _data(self, n_subjects: int, n_trials: int, k: int):
        rng = self.rng(k)
        truth = self.spec.random_starts(n_subjects, rng)
        df = _simulate_table(self.model, truth, self.task(n_trials, compounds=True), rng, sessions=2, gaps=True)
        return df, self.model.pack(df), truth

    def parameters_matter(self):
        df, data, truth = self._data(2, 60, 2)
        x0 = self.spec.random_starts(4, self.rng(3))
        lanes = np.arange(4) % 2
        base = self.model.loglik(x0, data, lanes)
        if not np.all(np.isfinite(base)):
            self.fail("parameters_matter", f"non-finite log-likelihood {base} at start points inside the ranges")
        for j, p in enumerate(self.spec):
            x = x0.copy()
            x[:, j] = p.init_low + (p.init_high - p.init_low) * np.array([0.9, 0.1, 0.8, 0.2])
            changed = self.model.loglik(x, data, lanes)
            if np.all(np.abs(changed - base) <= 1e-10 * (1.0 + np.abs(base))):
                self.fail("parameters_matter", f"changing {p.name} from {np.round(x0[:, j], 4).tolist()} to "
                                               f"{np.round(x[:, j], 4).tolist()} leaves the log-likelihood unchanged: "
                                               f"the likelihood ignores {p.name}")

    def lanes_equal_loop(self):
        from dopa_rl.models.kernels import PARALLEL_MIN_LANES
        from dopa_rl.testing.reference import builtin_reference

        df, data, _ = self._data(3, 60, 4)
        rng = self.rng(5)
        n = 2 * PARALLEL_MIN_LANES + 3
        x = self.spec.random_starts(n, rng)
        lanes = rng.integers(0, data.n_subjects, size=n)
        many = self.model.loglik(x, data, lanes)
        single = np.array([self.model.loglik(x[i:i + 1], data, lanes[i:i + 1])[0] for i in range(n)])
        if many.shape != (n,) or not np.allclose(many, single, rtol=1e-12, atol=1e-12):
            i = int(np.argmax(np.abs(many - single))) if many.shape == (n,) else 0
            self.fail("lanes_equal_loop", f"{n} lanes in one call differ from one call per lane (lane {i}: "
                                          f"{many.reshape(-1)[i]!r} vs {single[i]!r})")
        reference = self.reference or getattr(self.model, "reference_loglik", None) or builtin_reference(self.model)
        if reference is None:
            self.fail("lanes_equal_loop", "no independent per-trial reference for this model: pass "
                                          "check_model(model, reference=fn) with fn(params: dict, trials) -> loglik, "
                                          "or give the model a reference_loglik(params, trials) method")
        for i in range(6):
            s = data.subjects[lanes[i]]
            rows = df[df["subject"].astype(str) == s]
            expected = float(reference(self.spec.as_dict(x[i]), rows))
            same = (math.isclose(many[i], expected, rel_tol=1e-9, abs_tol=1e-8)
                    or (not math.isfinite(expected) and not math.isfinite(many[i])))
            if not same:
                self.fail("lanes_equal_loop", f"subject {s} at {self.spec.as_dict(x[i])}: vectorised log-likelihood "
                                              f"{many[i]!r}, per-trial loop {expected!r}")

    def model_interface(self):
        import json

        m, what = self.model, "model_interface"
        try:
            opts = json.loads(json.dumps(m.options()))
        except (TypeError, ValueError) as exc:
            self.fail(what, f"options() {m.options()!r} does not go through JSON ({exc})")
        again = m.with_options(**opts) if opts else m
        if again.options() != m.options():
            self.fail(what, f"with_options(**options()) gives options {again.options()!r}, not {m.options()!r}")
        df, data, truth = self._data(2, 60, 8)
        lanes = np.arange(data.n_subjects)
        cue, out = m.rpes(truth, data, lanes)
        cue2, out2 = again.rpes(truth, again.pack(df), lanes)
        if not (np.array_equal(cue, cue2, equal_nan=True) and np.array_equal(out, out2, equal_nan=True)):
            self.fail(what, "the model rebuilt from its options() gives other RPEs")
        for s in lanes:
            n = int(data.n_trials[s])
            if cue.shape[1] < n or not np.isfinite(out[s, :n]).any():
                self.fail(what, f"rpes gives no finite outcome RPE for subject {data.subjects[s]}")
            learner = None
            rows = df.iloc[data.row_index[s, :n]]
            timed = "cue_time" in rows.columns and "outcome_time" in rows.columns
            for t, row in enumerate(rows.to_dict("records")):
                if data.resets[s, t]:
                    learner = m.online(self.spec.as_dict(truth[s]), n_bins=data.extra.get("n_bins"),
                                       n_options=data.extra.get("n_options"), structure=data.extra.get("structure"),
                                       subject=data.subjects[s])
                if m.kind == "choice":
                    c = row.get("choice")
                    if c is None or not np.isfinite(c) or c < 0:
                        continue       # a missed choice: no update, no RPE offline either
                    event = int(c)
                else:
                    event = row["cue"]
                kw = {"cue_s": row["cue_time"], "outcome_s": row["outcome_time"]} if timed else {}
                u = learner.step(event, float(row["reward"]), **kw)
                for got, want, at in ((u.rpe_cue, cue[s, t], "cue"), (u.rpe_outcome, out[s, t], "outcome")):
                    if not abs(got - want) <= 1e-12:
                        self.fail(what, f"subject {data.subjects[s]} trial {t}: the online learner's {at} RPE "
                                        f"{got!r} differs from the offline kernel's {want!r}")

    def gradient(self):
        df, data, _ = self._data(2, 60, 6)
        z = self.spec.to_unconstrained(self.spec.random_starts(4, self.rng(7)))
        lanes = np.arange(4) % 2
        ll, g = self.model.loglik_grad_z(z, data, lanes)
        if not np.allclose(ll, self.model.loglik(self.spec.to_natural(z), data, lanes), rtol=1e-12, atol=1e-10):
            self.fail("gradient", "loglik_grad_z returns a log-likelihood different from loglik")
        h = 1e-6
        kind = "analytic" if self.model.analytic_gradient else "finite-difference"
        for j, name in enumerate(self.spec.names):
            zp, zm = z.copy(), z.copy()
            zp[:, j] += h
            zm[:, j] -= h
            fd = (self.model.loglik(self.spec.to_natural(zp), data, lanes)
                  - self.model.loglik(self.spec.to_natural(zm), data, lanes)) / (2 * h)
            if not np.allclose(g[:, j], fd, rtol=1e-4, atol=1e-4):
                i = int(np.argmax(np.abs(g[:, j] - fd)))
                self.fail("gradient", f"d loglik / d {name} (unconstrained): {kind} {g[i, j]:.6g}, central "
                                      f"differences {fd[i]:.6g} (lane {i})")

    def recovery(self):
        """One parameter at a time: ``n_subjects`` learners spread over its start range, the others at their
        defaults (so parameters that trade off against each other cannot hide a failure)."""
        from dopa_rl.fit import fit

        k, S = len(self.spec), self.n_subjects
        lo = np.array([p.init_low for p in self.spec])
        hi = np.array([p.init_high for p in self.spec])
        truth = np.repeat(np.array([p.default for p in self.spec])[None], k * S, axis=0)
        for j in range(k):
            truth[j * S:(j + 1) * S, j] = lo[j] + (hi[j] - lo[j]) * (np.arange(S) + 0.5) / S
        rng = self.rng(8)
        df = _simulate_table(self.model, truth, self.task(self.n_trials), rng)
        result = fit(self.model, df, restarts=self.restarts, seed=self.seed, progress=False)
        packed = self.model.pack(df)
        ll_true = self.model.loglik(truth, packed, np.arange(k * S, dtype=np.int64))
        ll_fit = np.asarray(result.loglik, dtype=float)
        worse = np.flatnonzero(~(ll_fit >= ll_true - 1e-6))
        if worse.size:
            s = int(worse[0])
            self.fail("recovery", f"subject {s} (true {self.spec.as_dict(truth[s])}): fitted log-likelihood "
                                  f"{ll_fit[s]:.6f} below that at the true parameters {ll_true[s]:.6f}")
        fitted = np.asarray(result.params, dtype=float)
        if not np.all(np.isfinite(fitted)):
            self.fail("recovery", "non-finite fitted parameters")
        for j, name in enumerate(self.spec.names):
            rows = slice(j * S, (j + 1) * S)
            r = _spearman(truth[rows, j], fitted[rows, j])
            self.correlations[name] = r
            if name not in self.weak and not r >= self.min_correlation:
                self.fail("recovery", f"{name}: estimates correlate with the truth at Spearman {r:.2f} < "
                                      f"{self.min_correlation} ({S} subjects x {self.n_trials} trials, others at their "
                                      f"defaults; true {np.round(truth[rows, j], 3).tolist()}, fitted "
                                      f"{np.round(fitted[rows, j], 3).tolist()}); if the task cannot identify "
                                      f"{name}, say so with weak=({name!r},)")


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    if np.std(rb) == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


@dataclass
class ModelCheckReport:
    """What :func:`check_model` ran: seconds per check, and each parameter's recovery correlation."""

    model: str
    seconds: dict[str, float] = field(default_factory=dict)
    recovery: dict[str, float] = field(default_factory=dict)

    def __str__(self) -> str:
        rec = ", ".join(f"{k} {v:.2f}" for k, v in self.recovery.items())
        return (f"{self.model}: {len(self.seconds)} checks passed in {sum(self.seconds.values()):.1f} s"
                + (f"; recovery (Spearman) {rec}" if rec else ""))


def _checker(model, *, task=None, reference=None, n_subjects: int = 6, n_trials: int = 500, restarts: int = 4,
             min_correlation: float = 0.5, weak: tuple[str, ...] = (), seed: int = 0, skip: tuple[str, ...] = ()):
    from dopa_rl.models.base import Model

    if not isinstance(model, Model):
        raise InputError(f"check_model takes a model (dopa_rl.models.Model), got {type(model).__name__}")
    unknown = sorted(set(skip) - set(CHECKS))
    if unknown:
        raise InputError(f"check_model: unknown check(s) {', '.join(unknown)}; checks: {', '.join(CHECKS)}")
    not_params = sorted(set(weak) - set(model.param_names))
    if not_params:
        raise InputError(f"check_model: weak={not_params} are not parameters of {model.name} ({model.param_names})")
    return _Checker(model, task=task, reference=reference, n_subjects=n_subjects, n_trials=n_trials,
                    restarts=restarts, min_correlation=min_correlation, seed=seed, weak=weak)


def _run(checker: _Checker, name: str) -> float:
    """Run one check; seconds taken.  A crash inside a check is a failure of that check."""
    t0 = time.perf_counter()
    try:
        getattr(checker, name)()
    except ModelCheckError:
        raise
    except Exception as exc:  # the model crashed inside a check: name the check all the same
        raise ModelCheckError(checker.model.name, name, f"{type(exc).__name__}: {exc}") from exc
    return time.perf_counter() - t0


def check_model(model, *, task=None, reference: Callable[[Mapping[str, float], object], float] | None = None,
                n_subjects: int = 6, n_trials: int = 500, restarts: int = 4, min_correlation: float = 0.5,
                weak: tuple[str, ...] = (), seed: int = 0, skip: tuple[str, ...] = ()) -> ModelCheckReport:
    """Run the conformance table (:data:`CHECKS`) on ``model``.

    Parameters
    ----------
    model : dopa_rl.models.Model
        The model checked (built-in, from ``choice_model``/``pavlovian_model``, or your own).
    task : optional
        The task simulated (default: a two-armed bandit for choice models; Pavlovian partial reinforcement,
        and an overexpectation schedule with compounds for the likelihood checks).
    reference : callable, optional
        An independent per-trial log-likelihood ``fn(params, trials)`` of one subject's rows (built-in and
        family models have one).
    n_subjects, n_trials, restarts : int
        Size of the recovery study: ``n_subjects`` learners per parameter, ``n_trials`` trials each, fitted
        from ``restarts`` starts.
    min_correlation : float
        Spearman correlation with the truth each parameter's estimates need.
    weak : tuple of str
        Parameters the task cannot identify: their fits need only be finite.
    seed : int
        Seed of every simulation.
    skip : tuple of str
        Checks not to run (say why in your test).

    Returns
    -------
    ModelCheckReport
        Seconds per check and each parameter's recovery correlation.

    Raises
    ------
    ModelCheckError
        At the first failing check, naming it.

    See Also
    --------
    parametrize_with_checks : the same checks as one pytest item each.
    """
    checker = _checker(model, task=task, reference=reference, n_subjects=n_subjects, n_trials=n_trials,
                       restarts=restarts, min_correlation=min_correlation, weak=weak, seed=seed, skip=skip)
    report = ModelCheckReport(model.name)
    for name in CHECKS:
        if name not in skip:
            report.seconds[name] = _run(checker, name)
    report.recovery = dict(checker.correlations)
    return report


def model_checks(model, **options) -> Iterator[tuple[str, Callable[[object], None]]]:
    """Each check of :data:`CHECKS` that ``options`` do not skip, one at a time.

    Parameters
    ----------
    model : Model
        The model to check.
    **options
        Those of :func:`check_model` (which checks to skip, weakly identified parameters...).

    Yields
    ------
    name : str
        The check's name.
    check : callable
        ``check(model)`` runs that one check and raises :class:`ModelCheckError` naming it when it fails.
    """
    _checker(model, **options)  # bad options fail here, before any check runs
    for name in CHECKS:
        if name in options.get("skip", ()):
            continue

        def check(m, _name=name):
            _run(_checker(m, **options), _name)

        check.__name__ = f"check_{name}"
        yield name, check


def parametrize_with_checks(models, **options):
    """A ``pytest.mark.parametrize`` over every (model, check) pair: one test item per check.

    As scikit-learn's ``parametrize_with_checks``, so a failure names the model and the check in the test id.

    Parameters
    ----------
    models : sequence of Model
        The models to check.
    **options
        Those of :func:`check_model`; they apply to every model.

    Returns
    -------
    pytest.MarkDecorator
        The mark, parametrizing ``model`` and ``check``.

    Examples
    --------
    >>> from dopa_rl.testing import parametrize_with_checks     # doctest: +SKIP
    >>> @parametrize_with_checks([MODEL], weak=("phi",))      # doctest: +SKIP
    ... def test_my_model(model, check):
    ...     check(model)
    """
    import pytest

    params = [pytest.param(m, check, id=f"{m.name}-{name}")
              for m in models for name, check in model_checks(m, **options)]
    return pytest.mark.parametrize(("model", "check"), params)
