"""dopa-rl check: each part of the rig judged by what the simulated device reports; failures are caught."""
import json

import pytest

from dopa_rl.cli import main
from dopa_rl.rig.check import run_checks
from dopa_rl.rig.client import DeviceClient
from dopa_rl.rig.transports import open_link
from dopa_rl.testing import SimulatedDUT

SPEED = 10.0


def ttl_wired_to_analog(dut_box):
    """An analog input that reads the TTL pin (1023 while it is high): the loopback cable."""
    def source(t_us):
        level = 0
        for t, pin, lv in dut_box[0].device.pin_trace:     # called by the device with its lock held
            if pin == "ttl" and t <= t_us:
                level = lv
        return 1023 if level else 20
    return source


def _run(dut, **kw):
    with DeviceClient(open_link(dut.url), heartbeat_s=0.02) as dev:
        dev.start()
        return {r.part: r for r in run_checks(dev, speed=SPEED, **kw)}


def test_every_part_passes_on_a_working_rig_with_the_spout_touched_and_ttl_wired():
    box = []
    dut = SimulatedDUT(speed=SPEED, analog_source=ttl_wired_to_analog(box))
    box.append(dut)
    try:
        res = _run(dut, lick_wait_s=3, loopback=True, prompt=lambda _text: dut.set_lick(1))   # a finger on the spout
    finally:
        dut.close()
    assert {p: r.status for p, r in res.items()} == {p: "PASS" for p in (
        "link", "valve", "cue", "tone", "ttl", "lick", "loopback")}, [r.line() for r in res.values()]
    # the checks drove the pins: one valve opening of 20 ms, the cue and tone each once, two TTL pulses
    valve = dut.pin_edges("valve")
    assert [lv for _, lv in valve] == [1, 0] and valve[1][0] - valve[0][0] == 20_000
    assert sum(lv for _, lv in dut.pin_edges("ttl")) == 2


def test_untouched_spout_and_unwired_loopback_fail():
    dut = SimulatedDUT(speed=SPEED)          # no animal, nobody touches the spout; A0 reads its own signal
    try:
        res = _run(dut, lick_wait_s=0.5, loopback=True, prompt=lambda _t: None)
    finally:
        dut.close()
    assert res["lick"].status == "FAIL" and "no lick contact" in res["lick"].detail
    assert res["loopback"].status == "FAIL"
    assert all(res[p].status == "PASS" for p in ("link", "valve", "cue", "tone", "ttl"))


def test_check_command_on_the_simulated_rig(tmp_path, capsys):
    out = tmp_path / "check.json"
    # the simulated animal licks at its own rate: a contact comes within the wait
    assert main(["check", "sim", "--speed", str(SPEED), "--lick-wait", "20", "--json", str(out)]) == 0
    parts = {p["part"]: p["status"] for p in json.loads(out.read_text())["parts"]}
    assert parts == {"link": "PASS", "valve": "PASS", "cue": "PASS", "tone": "PASS", "ttl": "PASS", "lick": "PASS",
                     "loopback": "SKIP"}
    assert "7 of 7 parts passed or skipped" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [(["--lick-wait", "0"], "--lick-wait"),
                                           (["--speed", "fast"], "--speed"),
                                           (["--rig-file", "missing.toml"], "missing.toml")])
def test_check_bad_input(tmp_path, capsys, argv, message):
    assert main(["check", "sim"] + [str(tmp_path / a) if a.endswith(".toml") else a for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


# ----------------------------------------------------------------------------- calibration range-finding
def test_calibrate_range_finding_chooses_open_times_from_the_targets(tmp_path):
    from dopa_rl.session.config import parse_rig

    # the water a valve with 3 ms of dead time and 12 ms per uL gives: what the scale would read
    def collected(ms, pulses):
        return pulses * (ms - 3) / 12.0

    pulses, probe = 20, 40
    k0 = pulses * probe / collected(probe, pulses)              # what the probe alone says (ms per uL)
    expected = [int(round(t * k0)) for t in (2.0, 4.0, 8.0)]
    vols = [collected(probe, pulses)] + [collected(ms, pulses) for ms in expected]
    dut = SimulatedDUT(speed=50.0)
    try:
        out = tmp_path / "rig.toml"
        assert main(["calibrate", "--device", dut.url, "--speed", "50", "--rig-file", str(out), "--pulses", str(pulses),
                     "--ms", str(probe), "--gap-ms", "60", "--target-ul", "2,4,8",
                     "--measured-ul", ",".join(f"{v:.4f}" for v in vols)]) == 0
        edges = dut.pin_edges("valve")
    finally:
        dut.close()
    widths = [(b[0] - a[0]) // 1000 for a, b in zip(edges[::2], edges[1::2])]
    assert widths == [probe] * pulses + sum(([ms] * pulses for ms in expected), [])   # what it chose, delivered
    rig = parse_rig(out.read_text())
    pts = [(probe, vols[0])] + list(zip(expected, vols[1:]))
    per = [(ms, v / pulses) for ms, v in pts]
    assert rig.ms_per_ul == pytest.approx(sum(m * v for m, v in per) / sum(v * v for _, v in per), rel=1e-4)
    assert all(f"{pulses} x {ms} ms" in rig.calibrated for ms in [probe] + expected)   # every point recorded


def test_calibrate_range_finding_refuses_a_target_over_the_valve_limit(tmp_path, capsys):
    assert main(["calibrate", "--device", "sim", "--speed", "50", "--rig-file", str(tmp_path / "r.toml"),
                 "--pulses", "5", "--ms", "40", "--target-ul", "2,100", "--measured-ul", "16,1,2",
                 "--max-valve-ms", "200"]) == 2
    assert "100 uL needs about" in capsys.readouterr().err
    assert not (tmp_path / "r.toml").exists()
