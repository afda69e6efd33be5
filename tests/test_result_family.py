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
