"""The one family of results (issue 15 item 3): every result has summary, to_frame, an exact JSON round trip,
a figure that names what it shows, and to_nwb into a processing module that io.nwb.read_results gives back."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

from dopa_rl.errors import InputError
from dopa_rl.models import get_model, simulate_population, tasks
from dopa_rl.results import Result, jsonable


def _nwbfile():
    from pynwb import NWBFile

    return NWBFile(session_description="result test", identifier="result-test",
                   session_start_time=datetime(2026, 1, 1, tzinfo=timezone.utc))


def _roundtrip_nwb(result, tmp_path):
    """Write ``result`` into a fresh NWB file on disk, read every result module back."""
    from pynwb import NWBHDF5IO

    from dopa_rl.io import nwb

    f = _nwbfile()
    result.to_nwb(f)
    path = tmp_path / "result.nwb"
    with NWBHDF5IO(str(path), "w") as io:
        io.write(f)
    return nwb.read_results(path)


def _texts(fig):
    """Every title, axis label, tick label, legend entry and colour-bar label of a figure."""
    out = []
    for ax in fig.axes:
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        out += [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels()]
        leg = ax.get_legend()
        if leg is not None:
            out += [t.get_text() for t in leg.get_texts()]
    return [t for t in out if t]


@pytest.fixture(scope="module")
def comparison():
    from dopa_rl.fit.compare import compare_models

    pop = simulate_population(get_model("rw-softmax"), tasks.bandit_task(150), 4, 7, keep_latent=False,
                              subjects=["m11", "m12", "m13", "m14"])
    return compare_models([get_model("rw-softmax"), get_model("rw-softmax-sticky")], pop.trials, restarts=3,
                          seed=1, progress=False)


def test_jsonable_gives_valid_json_for_numpy_and_non_finite_values():
    d = jsonable({"a": np.float64("nan"), "b": np.arange(3), "c": [np.inf, np.int32(4)], "d": np.bool_(True)})
    assert d == {"a": None, "b": [0, 1, 2], "c": [None, 4], "d": True}
    json.dumps(d, allow_nan=False)


def test_comparison_is_a_result_with_an_exact_json_round_trip(comparison):
    from dopa_rl.fit.compare import Comparison

    assert isinstance(comparison, Result)
    text = comparison.to_json()
    back = Comparison.from_json(text)
    assert back.to_dict() == comparison.to_dict()
    np.testing.assert_array_equal(back.log_evidence, comparison.log_evidence)
    np.testing.assert_array_equal(back.bms.pxp, comparison.bms.pxp)
    pd.testing.assert_frame_equal(back.to_frame(), comparison.to_frame())
    assert back.fits[1].params.equals(comparison.fits[1].params)
    assert comparison.summary() == str(comparison)
    with pytest.raises(InputError, match="not a dopa_rl model comparison"):
        Comparison.from_json('{"models": []}')


def test_comparison_figure_labels_subjects_by_id_with_a_labelled_colour_bar(comparison):
    fig = comparison.plot()
    texts = _texts(fig)
    assert {"m11", "m12", "m13", "m14"} <= set(texts)       # ids, not 0..N-1
    assert "0" not in [t.get_text() for t in fig.axes[0].get_xticklabels()]
    cbar = [ax for ax in fig.axes if ax.get_ylabel().startswith("log evidence - best")]
    assert cbar and "nats" in cbar[0].get_ylabel()
    assert any("probability" in t for t in texts)


def test_comparison_to_nwb_round_trip(comparison, tmp_path):
    from dopa_rl.fit.compare import Comparison

    back = _roundtrip_nwb(comparison, tmp_path)
    tables = back["dopa_rl_comparison"]
    assert tables.kind == "comparison"
    assert list(tables.parameters["model"]) == comparison.models
    np.testing.assert_allclose(tables.parameters["bic"], comparison.to_frame()["bic"])
    assert tables.provenance["method"] == "mle"
    assert tables.provenance["model_provenance"][0]["data_fingerprint"].startswith("sha256:")
    assert Comparison.from_json(tables.result_json).to_dict() == comparison.to_dict()


def test_to_nwb_refuses_a_taken_module_name(comparison):
    f = _nwbfile()
    comparison.to_nwb(f)
    with pytest.raises(InputError, match="already has a processing module 'dopa_rl_comparison'"):
        comparison.to_nwb(f)
    comparison.to_nwb(f, name="dopa_rl_comparison_2")
    assert "dopa_rl_comparison_2" in f.processing


def _regression_result():
    """Two sessions whose pooled slope is positive while a naive line through all points is negative: each
    session's own offset is large and anti-correlated with its RPEs (the MixedLM intercept absorbs it)."""
    from dopa_rl.neural.regression import regress_responses

    rng = np.random.default_rng(3)
    rows = []
    for k, (offset, centre) in enumerate(((0.0, -1.0), (-6.0, 2.0))):
        rpe = centre + rng.normal(0, 0.5, 60)
        for event in ("cue", "outcome"):
            resp = offset + 0.8 * rpe + rng.normal(0, 0.2, rpe.size)
            rows.append(pd.DataFrame({"subject": "m1", "session": f"s{k + 1}", "trial": np.arange(60),
                                      "event": event, "unit": None, "response": resp, "rpe": rpe}))
    long = pd.concat(rows, ignore_index=True)
    params = pd.DataFrame({"alpha": [0.2]}, index=pd.Index(["m1"], name="subject"))
    return regress_responses(long, model="rw-pavlovian", signal="photometry", params=params,
                             info={"fit": "fixed"})


