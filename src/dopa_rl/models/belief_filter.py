"""The hidden-state model of a trial and its forward belief filter (pure maths; docs/belief-td.md).

A discretised semi-Markov process in the spirit of Daw et al. (2006) and Starkweather et al. (2017, Nat
Neurosci 20:581), one time bin per step.  For one cue the hidden states are the ISI sub-states ``0 .. K-1``
(bins since the cue) and the ITI (index ``K``); observations are ``NOTHING``, ``CUE`` and ``REWARD``:

* ITI -> ITI, nothing, with probability ``1 - h`` (``h``: the per-bin ITI hazard, a cue comes);
* ITI -> ISI 0, cue, with ``h * (1 - p_omit)`` (a rewarded trial starts);
* ITI -> ITI, cue, with ``h * p_omit`` (an omission trial: the cue comes, the state stays the ITI's);
* ISI k -> ITI, reward, with ``H(k + 1)`` (the hazard of the reward-time distribution at delay k + 1 bins);
* ISI k -> ISI k + 1, nothing, with ``1 - H(k + 1)``.

The joint ``M[m, i, j] = P(s' = j, x = m | s = i)`` holds all of it; the filter is
``b'_j = sum_i b_i M[x, i, j] / P(x | b)``.  Optional Weber-scaled timing noise: the animal believes the
reward-time distribution blurred by a Gaussian of standard deviation ``weber * delay`` (scalar timing),
so its hazards are those of the blurred distribution.
"""
from __future__ import annotations

import numpy as np

from dopa_rl.errors import InputError

__all__ = ["NOTHING", "CUE", "REWARD", "weber_blur", "hazards", "joint_matrix", "filter_beliefs", "trial_observations"]

NOTHING, CUE, REWARD = 0, 1, 2


def weber_blur(pmf: np.ndarray, weber: float, max_delay: int | None = None) -> np.ndarray:
    """The reward-time distribution ``pmf`` [D + 1] (index = delay in bins, ``pmf[0] == 0``) as an animal with
    scalar timing noise believes it: each delay ``j`` spread over delays ``d >= 1`` by a Gaussian of sd
    ``weber * j`` (bins ``[d - 0.5, d + 0.5)``, renormalised over ``1 .. max_delay``).

    ``weber = 0`` returns ``pmf`` (padded to ``max_delay + 1``).  ``max_delay`` defaults to the largest delay
    with mass plus four standard deviations."""
    from scipy.stats import norm

    pmf = np.asarray(pmf, dtype=float)
    if weber < 0 or not np.isfinite(weber):
        raise InputError(f"`weber` {weber}: the timing noise must be a finite number >= 0")
    D = pmf.size - 1
    if max_delay is None:
        max_delay = D if weber == 0 else int(np.ceil(D + 4 * weber * D))
    out = np.zeros(max(max_delay, D) + 1)
    if weber == 0:
        out[: D + 1] = pmf
        return out
    d = np.arange(1, out.size)
    for j in np.flatnonzero(pmf):
        sd = weber * j
        w = norm.cdf(d + 0.5, j, sd) - norm.cdf(d - 0.5, j, sd)
        out[1:] += pmf[j] * w / w.sum()
    return out


def hazards(pmf: np.ndarray) -> np.ndarray:
    """``H[d] = P(reward at delay d | no reward before d)`` for a pmf over delays (``H[d] = 1`` at the last
    delay with mass and 0 where the survival is 0)."""
    pmf = np.asarray(pmf, dtype=float)
    survival = np.cumsum(pmf[::-1])[::-1]          # P(delay >= d), summed from the tail (no cancellation)
    with np.errstate(divide="ignore", invalid="ignore"):
        H = np.where(survival > 0, pmf / survival, 0.0)
    nz = np.flatnonzero(pmf > 0)
    if nz.size:
        H[nz[-1]] = 1.0
    return np.clip(H, 0.0, 1.0)


