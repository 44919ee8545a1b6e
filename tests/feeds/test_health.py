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
            health.quiet_confirmed(now, now + took)
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
    health.quiet_confirmed(20_090.0, 20_090.0)
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


def test_a_bar_that_arrives_during_a_check_keeps_its_own_schedule():
    """The check begins at 90 and waits for the venue; a bar comes at 91; the check ends at 95
    with nothing missed. The next check is the bar's: 91 + silence_after (it was 95 + 180)."""
    bounds = HealthBounds.for_bar(60, heartbeat_seconds=30)  # silence_after 90
    health = FeedHealth(bounds, now=0.0)
    assert health.silence_check_due(90.0)
    health.bar_seen(91.0)
    health.quiet_confirmed(90.0, 95.0)
    assert not health.silence_check_due(180.9) and health.silence_check_due(181.0)
    health.quiet_confirmed(181.0, 181.0)  # a check with no bar during it doubles the wait
    assert health.next_check == 181.0 + 180.0


def open_schedule(health: FeedHealth, open_at: float, seconds: float) -> list[float]:
    """Like ``quiet_schedule``, with each check telling when the market opens (``open_at``)."""
    checks: list[float] = []
    now = 0.0
    while now < seconds:
        now += TICK
        if health.silence_check_due(now):
            checks.append(now)
            health.quiet_confirmed(now, now, open_at - now)
    return checks


@pytest.mark.parametrize("minutes_before", [5, 15, 25, 30, 45, 60, 600])
def test_a_quiet_spell_before_the_open_does_not_delay_the_first_check_after_it(minutes_before):
    """1-minute bars, the run starts ``minutes_before`` the open and nothing comes: a check is
    due exactly silence_after (90 s) past the open, then the waits double again from there.
    (Without the open, the doubled waits put it up to 450 s, 750 s ... after.)"""
    open_at = minutes_before * 60.0
    health = FeedHealth(HealthBounds.for_bar(60, heartbeat_seconds=30), now=0.0)
    checks = open_schedule(health, open_at, open_at + 3600.0)
    after_open = [t - open_at for t in checks if t > open_at]
    assert after_open[:4] == [90.0, 270.0, 630.0, 1350.0], after_open
    assert all(b - a <= MAX_CHECK_INTERVAL for a, b in pairwise(checks))


def test_a_check_between_the_open_and_silence_after_past_it_keeps_the_first_check_there():
    health = FeedHealth(HealthBounds.for_bar(60, heartbeat_seconds=30), now=0.0)
    last = quiet_schedule(health, 0.0, 3 * 3600.0)[-1]  # the waits are at 900 s now
    check = last + MAX_CHECK_INTERVAL
    health.quiet_confirmed(check, check, opens_in=-40.0)  # the market opened 40 s ago
    assert health.next_check == check + 90.0  # silence_after from this check, not 50 s (open + 90)
    health.quiet_confirmed(check + 90.0, check + 90.0, opens_in=-130.0)  # no clamp from here
    assert health.next_check == check + 90.0 + 180.0


def test_seconds_to_open_reads_the_exchange_calendar():
    from datetime import UTC, datetime

    from ml4t_live.schedule.calendar import seconds_to_open

    monday = datetime(2026, 11, 23, 14, 30, tzinfo=UTC)  # 09:30 New York
    assert seconds_to_open("XNYS", monday.replace(hour=14, minute=0)) == 1800.0
    assert seconds_to_open("XNYS", monday.replace(hour=15, minute=0)) == -1800.0
    assert seconds_to_open("XNYS", datetime(2026, 11, 22, 15, tzinfo=UTC)) is None  # Sunday
    assert seconds_to_open("XNYS", datetime(2026, 11, 26, 15, tzinfo=UTC)) is None  # Thanksgiving


def test_a_check_just_after_the_open_does_not_bring_the_next_one_within_silence_after():
    """A check that ends between the open and ``silence_after`` past it: the next one comes
    ``silence_after`` later, not at ``open + silence_after`` one tick away (two identical
    historical requests within 15 s break IB's pacing, IB-23). A check long after the open keeps
    its backoff."""
    for bar_seconds, opened_ago in ((5, 34.0), (60, 89.5), (60, 1.0)):
        bounds = HealthBounds.for_bar(bar_seconds, heartbeat_seconds=30)
        health = FeedHealth(bounds, now=0.0)
        health.quiet_confirmed(100.0, 100.0, opens_in=-opened_ago)
        assert health.next_check == 100.0 + bounds.silence_after, (bar_seconds, opened_ago)
    bounds = HealthBounds.for_bar(60, heartbeat_seconds=30)
    health = FeedHealth(bounds, now=0.0)
    health.quiet_confirmed(100.0, 100.0, opens_in=-3600.0)  # in the session for an hour
    assert health.next_check == 100.0 + 2 * bounds.silence_after  # the doubled wait, unclamped
