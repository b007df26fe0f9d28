"""The Clock port: the system clock and the fake keep the same promises (both run here: neither needs I/O)."""

from __future__ import annotations

import time

import pytest

from usecases.ports.clock import FakeClock, SystemClock


@pytest.fixture(params=["system", "fake"])
def clock(request):
    return SystemClock() if request.param == "system" else FakeClock(now_ms=time.time_ns() // 1_000_000)


def test_the_monotonic_reading_never_goes_back(clock):
    readings = [clock.monotonic_s() for _ in range(1_000)]
    assert readings == sorted(readings)


def test_the_wall_clock_is_epoch_milliseconds_near_now(clock):
    assert abs(clock.now_ms() - time.time() * 1000) < 60_000


def test_the_fake_moves_both_readings_by_the_same_amount():
    clock = FakeClock(now_ms=1_000, monotonic_s=5.0)
    clock.advance(2.5)
    assert (clock.now_ms(), clock.monotonic_s()) == (3_500, 7.5)
    with pytest.raises(ValueError):
        clock.advance(-1)
