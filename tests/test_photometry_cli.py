"""``dopa-rl photometry`` with the issue-20 additions end to end: named windows (JSON, CSV, NWB), trial-type
bands, transients as an EventsTable, the fit epoch and drift options; the real dLight recording; bad input."""
from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from scipy.special import erf

from _nwb_support import inspector_problems, sha256
from dopa_rl.cli import main
from dopa_rl.io.nwb_types import Photometry, SessionData, SessionMetadata
from dopa_rl.io.nwb_write import write_session

AKAM = "akam_dlight_nac/m53_NAc_L-2019-11-24-093939_dLight.nwb"
RATE, N_TRIALS, WIDTH, LAG = 50.0, 40, 0.3, 0.5
AMP = {"A": 0.10, "B": 0.04}


def _run(argv, capsys):
    code = main(argv)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _bump_integral(a, lo, hi, centre=LAG):
    s = WIDTH * np.sqrt(2)
    return a * WIDTH * np.sqrt(np.pi / 2) * (erf((hi - centre) / s) - erf((lo - centre) / s))


@pytest.fixture(scope="module")
def bump_session(tmp_path_factory):
    """Trials of two types; each cue is followed 0.5 s later by a Gaussian response (0.3 s SD) of known size."""
    start = np.arange(N_TRIALS) * 8.0 + 2.0
    cue_t = start + 2.0
    types = np.where(np.arange(N_TRIALS) % 2 == 0, "A", "B")
    t = np.arange(int((start[-1] + 10.0) * RATE)) / RATE
    bumps = np.zeros_like(t)
    for c, k in zip(cue_t, types):
        bumps += AMP[k] * np.exp(-0.5 * ((t - c - LAG) / WIDTH) ** 2)
    signal = 2.0 * (1.0 + bumps) + 1e-5 * np.random.default_rng(0).normal(size=t.size)
    trials = pd.DataFrame({"trial": np.arange(N_TRIALS), "cue": types, "reward": 1.0, "start_time": start,
                           "stop_time": start + 7.0, "cue_time": cue_t, "outcome_time": cue_t + 1.5})
    md = SessionMetadata(subject_id="m1", session_id="bumps", identifier="bumps-m1",
                         session_start_time=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
    path = tmp_path_factory.mktemp("bumps") / "bumps.nwb"
    write_session(path, SessionData(metadata=md, trials=trials, events={"cue": cue_t},
                                    photometry=[Photometry(timestamps=t, signal=signal, rate=RATE)]))
    dff = signal / signal.mean() - 1.0
    return path, cue_t, types, float(signal.mean()), float(dff.std())


def test_windows_bands_and_transients_against_the_planted_responses(bump_session, tmp_path, capsys):
    path, cue_t, types, mean, sd = bump_session
    before = sha256(path)
    out, csv, nwb_out, figs = tmp_path / "p.json", tmp_path / "w.csv", tmp_path / "out.nwb", tmp_path / "figs"
    code, text, err = _run(["photometry", str(path), "--event", "cue_time", "--detrend", "none", "--lowpass", "0",
                            "--control-fit", "none", "--window", "-2", "4", "--window", "early=0:1",
                            "--window", "all=-0.25:1.75", "--trial-type", "cue", "--n-boot", "500", "--transients",
                            "--json", str(out), "--csv", str(csv), "--nwb-out", str(nwb_out), "--plots", str(figs)],
                           capsys)
    assert code == 0, err
    s = json.loads(out.read_text())
    w = pd.DataFrame(s["windows"]["per_trial"])
    assert s["windows"]["units"]["auc"] == "z*s" and len(w) == 2 * N_TRIALS
    # z = (dF/F - mean) / SD with dF/F = signal / mean - 1, so a bump of size a is 2 a / (mean SD) in z
    # each trial's baseline is the mean of its samples in [-1, 0) s, where the bump's flank is not yet 0
    scale = 2.0 / (mean * sd)
    tb = np.arange(-RATE, 0) / RATE
    base = np.exp(-0.5 * ((tb - LAG) / WIDTH) ** 2).mean()
    for name, (lo, hi) in {"early": (0.0, 1.0), "all": (-0.25, 1.75)}.items():
        rows = w[w["window"] == name].sort_values("trial")
        assert list(rows["trial"]) == list(range(N_TRIALS))
        expect = np.array([AMP[k] * scale * (_bump_integral(1.0, lo, hi) - base * (hi - lo)) for k in types])
        np.testing.assert_allclose(rows["auc"], expect, rtol=2e-3)
        np.testing.assert_allclose(rows["peak_time"], LAG, atol=1.01 / RATE)   # the noise moves the flat top
        np.testing.assert_allclose(rows["peak"], [AMP[k] * scale * (1 - base) for k in types], rtol=2e-3)
    # the CSV and the NWB copy hold the same table; the input is untouched
    pd.testing.assert_frame_equal(pd.read_csv(csv), w, check_dtype=False)
    from dopa_rl.io.nwb_read import open_nwb, table_to_frame

    with open_nwb(nwb_out) as f:
        mod = f.processing["photometry_analysis"]
        nw = table_to_frame(mod["trial_windows"])
        np.testing.assert_allclose(nw["auc"].to_numpy(float), w["auc"].to_numpy(float))
        z_nwb = np.asarray(mod["z_dff"].data[:], float)
        assert mod["z_dff"].rate == RATE and len(z_nwb) == int(324.0 * RATE)
        assert abs(z_nwb.mean()) < 1e-3 and z_nwb.std() == pytest.approx(1.0, abs=1e-3)   # the z-scored trace
        ev = f.events["photometry_transients"].to_dataframe()
        prov = table_to_frame(mod["provenance"])
        prov = prov.set_index("key")["value"]
        assert json.loads(prov["event"]) == "cue_time" and json.loads(prov["windows.early"]) == [0.0, 1.0]
        assert json.loads(prov["pipeline.control_fit"]) == "none" and json.loads(prov["steps.0.step"]) == "dff"
    assert sha256(path) == before
    assert inspector_problems(path) == [] and inspector_problems(nwb_out) == []    # nothing the input lacked
    # one transient per planted response, at its peak, and nothing else
    tr = s["transients"]
    assert tr["n"] == N_TRIALS == len(ev)
    np.testing.assert_allclose(np.sort(ev["timestamp"].to_numpy()), cue_t + LAG, atol=1.5 / RATE)
    assert tr["settings"]["indicator"] == "dlight" and tr["settings"]["threshold_sd"] == 5.0
    # bands per trial type: both responses leave baseline around their peak
    g = s["bands"]["groups"]
    assert set(g) == {"A", "B"} and g["A"]["n_trials"] == g["B"]["n_trials"] == N_TRIALS // 2
    for k in "AB":
        assert any(a < LAG < b for a, b in g[k]["excludes_baseline"])
    assert {p.name for p in figs.iterdir()} == {"event_aligned_mean.png", "trial_heatmap.png",
                                               "trial_type_bands.png", "transients.png"}
    assert "window early: 40 trials" in text and "40 transients" in text


def test_spontaneous_mode_aligns_to_the_detected_transients(bump_session, tmp_path, capsys):
    """GuPPy #201: no TTLs needed; the detected transients are the events of the summary and the windows."""
    path, cue_t, _, _, _ = bump_session
    out = tmp_path / "sp.json"
    code, text, err = _run(["photometry", str(path), "--detrend", "none", "--lowpass", "0", "--control-fit", "none",
                            "--transients", "--event", "transients", "--window", "-2", "2", "--window", "top=-0.1:0.1",
                            "--baseline", "-2", "-1.5", "--n-boot", "200", "--json", str(out)], capsys)
    assert code == 0, err
    s = json.loads(out.read_text())
    assert s["event"] == "transients" and s["n_events"] == N_TRIALS and abs(s["peak_time"]) <= 1.0 / RATE
    w = pd.DataFrame(s["windows"]["per_trial"])
    assert list(w["trial"]) == list(range(N_TRIALS)) and (w["peak_time"].abs() <= 1.0 / RATE).all()
    assert s["bands"]["groups"]["all"]["n_trials"] == N_TRIALS


def test_fit_epoch_accepts_both_forms_and_says_so(bump_session, tmp_path, capsys):
    path = bump_session[0]
    outs = []
    for form in (["--fit-epoch", "10:200"], ["--fit-epoch", "10", "200"]):
        out = tmp_path / f"f{len(outs)}.json"
        code, text, err = _run(["photometry", str(path), "--detrend", "none", "--lowpass", "0", *form,
                                "--bleach", "poly1", "--bleach-epoch", "10:300", "--json", str(out)], capsys)
        assert code == 0, err
        outs.append(json.loads(out.read_text()))
    assert outs[0]["pipeline"]["fit_epoch"] == outs[1]["pipeline"]["fit_epoch"] == [10.0, 200.0]
    assert outs[0]["pipeline"]["bleach"] == "poly1" and outs[0]["steps"][-2]["step"] == "bleach_detrend"
    assert outs[0]["pipeline"]["bleach_epoch"] == outs[0]["steps"][-2]["epoch"] == [10.0, 300.0]


@pytest.mark.parametrize("extra, message", [
    (["--window", "cue=1:0"], "--window cue '1:0': the end must come after the start"),
    (["--window", "cue"], "--window cue: expected START STOP in seconds or NAME=START:STOP"),
    (["--window", "cue=0:1", "--window", "cue=1:2"], "given twice"),
    (["--window", "late=0:320"], "--window: none of the 40 'cue_time' events has -1 to 320 s"),
    (["--csv", "{tmp}/w.csv"], "--csv writes the per-trial window table"),
    (["--indicator", "gcamp6f"], "--indicator is a transient option; add --transients"),
    (["--transients", "--transient-threshold", "-1"], "--transient-threshold -1: must be a positive number"),
    (["--transients", "--indicator", "dlight", "--transient-window", "0.01"], "--transient-window 0.01"),
    (["--window", "cue=0:1", "--window", "0", "x"], "--window 0 x: expected START STOP"),
    (["--window", "cue=0:1", "late=1:2"], "one NAME=START:STOP per --window"),
    (["--trial-type", "nosuch", "--event", "cue_time"], "--trial-type nosuch: no such column"),
    (["--trial-type", "cue", "--event", "cue"], "--trial-type needs --event to be a time column"),
    (["--fit-epoch", "5:1"], "--fit-epoch '5:1': the end must come after the start"),
    (["--fit-epoch", "a:b"], "--fit-epoch 'a:b': expected START:STOP"),
    (["--fit-epoch", "90000:90010"], "fewer than 3 samples of the recording"),
    (["--bleach-epoch", "0:100"], "--bleach-epoch needs a --bleach method"),
    (["--bleach", "double-exp", "--bleach-epoch", "0:3"], "--bleach double-exp: --bleach-epoch 0 3 is too short"),
    (["--event", "transients"], "--event transients aligns to the detected transients: add --transients"),
    (["--nwb-out", "{tmp}/x.h5"], "--nwb-out {tmp}/x.h5: the file name must end in .nwb"),
    (["--n-boot", "10"], "--n-boot 10: at least 100"),
])
def test_bad_options_one_line_exit_2_nothing_written(bump_session, tmp_path, capsys, extra, message):
    path = bump_session[0]
    extra = [e.replace("{tmp}", str(tmp_path)) for e in extra]
    outs = ["--json", str(tmp_path / "o.json"), "--plots", str(tmp_path / "figs")]
    if "--nwb-out" not in extra:
        outs += ["--nwb-out", str(tmp_path / "o.nwb")]
    code, text, err = _run(["photometry", str(path), "--detrend", "none", "--lowpass", "0", *extra, *outs], capsys)
    assert code == 2
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert len(lines) == 1 and message.replace("{tmp}", str(tmp_path)) in lines[0], err
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "figs") == []
    assert not (tmp_path / "figs").exists() or not any((tmp_path / "figs").iterdir())


