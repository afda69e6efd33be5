"""The model interface shared by every learner, and the packed data the kernels run on.

A model is a parameter spec plus pure functions.  It holds structure only, never fitted state:

* ``simulate(params, task, rng) -> Simulation`` — behavior and prediction errors from a task;
* ``pack(df) -> Packed`` — a behavior table turned into padded arrays, one row per subject;
* ``loglik(x, data, lanes)`` — log-likelihood of each *lane* (a natural-space parameter row applied to the
  subject ``lanes[i]``), vectorized across lanes by a compiled kernel;
* ``loglik_grad_z(z, data, lanes)`` — log-likelihood and its gradient in unconstrained space (analytic
  forward mode where the model has it, else central differences computed as extra lanes in one call);
* ``trajectories(x, data, s)`` — the fitted per-trial values and prediction errors of subject ``s``;
* ``options()`` — the constructor options, JSON-able, so ``get_model(name, **options)`` rebuilds it exactly;
* ``learning_params`` — the parameters of the learning rule (the others belong to the observation model:
  choice, licks); ``pack_learning(df)`` packs a table for the rule alone (observation columns may be absent);
* ``rpes(x, data, lanes)`` — the prediction errors at the cue and at the outcome of every trial [L, T] for
  lanes of parameters (RW: the cue's summed value and ``r - value``; TD: the errors of the cue and outcome
  bins); ``rpe_events(x, data, lanes)`` — the same as timed events (TD: every bin, the time course);
* ``online(params, **context)`` — a learner that takes one trial at a time (:mod:`dopa_rl.models.online`),
  built on the per-trial kernel the offline recursions use.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from dopa_rl.errors import InputError
from dopa_rl.models._lazy import lazy_module
from dopa_rl.models.params import ParamSpec

__all__ = ["Packed", "Simulation", "trials_frame", "Groups", "pack_common", "take", "Model", "require_columns",
           "lick_counts", "check_options"]

pd = lazy_module("pandas")              # imported on first use: listing models stays fast


@dataclass
class Packed:
    """Behavior in padded arrays: index ``[s, t]`` = subject s, trial t (sessions concatenated in order)."""

    subjects: list[str]
    n_trials: np.ndarray              # [S] rows per subject
    resets: np.ndarray                # [S, T] True at the first trial of each session
    rewards: np.ndarray               # [S, T]
    row_index: np.ndarray             # [S, T] position of each trial in the source table (-1 padding)
    n_obs: np.ndarray                 # [S] observations that enter the likelihood (for BIC)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_subjects(self) -> int:
        return len(self.subjects)


@dataclass
class Simulation:
    """What a simulated learner did and felt.

    ``trials`` is a behavior table (DESIGN section 3); ``rpe`` and ``value`` are [n_trials, n_bins]
    time courses in bins of ``bin_s`` seconds from trial start (RW models put the cue response in the cue
    bin and the outcome response in the outcome bin; TD fills every bin).
    """

    trials: pd.DataFrame
    rpe: np.ndarray
    value: np.ndarray
    bin_s: float
    params: dict[str, float]
    model: str
    task: Any = None


def trials_frame(task, rng: np.random.Generator, subject: str, session: str, columns: dict) -> pd.DataFrame:
    """A simulated behavior table: ids, the task's columns, then event times drawn from the task's timing."""
    tm = task.timing
    T = task.n_trials
    starts = tm.trial_starts(T, rng)
    return pd.DataFrame({
        "subject": str(subject), "session": str(session), "trial": np.arange(T), **columns,
        "start_time": starts, "stop_time": starts + tm.trial_s,
        "cue_time": starts + tm.cue_onset_s, "outcome_time": starts + tm.outcome_s,
    })


class Groups(list):
    """Each subject's row positions in the source table (a list of arrays, in subject order), plus the same
    as flat arrays for vectorised gathers: ``rows`` (sorted by subject, then session and trial), ``sidx``
    (subject of each) and ``pos`` (position within the subject)."""

    rows: np.ndarray
    sidx: np.ndarray
    pos: np.ndarray


def pack_common(df: pd.DataFrame, n_obs_col: str | None = None) -> tuple[Packed, Groups]:
    """Group a validated behavior table by subject (order of first appearance); per-subject row positions.

    One grouping pass, linear in rows (a stable sort of integer codes): subjects in their order of first
    appearance, each subject's sessions in their order of first appearance (labels are text: "10" must not
    sort before "2"), trials in number order within a session (row order where there is no ``trial``).
    """
    df = df.reset_index(drop=True)
    N = len(df)
    if N == 0:
        raise InputError("behavior table has no rows")
    rew = pd.to_numeric(df["reward"], errors="coerce").to_numpy(dtype=float)
    if not np.all(np.isfinite(rew)):
        bad = np.flatnonzero(~np.isfinite(rew))
        raise InputError(f"column 'reward' is missing or not a finite number in {len(bad)} row(s) (first: row "
                         f"{bad[0] + 1}); validate tables with dopa_rl.io.behavior.normalize_behavior")
    subj_code, subjects = pd.factorize(df["subject"].astype(str), sort=False)
    if "session" in df.columns:
        # (subject, session) pairs numbered in order of first appearance: within a subject, that is the
        # order its sessions first appear
        labels, uniq = pd.factorize(df["session"].astype(str), sort=False)
        sess_code = pd.factorize(subj_code.astype(np.int64) * max(len(uniq), 1) + labels, sort=False)[0]
    else:
        sess_code = np.zeros(N, dtype=np.int64)
    has_trial = "trial" in df.columns
    trial = pd.to_numeric(df["trial"], errors="coerce").to_numpy() if has_trial else np.arange(N)
    order = np.lexsort((trial, sess_code, subj_code))   # stable: ties keep the row order
    sc, ss, tt = subj_code[order], sess_code[order], trial[order]
    if has_trial and N > 1:
        rep = (sc[1:] == sc[:-1]) & (ss[1:] == ss[:-1]) & (tt[1:] == tt[:-1])
        if rep.any():
            s = subjects[sc[1:][rep][0]]
            raise InputError(f"subject {s}: trial numbers repeat within a session; give each session its "
                             f"own label in a 'session' column")
    S = len(subjects)
    n_trials = np.bincount(sc, minlength=S).astype(np.int64)
    start = np.concatenate([[0], np.cumsum(n_trials)[:-1]])
    pos = np.arange(N) - start[sc]
    T = int(n_trials.max(initial=0))
    resets = np.zeros((S, T), dtype=np.bool_)
    rewards = np.zeros((S, T))
    row_index = np.full((S, T), -1, dtype=np.int64)
    row_index[sc, pos] = order
    rewards[sc, pos] = rew[order]
    first = np.ones(N, dtype=bool)
    first[1:] = (sc[1:] != sc[:-1]) | (ss[1:] != ss[:-1])
    resets[sc, pos] = first
    groups = Groups(np.split(order, np.cumsum(n_trials)[:-1]))
    groups.rows, groups.sidx, groups.pos = order, sc, pos
    packed = Packed([str(x) for x in subjects], n_trials, resets, rewards, row_index, n_trials.copy())
    return packed, groups


def take(values: np.ndarray, groups: list[np.ndarray], T: int, fill, dtype) -> np.ndarray:
    """Padded [S, T, ...] array of ``values`` (one entry per source row, any trailing shape) per subject."""
    values = np.asarray(values)
    out = np.full((len(groups), T) + values.shape[1:], fill, dtype=dtype)
    if isinstance(groups, Groups):
        out[groups.sidx, groups.pos] = values[groups.rows]
        return out
    for i, g in enumerate(groups):
        out[i, : len(g)] = values[g]
    return out


class Model(ABC):
    """Base class of every registered model."""

    name: str = ""
    kind: str = ""            # "choice" or "pavlovian"
    description: str = ""
    spec: ParamSpec
    required_columns: tuple[str, ...] = ("subject", "reward")
    #: True when ``_loglik_grad_natural`` gives an analytic gradient
    analytic_gradient: bool = False

    # -- to implement ---------------------------------------------------------------------------------
    @abstractmethod
    def pack(self, df: pd.DataFrame) -> Packed: ...

    @abstractmethod
    def loglik(self, x: np.ndarray, data: Packed, lanes: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def simulate(self, params: Mapping[str, float], task, rng: np.random.Generator, *,
                 subject: str = "1", session: str = "1") -> Simulation: ...

    @abstractmethod
    def trajectories(self, x: np.ndarray, data: Packed, s: int) -> pd.DataFrame: ...

    def _loglik_grad_natural(self, x: np.ndarray, data: Packed, lanes: np.ndarray):
        raise NotImplementedError

    # -- shared ----------------------------------------------------------------------------------------
    #: options ``with_options`` accepts (``get_model(name, **options)``)
    option_names: tuple[str, ...] = ()
    #: parameters of the observation model (not of the learning rule)
    observation_params: tuple[str, ...] = ()
    #: columns only the observation model reads (a dopamine fit of the learning rule does without them)
    observation_columns: tuple[str, ...] = ()

    def options(self) -> dict[str, Any]:
        """The constructor options that rebuild this model with ``get_model(name, **options)`` (JSON-able)."""
        return {}

    @property
    def learning_params(self) -> list[str]:
        """Names of the learning rule's parameters (the spec's order)."""
        return [n for n in self.spec.names if n not in self.observation_params]

    @property
    def trace_params(self) -> list[str]:
        """The learning parameters a fit to a whole photometry trace searches (the others at defaults)."""
        return self.learning_params

    def pack_learning(self, df: pd.DataFrame) -> Packed:
        """:meth:`pack` for the learning rule alone: observation columns the table lacks count as missing."""
        df = df.reset_index(drop=True)
        absent = {c: np.nan for c in self.observation_columns if c not in df.columns}
        return self.pack(df.assign(**absent) if absent else df)

    def rpes(self, x: np.ndarray, data: Packed, lanes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Prediction errors at the cue and at the outcome [L, T] (NaN: padding, missed trials) for the
        natural-space parameter rows ``x`` [L, k] applied to subjects ``lanes``.

        This default runs :meth:`trial_rpes` lane by lane; models with a compiled many-lane kernel override it.
        """
        x = np.atleast_2d(np.asarray(x, dtype=float))
        lanes = np.asarray(lanes, dtype=np.int64)
        T = data.rewards.shape[1]
        cue, out = np.full((len(lanes), T), np.nan), np.full((len(lanes), T), np.nan)
        for i, s in enumerate(lanes):
            n = int(data.n_trials[s])
            cue[i, :n], out[i, :n] = self.trial_rpes(x[i], data, int(s))
        return cue, out

    def trial_rpes(self, x: np.ndarray, data: Packed, s: int) -> tuple[np.ndarray, np.ndarray]:
        """Cue and outcome prediction errors [n_trials] of subject ``s``, from :meth:`trajectories`
        (columns ``rpe_cue``/``rpe_outcome``, else the value at the cue and ``rpe``)."""
        traj = self.trajectories(np.asarray(x, dtype=float), data, s)
        cols = traj.columns
        cue = traj["rpe_cue"] if "rpe_cue" in cols else traj["value_chosen"] if "value_chosen" in cols \
            else traj["value"]
        out = traj["rpe_outcome"] if "rpe_outcome" in cols else traj["rpe"]
        return cue.to_numpy(float), out.to_numpy(float)

    def rpe_events(self, x: np.ndarray, data: Packed, lanes: np.ndarray):
        """Prediction errors as timed events: ``(anchor, offset_s, amplitude)``.

        ``anchor`` [E]: ``"cue"`` or ``"outcome"``, the trial event each column is timed from; ``offset_s``
        [T, E]: seconds after it (per subject of ``lanes``: [L, T, E] broadcastable); ``amplitude`` [L, T, E].
        RW models: two events, the cue and the outcome responses; TD: every time bin of the trial.
        """
        cue, out = self.rpes(x, data, lanes)
        amp = np.stack([cue, out], axis=-1)
        return ("cue", "outcome"), np.zeros(amp.shape[1:]), amp

    def online(self, params: Mapping[str, float], **context):
        """A learner taking one trial at a time (:mod:`dopa_rl.models.online`) with these parameters."""
        raise InputError(f"model {self.name} offers no online learner")

    def with_options(self, **options) -> "Model":
        """A copy of this model with structural options changed (``get_model(name, q0=0.5)``)."""
        check_options(self.name, options, set(self.option_names))
        if options:  # a model that lists options must override this
            raise NotImplementedError(f"{type(self).__name__}.with_options")
        return self

    @property
    def param_names(self) -> list[str]:
        return self.spec.names

    def check_params(self, params: Mapping[str, float]) -> np.ndarray:
        return self.spec.vector(params, model=self.name)

    def loglik_grad_z(self, z: np.ndarray, data: Packed, lanes: np.ndarray, h: float = 1e-5):
        """Log-likelihood [L] and its gradient [L, k] with respect to the unconstrained parameters."""
        z = np.atleast_2d(np.asarray(z, dtype=float))
        if self.analytic_gradient:
            x = self.spec.to_natural(z)
            ll, gx = self._loglik_grad_natural(x, data, lanes)
            return ll, gx * self.spec.jacobian_diag(z)
        L, k = z.shape
        pts = np.repeat(z[:, None, :], 2 * k + 1, axis=1)
        for j in range(k):
            pts[:, 1 + 2 * j, j] += h
            pts[:, 2 + 2 * j, j] -= h
        flat = pts.reshape(-1, k)
        ll = self.loglik(self.spec.to_natural(flat), data, np.repeat(lanes, 2 * k + 1)).reshape(L, 2 * k + 1)
        with np.errstate(invalid="ignore"):  # -inf - -inf where a rate overflows: NaN, handled by the caller
            grad = (ll[:, 1::2] - ll[:, 2::2]) / (2 * h)
        return ll[:, 0], grad

    def hessian_z(self, z: np.ndarray, data: Packed, subjects: np.ndarray, h: float = 1e-4) -> np.ndarray:
        """Hessians [S, k, k] of the log-likelihood at ``z`` [S, k] (unconstrained) for each subject in
        ``subjects``, by central differences of the gradient; all points in one vectorized call."""
        z = np.atleast_2d(np.asarray(z, dtype=float))
        S, k = z.shape
        pts = np.repeat(z[:, None, :], 2 * k, axis=1)
        for j in range(k):
            pts[:, 2 * j, j] += h
            pts[:, 2 * j + 1, j] -= h
        lanes = np.repeat(np.asarray(subjects, dtype=np.int64), 2 * k)
        _, g = self.loglik_grad_z(pts.reshape(-1, k), data, lanes, h=h)
        g = g.reshape(S, 2 * k, k)
        H = np.transpose(g[:, 0::2, :] - g[:, 1::2, :], (0, 2, 1)) / (2 * h)
        return 0.5 * (H + np.transpose(H, (0, 2, 1)))

    def describe(self) -> str:
        rows = [f"{self.name}: {self.description}"]
        for p in self.spec:
            rows.append(f"  {p.name:<15} [{p.lower:g}, {p.upper:g}]  default {p.default:g}  {p.description}")
        return "\n".join(rows)


