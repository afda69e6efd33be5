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
