"""Sync pulses on the TTL output at random intervals (SYNC_START): on the simulated device, in a session
(as `sync` events in the NWB, aligned by dopa-rl sync), and the firmware in the emulator (tests/hil)."""
import numpy as np
import pandas as pd
import pytest
from _session_support import fast_config, nwb_contents

from dopa_rl.cli import main
from dopa_rl.protocol import messages as P
from dopa_rl.rig.client import CommandRefused, DeviceClient
from dopa_rl.rig.transports import open_link
from dopa_rl.testing import SimulatedDUT


def xorshift_intervals(seed, n, lo, hi):
    """The interval sequence as protocol/messages.toml defines it (an independent reading of the rule)."""
    x, out = seed or 1, []
    for _ in range(n):
        x ^= (x << 13) % 2**32
        x ^= x >> 17
        x ^= (x << 5) % 2**32
        out.append(lo + x % (hi - lo + 1))
    return out


def test_simulated_device_pulses_match_pins_and_sequence():
    dut = SimulatedDUT(speed=50.0)
    try:
        with DeviceClient(open_link(dut.url), heartbeat_s=0.02) as dev:
            dev.start()
            dev.configure(host_timeout_ms=10000)
            assert dev.command(P.SyncStart(100, 400, 5, 1234)).value == 5
            got = []
            while len(got) < 30:
                ev = dev.events.get(timeout=10)
                if ev.name == "SYNC_PULSE":
                    got.append(ev)
            assert dev.command(P.SyncStop()).value >= 30
            with pytest.raises(CommandRefused):
                dev.command(P.SyncStart(50, 400, 5, 1))          # interval below the limit
            with pytest.raises(CommandRefused):
                dev.command(P.SyncStart(300, 200, 5, 1))         # max below min
    finally:
        dut.close()
    times = [e.t_device_us for e in got]
    assert [e.msg.n for e in got] == list(range(30))
    rises = [t for t, lv in dut.pin_edges("ttl") if lv][:30]
    falls = [t for t, lv in dut.pin_edges("ttl") if not lv][:30]
    assert rises == times                                        # the events carry the pin's times
    assert all(f - r == 5000 for r, f in zip(rises, falls))
    assert list(np.diff(times) // 1000) == xorshift_intervals(1234, 29, 100, 400)


def test_session_sync_pulses_in_the_nwb_align_another_clock(tmp_path, capsys):
    cfg = fast_config(tmp_path, 40, extra="[sync]\nmin_s = 0.2\nmax_s = 0.8\npulse_ms = 5\n")
    out = tmp_path / "s.nwb"
    assert main(["run", str(cfg), "--device", "sim", "--speed", "10", "--out", str(out)]) == 0
    _, events = nwb_contents(out)
    sync = np.asarray(events["sync"])
    assert len(sync) > 50 and np.all(np.diff(sync) >= 0.2 - 1e-6) and np.all(np.diff(sync) <= 0.8 + 1e-6)
    # another system's view of them: offset, drift, a few lost; dopa-rl sync finds the mapping
    rng = np.random.default_rng(0)
    kept = sync[rng.random(len(sync)) > 0.05]
    pd.DataFrame({"t": 7.5 + (1 + 30e-6) * kept}).to_csv(tmp_path / "ephys.csv", index=False)
    assert main(["sync", str(out), "--pulses", str(tmp_path / "ephys.csv"), "--out", str(tmp_path / "a.nwb"),
                 "--json", str(tmp_path / "m.json")]) == 0
    import json

    m = json.loads((tmp_path / "m.json").read_text())
    assert m["rig_events"] == "sync" and m["n_matched"] == len(kept)
    assert abs(m["offset_s"] - 7.5) < 1e-5 and abs(m["drift_ppm"] - 30) < 0.5
    # aligned to that clock already: the command names its flag, the library its parameter
    capsys.readouterr()
    assert main(["sync", str(tmp_path / "a.nwb"), "--pulses", str(tmp_path / "ephys.csv"),
                 "--out", str(tmp_path / "b.nwb")]) == 2
    err = capsys.readouterr().err
    assert "already aligned to clock 'ephys'" in err and "use another --clock name" in err, err
    from dopa_rl.errors import InputError
    from dopa_rl.io.nwb_sync import write_alignment

    with pytest.raises(InputError, match="use another `clock` name$"):
        write_alignment(tmp_path / "a.nwb", tmp_path / "c.nwb", clock="ephys", summary=m, rig_times=sync,
                        other_times=kept, pulses_file="ephys.csv", column="t", rig_events="sync")
    assert not (tmp_path / "b.nwb").exists() and not (tmp_path / "c.nwb").exists()


def test_sync_config_bad_values(tmp_path, capsys):
    cfg = fast_config(tmp_path, 5, extra="[sync]\nmin_s = 2\nmax_s = 1\nspeed = 3\n")
    assert main(["run", str(cfg), "--device", "sim", "--out", str(tmp_path / "x.nwb")]) == 2
    err = capsys.readouterr().err
    assert "sync.min_s = 2" in err and "sync.speed: unknown key" in err
