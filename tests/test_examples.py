"""The example scripts run as a user would run them."""
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("script,expect", [("fit_bandit.py", "preferred by BIC"), ("td_conditioning.py", "cue RPE")])
def test_example_runs(tmp_path, script, expect):
    out = tmp_path / "fig.png"
    r = subprocess.run([sys.executable, str(EXAMPLES / script), "--out", str(out)], capture_output=True, text=True,
                       cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    assert expect in r.stdout
    assert out.stat().st_size > 10_000


AKAM = "akam_dlight_nac/m53_NAc_L-2019-11-24-093939_dLight.nwb"


@pytest.mark.parametrize("argv,code", [
    (["read_nwb.py", "{f}"], 0),
    (["analyze_dopamine.py", "--nwb", "{f}", "--out", "{tmp}/out"], 2),
    (["fit_bandit.py", "{f}", "--out", "{tmp}/f.png"], 2),
])
def test_examples_on_a_real_file_give_one_line_not_a_traceback(real_data, tmp_path, argv, code):
    """The Akam dLight recording has photometry but no reward column: read_nwb shows what it can read and
    says what it cannot; the analysis scripts stop with one line naming the file, exit 2."""
    args = [a.format(f=real_data / AKAM, tmp=tmp_path) for a in argv]
    r = subprocess.run([sys.executable, str(EXAMPLES / args[0]), *args[1:]], capture_output=True, text=True,
                       cwd=tmp_path, timeout=300)
    assert r.returncode == code, r.stderr
    assert "Traceback" not in r.stderr
    if code == 2:
        assert r.stderr.count("\n") == 1 and AKAM.split("/")[1] in r.stderr and "no 'reward' column" in r.stderr
    else:
        assert "photometry raw_photometry: 705249 samples at 130 Hz" in r.stdout
        assert "trials: not usable as they are" in r.stdout and "no 'reward' column" in r.stdout
