"""Issue 15 item 4: the library speaks Python (errors name parameters), the CLI speaks flags (it maps them to
its own options, and never suggests a flag it lacks); one set of trial options and one validator."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from _nwb_support import hand_session
from dopa_rl.cli import main
from dopa_rl.commands.common import speak_flags
from dopa_rl.errors import InputError
from dopa_rl.io import nwb


def run_cli(capsys, *argv):
    code = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return code, out, err


def test_library_errors_name_parameters_not_flags():
    from dopa_rl.fit import fit
    from dopa_rl.io.behavior import normalize_behavior
    from dopa_rl.models import get_model

    df = pd.DataFrame({"subject": "m", "choice": [0, 1, 0, 1], "reward": [1, 0, 1, 0]})
    with pytest.raises(InputError) as e:
        fit(get_model("rw-softmax"), df, restarts=0)
    assert "`restarts`" in str(e.value) and "--" not in str(e.value)
    with pytest.raises(InputError) as e:
        normalize_behavior(df.assign(choice=[0, 1, 2, 5]), n_options=3)
    assert "`n_options` 3" in str(e.value) and "--" not in str(e.value)
    with pytest.raises(InputError) as e:
        normalize_behavior(df.drop(columns="reward"))
    assert "`columns` reward=NAME" in str(e.value) and "--" not in str(e.value)


def test_speak_flags_maps_parameters_to_the_commands_own_flags():
    flags = {"series": "--photometry", "restarts": "--restarts", "subjects": "--subjects", "n_subjects": "--subjects"}
    assert speak_flags("name one with `series` NAME", flags) == "name one with --photometry NAME"
    assert speak_flags("`n_subjects` 0: need at least 1", flags) == "--subjects 0: need at least 1"
    # a parameter the command has no flag for is named plainly, never as a flag it lacks
    assert speak_flags("use `choice_base` 1", flags) == "use choice_base 1"
    assert speak_flags("``literal`` stays", flags) == "``literal`` stays"


@pytest.fixture(scope="module")
def two_fibers(tmp_path_factory):
    from dopa_rl.io.nwb_types import Photometry

    session = hand_session(n_trials=4)
    t = session.photometry[0].timestamps
    session.photometry.append(Photometry(timestamps=t, signal=np.linspace(0, 1, t.size), control=None, rate=50.0,
                                         name="photometry_dms", indicator="GCaMP6f", location="dorsomedial striatum"))
    return nwb.write_session(tmp_path_factory.mktemp("fibers") / "two.nwb", session)


@pytest.mark.parametrize("argv,flag", [
    (["photometry", "{f}"], "--series NAME"),
    (["kernels", "{f}", "--events", "cue_time"], "--series NAME"),
    (["regress", "{f}", "--model", "rw-pavlovian", "--signal", "photometry", "--params", "alpha=0.2"],
     "--series NAME"),
    (["inspect", "{f}", "--require", "photometry"], "--photometry NAME"),
])
def test_several_series_error_suggests_the_commands_own_flag(two_fibers, capsys, argv, flag):
    code, _, err = run_cli(capsys, *[a.format(f=two_fibers) for a in argv])
    assert code == 2, err
    assert "several candidate photometry series" in err and flag in err, err
    other = "--photometry" if flag.startswith("--series") else "--series"
    assert other not in err


def _choice_table(base: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 80
    choice = rng.integers(0, 2, n)
    reward = (rng.random(n) < np.where(choice == 1, 0.8, 0.2)).astype(float)
    return pd.DataFrame({"subject": "m1", "session": "s1", "trial": np.arange(n), "choice": choice + base,
                         "reward": reward, "dopamine_cue": rng.normal(0, 1, n),
                         "dopamine_outcome": reward - 0.5 + rng.normal(0, 0.3, n)})


def test_regress_takes_choice_base_like_fit(tmp_path, capsys):
    zero, one = tmp_path / "zero.csv", tmp_path / "one.csv"
    _choice_table(0).to_csv(zero, index=False)
    _choice_table(1).to_csv(one, index=False)
    common = ["--model", "rw-softmax", "--signal", "table", "--params", "alpha=0.3,beta=3"]
    code, _, err = run_cli(capsys, "regress", zero, *common, "--json", tmp_path / "zero.json")
    assert code == 0, err
    code, _, err = run_cli(capsys, "regress", one, *common, "--choice-base", "1", "--json", tmp_path / "one.json")
    assert code == 0, err
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("zero", "one"))
    assert a["regressions"] == b["regressions"]
    # and a 1-based file read as 0-based is refused by the one validator with the flag regress now has
    bad = _choice_table(1).assign(choice=lambda d: d["choice"] - 1 + 1)
    bad.loc[0, "choice"] = 0
    bad.loc[1, "choice"] = 3
    bad.to_csv(tmp_path / "bad.csv", index=False)
    code, _, err = run_cli(capsys, "regress", tmp_path / "bad.csv", *common, "--choice-base", "1", "--n-options", "2")
    assert code == 2 and "--n-options 2" in err and "--choice-base 0" in err, err


def test_nwb_and_csv_trials_get_the_same_message(tmp_path):
    """One validator: the same problem in a CSV table and in NWB trials reads the same."""
    from dopa_rl.io.behavior import load_behavior

    session = hand_session(n_trials=4)
    session.trials["reward"] = session.trials["reward"].astype(object)
    session.trials.loc[2, "reward"] = "lots"
    path = nwb.write_session(tmp_path / "s.nwb", session)
    session.trials.to_csv(tmp_path / "s.csv", index=False)
    msgs = []
    for p in (path, tmp_path / "s.csv"):
        with pytest.raises(InputError) as e:
            load_behavior(p)
        msgs.append(str(e.value).split(": ", 1)[1])
    assert msgs[0] == msgs[1]
    assert "column 'reward' has non-numeric values (row 3: 'lots')" in msgs[0]