def test_the_real_dlight_recording_through_every_addition(real_data, tmp_path, capsys):
    """Akam's m53 NAc dLight1.1 session (90 min, 137 reward cues): the fit epoch (first 30 min), drift removal,
    the cue windows, transients and the bands, and the NWB copy."""
    path = real_data / AKAM
    before = sha256(path)
    out, nwb_out, figs = tmp_path / "a.json", tmp_path / "a.nwb", tmp_path / "figs"
    code, text, err = _run(["photometry", str(path), "--event", "reward_cue", "--fit-epoch", "0:1800",
                            "--bleach", "exp", "--window", "cue=0:1", "--window", "late=1:3", "--transients",
                            "--indicator", "dlight", "--n-boot", "1000", "--json", str(out), "--nwb-out", str(nwb_out),
                            "--plots", str(figs)], capsys)
    assert code == 0, err
    s = json.loads(out.read_text())
    assert s["n_events"] == 137 and s["control_fit"]["epoch"] == [0.0, 1800.0]
    # the first half hour alone gives a lower slope (0.149) than the whole session (0.232, README): the fit
    # epoch is used, and only it
    assert s["control_fit"]["slope"] == pytest.approx(0.149, abs=0.01)
    drift = next(st for st in s["steps"] if st["step"] == "bleach_detrend")
    assert drift["robust"] and drift["iterations"] >= 1 and 0 <= drift["downweighted"] < 0.2
    w = pd.DataFrame(s["windows"]["per_trial"])
    cue = w[w["window"] == "cue"]
    assert len(cue) == 137 and cue["auc"].mean() > 1.0 and 0.2 < cue["peak_time"].median() < 0.8
    # the window mean of the cue window agrees with the summary's response measure (same window, same baseline)
    assert cue["mean"].mean() == pytest.approx(s["response"]["mean"], rel=0.03)
    # transients: a plausible rate for NAc dLight, each above 5 robust SD
    tr = s["transients"]
    assert 20 < tr["n"] < 1000 and all(e["amplitude_sd"] >= 5.0 for e in tr["events"])
    assert any(a <= 0.4 <= b for a, b in s["bands"]["groups"]["all"]["excludes_baseline"])
    from dopa_rl.io.nwb_read import open_nwb

    with open_nwb(nwb_out) as f:
        assert len(f.events["photometry_transients"]) == tr["n"]
        assert len(f.processing["photometry_analysis"]["trial_windows"]) == 2 * 137
        assert "reward_cue" in f.events                              # the original content is kept
    assert sha256(path) == before
    assert inspector_problems(nwb_out) == inspector_problems(path)   # the source's own (subject age, sex), no new one
    assert (figs / "trial_type_bands.png").stat().st_size > 10_000


def test_the_real_recording_in_spontaneous_mode(real_data, tmp_path, capsys):
    """The dLight session's own transients as events: the mean around them peaks at 0 s (3.5 z: the session SD
    includes the transients, so 5 robust SDs of the baseline are fewer session SDs)."""
    out = tmp_path / "sp.json"
    code, _, err = _run(["photometry", str(real_data / AKAM), "--transients", "--event", "transients",
                         "--window", "-2", "2", "--window", "top=-0.25:0.25", "--baseline", "-2", "-1",
                         "--n-boot", "200", "--json", str(out)], capsys)
    assert code == 0, err
    s = json.loads(out.read_text())
    assert s["event"] == "transients" and s["n_events"] >= s["transients"]["n"] - 2   # all but the edges
    assert abs(s["peak_time"]) <= 1.01 / s["rate"] and s["peak_z"] > 3.0