def joint_matrix(pmf: np.ndarray, p_omit: float, iti_hazard: float, K: int) -> np.ndarray:
    """``M[m, i, j] = P(next state j, observation m | state i)`` [3, K + 1, K + 1] for one cue.

    ``pmf`` [D + 1]: the (believed) reward-time distribution over delays in bins (``D <= K - 1``); ``p_omit``:
    the probability a cue starts an omission trial; ``iti_hazard``: the per-bin probability of a cue in the
    ITI.  An all-zero ``pmf`` (a cue never rewarded) leaves the ISI states unreachable."""
    pmf = np.asarray(pmf, dtype=float)
    if pmf.size > K:
        raise InputError(f"reward-time distribution reaches {pmf.size - 1} bins after the cue; the trial grid has "
                         f"{K - 1}")
    if not 0.0 <= p_omit <= 1.0:
        raise InputError(f"`p_omit` {p_omit}: an omission probability is in [0, 1]")
    if not 0.0 < iti_hazard < 1.0:
        raise InputError(f"ITI hazard {iti_hazard}: a per-bin probability in (0, 1)")
    if pmf.sum() <= 0:
        p_omit = 1.0
    H = np.zeros(K + 1)
    H[: pmf.size] = hazards(pmf)
    iti = K
    M = np.zeros((3, K + 1, K + 1))
    M[NOTHING, iti, iti] = 1.0 - iti_hazard
    M[CUE, iti, 0] = iti_hazard * (1.0 - p_omit)
    M[CUE, iti, iti] = iti_hazard * p_omit
    k = np.arange(K - 1)
    M[REWARD, k, iti] = H[k + 1]
    M[NOTHING, k, k + 1] = 1.0 - H[k + 1]
    M[NOTHING, K - 1, iti] = 1.0     # the last sub-state (unreachable when D <= K - 2) returns to the ITI
    return M


def trial_observations(n_bins: int, cue_bin: int, outcome_bins: np.ndarray, rewarded: np.ndarray) -> np.ndarray:
    """Observation codes [N, n_bins] of trials: the cue in ``cue_bin``, a reward in ``outcome_bins`` where
    ``rewarded``, nothing elsewhere."""
    ob = np.asarray(outcome_bins, dtype=np.int64)
    obs = np.full((ob.size, n_bins), NOTHING, dtype=np.int64)
    obs[:, cue_bin] = CUE
    rew = np.asarray(rewarded, dtype=bool)
    obs[np.flatnonzero(rew), ob[rew]] = REWARD
    return obs


def filter_beliefs(M: np.ndarray, obs: np.ndarray, b0: np.ndarray, *, labels=None) -> np.ndarray:
    """Beliefs [N, n, S] after each observation of ``obs`` [N, n] (codes), from the belief ``b0`` [S] before
    the first; the N sequences in one vectorised pass per step.

    An observation the model gives probability 0 (a reward at a delay the reward-time distribution excludes,
    an omission when ``p_omit`` is 0) is an InputError naming the sequence (``labels[i]``, else its index)."""
    obs = np.atleast_2d(np.asarray(obs, dtype=np.int64))
    N, n = obs.shape
    S = M.shape[1]
    out = np.empty((N, n, S))
    b = np.broadcast_to(np.asarray(b0, dtype=float), (N, S))
    for t in range(n):
        un = np.einsum("ni,nij->nj", b, M[obs[:, t]])
        z = un.sum(axis=1)
        if np.any(z <= 0):
            i = int(np.flatnonzero(z <= 0)[0])
            kind = ("nothing", "a cue", "a reward")[obs[i, t]]
            name = labels[i] if labels is not None else f"sequence {i}"
            raise InputError(f"{name}: {kind} in bin {t} has probability 0 under the hidden-state model "
                             f"(a reward outside the reward-time distribution, or an omission with p_omit 0)")
        b = un / z[:, None]
        out[:, t] = b
    return out
