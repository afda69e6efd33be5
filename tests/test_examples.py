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
