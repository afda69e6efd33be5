"""A fit's model options round-trip exactly through JSON and NWB and give back the same prediction errors
(issue 15: a TD fit with representation="presence" used to write model_options {} and reload as CSC)."""
from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

from dopa_rl.fit import FitResult, fit
from dopa_rl.fit.neural import fit_dopamine
from dopa_rl.models import get_model
from dopa_rl.models.tasks import TrialTiming, acquisition

TD_OPTIONS = [{"representation": "csc"}, {"representation": "presence"},
              {"representation": "microstimulus", "n_micro": 5, "sigma": 0.12, "trace_tau_s": 1.5},
              {"representation": "presence", "timing": TrialTiming(bin_s=0.5, outcome_s=2.5, trial_s=4.0)}]


def _trials(model, seed=0):
    rng = np.random.default_rng(seed)
    task = acquisition(80, 0.8, timing=model.timing)
    tr = model.simulate({"alpha": 0.2, "gamma": 0.9, "lambda_": 0.8, "lick_intercept": 0.3, "lick_slope": 1.5},
                        task, rng, subject="m1").trials
    tr["dopamine_cue"] = tr["rpe_cue"] + rng.normal(0, 0.05, len(tr))
    tr["dopamine_outcome"] = tr["rpe_outcome"] + rng.normal(0, 0.05, len(tr))
    return tr.drop(columns=["rpe_cue", "rpe_outcome"])


def _through_nwb(result, trials, tmp_path):
    from pynwb import NWBHDF5IO, NWBFile

    from dopa_rl.io import nwb

    f = NWBFile(session_description="fit round trip", identifier="fit-rt",
                session_start_time=datetime(2026, 1, 1, tzinfo=timezone.utc))
    result.to_nwb(f, data=trials)
    path = tmp_path / "fit.nwb"
    with NWBHDF5IO(str(path), "w") as io:
        io.write(f)
    (tables,) = nwb.read_results(path).values()
    return tables


@pytest.mark.parametrize("options", TD_OPTIONS, ids=lambda o: "-".join(str(v) for v in o.values())[:40])
@pytest.mark.parametrize("mode", ["behavior", "neural"])
def test_td_fit_round_trips_through_json_and_nwb_with_the_same_rpes(options, mode, tmp_path):
    model = get_model("td", **options)
    trials = _trials(model)
    res = fit(model, trials, restarts=2, progress=False) if mode == "behavior" else \
        fit_dopamine(model, trials, mode="neural", restarts=2, progress=False)
    want = res.prediction_errors(trials)
    assert res.provenance["model_options"] == (model.options() if mode == "behavior" else
                                               {"fit": "neural", "base": "td", "base_options": model.options()})
    again = FitResult.from_json(res.to_json())
    assert again.model is not None and again.model.options() == res.model.options()
    pd.testing.assert_frame_equal(again.prediction_errors(trials), want)
    tables = _through_nwb(res, trials, tmp_path)
    back = FitResult.from_json(tables.result_json)
    assert back.model.options() == res.model.options()
    pd.testing.assert_frame_equal(back.prediction_errors(trials), want)
    for col in ("rpe_cue", "rpe_outcome", "value"):
        np.testing.assert_allclose(tables.per_trial[col].to_numpy(float), want[col].to_numpy(float), rtol=0, atol=0)
    np.testing.assert_allclose(tables.parameters.set_index("subject").loc["m1", res.param_names].to_numpy(float),
                               res.x[0])


def test_choice_options_round_trip():
    model = get_model("rw-softmax", q0=0.5, n_options=3)
    rng = np.random.default_rng(1)
    from dopa_rl.models.tasks import bandit_task

    trials = model.simulate({"alpha": 0.3, "beta": 3.0}, bandit_task(120, probs=(0.7, 0.3, 0.5)), rng).trials
    res = fit(model, trials, restarts=2, progress=False)
    again = FitResult.from_json(res.to_json())
    assert again.model.options() == {"q0": 0.5, "n_options": 3}
    pd.testing.assert_frame_equal(again.prediction_errors(trials), res.prediction_errors(trials))
