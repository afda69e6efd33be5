"""``dopa-rl distributional`` with its defaults on 40 real optotagged VTA dopamine neurons of the
variable-magnitude task (Eshel et al. 2015; Dabney et al. 2020).

The cells are not part of the project: they are the 40 .mat files of
dongjae-kim/efficient-coding-dist-rl @ 70e198096d6e0709e082ebccd05682a289ec5072 :
``measured_neurons/dabney_matlab/variable-reward/Light-ID dopamine/`` (see examples/dabney2020_to_nwb.py).
The test finds that folder through ``DOPA_RL_DABNEY2020`` or at ``dabney2020_vta_units/`` in the shared
real-data folder, and skips when neither exists.  The simulated classical population's half of the
check (no effect with the same command) is tests/test_cli_distributional.py.
"""
from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

from dopa_rl.cli import main

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "dabney2020_to_nwb.py"
# the shared real-data folder beside the project (as tests/conftest.py REAL_DATA; not imported: the name
# `conftest` is ambiguous with tests/hil/conftest.py in a whole-suite run)
REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


def _source() -> Path:
    env = os.environ.get("DOPA_RL_DABNEY2020")
    for p in ([Path(env)] if env else []) + [REAL_DATA / "dabney2020_vta_units"]:
        if p.is_dir() and len(list(p.glob("*.mat"))) == 40:
            return p
    pytest.skip("the 40 Dabney et al. 2020 cells are not here (set DOPA_RL_DABNEY2020 to their folder)")


@pytest.fixture(scope="module")
def real_cells(tmp_path_factory):
    spec = importlib.util.spec_from_file_location("dabney2020_to_nwb", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.convert(_source(), tmp_path_factory.mktemp("dabney2020"))


def test_default_procedure_on_real_cells_gives_the_published_split_half_effect(real_cells, tmp_path, capsys):
    out, figs = tmp_path / "real.json", tmp_path / "figs"
    code = main(["distributional", *map(str, real_cells), "--splits", "500", "--json", str(out),
                 "--plots", str(figs)])
    text = capsys.readouterr().out
    assert code == 0
    d = json.loads(out.read_text())
    assert d["estimator"] == "count" and d["axis"]["name"] == "utility" and d["window"] == [0.2, 0.6]
    sh, alt = d["split_half"], d["split_half_alternate"]
    # every unit is kept; Dabney et al. report a positive correlation in held-out data
    assert sh["n_units"] == 40 and alt["n_units"] == 40
    assert sh["r"] > 0.4 and sh["p"] < 0.01, sh
    assert alt["r"] > 0.4 and alt["p"] < 0.01, alt
    # the empirical utility axis rises with magnitude; reversal points are spread across it
    assert all(b > a for a, b in zip(d["axis"]["values"], d["axis"]["values"][1:]))
    rps = sorted(u["reversal_point"] for u in d["units"])
    assert rps[5] < d["axis"]["values"][4] < rps[-6]
    # doubtful units are flagged and listed, in the JSON and on stdout, and still counted above
    flagged = [u for u in d["units"] if u["flags"]]
    assert 1 <= len(flagged) <= 6
    assert len(d["flagged"]) == len(flagged)
    assert f"flagged (kept in every test): {len(flagged)} of 40 units" in text
    assert all(f["session"] in text for f in d["flagged"])
    assert sorted(p.name for p in figs.iterdir()) == ["decoded_distribution.png", "response_by_magnitude.png",
                                                      "tau_vs_reversal.png"]
