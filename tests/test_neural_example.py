"""examples/analyze_dopamine.py runs as a lab would run it."""
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_analyze_dopamine_example(tmp_path):
    r = subprocess.run([sys.executable, str(EXAMPLES / "analyze_dopamine.py"), "--out", str(tmp_path / "out")],
                       capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "td fitted to dopamine: alpha=" in r.stdout and "RPE slope at outcome" in r.stdout
    slopes = [float(line.split("RPE slope at outcome: ")[1].split()[0]) for line in r.stdout.splitlines()
              if "RPE slope at outcome" in line]
    assert len(slopes) == 2 and all(s > 0 for s in slopes)
    alpha_td = float(r.stdout.split("td fitted to dopamine: alpha=")[1].split(",")[0])
    assert abs(alpha_td - 0.15) < 0.1
    figs = {p.name for p in (tmp_path / "out").glob("*.png")}
    assert {"cue_early_late.png", "outcome_rewarded_omitted.png", "cue_heatmap.png", "response_vs_rpe_td.png"} <= figs