def require_columns(df: pd.DataFrame, model: Model, source: str = "behavior table") -> None:
    """An InputError naming the columns ``model`` needs that ``df`` lacks, and the table's own columns."""
    missing = [c for c in model.required_columns if c not in df.columns]
    if missing:
        # the table's own column names (not the subject/session/trial columns a reader may have added)
        own = df.attrs.get("source_columns", list(df.columns))
        raise InputError(f"{source}: model {model.name} needs column(s) {', '.join(missing)}; "
                         f"columns present: {', '.join(map(str, own))} (map yours with `columns` STD=YOURS)")


def require_event_columns(trials: pd.DataFrame, what: str, where: str = "") -> None:
    """InputError unless ``trials`` has usable ``cue_time``, ``outcome_time`` and ``reward`` columns (what a
    model timed in seconds needs: a trace-level fit, ANCCR's event stream)."""
    missing = [c for c in ("cue_time", "outcome_time", "reward")
               if c not in trials.columns or pd.to_numeric(trials[c], errors="coerce").isna().all()]
    if missing:
        raise InputError(f"{where + ': ' if where else ''}{what} needs trial column(s) {', '.join(missing)} "
                         f"(map yours with `columns`, e.g. `columns` reward=volume,outcome_time=reward_on)")


def lick_counts(df: pd.DataFrame, model: Model) -> np.ndarray:
    """The ``licks`` column as counts for a Poisson lick model (NaN: not counted); fractional values (rates)
    are an InputError naming the column, not silently fitted as counts."""
    licks = pd.to_numeric(df["licks"], errors="coerce").to_numpy(dtype=float)
    frac = np.isfinite(licks) & (licks != np.round(licks))
    if frac.any():
        i = np.flatnonzero(frac)
        raise InputError(f"column 'licks' has non-integer values (row {', '.join(str(j + 1) for j in i[:3])}"
                         f"{' and %d more' % (len(i) - 3) if len(i) > 3 else ''}: {licks[i[0]]:g}); model "
                         f"{model.name} fits lick counts per trial (Poisson): give counts, not rates")
    if (licks < 0).any():
        raise InputError("column 'licks' has negative values; give lick counts per trial")
    return licks


def check_options(name: str, options: Mapping, allowed: set[str]) -> None:
    """InputError naming every option of ``options`` that model ``name`` does not take."""
    bad = sorted(set(options) - allowed)
    if bad and not allowed:
        raise InputError(f"model {name} takes no options (got {', '.join(bad)})")
    if bad:
        raise InputError(f"model {name}: unknown option(s) {', '.join(bad)}; allowed: {', '.join(sorted(allowed))}")
