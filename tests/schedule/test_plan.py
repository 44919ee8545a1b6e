"""Today's plan from the exchange calendar, at any time of day (a manual clock: nothing waits)."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ml4t_live.errors import ConfigError
from ml4t_live.events import BarClosed, FeedEnded, FeedHeartbeat
from ml4t_live.schedule import (
    Closed,
    ManualClock,
    Phase,
    SessionFeed,
    SessionSettings,
    parse_duration,
    plan_day,
    trading_day,
)

NY = ZoneInfo("America/New_York")


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)


def settings(**o) -> SessionSettings:
    return SessionSettings.from_options({"calendar": "XNYS", **o})


def test_a_holiday_and_a_weekend_are_closed_days_with_the_reason():
    assert trading_day("XNYS", date(2024, 11, 28)) == Closed("XNYS", date(2024, 11, 28), "holiday: Thanksgiving")
    plan = plan_day(settings(), ny(2024, 11, 28, 8, 0))
    assert plan.phase is Phase.CLOSED and not plan.trades
    assert "closed on Thu 2024-11-28 (holiday: Thanksgiving)" in plan.describe()
    assert plan_day(settings(), ny(2024, 3, 9, 9, 0)).closed.reason == "Saturday, the exchange does not trade"
    # the national day of mourning for President Carter: an ad hoc closure, no rule could know it
    assert plan_day(settings(), ny(2025, 1, 9, 9, 0)).phase is Phase.CLOSED


def test_a_half_day_ends_at_the_early_close():
    plan = plan_day(settings(), ny(2024, 11, 29, 8, 0))
    assert plan.session.early_close and plan.end_at == ny(2024, 11, 29, 13, 0)
    full = plan_day(settings(), ny(2024, 11, 27, 8, 0))
    assert not full.session.early_close and full.end_at == ny(2024, 11, 27, 16, 0)
    assert "(early close)" in plan.describe()


@pytest.mark.parametrize(
    ("moment", "phase"),
    [
        (ny(2024, 3, 4, 2, 0), Phase.WAIT),  # cron fired at night: sleep until open - 15 min
        (ny(2024, 3, 4, 9, 15), Phase.EARLY),  # connect now, warm up, wait for the open
        (ny(2024, 3, 4, 9, 29, 59), Phase.EARLY),
        (ny(2024, 3, 4, 9, 30), Phase.OPEN),
        (ny(2024, 3, 4, 15, 59), Phase.OPEN),  # mid-session start: trade at once
        (ny(2024, 3, 4, 16, 0), Phase.OVER),  # after the close: nothing to do
        (ny(2024, 3, 4, 23, 30), Phase.OVER),
        (ny(2024, 3, 4, 0, 0).astimezone(UTC), Phase.WAIT),  # the exchange's date decides, not UTC's
    ],
)
def test_the_phase_follows_the_time_of_day(moment, phase):
    assert plan_day(settings(), moment).phase is phase


def test_connect_before_and_close_offset_move_the_connect_and_end_times():
    plan = plan_day(settings(connect_before="45min", close_offset="-10min"), ny(2024, 3, 4, 8, 50))
    assert plan.phase is Phase.EARLY
    assert plan.connect_at == ny(2024, 3, 4, 8, 45) and plan.end_at == ny(2024, 3, 4, 15, 50)
    assert plan_day(settings(close_offset="-10min"), ny(2024, 3, 4, 15, 55)).phase is Phase.OVER


def test_end_of_day_policies_map_to_the_engine_and_flatten_ends_early_by_default():
    assert settings().open_orders_at_end == "cancel"
    assert settings(end_of_day="hold").open_orders_at_end == "keep"
    flatten = settings(end_of_day="flatten")
    assert flatten.open_orders_at_end == "flatten" and flatten.close_offset == timedelta(minutes=-5)
    assert settings(end_of_day="flatten", close_offset="0").close_offset == timedelta(0)
    with pytest.raises(ConfigError, match="end_of_day must be one of flatten, cancel, hold"):
        settings(end_of_day="sell")
    with pytest.raises(ConfigError, match="contradicts end_of_day"):
        settings(end_of_day="flatten", open_orders_at_end="keep")


def test_a_date_the_calendar_does_not_know_and_an_unknown_calendar_are_config_errors():
    with pytest.raises(ConfigError, match="XNYS does not know 2100-01-04"):
        plan_day(settings(), ny(2100, 1, 4, 9, 0))
    with pytest.raises(ConfigError, match="unknown market calendar 'NOPE'"):
        plan_day(SessionSettings("NOPE"), ny(2024, 3, 4, 9, 0))
    with pytest.raises(ConfigError, match="before its open"):
        plan_day(settings(close_offset="-7h"), ny(2024, 3, 4, 9, 0))


@pytest.mark.parametrize(("text", "seconds"), [("15min", 900), ("-5min", -300), ("90s", 90), ("1h", 3600),
                                               (10, 600), ("2.5", 150)])  # fmt: skip
def test_durations(text, seconds):
    assert parse_duration(text, "x") == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["soon", "5 days", "", True])
def test_bad_durations_say_what_is_expected(text):
    with pytest.raises(ConfigError, match="a duration such as 15min"):
        parse_duration(text, "x")


def test_the_manual_clock_never_sleeps_and_a_stop_ends_the_wait():
    clock = ManualClock(ny(2024, 3, 4, 2, 0))
    stop = threading.Event()
    assert clock.wait_until(ny(2024, 3, 4, 9, 15), stop) and clock.now() == ny(2024, 3, 4, 9, 15)
    stop.set()
    assert not clock.wait_until(ny(2024, 3, 4, 9, 20), stop) and clock.now() == ny(2024, 3, 4, 9, 15)


# ------------------------------------------------------------------ the feed held to the session
class ListFeed:
    """A feed that hands out the events it was given (the remote side, faked)."""

    name = "list"
    bar_seconds = 60

    def __init__(self, events):
        self.events = list(events)
        self.started = self.closed = False

    def start(self):
        self.started = True

    def next_event(self, timeout):
        return self.events.pop(0) if self.events else None

    def close(self):
        self.closed = True


def bar(*args: int) -> BarClosed:
    return BarClosed(ny(*args).astimezone(UTC), {"AAPL": {"price": 1.0, "close": 1.0}})


def drain(feed: SessionFeed, n: int) -> list:
    return [feed.next_event(0.0) for _ in range(n)]


def test_pre_open_bars_are_warm_up_and_the_bar_closing_at_the_end_ends_the_feed():
    clock = ManualClock(ny(2024, 11, 29, 9, 0), follows_bars=True)
    plan = plan_day(settings(), clock.now())
    inner = ListFeed([bar(2024, 11, 27, 15, 59), bar(2024, 11, 29, 9, 29), bar(2024, 11, 29, 9, 30),
                      bar(2024, 11, 29, 12, 59), bar(2024, 12, 2, 9, 30)])  # fmt: skip
    feed = SessionFeed(inner, plan, clock)
    feed.start()
    out = drain(feed, 6)
    assert [e.catch_up for e in out[:4]] == [True, True, False, False]
    assert out[4] == FeedEnded("session end 13:00 EST (XNYS)") and out[5] == out[4]
    assert feed.warmup_bars_seen == 2 and clock.now() == ny(2024, 11, 29, 13, 0)
    assert feed.bar_seconds == 60 and inner.started


def test_a_bar_past_the_end_is_not_delivered():
    clock = ManualClock(ny(2024, 3, 4, 10, 0), follows_bars=True)
    feed = SessionFeed(ListFeed([bar(2024, 3, 4, 15, 58), bar(2024, 3, 4, 16, 5)]),
                       plan_day(settings(close_offset="-1min"), clock.now()), clock)  # fmt: skip
    feed.start()
    first, second = drain(feed, 2)
    assert isinstance(first, BarClosed) and not first.catch_up  # ends 15:59 = the end: delivered...
    assert isinstance(second, FeedEnded)  # ... then the feed ends


def test_bars_that_ended_before_the_run_began_are_catch_up():
    clock = ManualClock(ny(2024, 3, 4, 11, 0), follows_bars=True)
    feed = SessionFeed(ListFeed([bar(2024, 3, 4, 10, 58), bar(2024, 3, 4, 10, 59), bar(2024, 3, 4, 11, 0)]),
                       plan_day(settings(), clock.now()), clock)  # fmt: skip
    feed.start()
    assert [e.catch_up for e in drain(feed, 3)] == [True, False, False]  # 10:59 ended as it began


def test_a_real_time_clock_heartbeats_before_the_open_and_ends_without_a_closing_bar():
    clock = ManualClock(ny(2024, 3, 4, 9, 20))
    feed = SessionFeed(ListFeed([]), plan_day(settings(), clock.now()), clock)
    feed.start()
    assert isinstance(feed.next_event(0.0), FeedHeartbeat)  # waiting for the open is no stall
    clock.advance(timedelta(minutes=12))  # 09:32: the first bar is due; quiet is news again
    assert feed.next_event(0.0) is None
    clock.advance(timedelta(hours=6, minutes=29))  # 16:01 + 30 s grace not yet
    assert feed.next_event(0.0) is None
    clock.advance(timedelta(seconds=31))
    assert feed.next_event(0.0) == FeedEnded("session end 16:00 EST passed without its closing bar")


def test_the_first_live_bar_checks_the_clock():
    clock = ManualClock(ny(2024, 3, 4, 10, 0))  # a real-time clock, frozen at 10:00
    ahead = SessionFeed(ListFeed([bar(2024, 3, 4, 10, 30)]), plan_day(settings(), clock.now()), clock)
    ahead.start()
    with pytest.raises(ConfigError, match=r"this machine's clock is -1,860s off the venue's \(a live bar"):
        ahead.next_event(0.0)  # a bar that ends in this machine's future: its clock is behind
    history_first = SessionFeed(ListFeed([replace(bar(2024, 3, 4, 9, 30), catch_up=True), bar(2024, 3, 4, 9, 59)]),
                                plan_day(settings(), clock.now()), clock)  # fmt: skip
    history_first.start()
    assert history_first.next_event(0.0).catch_up  # the venue's history is no evidence of its clock
    assert not history_first.next_event(0.0).catch_up  # ended at 10:00, arrived at 10:00: agreed


def test_bars_that_look_old_are_not_traded_and_three_in_a_row_mean_the_clock_is_ahead():
    clock = ManualClock(ny(2024, 3, 4, 9, 57, 30))
    held = SessionFeed(ListFeed([bar(2024, 3, 4, 9, 57), bar(2024, 3, 4, 9, 58), bar(2024, 3, 4, 9, 59),
                                 bar(2024, 3, 4, 10, 0)]), plan_day(settings(max_clock_skew="90s"), clock.now()),
                       clock)  # fmt: skip
    held.start()  # at 09:57:30
    clock.advance(timedelta(minutes=2, seconds=30))  # the bars come at 10:00 (held by a warm-up fetch?)
    assert held.next_event(0.0).catch_up  # ended 09:58, seen 10:00: late, or the clock is ahead
    assert not held.next_event(0.0).catch_up  # ended 09:59, within 90 s: the clock agrees
    assert not held.next_event(0.0).catch_up and not held.next_event(0.0).catch_up  # no more checks
    clock = ManualClock(ny(2024, 3, 4, 9, 40))
    ahead = SessionFeed(ListFeed([bar(2024, 3, 4, 9, 50), bar(2024, 3, 4, 9, 51), bar(2024, 3, 4, 9, 52)]),
                        plan_day(settings(), clock.now()), clock)  # fmt: skip
    ahead.start()
    clock.advance(timedelta(minutes=20))
    assert ahead.next_event(0.0).catch_up and ahead.next_event(0.0).catch_up
    with pytest.raises(ConfigError, match=r"this machine's clock is \+420s off the venue's"):
        ahead.next_event(0.0)


def test_the_rehearsal_options_end_with_the_recording():
    from ml4t_live.schedule.rehearsal import rehearsal_options

    assert rehearsal_options(ny(2024, 3, 4, 16, 0)) == "--calendar XNYS --as-of 2024-03-04"
    assert rehearsal_options(ny(2024, 11, 29, 13, 0)) == "--calendar XNYS --as-of 2024-11-29"  # half-day
    assert rehearsal_options(ny(2024, 3, 5, 10, 0)) == "--calendar XNYS --as-of 2024-03-05 --close-offset -360min"


def test_the_system_clock_waits_until_the_time_or_a_stop():
    from ml4t_live.schedule import SystemClock

    clock, stop = SystemClock(), threading.Event()
    assert clock.wait_until(clock.now() - timedelta(seconds=1), stop)  # already past: at once
    target = clock.now() + timedelta(milliseconds=50)
    assert clock.wait_until(target, stop) and clock.now() >= target
    stop.set()
    assert not clock.wait_until(clock.now() + timedelta(hours=1), stop)  # a stop ends an hour's wait


def test_sigterm_while_waiting_for_the_session_ends_the_run_with_exit_0_and_nothing_started():
    import os
    import signal

    import typer

    from ml4t_live.cli.calendar_session import calendar_session

    class SignalledClock(ManualClock):
        def wait_until(self, when, stop):
            os.kill(os.getpid(), signal.SIGTERM)  # systemctl stop, while the run waits
            return super().wait_until(when, stop)

    feed = ListFeed([])
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(typer.Exit) as stopped:
        calendar_session({"calendar": "XNYS", "broker": "ib"}, feed, SignalledClock(ny(2024, 3, 4, 6, 0)))
    assert stopped.value.exit_code == 0 and not feed.started
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is put back


def test_flatten_needs_a_venue_broker():
    from ml4t.backtest import Strategy

    from ml4t_live.engine import LiveEngine
    from ml4t_live.shadow import ShadowBroker

    class Idle(Strategy):
        def on_data(self, timestamp, data, context, broker):
            pass

    with pytest.raises(ConfigError, match="flatten' needs a venue broker"):
        LiveEngine(Idle(), ShadowBroker(), ListFeed([]), open_orders_at_end="flatten")


def test_a_feed_that_read_the_venues_clock_is_checked_when_it_starts():
    clock = ManualClock(ny(2024, 3, 4, 9, 20))
    feed = ListFeed([])
    feed.venue_clock_offset = ny(2024, 3, 4, 9, 25) - datetime.now(UTC)  # the venue says 09:25
    with pytest.raises(ConfigError, match=r"clock is -300s off the venue's \(the venue's clock at connect"):
        SessionFeed(feed, plan_day(settings(), clock.now()), clock).start()
    feed.venue_clock_offset = ny(2024, 3, 4, 9, 20, 30) - datetime.now(UTC)  # 30 s: within 60 s
    SessionFeed(feed, plan_day(settings(), clock.now()), clock).start()
    rehearsal = ManualClock(ny(2024, 3, 4, 9, 20), follows_bars=True)  # the recorded time: not checked
    SessionFeed(feed, plan_day(settings(max_clock_skew="1s"), rehearsal.now()), rehearsal).start()
