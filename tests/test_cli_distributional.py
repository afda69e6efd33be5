"""``dopa-rl distributional`` end to end on synthetic variable-magnitude units NWB files (expectile and classical
populations), a CSV table of unit responses, and bad input."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dopa_rl.cli import main
from dopa_rl.io.nwb_write import write_session
from dopa_rl.io.synthetic import simulate_magnitude_session
from dopa_rl.models.distributional import expectile


def _run(argv, capsys):
    code = main(argv)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.fixture(scope="module")
def magnitude_files(tmp_path_factory):
    """30 expectile units and 30 classical units, 7 magnitudes, 500 trials; 4 trials without a reward and 4 of
    unknown type in the expectile file."""
    folder = tmp_path_factory.mktemp("magnitude")
    exp = simulate_magnitude_session(30, 500, seed=3, n_missing=4)
    cls = simulate_magnitude_session(30, 500, seed=4, classical=True)
    return {"expectile": write_session(folder / "expectile.nwb", exp), "classical": write_session(folder / "classical.nwb", cls),
            "tau": exp.unit_properties["tau"].to_numpy()}


def test_expectile_units_recovered_and_split_half_significant(magnitude_files, tmp_path, capsys):
    out, figs = tmp_path / "d.json", tmp_path / "figs"
    # the simulated units respond for 0.5 s after the outcome, so the window is set to that (default 0.2-0.6 s)
    code, text, err = _run(["distributional", str(magnitude_files["expectile"]), "--signal", "units", "--splits", "200",
                            "--window", "0", "0.5", "--json", str(out), "--plots", str(figs)], capsys)
    assert code == 0, err
    d = json.loads(out.read_text())
    assert {"units", "split_half", "decoded"} <= set(d)
    assert set(d["units"][0]) >= {"unit", "reversal_point", "tau", "slope_pos", "slope_neg"}
    assert set(d["split_half"]) == {"r", "interval", "p", "n_units"}
    assert d["excluded"] == {"missing_reward": 4, "unknown_type": 4} and d["n_trials"] == 492
    assert "excluded: missing_reward 4, unknown_type 4" in text
    tau = np.array([u["tau"] for u in d["units"]], float)
    true = magnitude_files["tau"]
    assert np.corrcoef(tau, true)[0, 1] > 0.7
    rp = np.array([u["reversal_point"] for u in d["units"]], float)
    # reversal points live on the empirical utility axis: map the true expectiles onto it
    ax = d["axis"]
    assert ax["name"] == "utility" and np.all(np.diff(ax["values"]) > 0)
    true_rp = np.interp(expectile(d["true"]["magnitudes"], true), ax["magnitudes"], ax["values"])
    assert np.corrcoef(rp, true_rp)[0, 1] > 0.6
    sh = d["split_half"]
    assert sh["r"] > 0.3 and sh["p"] < 0.01 and sh["interval"][0] <= sh["r"] <= sh["interval"][1] and sh["n_units"] == 30
    assert d["split_half_alternate"]["r"] > 0.3 and d["split_half_alternate"]["n_units"] == 30
    sup, dens = np.array(d["decoded"]["support"]), np.array(d["decoded"]["density"])
    assert np.trapezoid(dens, sup) == pytest.approx(1.0, abs=0.02)
    assert sorted(p.name for p in figs.iterdir()) == ["decoded_distribution.png", "response_by_magnitude.png",
                                                      "tau_vs_reversal.png"]


def test_classical_population_gives_no_split_half_effect(magnitude_files, tmp_path, capsys):
    # the defaults, exactly as on the real units (tests/test_distributional_real.py)
    out = tmp_path / "c.json"
    code, _, err = _run(["distributional", str(magnitude_files["classical"]), "--splits", "200", "--json", str(out)],
                        capsys)
    assert code == 0, err
    d = json.loads(out.read_text())
    sh, alt = d["split_half"], d["split_half_alternate"]
    assert sh["n_units"] == 30 and not (sh["r"] > 0 and sh["p"] < 0.05), sh
    assert not (alt["r"] > 0 and alt["p"] < 0.05), alt


def test_two_files_pool_units_and_use_filters_trial_types(magnitude_files, tmp_path, capsys):
    out = tmp_path / "two.json"
    code, _, err = _run(["distributional", str(magnitude_files["expectile"]), str(magnitude_files["classical"]),
                         "--use", "uncued", "--splits", "50", "--json", str(out)], capsys)
    assert code == 0, err
    d = json.loads(out.read_text())
    assert len(d["units"]) == 60 and len(d["sessions"]) == 2 and d["split_half"]["n_units"] == 60
    s0 = d["sessions"][0]
    assert s0["excluded"]["not_uncued"] == s0["n_read"] - 8 - s0["n_trials"] > 150


def test_csv_table_of_unit_responses(tmp_path, capsys):
    from dopa_rl.models.distributional import simulate_unit_responses

    rng = np.random.default_rng(5)
    mags = np.array([0.1, 0.3, 1.2, 2.5, 5, 10, 20])
    tau = rng.uniform(0.2, 0.8, 12)
    r = rng.choice(mags, 600)
    sim = simulate_unit_responses(tau * 0.2, (1 - tau) * 0.2, r, rng, gain=5.0, noise_sd=0.5, v0=5.0)
    df = pd.DataFrame({"volume": r, **{f"unit_{i}": sim["responses"][:, i] for i in range(12)}})
    df.loc[:2, "volume"] = 0.0                       # three trials without a reward
    path = tmp_path / "resp.csv"
    df.to_csv(path, index=False)
    out = tmp_path / "t.json"
    code, _, err = _run(["distributional", str(path), "--signal", "table", "--magnitude-column", "volume",
                         "--splits", "50", "--json", str(out)], capsys)
    assert code == 0, err
    d = json.loads(out.read_text())
    assert d["excluded"] == {"zero_reward": 3} and [u["unit"] for u in d["units"]][:2] == ["0", "1"]
    assert np.corrcoef([u["tau"] for u in d["units"]], tau)[0, 1] > 0.8
    code, _, err = _run(["distributional", str(path), "--signal", "table", "--magnitude-column", "volume",
                         "--use", "cued", "--json", str(tmp_path / "u.json")], capsys)
    assert code == 2 and "--use cued needs a trial-type column" in err and not (tmp_path / "u.json").exists()


@pytest.mark.parametrize("extra, needle", [
    (["--magnitude-column", "volume"], "no reward-magnitude column 'volume'"),
    (["--cued-column", "odour"], "no trial-type column 'odour'"),
    (["--signal", "table"], "no unit columns"),
    (["--units", "0,99"], "--units 99 not in the file"),
    (["--window", "0.5", "0"], "--window"),
])
def test_bad_input_exit_2_one_line_nothing_written(magnitude_files, tmp_path, capsys, extra, needle):
    out = tmp_path / "bad.json"
    path = magnitude_files["expectile"]
    if extra[:2] == ["--signal", "table"]:
        csv = tmp_path / "t.csv"
        csv.write_text("reward,x\n1,2\n2,3\n3,4\n4,5\n5,6\n")
        path = csv
    code, text, err = _run(["distributional", str(path), *extra, "--json", str(out), "--plots", str(tmp_path / "f")],
                           capsys)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists() and not (tmp_path / "f").exists()


def test_bad_output_folder_fails_before_reading(magnitude_files, tmp_path, capsys):
    code, _, err = _run(["distributional", str(magnitude_files["expectile"]), "--json", str(tmp_path / "no" / "x.json")],
                        capsys)
    assert code == 2 and "does not exist" in err
