"""The simulated device's clock driver: virtual time at speed x real time, not simulated over a stall of
its whole process (virtual real time through an injected clock: no sleeping)."""
from __future__ import annotations

import pytest

from dopa_rl.sim.vclock import RealtimeDriver


class FakeTime:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def driver(speed: float, **kw) -> tuple[RealtimeDriver, FakeTime]:
    ft = FakeTime()
    d = RealtimeDriver(lambda us: None, lambda: None, lambda: 1_000, speed=speed, time_fn=ft, **kw)
    d._t0_virtual = 1_000               # what start() sets, without its thread
    d._t0_real = d._last_real = ft()
    return d, ft


def test_virtual_time_follows_real_time_times_speed() -> None:
    d, ft = driver(50.0)
    for _ in range(100):                # reads every 4 ms (the thread wakes at least every 5 ms)
        ft.t += 0.004
        d.virtual_now()
    assert d.virtual_now() == 1_000 + round(0.4 * 50 * 1e6)
    assert d.stalled_s == 0.0


@pytest.mark.parametrize("speed", [1.0, 50.0])
def test_a_stall_of_the_process_is_not_simulated_beyond_max_stall(speed: float) -> None:
    """200 ms in which nothing read the clock (the process was descheduled): at 50x that would be 10 s of
    device time, a host timeout the host could not have prevented; only max_stall_s of it runs."""
    d, ft = driver(speed, max_stall_s=0.05)
    ft.t += 0.004
    v0 = d.virtual_now()
    ft.t += 0.200
    v1 = d.virtual_now()
    assert v1 - v0 == round(0.05 * speed * 1e6)
    assert d.stalled_s == pytest.approx(0.15)
    ft.t += 0.004                       # and then it runs on at speed from there
    assert d.virtual_now() - v1 == round(0.004 * speed * 1e6)


def test_bad_stall_bound_is_refused() -> None:
    with pytest.raises(ValueError, match="max_stall_s must exceed max_sleep_s"):
        RealtimeDriver(lambda us: None, lambda: None, lambda: 0, max_sleep_s=0.005, max_stall_s=0.005)
