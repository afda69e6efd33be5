"""A live session against the real firmware in simavr: the classical-conditioning example config, licks
driven on the emulated lick pin, rewards from the device-timed programs, everything in the NWB."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from dopa_rl.io import nwb
from emulator_harness import EmulatedDUT
from dopa_rl.session import load_config, open_device, read_journal, run_session

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "classical_conditioning.toml"


def test_example_session_on_emulated_firmware(emulated_dut: EmulatedDUT, tmp_path) -> None:
    cfg, rig = load_config(EXAMPLE)
    stop = threading.Event()

    def lick():   # a thirsty animal: a 40 ms contact every 250 ms
        while not stop.is_set():
            emulated_dut.set_lick(1)
            time.sleep(0.04)
            emulated_dut.set_lick(0)
            time.sleep(0.21)

    licker = threading.Thread(target=lick, daemon=True)
    licker.start()
    try:
        result, path = run_session(cfg, rig, open_device(emulated_dut.url), tmp_path / "hil.nwb", n_trials=3,
                                   device_name=emulated_dut.url)
    finally:
        stop.set()
        licker.join(2)
    assert result.reason == "complete" and result.n_trials == 3
    evs = [r for r in read_journal(result.journal) if r["kind"] == "ev"]
    hello = next(r for r in read_journal(result.journal) if r["kind"] == "hello")
    assert hello["board"] != 4          # the firmware's board id, not the Python simulator's (PYTHON_SIM)
    t0, t1 = evs[0]["t_us"], evs[-1]["t_us"] - cfg.lick_debounce_us
    with nwb.NWBSession(path) as s:
        trials, events = s.behavior(), s.events()
    assert len(trials) == 3
    dev_licks = [t for t, lv in emulated_dut.pin_edges("lick") if lv and t0 <= t < t1]
    dev_valve = [t for t, lv in emulated_dut.pin_edges("valve") if lv and t >= t0]
    assert len(dev_licks) > 20
    lick = events["lick"][events["lick"] < (t1 - t0) / 1e6]
    # every lick on the pin is an event at its device time (micros() moves in 4 us steps)
    np.testing.assert_allclose(lick, (np.array(dev_licks) - t0) / 1e6, atol=10e-6)
    assert len(events.get("valve", [])) == len(dev_valve) == int((trials["reward"] > 0).sum())
    cue_edges = [t for t, lv in emulated_dut.pin_edges("cue") if lv and t >= t0]
    assert len(events.get("cue", [])) + len(events.get("tone", [])) == len(trials)
    assert len(events.get("cue", [])) == len(cue_edges)
    assert (trials["licks"] > 0).all()  # licking throughout: every cue-outcome window has licks
