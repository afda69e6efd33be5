"""``dopa-rl demo``: the simulated rig session, the fits and the report, checked on numbers."""
from __future__ import annotations

import json

import numpy as np
from _session_support import nwb_contents

from dopa_rl.cli import main


def test_demo_report_figures_match_the_session(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--trials", "40", "--restarts", "2"]) == 0
    report = out / "report"
    summary = json.loads((report / "summary.json").read_text())
    trials, events = nwb_contents(out / "session.nwb")
    # the numbers printed are measured: NWB against the simulated device's own tally
    assert summary["trials"] == len(trials) == 40
    assert summary["rewards"] == int((trials["reward"] > 0).sum()) == summary["device_tally"]["valve_openings"]
    assert summary["valve_events"] == len(events["valve"]) == summary["rewards"]
    assert summary["licks"] == summary["device_tally"]["lick_contacts"] > 0
    assert summary["latency_ms"]["p50"] > 0
    for name in ("rw-pavlovian", "td"):
        f = summary["fits"][name]
        assert np.isfinite(f["loglik"]) and f["loglik"] < 0 and 0 <= f["params"]["alpha"] <= 1
    text = dict(line.split(": ", 1) for line in (report / "summary.txt").read_text().splitlines()[1:])
    assert {k: json.loads(v) for k, v in text.items()} == summary       # the text summary holds the same numbers
    # the figures: real, non-blank images
    import matplotlib.image as mpimg

    for png in ("licks_value.png", "rpe.png", "lick_raster.png"):
        img = mpimg.imread(report / png)
        assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 200
        assert img[..., :3].std() > 0.05                       # not a blank canvas
    # ... drawn from the session's data
    data = json.loads((report / "figure_data.json").read_text())
    for name, g in trials.groupby("trial_type"):
        lv, rp = data["licks_value.png"][name], data["rpe.png"][name]
        assert lv["trial"] == g["trial"].tolist() and lv["licks"] == g["licks"].tolist()
        np.testing.assert_allclose(lv["value"], g["value"])
        np.testing.assert_allclose(rp["rpe_cue"], g["rpe_cue"])
        np.testing.assert_allclose(rp["rpe_outcome"], g["rpe_outcome"])
    rows = data["lick_raster.png"]["licks_rel_s"]
    assert len(rows) == len(trials)
    lick = events["lick"]
    for row, cue in zip(rows[::7], trials["cue_time"].iloc[::7]):
        want = lick[(lick >= cue - 1.0) & (lick < cue + 3.0)] - cue
        np.testing.assert_allclose(row, want)
    # anticipatory licks counted inside the raster's cue-to-outcome window equal the trials' licks column
    for row, tr in zip(rows, trials.itertuples()):
        rel = np.array(row)
        assert ((rel >= 0) & (rel < tr.outcome_time - tr.cue_time)).sum() == tr.licks
