"""Per-trial dopamine tables: messy trials, matrices in table columns, and the real CC0 dLight matrices."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dopa_rl.errors import InputError
from dopa_rl.models import get_model
from dopa_rl.neural.regression import model_rpes
from dopa_rl.neural.tables import matrix_from_table, prepare_trials, responses_from_matrix, to_long

JEONG = "jeong2022_dlight_cs/binary.csv"


def _messy():
    return pd.DataFrame({
        "subject": "a", "session": "1", "trial": range(8),
        "cue": ["A", "A", None, "A", "", "A", "A", "A"],
        "cue_time": [1.0, 11.0, 21.0, np.nan, 41.0, 51.0, 61.0, 71.0],
        "outcome_time": [2.0, 12.0, 22.0, 32.0, 42.0, np.nan, 62.0, 72.0],
        "reward": [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, np.nan, 1.0], "licks": 1.0})


def test_uncued_trials_are_predicted_by_nothing_and_incomplete_ones_excluded():
    from dopa_rl.io.behavior import normalize_behavior

    clean, counts = prepare_trials(_messy())
    assert counts == {"uncued": 3, "missing_reward": 1, "missing_outcome_time": 1}
    assert clean["trial"].tolist() == [0, 1, 2, 3, 4, 7]
    assert clean["cue"].tolist() == ["A", "A", "", "", "", "A"]
    trials = normalize_behavior(clean)
    r = model_rpes(get_model("rw-pavlovian"), trials, {"alpha": 0.5})
    # V_A: 0 -> 0.5 -> 0.75 (uncued trials 2-4 touch nothing) -> 0.875
    np.testing.assert_allclose(r["rpe_cue"], [0.0, 0.5, 0.0, 0.0, 0.0, 0.75])
    np.testing.assert_allclose(r["rpe_outcome"], [1.0, 0.5, 1.0, 1.0, 1.0, 0.25])
    td = model_rpes(get_model("td"), trials, {"alpha": 0.5, "gamma": 0.9, "lambda_": 0.9})
    assert (td.loc[2:4, "rpe_cue"] == 0).all() and (td.loc[2:4, "rpe_outcome"] == 1.0).all()


def test_no_complete_trial_is_an_error():
    with pytest.raises(InputError, match="no trial is complete"):
        prepare_trials(_messy().assign(reward=np.nan))


def test_matrix_columns_and_time_axis():
    df = pd.DataFrame({"id": [1, 2], **{f"photometry.{k}": [float(k), 2.0 * k] for k in range(1, 11)}})
    mat, time = matrix_from_table(df, "photometry", rate=5.0, event_at=0.4)
    assert mat.shape == (2, 10) and mat[1, 9] == 20.0
    np.testing.assert_allclose(time, np.arange(10) / 5.0 - 0.4)
    with pytest.raises(InputError, match="no columns named dff.1"):
        matrix_from_table(df, "dff", 5.0, 0.4)
    with pytest.raises(InputError, match="`event_at` 9"):
        matrix_from_table(df, "photometry", 5.0, 9.0)


def test_long_table_needs_a_dopamine_column():
    with pytest.raises(InputError, match="dopamine_cue"):
        to_long(pd.DataFrame({"subject": ["a"], "trial": [0]}))


def test_real_jeong_matrices_cs_plus_cue_response_exceeds_cs_minus(real_data):
    """README reference: CS+ > CS- in 7/7 mice, paired t(6) = 4.57, p = 0.0038; CS+ mean peaks ~0.24 s."""
    from scipy.stats import ttest_rel

    df = pd.read_csv(real_data / JEONG).copy()
    mat, time = matrix_from_table(df, "photometry", rate=25.0, event_at=2.0)
    assert mat.shape == (690, 125) and time[50] == pytest.approx(0.0)
    df = df.assign(resp=responses_from_matrix(mat, time, window=(0.0, 1.0), baseline=(-1.0, 0.0)))
    per = df.groupby(["id", "cs"])["resp"].mean().unstack()
    assert (per[0] > per[1]).sum() == 7                      # cs 0 = CS+
    t, p = ttest_rel(per[0], per[1])
    assert t == pytest.approx(4.57, abs=0.05) and p == pytest.approx(0.0038, abs=0.0005)
    mean_plus = mat[df["cs"].to_numpy() == 0].mean(axis=0)
    after = time >= 0
    assert time[after][np.argmax(mean_plus[after])] == pytest.approx(0.24, abs=0.04)
