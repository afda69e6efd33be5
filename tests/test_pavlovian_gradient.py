"""The RW Pavlovian forward-mode gradient against central differences of the value kernel."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dopa_rl.models import get_model


def _table(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for s, n in (("a", 120), ("b", 75)):
        for t in range(n):
            rows.append({"subject": s, "session": "1" if t < n // 2 else "2", "trial": t,
                         "cue": rng.choice(["A", "B", "A+X", "X"]), "reward": float(rng.choice([0.0, 1.0, 2.5])),
                         "licks": float(rng.poisson(3)) if rng.random() > 0.1 else np.nan})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("name", ["rw-pavlovian", "rw-pavlovian-asym"])
def test_pavlovian_gradient_matches_central_differences(name):
    m = get_model(name)
    data = m.pack(_table(3))
    rng = np.random.default_rng(1)
    z = m.spec.to_unconstrained(m.spec.random_starts(40, rng))
    z[0, m.spec.names.index("lick_slope")] = 9.0      # rates beyond exp(LOG_RATE_MAX): the linear branch
    z[1, m.spec.names.index("lick_intercept")] = 11.0
    lanes = np.arange(40, dtype=np.int64) % 2
    ll, g = m.loglik_grad_z(z, data, lanes)
    np.testing.assert_allclose(ll, m.loglik(m.spec.to_natural(z), data, lanes), rtol=1e-13)
    h = 1e-6
    for j in range(z.shape[1]):
        e = np.zeros(z.shape[1])
        e[j] = h
        fd = (m.loglik(m.spec.to_natural(z + e), data, lanes) - m.loglik(m.spec.to_natural(z - e), data, lanes)) / (2 * h)
        np.testing.assert_allclose(g[:, j], fd, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(fd).max()))


def test_pavlovian_fit_reaches_the_finite_difference_optimum():
    """Fits with the analytic gradient end where fits with central differences end (the same optimum)."""
    from dopa_rl.fit import fit
    from dopa_rl.models import simulate_population, tasks

    m = get_model("rw-pavlovian")
    pop = simulate_population(m, tasks.pavlovian_task(150), 4, 7)

    class FD(type(m)):
        analytic_gradient = False

    fd = FD(m.name, list(m.spec), m.description)
    a, b = fit(m, pop.trials, restarts=4), fit(fd, pop.trials, restarts=4)
    np.testing.assert_allclose(a.loglik_, b.loglik_, atol=1e-4)
    # where no parameter sits on a bound the optimum is a point, and both fits reach it (at a bound the lick
    # intercept and slope trade off along a flat ridge)
    inside = ~a.at_bound.any(axis=1) & ~b.at_bound.any(axis=1)
    assert inside.sum() >= 2
    np.testing.assert_allclose(a.x[inside], b.x[inside], rtol=1e-3, atol=1e-4)
