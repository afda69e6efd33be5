"""``dopa-rl regress --fit neural|trace`` say when the learning rate is not identified (a flat profile
likelihood) instead of printing a number: the constructed case gives every trial a new cue, so every RPE is
the same whatever alpha is; the same trials with their one repeated cue identify alpha and stay silent."""
from __future__ import annotations

import json

import pytest

from dopa_rl.cli import main


@pytest.fixture(scope="module")
def session():
    from dopa_rl.io.synthetic import simulate_session

    return simulate_session("pavlovian", "rw", params={"alpha": 0.3}, seed=9, n_trials=200)


def _novel(trials):
    return trials.assign(cue=[f"odour{k}" for k in range(len(trials))])


def _run(argv, capsys):
    code = main(argv)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_neural_fit_warns_on_a_flat_profile(session, tmp_path, capsys):
    from dopa_rl.neural.pipeline import PhotometryPipeline
    from dopa_rl.neural.tables import responses_from_trace

    proc = PhotometryPipeline().run(session.photometry[0])
    wide, _ = responses_from_trace(proc.z, proc.rate, proc.t0, session.trials)
    for novel in (True, False):
        table = tmp_path / f"t{novel}.csv"
        (_novel(wide) if novel else wide).to_csv(table, index=False)
        out = tmp_path / f"n{novel}.json"
        code, text, err = _run(["regress", str(table), "--model", "rw-pavlovian", "--signal", "table", "--fit",
                                "neural", "--restarts", "2", "--json", str(out)], capsys)
        assert code == 0, err
        d = json.loads(out.read_text())
        info = next(iter(d["identification"].values()))["alpha"]
        assert info["flat"] == novel, info
        if novel:
            assert [w["param"] for w in d["weakly_identified"]] == ["alpha"]
            assert "alpha=not identified" in text
            assert "alpha is not identified by these data: its profile likelihood is flat" in err
        else:
            assert d["weakly_identified"] == [] and "not identified" not in text + err
            assert abs(d["params"]["alpha"] - 0.3) < 0.1


def test_trace_fit_warns_on_a_flat_profile(session, tmp_path, capsys):
    from dataclasses import replace

    from dopa_rl.io.nwb_write import write_session

    for novel in (True, False):
        data = replace(session, trials=_novel(session.trials)) if novel else session
        path = write_session(tmp_path / f"s{novel}.nwb", data)
        out = tmp_path / f"t{novel}.json"
        code, text, err = _run(["regress", str(path), "--model", "rw-pavlovian", "--signal", "photometry", "--fit",
                                "trace", "--kernel-rise", "0.06", "--kernel-decay", "0.45", "--restarts", "1",
                                "--json", str(out)], capsys)
        assert code == 0, err
        d = json.loads(out.read_text())
        info = next(iter(d["identification"].values()))["alpha"]
        assert info["flat"] == novel, info
        assert ("alpha=not identified" in text) == novel
        assert ("profile likelihood is flat" in err) == novel


def test_kernels_rpe_trace_fit_warns_on_a_flat_profile(session, tmp_path, capsys):
    from dataclasses import replace

    from dopa_rl.io.nwb_write import write_session

    path = write_session(tmp_path / "novel.nwb", replace(session, trials=_novel(session.trials)))
    out = tmp_path / "k.json"
    code, text, err = _run(["kernels", str(path), "--events", "cue_time,outcome_time", "--rpe", "rw-pavlovian",
                            "--json", str(out)], capsys)
    assert code == 0, err
    d = json.loads(out.read_text())
    assert d["rpe"]["identification"]["alpha"]["flat"]
    assert "alpha is not identified by this trace" in err and "alpha NOT identified" in text
