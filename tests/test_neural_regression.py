"""Regression of dopamine responses on model RPEs: synthetic NWB sessions with known parameters."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from _neural_support import TRUE_ALPHA
from dopa_rl.models import get_model
from dopa_rl.neural.dataset import load_responses
from dopa_rl.neural.regression import attach_rpe, mixed_on_rpe, model_rpes, regress_on_rpe, summary_table


def _regress(paths, signal, **kw):
    data = load_responses(paths, signal, **kw)
    rpes = model_rpes(get_model("rw-pavlovian"), data.trials, {"alpha": TRUE_ALPHA})
    return data, attach_rpe(data.long, data.trials, rpes)


@pytest.mark.parametrize("signal", ["photometry", "units"])
def test_rpe_slope_positive_and_significant_on_synthetic_sessions(rw_sessions, signal):
    data, long = _regress(rw_sessions, signal)
    recs = regress_on_rpe(long)
    per = 2 if signal == "photometry" else 2 * 4           # sessions (x units)
    assert len(recs) == 2 * per
    out = [r for r in recs if r["event"] == "outcome"]
    assert all(r["coef"]["rpe"] > 0 and r["pvalue"]["rpe"] < 1e-3 for r in out)
    cue = [r for r in recs if r["event"] == "cue"]
    assert np.median([r["coef"]["rpe"] for r in cue]) > 0
    assert sum(r["pvalue"]["rpe"] < 0.05 for r in cue) >= 0.75 * len(cue)
    assert all(r["n"] == 300 for r in recs)
    mixed = mixed_on_rpe(long)
    assert {r["event"] for r in mixed} == {"cue", "outcome"}
    assert all(r["coef"]["rpe"] > 0 and r["pvalue"]["rpe"] < 1e-3 for r in mixed)
    json.dumps(recs + mixed, allow_nan=False)               # no NaN anywhere
    assert "outcome" in summary_table(recs)


def test_shuffled_rpe_gives_no_slope(rw_sessions):
    """The test above can fail: with the RPEs shuffled across trials the slope vanishes."""
    _, long = _regress(rw_sessions[:1], "photometry")
    rng = np.random.default_rng(0)
    long["rpe"] = long.groupby("event")["rpe"].transform(lambda v: rng.permutation(v.to_numpy()))
    assert all(r["pvalue"]["rpe"] > 0.001 for r in regress_on_rpe(long))


def test_ols_matches_numpy_least_squares():
    rng = np.random.default_rng(1)
    x = rng.normal(size=50)
    y = 0.3 + 2.0 * x + rng.normal(0, 0.5, 50)
    long = pd.DataFrame({"subject": "a", "session": "1", "trial": range(50), "unit": None, "event": "cue",
                         "response": y, "rpe": x})
    (rec,) = regress_on_rpe(long)
    b1, b0 = np.polyfit(x, y, 1)
    assert rec["coef"]["rpe"] == pytest.approx(b1) and rec["coef"]["const"] == pytest.approx(b0)
    assert rec["unit"] is None and rec["n"] == 50


def test_unestimable_regressions_report_none_not_nan():
    long = pd.DataFrame({"subject": "a", "session": "1", "trial": range(5), "unit": None, "event": "cue",
                         "response": [1.0, 2.0, np.nan, 3.0, 4.0], "rpe": [0.5] * 5})
    (rec,) = regress_on_rpe(long)
    assert rec["coef"]["rpe"] is None and rec["pvalue"]["rpe"] is None and "does not vary" in rec["note"]
    assert rec["n"] == 4
    (mixed,) = mixed_on_rpe(long.assign(rpe=np.arange(5.0)))
    assert mixed["coef"]["rpe"] is None and "random intercept needs at least 2" in mixed["note"]
    json.dumps([rec, mixed], allow_nan=False)
