"""The lab dashboard (dopa-rl run ... --dashboard) in headless Chromium: every rig shown with a rising trial
count, stop buttons that ask first, and no answer without the session's token."""
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from _cdp import Chromium, chromium_path
from test_session_lab import SPEED, child_env, configs

DOCS_IMAGE = Path(__file__).resolve().parents[1] / "docs" / "img" / "dashboard.png"

pytestmark = pytest.mark.skipif(chromium_path() is None and os.environ.get("CI") != "true",
                                reason="chromium not installed (.ci/install-system-packages installs it)")


def _status(url: str, method: str = "GET") -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _lines(proc):
    q = queue.Queue()

    def pump():
        for line in proc.stdout:
            q.put(line)
        q.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return q


def test_dashboard_in_headless_chromium(tmp_path):
    a, b, c = configs(tmp_path, (300, 300, 300))
    runs = tmp_path / "runs"
    runs.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "dopa_rl", "run", str(a), str(b), str(c), "--device", "sim",
                             "--speed", SPEED, "--out-dir", str(runs), "--dashboard"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=child_env())
    out = _lines(proc)
    first = out.get(timeout=60)
    assert first.startswith("dashboard: http://127.0.0.1:"), first
    url = first.split()[1]
    base, token = url.split("?token=")
    browser = Chromium(tmp_path / "chromium-profile")
    try:
        # no answer without the token (nor with a wrong one), for the page, the state and the buttons
        assert _status(base) == 403 and _status(base + "api/state") == 403
        assert _status(base + "api/state?token=" + token[:-1] + "x") == 403
        assert _status(base + "api/rigs/ma_t1/stop", "POST") == 403
        browser.open(url)
        names = browser.wait_for("document.querySelectorAll('.rig').length === 3 && "
                                 "[...document.querySelectorAll('.rig .state')].every(e => e.textContent === 'running') && "
                                 "[...document.querySelectorAll('.rig')].map(e => e.dataset.rig)")
        assert sorted(names) == ["ma_t1", "mb_t1", "mc_t1"]
        count = "Object.fromEntries([...document.querySelectorAll('.rig')].map(e => " \
                "[e.dataset.rig, parseInt(e.querySelector('.trials').textContent)]))"
        before = browser.evaluate(count)
        after = browser.wait_for(f"(() => {{ const c = {count}, b = {json.dumps(before)}; "
                                 "return Object.keys(b).every(k => c[k] >= b[k] + 3) && c; })()")
        assert all(after[k] >= before[k] + 3 for k in before)           # every rig's count rises, live
        # the figures: lick ticks in the raster, value and RPE paths
        assert browser.evaluate("document.querySelectorAll('svg[aria-label=\"lick raster\"] line').length") > 3
        assert browser.evaluate("[...document.querySelectorAll('svg[aria-label=\"value and RPE per trial\"] path')]"
                                ".every(p => p.getAttribute('d').length > 10)")
        shot = browser.screenshot(tmp_path / "dashboard.png")
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        if os.environ.get("DOPA_RL_WRITE_DOCS") == "1":               # refresh the picture in docs/sessions.md
            shutil.copyfile(shot, DOCS_IMAGE)
        # the API behind the page
        with urllib.request.urlopen(base + "api/state?token=" + token, timeout=10) as r:
            state = json.loads(r.read())
        rig = state["rigs"][0]
        assert {"name", "subject", "state", "trials_done", "rewards", "water_ul", "budget_ul", "link",
                "last_trials"} <= set(rig) and {"retries", "rearms", "lost_events"} <= set(rig["link"])
        # stop asks first: declined, nothing is sent and the rig runs on
        browser.evaluate("window.confirm = () => false; document.querySelector('.rig[data-rig=\"ma_t1\"] "
                         "button[data-act=\"stop\"]').click(); true")
        n = browser.evaluate(count)["ma_t1"]
        browser.wait_for(f"({count})['ma_t1'] >= {n + 2}")
        assert browser.evaluate("document.querySelector('.rig[data-rig=\"ma_t1\"] .state').textContent") == "running"
        # confirmed: each rig stops on its own (outputs off, NWB written)
        browser.evaluate("window.confirm = () => true; document.querySelector('.rig[data-rig=\"ma_t1\"] "
                         "button[data-act=\"stop\"]').click(); true")
        browser.wait_for("document.querySelector('.rig[data-rig=\"ma_t1\"] .state').textContent === 'interrupted'")
        assert browser.evaluate("document.querySelector('.rig[data-rig=\"mb_t1\"] .state').textContent") == "running"
        browser.evaluate("for (const n of ['mb_t1', 'mc_t1']) document.querySelector(`.rig[data-rig=\"${n}\"] "
                         "button[data-act=\"stop\"]`).click(); true")
        browser.wait_for("[...document.querySelectorAll('.rig .state')].every(e => e.textContent === 'interrupted')")
        proc.wait(120)                                                  # the rigs write their NWB files and exit
    finally:
        browser.close()
        if proc.poll() is None:                                         # the test failed: end the lab
            proc.terminate()
            proc.wait(60)
    assert proc.returncode == 1                                         # not every rig completed
    for name in ("ma_t1", "mb_t1", "mc_t1"):
        assert (runs / f"{name}.nwb").is_file()
        assert json.loads((runs / f"{name}.json").read_text())["reason"] == "interrupted"
