"""Population simulation: many simulated subjects, each with its own parameters, as one behavior table.

``simulate_population(model, task, n_subjects, rng, params=None)`` is the one place a population is
simulated (the CLI, the tests, the benchmarks and the examples call it).  Subject ``s`` gets its own
random stream, spawned from ``rng``, so a seed reproduces exactly and adding subjects never changes the
earlier ones.  Within a subject, parameters are drawn first (unless given), then the sessions are played
one after the other from the same stream.
"""
from __future__ import annotations

from typing import Callable, Mapping, NamedTuple, Sequence

import numpy as np

from dopa_rl.errors import InputError
from dopa_rl.models._lazy import lazy_module

pd = lazy_module("pandas")   # imported on first use: importing dopa_rl.models stays fast

#: None, a mapping, a table or [S, k] array (one row per subject), or f(rng) -> mapping
ParamsArg = "None | Mapping[str, float] | pd.DataFrame | np.ndarray | Callable[[np.random.Generator], Mapping[str, float]]"


class Population(NamedTuple):
    """``trials``: the behavior table of every subject and session; ``params``: one row per subject
    (``subject`` then the model's parameters), the truth a fit should recover."""

    trials: pd.DataFrame
    params: pd.DataFrame


def subject_streams(rng: np.random.Generator | np.random.SeedSequence | int | None, n: int) -> list[np.random.Generator]:
    """``n`` independent generators spawned from ``rng`` (a Generator, a SeedSequence or an int seed)."""
    if isinstance(rng, np.random.Generator):
        return list(rng.spawn(n))
    seq = rng if isinstance(rng, np.random.SeedSequence) else np.random.SeedSequence(rng)
    return [np.random.default_rng(s) for s in seq.spawn(n)]


def draw_params(model, rng: np.random.Generator) -> dict[str, float]:
    """One subject's parameters: uniform within each parameter's start range (``init_low``..``init_high``)."""
    return model.spec.as_dict(model.spec.random_starts(1, rng)[0])


def _subject_params(model, params: ParamsArg, s: int, n: int, rng: np.random.Generator) -> dict[str, float]:
    if params is None:
        return draw_params(model, rng)
    if callable(params):
        return model.spec.as_dict(model.check_params(dict(params(rng))))
    if isinstance(params, pd.DataFrame):
        row = params.drop(columns=[c for c in ("subject",) if c in params.columns]).iloc[s]
        return model.spec.as_dict(model.check_params({k: float(v) for k, v in row.items()}))
    if isinstance(params, np.ndarray):
        return model.spec.as_dict(model.check_params(model.spec.as_dict(params[s])))
    return model.spec.as_dict(model.check_params(params))


def _check(model, task, n_subjects, params, n_sessions) -> None:
    problems = []
    if isinstance(n_subjects, bool) or not isinstance(n_subjects, (int, np.integer)) or n_subjects < 1:
        problems.append(f"n_subjects must be an integer >= 1 (got {n_subjects!r})")
    if isinstance(n_sessions, bool) or not isinstance(n_sessions, (int, np.integer)) or n_sessions < 1:
        problems.append(f"n_sessions must be an integer >= 1 (got {n_sessions!r})")
    kind = getattr(task, "kind", None)
    if kind is not None and kind != model.kind:
        problems.append(f"model {model.name} is a {model.kind} model; it cannot run a {kind} task "
                        f"({getattr(task, 'name', type(task).__name__)})")
    if isinstance(params, (pd.DataFrame, np.ndarray)) and not problems and len(params) != n_subjects:
        problems.append(f"params has {len(params)} rows for {n_subjects} subjects (one row per subject)")
    if isinstance(params, np.ndarray) and params.ndim != 2:
        problems.append(f"params array must be [subjects, {len(model.spec)}]")
    if problems:
        raise InputError("simulate_population: " + "; ".join(problems))


def simulate_population(model, task, n_subjects: int, rng: np.random.Generator | np.random.SeedSequence | int | None,
                        params: ParamsArg = None, *, n_sessions: int = 1, subjects: Sequence[str] | None = None,
                        sessions: Sequence[str] | None = None, keep_latent: bool = True,
                        carry_over: bool = False) -> Population:
    """Simulate ``n_subjects`` learners of ``model`` on ``task``, ``n_sessions`` sessions each.

    Parameters
    ----------
    model : Model
        The learner.
    task : Task
        The task (:mod:`dopa_rl.models.tasks`): trials, cues and reward schedule.
    n_subjects : int
        Number of subjects.
    rng : numpy.random.Generator, SeedSequence, int or None
        The randomness; each subject gets its own stream from it.
    params : mapping, DataFrame, array or callable, optional
        None (each subject's drawn in the model's start ranges), a mapping (the same for every subject;
        missing parameters take their defaults), a DataFrame or array with one row per subject, or a callable
        ``f(rng) -> mapping`` drawing one subject's parameters from its stream.
    n_sessions : int, default 1
        Sessions per subject.
    subjects, sessions : sequence of str, optional
        Labels (default "1", "2", ...).
    keep_latent : bool, default True
        False drops the model's latent columns (values, choice probabilities), leaving only what an
        experiment records.
    carry_over : bool, default False
        Each session continues from the values learned in the previous one (default: each starts afresh),
        as ``fit(..., carry_over=True)`` assumes.

    Returns
    -------
    Population
        The simulated trials and each subject's true parameters.
    """
    _check(model, task, n_subjects, params, n_sessions)
    n_subjects, n_sessions = int(n_subjects), int(n_sessions)
    subjects = [str(s + 1) for s in range(n_subjects)] if subjects is None else [str(s) for s in subjects]
    sessions = [str(k + 1) for k in range(n_sessions)] if sessions is None else [str(k) for k in sessions]
    if len(subjects) != n_subjects or len(sessions) != n_sessions:
        raise InputError("simulate_population: one label per subject and per session")
    frames, truth = [], []
    for s, srng in enumerate(subject_streams(rng, n_subjects)):
        p = _subject_params(model, params, s, n_subjects, srng)
        truth.append({"subject": subjects[s], **p})
        if carry_over and n_sessions > 1:  # one run through the sessions back to back, cut into sessions
            from dopa_rl.models.tasks import concatenate

            run = model.simulate(p, concatenate(task, n_sessions), srng, subject=subjects[s]).trials
            T = task.n_trials
            run["session"] = np.repeat(sessions, T)
            run["trial"] = np.tile(np.arange(T), n_sessions)
            offset = np.repeat(run["start_time"].to_numpy()[::T], T)
            for col in ("start_time", "stop_time", "cue_time", "outcome_time"):  # each session's clock from 0
                if col in run.columns:
                    run[col] = run[col] - offset
            frames.append(run)
            continue
        for k in range(n_sessions):
            frames.append(model.simulate(p, task, srng, subject=subjects[s], session=sessions[k]).trials)
    trials = pd.concat(frames, ignore_index=True)
    if not keep_latent:
        latent = [c for c in trials.columns if str(c).startswith(LATENT_PREFIXES)]
        trials = trials.drop(columns=latent)
    return Population(trials, pd.DataFrame(truth))


#: trial-table columns of a simulation that are the model's latent state, not behavior
LATENT_PREFIXES = ("V_", "p_choice_", "rpe_", "value")

__all__ = ["Population", "simulate_population", "draw_params", "subject_streams", "LATENT_PREFIXES"]

