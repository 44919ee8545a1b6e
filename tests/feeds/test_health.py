"""The shared feed-health rule (pure): when a quiet feed asks the venue again."""

from __future__ import annotations

from itertools import pairwise

import pytest

from ml4t_live.errors import ConfigError
from ml4t_live.feeds.health import MAX_CHECK_INTERVAL, FeedHealth, HealthBounds

TICK = 1.0  # the feeds' loop looks at the clock once a second with the default bounds


def quiet_schedule(
    health: FeedHealth, start: float, seconds: float, took: float = 0.0
) -> list[float]:
    """Times the venue is asked over ``seconds`` of quiet from ``start``, with the feeds' loop:
    a look every tick, each check answered 'nothing missed' ``took`` seconds after it began."""
    checks: list[float] = []
    now = start
    while now < start + seconds:
        now += TICK
        if health.silence_check_due(now):
            checks.append(now)
            health.quiet_confirmed(now + took)
    return checks


def test_a_quiet_night_is_checked_at_most_once_per_max_check_interval():
    """1-minute bars (silence_after 90 s): 90 s, then waits of 180, 360, 720 s and 900 s for
    good, each timed from the check before. The rule before this fix timed them from the last
    bar, so past 900 s of quiet every tick was a check (2,705 in an hour)."""
    bounds = HealthBounds.for_bar(60, heartbeat_seconds=30)
    health = FeedHealth(bounds, now=0.0)
    health.bar_seen(0.0)
    checks = quiet_schedule(health, 0.0, 64 * 3600.0)  # Friday's close to Monday's open
    gaps = [b - a for a, b in pairwise(checks)]
    assert checks[:5] == [90.0, 270.0, 630.0, 1350.0, 2250.0]
    assert gaps[:4] == [180.0, 360.0, 720.0, 900.0]
    assert all(gap == MAX_CHECK_INTERVAL for gap in gaps[3:])
    assert len([t for t in checks if t <= 3600.0]) == 6
    assert len(checks) == 1 + 3 + (64 * 3600 - 1350) // 900


def test_a_slow_check_counts_from_its_end_so_checks_never_come_closer_than_the_wait():
    bounds = HealthBounds.for_bar(60, heartbeat_seconds=30)
    health = FeedHealth(bounds, now=0.0)
    checks = quiet_schedule(
        health, 0.0, 6 * 3600.0, took=12.0
    )  # 12 s of REST / history per check
    gaps = [b - a for a, b in pairwise(checks)]
    assert all(gap >= MAX_CHECK_INTERVAL for gap in gaps[3:])
    assert all(gap <= MAX_CHECK_INTERVAL + 12.0 + TICK for gap in gaps[3:])


def test_a_bar_restarts_the_schedule_at_silence_after():
    bounds = HealthBounds.for_bar(60, heartbeat_seconds=30)
    health = FeedHealth(bounds, now=0.0)
    quiet_schedule(health, 0.0, 3 * 3600.0)  # waits are at their bound now
    health.bar_seen(20_000.0)
    assert not health.silence_check_due(20_089.0)
    assert health.silence_check_due(20_090.0)
    health.quiet_confirmed(20_090.0)
    assert not health.silence_check_due(20_269.0) and health.silence_check_due(20_270.0)


def test_no_check_while_the_link_is_down_and_the_schedule_restarts_when_it_is_back():
    bounds = HealthBounds.for_bar(60, heartbeat_seconds=30)
    health = FeedHealth(bounds, now=0.0)
    health.lost(50.0, "socket closed")
    assert not health.silence_check_due(5_000.0)
    health.restored(5_000.0)
    assert not health.silence_check_due(5_089.0) and health.silence_check_due(5_090.0)


def test_max_check_interval_is_a_bound_of_its_own():
    small = HealthBounds.for_bar(
        60, heartbeat_seconds=30, silence_after=0.2, max_check_interval=0.4
    )
    assert small.max_check_interval == 0.4
    assert HealthBounds.for_bar(3600, heartbeat_seconds=30).max_check_interval == 3630.0
    with pytest.raises(
        ConfigError, match="max_check_interval .* must be at least silence_after"
    ):
        HealthBounds.for_bar(60, heartbeat_seconds=30, max_check_interval=60)
