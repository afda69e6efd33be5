"""Clock unwrapping and the lower-envelope clock fit, on synthetic data with known truth."""
from __future__ import annotations

import random

import pytest

from dopa_rl.rig.clocksync import ClockMap, Unwrapper, fit_lower_envelope, unwrap_u32

W = 1 << 32


def test_unwrap_across_wraps_and_small_backsteps():
    u = Unwrapper()
    truth = [W - 300, W - 100, W + 50, W + 40, W + W // 3, W + 2 * W // 3, 2 * W + 7, 2 * W + 3,
             2 * W + W // 2, 3 * W - 5, 3 * W + 1]
    out = [u(t % W) for t in truth]
    assert out == truth


def test_unwrap_u32_plain():
    assert unwrap_u32(None, 5) == 5
    assert unwrap_u32(W - 1, 0) == W
    assert unwrap_u32(W + 10, 5) == W + 5
    assert unwrap_u32(10 * W + 5, 0xFFFF_FFFF) == 10 * W - 1


@pytest.mark.parametrize("drift", [0.0, 40e-6, -25e-6])
def test_lower_envelope_recovers_offset_and_drift(drift):
    rng = random.Random(1)
    offset = 1234.5678
    dev = sorted(rng.randrange(0, 60_000_000) for _ in range(2000))
    # delays: exponential, min 80 us, with rare huge outliers (retransmissions)
    host = []
    for d in dev:
        delay = 80e-6 + rng.expovariate(1 / 400e-6)
        if rng.random() < 0.02:
            delay += 0.05
        host.append(offset + d * 1e-6 * (1 + drift) + delay)
    fit = fit_lower_envelope(dev, host)
    assert fit.drift == pytest.approx(drift, abs=2e-6)
    for d in (0, 30_000_000, 60_000_000):
        true = offset + d * 1e-6 * (1 + drift) + 80e-6
        assert fit.to_host(d) == pytest.approx(true, abs=100e-6)
    # The envelope is below every point.
    assert all(fit.to_host(d) <= h + 1e-9 for d, h in zip(dev, host))
    assert fit.to_device(fit.to_host(12_345_678)) == pytest.approx(12_345_678, abs=1e-3)


def test_lower_envelope_degenerate_cases():
    f = fit_lower_envelope([5_000_000], [10.0])
    assert f.to_host(6_000_000) == pytest.approx(11.0)
    with pytest.raises(ValueError):
        fit_lower_envelope([], [])
    # Absurd slope is clipped, line stays below the points.
    f = fit_lower_envelope([0, 1000], [0.0, 1.0])
    assert abs(f.drift) <= 1e-3
    assert f.to_host(1000) <= 1.0 and f.to_host(0) <= 0.0


def test_clockmap_tracks_a_drift_change_with_sliding_window():
    rng = random.Random(7)
    cm = ClockMap(window_s=20.0, bucket_s=0.05)
    assert cm.to_host(0) is None
    t_dev = 0
    host_at_switch = None
    for _ in range(40_000):  # 40 s of events at 1 kHz; drift +50 ppm, then -50 ppm after 20 s
        t_dev += 1000
        if t_dev == 20_000_000:
            host_at_switch = 100.0 + t_dev * 1e-6 * (1 + 50e-6)
        if t_dev <= 20_000_000:
            true = 100.0 + t_dev * 1e-6 * (1 + 50e-6)
        else:
            true = host_at_switch + (t_dev - 20_000_000) * 1e-6 * (1 - 50e-6)
        cm.add(t_dev, true + 100e-6 + rng.expovariate(1 / 300e-6))
        if t_dev == 19_000_000:
            assert cm.fit.drift == pytest.approx(50e-6, abs=5e-6)
    cm.refit()
    assert cm.fit.drift == pytest.approx(-50e-6, abs=5e-6)
    assert cm.fit.span_s <= 20.1
    assert cm.to_host(t_dev) == pytest.approx(true + 100e-6, abs=150e-6)
    cm.reset()
    assert cm.fit is None


def _feed(cm, t0_dev, t0_host, seconds, rate_hz=50, rng=None, drift=30e-6):
    """Frames every 1/rate_hz s of device time from (t0_dev, t0_host), each read 0.1-0.6 ms late."""
    rng = rng or random.Random(3)
    step = int(1e6 / rate_hz)
    out = []
    for k in range(int(seconds * rate_hz)):
        d = t0_dev + k * step
        h = t0_host + (d - t0_dev) * 1e-6 * (1 + drift) + 100e-6 + rng.random() * 500e-6
        out.append((d, h, cm.add(d, h)))
    return out


def test_a_host_clock_stopped_by_a_suspend_reanchors_the_map():
    # issue 16 item 5: the host suspends for 40 min; its monotonic clock stops, the device's runs on.  The
    # first frames after it arrive 2400 s "early" on the host clock: no delay explains that, so the map starts
    # again from them and maps the new frames onto the host clock as it now runs.
    cm = ClockMap()
    before = _feed(cm, 5_000_000, 100.0, 10)
    assert {r for *_, r in before} == {"kept"} and cm.reanchors == 0
    last_dev, last_host, _ = before[-1]
    resume_dev = last_dev + 40 * 60_000_000
    after = _feed(cm, resume_dev, last_host + 0.5, 5)
    assert after[0][2] == "reanchored" and cm.reanchors == 1
    assert {r for *_, r in after[1:]} == {"kept"}
    d, h, _ = after[-1]
    assert cm.to_host(d) == pytest.approx(h, abs=1e-3)
    assert cm.to_host(resume_dev) == pytest.approx(last_host + 0.5, abs=1e-3)   # not 2400 s later


def test_a_frame_read_late_does_not_move_the_map():
    cm = ClockMap()
    pts = _feed(cm, 0, 50.0, 10)
    fit = cm.refit()
    d = pts[-1][0] + 20_000
    predicted = cm.to_host(d)
    # read 1.5 s late (the host stalled), alone and right after the last point: the map keeps its line
    assert cm.add(d, predicted + 1.5) == "late"
    assert cm.late_points == 1 and cm.reanchors == 0
    assert cm.refit().drift == pytest.approx(fit.drift) and cm.to_host(d) == pytest.approx(predicted)
    # the frames after it, on time, are kept
    assert cm.add(d + 20_000, cm.to_host(d + 20_000) + 2e-4) == "kept"


def test_late_points_that_persist_are_a_new_regime():
    # the device clock paused for 3 s while the host's ran (a simulated device whose process was stopped):
    # every frame after it is 3 s late against the old line; after persist_s of them the map follows
    cm = ClockMap(persist_s=2.0)
    pts = _feed(cm, 0, 10.0, 5)
    d0, h0, _ = pts[-1]
    res = _feed(cm, d0 + 20_000, h0 + 3.02, 4)
    kinds = [r for *_, r in res]
    assert kinds[0] == "late" and "reanchored" in kinds and cm.reanchors == 1
    first = kinds.index("reanchored")
    assert set(kinds[:first]) == {"late"} and set(kinds[first + 1:]) == {"kept"}
    assert res[first][0] - res[0][0] >= 2_000_000
    d, h, _ = res[-1]
    assert cm.to_host(d) == pytest.approx(h, abs=1e-3)


def test_a_long_silence_with_both_clocks_running_keeps_the_map():
    # 40 min without frames, both clocks running (a quiet device, not a suspend): the line extrapolated over
    # the silence is within its drift slack, so the new frames are kept, not taken for a jump
    cm = ClockMap()
    pts = _feed(cm, 0, 10.0, 10, drift=30e-6)
    d0, _, _ = pts[-1]
    res = _feed(cm, d0 + 40 * 60_000_000, 10.0 + (d0 + 40 * 60_000_000) * 1e-6 * (1 + 30e-6), 2, drift=30e-6)
    assert {r for *_, r in res} == {"kept"} and cm.reanchors == 0


def test_an_unsettled_map_takes_every_point():
    cm = ClockMap()
    assert cm.add(0, 1.0) == "kept"
    assert cm.add(100_000, 50.0) == "kept"          # two points, 0.1 s: nothing to judge lateness against
    assert cm.reanchors == 0 and cm.late_points == 0