def test_regression_result_keeps_statsmodels_results_and_round_trips():
    from dopa_rl.neural.regression import RegressionResult

    res = _regression_result()
    assert isinstance(res, Result)
    assert len(res.fits) == len(res.records) == 2 * 2 + 2      # OLS per event and session, MixedLM per event
    ols = res.fits[0]
    assert ols.params["rpe"] == pytest.approx(res.records[0]["coef"]["rpe"])
    frame = res.to_frame()
    assert list(frame["model"]).count("mixedlm") == 2 and (frame["rpe"] > 0.6).all()
    back = RegressionResult.from_json(res.to_json())
    assert back.to_json() == res.to_json()
    assert back.fits == []
    assert "rw-pavlovian (fixed): alpha=0.2" in res.summary()


def test_regression_figure_draws_the_table_slope_with_units():
    res = _regression_result()
    fig = res.plot()
    texts = _texts(fig)
    assert any("window mean of z-scored dF/F" in t for t in texts)
    assert any(t.startswith("rw-pavlovian RPE at outcome") for t in texts)
    for ax in fig.axes:
        (line,) = ax.get_lines()
        x, y = line.get_data()
        drawn = (y[-1] - y[0]) / (x[-1] - x[0])
        pooled = [r for r in res.records if r["model"] == "mixedlm" and r["event"] in ax.get_title()][0]
        assert drawn == pytest.approx(pooled["coef"]["rpe"])   # same sign and value as the table's
        assert drawn > 0
        d = res.responses[res.responses["event"] == ("cue" if "cue" in ax.get_title() else "outcome")]
        assert np.polyfit(d["rpe"], d["response"], 1)[0] < 0   # the naive pooled line has the opposite sign


def test_regression_to_nwb_gives_back_the_per_trial_rpes(tmp_path):
    res = _regression_result()
    tables = _roundtrip_nwb(res, tmp_path)["dopa_rl_regression"]
    np.testing.assert_allclose(tables.per_trial["rpe"], res.responses["rpe"])
    np.testing.assert_allclose(tables.per_trial["response"], res.responses["response"])
    assert tables.provenance["params_by_subject"] == {"m1": {"alpha": 0.2}}
    assert tables.provenance["fit"] == "fixed"
    np.testing.assert_allclose(tables.parameters["rpe"], res.to_frame()["rpe"])


def test_kernel_result_round_trips_json_and_nwb(tmp_path):
    from dopa_rl.neural.kernels import KernelResult, event_kernel_regression

    rng = np.random.default_rng(0)
    fs, n = 20.0, 8000
    cue = np.sort(rng.uniform(5, n / fs - 5, 60))
    y = rng.normal(0, 0.3, n)
    for t in cue:
        i = int(round(t * fs))
        y[i: i + 20] += np.exp(-np.arange(20) / 6.0)
    fit = event_kernel_regression(y, fs, {"cue": cue})
    assert isinstance(fit, KernelResult) and isinstance(fit, Result)
    back = KernelResult.from_json(fit.to_json())
    assert back.to_json() == fit.to_json()
    np.testing.assert_array_equal(back.kernels["cue"], fit.kernels["cue"])
    frame = fit.to_frame()
    assert list(frame.columns) == ["lag_s", "cue"]
    tables = _roundtrip_nwb(fit, tmp_path)["dopa_rl_kernels"]
    np.testing.assert_allclose(tables.parameters["cue"], fit.kernels["cue"])
    assert tables.provenance["rate_hz"] == 20.0
    assert KernelResult.from_json(tables.result_json).r2_cv == fit.r2_cv
    texts = _texts(fit.plot())
    assert "lag from cue (s)" in texts and any(t.startswith("kernel (") for t in texts)
