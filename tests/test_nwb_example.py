"""examples/read_nwb.py runs on a synthetic session and prints what it promises."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from dopa_rl.io.synthetic import simulate_sessions

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "read_nwb.py"


def test_read_nwb_example(tmp_path):
    (path,) = simulate_sessions("pavlovian", "rw", out=tmp_path / "session.nwb", seed=2, n_trials=20)
    code = EXAMPLE.read_text().splitlines()
    assert len([c for c in code if c.strip() and not c.lstrip().startswith("#")]) <= 32  # stays copyable (each read in its own try: a real file missing a part still shows the rest)
    run = subprocess.run([sys.executable, str(EXAMPLE), str(path)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "behavior: ready" in out and "photometry photometry: " in out and "at 100 Hz, control: True" in out
    assert sum(line.startswith("unit ") for line in out.splitlines()) == 4 and "[5 rows x" in out
