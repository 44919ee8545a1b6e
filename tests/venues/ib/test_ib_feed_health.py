"""IB feed health through the real ib_async against the simulated gateway (speed mode).

Short bounds (constructor parameters) stand in for the defaults: heartbeats every 0.1 s, a probe
answered within 0.3 s, an outage bound of about a second.
"""

from __future__ import annotations

import time
from datetime import timedelta
from itertools import pairwise

import polars as pl
import pytest
from ib_helpers import START, config_for, minute_bars
from ml4t.backtest import BacktestConfig

from ml4t_live import LiveEngine, ShadowBroker
from ml4t_live.errors import FeedStalled
from ml4t_live.events import (
    BackgroundTaskFailed,
    BarClosed,
    FeedDisconnected,
    FeedEnded,
    FeedReconnected,
)
from ml4t_live.venues.ib import IBFeed
from ml4t_live.venues.ib.feed_health import CHECK_SYMBOLS
from tests.support.strategies import MACrossover

FREEZE_ERRORS = (
    r"API connection failed",
    r"Make sure API port",
    r"Peer closed connection",
    r"IB feed: the IB gateway did not answer",  # our own give-up line (ERROR)
)


def read_until(feed, pred, timeout, seen):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ev = feed.next_event(max(0.0, deadline - time.monotonic()))
        if ev is None:
            continue
        seen.append(ev)
        if pred(ev):
            return ev
    raise AssertionError(f"no matching event within {timeout}s; saw {seen}")


def start_and_read_bars(feed, n: int) -> list:
    """Start ``feed`` and read its first ``n`` bars (each within 10 s); the events read so far."""
    feed.start()
    seen: list = []
    for _ in range(n):
        read_until(feed, lambda e: isinstance(e, BarClosed), 10, seen)
    return seen


def events_to_end(feed, timeout=30):
    """Start ``feed``, read its events up to FeedEnded (within ``timeout``), close it."""
    try:
        feed.start()
        seen: list = []
        read_until(feed, lambda e: isinstance(e, FeedEnded), timeout, seen)
    finally:
        feed.close()
    return seen


def test_a_gateway_frozen_for_good_ends_the_feed_within_its_bound(sim_factory, ib_log_guard):
    for pattern in FREEZE_ERRORS:
        ib_log_guard.expect(pattern)
    sim = sim_factory(minute_bars(("AAPL",), n=200), speed=120.0)
    feed = IBFeed(
        config_for(sim, connect_timeout=0.3),
        ["AAPL"],
        heartbeat_seconds=0.1,
        probe_timeout=0.3,
        outage_timeout=1.0,
    )
    try:
        feed.start()
        seen: list = []
        read_until(feed, lambda e: isinstance(e, BarClosed), 10, seen)
        frozen_at = time.monotonic()  # (the same clock as the feed's)
        sim.inject("freeze_gateway")
        down = read_until(feed, lambda e: isinstance(e, FeedDisconnected), 5, seen)
        assert "did not answer" in down.reason
        failed = read_until(feed, lambda e: isinstance(e, BackgroundTaskFailed), 10, seen)
        outage = time.monotonic() - feed.health.down_since  # since the probe went unanswered
        found_after = feed.health.down_since - frozen_at  # freeze -> 'did not answer'
    finally:
        feed.close()
    assert "not back after" in failed.error and "bound 1s" in failed.error
    assert outage >= 1.0, outage  # not before outage_timeout (a lower bound: load only adds)
    # Not after it either, counted in the feed's own cadence rather than in wall-clock time: while
    # down, a reminder goes out at most every heartbeat_seconds (0.1 s) from the outage's start,
    # so an outage ended at its 1 s bound has at most 9 (ended later, more; a loaded machine, fewer)
    after_down = seen[seen.index(down) :]
    reminders = [e for e in after_down[1:] if isinstance(e, FeedDisconnected)]
    assert 1 <= len(reminders) <= 9, reminders
    assert all("still down" in e.reason for e in reminders)
    # The freeze is found within min(heartbeat_seconds, silence_after) + probe_timeout (0.4 s),
    # measured in the feed's own cadence rather than in wall-clock time: the period of its
    # reminders while down (>= heartbeat_seconds; load that slows the loop lengthens each period
    # about as much as the probe's one wait, so it lowers the count). That bound is 4 periods, a
    # heartbeat sent without a probe just before the freeze one more; 10 leave as many again for
    # the loop's ticks (a probe waiting 8x probe_timeout: over 20).
    period = outage / (len(reminders) + 1)  # the reminders split the outage into this many
    assert found_after / period <= 10, (found_after, period, len(reminders))
    # while it was down, no heartbeat told the engine all was well
    assert all(type(e).__name__ != "FeedHeartbeat" for e in after_down)


def test_a_frozen_gateway_stops_the_engine_with_feed_stalled(sim_factory, ib_log_guard):
    for pattern in (*FREEZE_ERRORS, r"run failed: FeedStalled"):
        ib_log_guard.expect(pattern)
    sim = sim_factory(minute_bars(("AAPL",), n=200), speed=120.0)
    sim.inject("freeze_gateway", at_bar=2)
    feed = IBFeed(
        config_for(sim, connect_timeout=0.3),
        ["AAPL"],
        heartbeat_seconds=0.1,
        probe_timeout=0.3,
        outage_timeout=0.8,
    )
    engine = LiveEngine(
        MACrossover(), ShadowBroker(BacktestConfig()), feed, heartbeat_timeout=30.0,
        session_dir=False,
    )  # fmt: skip
    with pytest.raises(FeedStalled, match="did not answer"):
        engine.run()  # the CLI maps FeedStalled (a VenueError) to exit code 3


def test_a_gateway_frozen_for_a_while_is_reconnected_and_no_bar_is_lost(
    sim_factory, ib_log_guard
):
    for pattern in FREEZE_ERRORS:
        ib_log_guard.expect(pattern)
    n = 12
    bars = minute_bars(("AAPL", "MSFT"), n=n)
    sim = sim_factory(bars, speed=240.0)  # a minute bar every 0.25 s
    sim.inject("freeze_gateway", seconds=1.0, at_bar=2)
    feed = IBFeed(
        config_for(sim, connect_timeout=0.3),
        ["AAPL", "MSFT"],
        heartbeat_seconds=0.1,
        probe_timeout=0.2,
        outage_timeout=10.0,
        end=START + timedelta(minutes=n),
    )
    seen = events_to_end(feed)
    closed = [e for e in seen if isinstance(e, BarClosed)]
    assert [b.timestamp for b in closed] == [START + timedelta(minutes=i) for i in range(n)]
    kinds = [type(e).__name__ for e in seen if not isinstance(e, BarClosed)]
    assert "FeedDisconnected" in kinds and "FeedReconnected" in kinds
    reconnected = next(e for e in seen if isinstance(e, FeedReconnected))
    backfilled = [b for b in closed if b.catch_up]
    assert reconnected.missed_bars == len(backfilled) >= 1
    # catch-up bars are exactly those delivered between the outage and FeedReconnected
    start = seen.index(next(e for e in seen if isinstance(e, FeedDisconnected)))
    end = seen.index(reconnected)
    assert backfilled == [e for e in seen[start:end] if isinstance(e, BarClosed)]


@pytest.mark.parametrize("heartbeat_seconds", [0.1, 0.0])
def test_bars_further_apart_than_the_stall_timeout_do_not_stall_a_healthy_feed(
    sim_factory, heartbeat_seconds, ib_log_guard
):
    """Bars ~0.7 s apart against a 0.4 s stall timeout: the scaled-down '150 s apart bars versus
    the 120 s heartbeat_timeout'. With heartbeats off the same run stalls (the control)."""
    n = 4
    sim = sim_factory(minute_bars(("AAPL",), n=n), speed=60 / 0.7)
    feed = IBFeed(
        config_for(sim),
        ["AAPL"],
        heartbeat_seconds=heartbeat_seconds,
        end=START + timedelta(minutes=n),
    )
    engine = LiveEngine(
        MACrossover(), ShadowBroker(BacktestConfig()), feed, heartbeat_timeout=0.4,
        session_dir=False,
    )  # fmt: skip
    if heartbeat_seconds:
        assert engine.run().bars == n
    else:
        ib_log_guard.expect(r"run failed: FeedStalled")
        with pytest.raises(FeedStalled, match="no bar and no heartbeat"):
            engine.run()


def test_a_silent_realtime_stream_is_resubscribed_and_backfilled(sim_factory):
    """The gateway answers but real-time bars stop (IB-02): the venue has newer historical bars,
    so the stream is taken as silent, resubscribed, and the missed bars arrive as catch-up."""
    n = 10
    sim = sim_factory(minute_bars(("AAPL", "MSFT"), n=n), speed=240.0)
    sim.inject("silence_realtime_bars", at_bar=2)
    feed = IBFeed(
        config_for(sim),
        ["AAPL", "MSFT"],
        heartbeat_seconds=0.1,
        silence_after=0.4,  # longer than a bar here (0.25 s), as the default bar + 30 s is
        end=START + timedelta(minutes=n),
    )
    seen = events_to_end(feed)
    silences = feed.health.silences
    closed = [e for e in seen if isinstance(e, BarClosed)]
    assert [b.timestamp for b in closed] == [START + timedelta(minutes=i) for i in range(n)]
    down = next(e for e in seen if isinstance(e, FeedDisconnected))
    assert "the stream is silent" in down.reason
    reconnected = next(e for e in seen if isinstance(e, FeedReconnected))
    backfilled = [b for b in closed if b.catch_up]
    assert reconnected.missed_bars == len(backfilled) >= 1
    assert silences == 1


def test_a_closed_market_is_quiet_not_silent(sim_factory):
    """After the replay's last bar, the session's last (it ends at NYSE's 16:00 close), the gateway
    answers and has no newer bar: the feed checks, finds nothing missed, and keeps sending
    heartbeats on the same subscription."""
    from ml4t_live.events import FeedHeartbeat

    n = 3
    last_minutes = START.replace(hour=21, minute=0) - timedelta(minutes=n)  # 15:57 New York
    sim = sim_factory(minute_bars(("AAPL",), n=n, start=last_minutes), speed=600.0)
    feed = IBFeed(config_for(sim), ["AAPL"], heartbeat_seconds=0.1, silence_after=0.2)
    try:
        start_and_read_bars(feed, n)
        assert sim.wait_finished(5)
        quiet = [feed.next_event(2.0) for _ in range(10)]  # ~1 s: several checks
    finally:
        feed.close()
    assert all(isinstance(e, FeedHeartbeat) for e in quiet), quiet
    assert feed.health.venue_checks >= 2 and feed.health.silences == 0


DEAD_IN_SESSION = (r"IB feed: no real-time bar for .* while XNYS is in session",)


@pytest.mark.parametrize("calendar", ["XNYS", None])
def test_a_venue_with_no_data_while_the_exchange_is_in_session_is_down_not_quiet(
    sim_factory, calendar, ib_log_guard
):
    """The week run's hang, on the feed: the venue's replay ends at 09:33 New York on a session
    day (as when the feed's ``end`` lies on a day the venue does not replay), the gateway answers
    probes and has no newer bar. By the gateway's clock NYSE is in session, so this is no quiet
    market: the feed resubscribes, counts the link as down, and gives up after ``outage_timeout``.
    Without a session calendar (the control: the rule before) it sends heartbeats for ever."""
    from ml4t_live.events import FeedHeartbeat

    for pattern in DEAD_IN_SESSION:
        ib_log_guard.expect(pattern)
    n = 3
    sim = sim_factory(minute_bars(("AAPL", "MSFT"), n=n))  # step mode: the probes release the bars
    feed = IBFeed(
        config_for(sim), ["AAPL", "MSFT"], heartbeat_seconds=0.1, silence_after=0.3,
        outage_timeout=1.0, session_calendar=calendar, end=START + timedelta(days=1),
    )  # fmt: skip
    try:
        seen = start_and_read_bars(feed, n)
        assert sim.wait_finished(5)
        if calendar is None:
            quiet = [feed.next_event(2.0) for _ in range(15)]  # ~1.5 s: past the outage bound
        else:
            down = read_until(feed, lambda e: isinstance(e, FeedDisconnected), 5, seen)
            failed = read_until(feed, lambda e: isinstance(e, BackgroundTaskFailed), 5, seen)
    finally:
        feed.close()
    if calendar is None:
        assert all(isinstance(e, FeedHeartbeat) for e in quiet), quiet
        return
    assert "while XNYS is in session (gateway time 2026-11-24 14:33:00 UTC)" in down.reason
    assert "the venue sends no data" in failed.error and "bound 1s" in failed.error
    after_down = seen[seen.index(down) :]
    assert not any(isinstance(e, (FeedHeartbeat, BarClosed)) for e in after_down), after_down
    assert feed.health.silences == 1


def test_a_venue_with_no_data_in_session_stops_the_engine_instead_of_hanging(sim_factory, ib_log_guard):
    """The same through the engine: ``run()`` ends with FeedStalled (the CLI's exit code 3)
    instead of waiting for a bar that never comes while heartbeats keep it alive."""
    for pattern in (*DEAD_IN_SESSION, r"run failed: FeedStalled"):
        ib_log_guard.expect(pattern)
    sim = sim_factory(minute_bars(("AAPL",), n=3))
    feed = IBFeed(
        config_for(sim), ["AAPL"], heartbeat_seconds=0.1, silence_after=0.3, outage_timeout=0.8,
        end=START + timedelta(days=1),
    )  # fmt: skip
    engine = LiveEngine(
        MACrossover(), ShadowBroker(BacktestConfig()), feed, heartbeat_timeout=30.0,
        session_dir=False,
    )  # fmt: skip
    with pytest.raises(FeedStalled, match="while XNYS is in session"):
        engine.run()
    assert sim.wait_finished(0.1)


def test_an_end_that_no_bar_reaches_ends_the_run_by_the_gateways_clock(sim_factory):
    """``end`` on a holiday or after an early close: no bar closes there. The venue's data stops
    at NYSE's 16:00 close (so no in-session alarm); the feed's ``end`` is 16:13. The
    gateway's clock (600x after its last bar) passes it, so the run ends there with FeedEnded
    instead of waiting for the next session's first bar."""
    n = 3
    start = START.replace(hour=20, minute=57)  # 15:57 New York
    sim = sim_factory(minute_bars(("AAPL",), n=n, start=start), speed=600.0)
    end = start + timedelta(minutes=16)
    feed = IBFeed(config_for(sim), ["AAPL"], heartbeat_seconds=0.1, silence_after=0.3, end=end)
    engine = LiveEngine(
        MACrossover(), ShadowBroker(BacktestConfig()), feed, heartbeat_timeout=30.0,
        session_dir=False,
    )  # fmt: skip
    result = engine.run()
    assert result.bars == n
    assert result.stopped_reason.startswith("session end 2026-11-24T21:13:00+00:00 passed on the venue's clock")


def _quiet_after_the_close(sim_factory, symbols, n=3):
    """A feed of ``symbols`` that read the day's last ``n`` minutes (to 16:00 New York) from a
    simulated gateway that has finished: from here the market is quiet. Scaled-down bounds: a
    check after 0.2 s of quiet, then waits doubling up to 0.4 s. The caller closes the feed."""
    last_minutes = START.replace(hour=21, minute=0) - timedelta(minutes=n)  # 15:57 New York
    sim = sim_factory(minute_bars(symbols, n=n, start=last_minutes), speed=600.0)
    feed = IBFeed(
        config_for(sim), list(symbols), heartbeat_seconds=0.1, silence_after=0.2,
        max_check_interval=0.4,
    )  # fmt: skip
    try:
        start_and_read_bars(feed, n)
        assert sim.wait_finished(5)
    except BaseException:
        feed.close()
        raise
    return sim, feed


def test_a_quiet_market_is_checked_at_the_documented_cadence_not_every_tick(sim_factory):
    """After the close the gateway answers and has no newer bar. Scaled-down bounds (a check
    after 0.2 s of quiet, then waits doubling up to 0.4 s): the gateway receives one
    reqHistoricalData per symbol per check, and the checks come at least 0.4 s apart however long
    the quiet lasts. (Timed from the last bar, as before the fix, a check went out on every
    0.025 s tick once the quiet passed 0.4 s.)"""
    symbols, checks = ("AAPL", "MSFT"), 6
    sim, feed = _quiet_after_the_close(sim_factory, symbols)
    try:
        quiet_from = time.monotonic()
        before = sim.request_count("ReqHistoricalData")
        assert sim.wait_requests("ReqHistoricalData", before + checks * len(symbols), 10.0)
        quiet_until = time.monotonic()
        arrivals = sim.requests_received("ReqHistoricalData")
        venue_checks, silences = feed.health.venue_checks, feed.health.silences
    finally:
        feed.close()
    assert silences == 0
    quiet = [t for t in arrivals if t >= quiet_from]
    assert len(quiet) == len(symbols) * (len(quiet) // len(symbols))  # whole checks only
    starts = quiet[:: len(symbols)]  # each check asks for every symbol in turn
    gaps = [b - a for a, b in pairwise(starts)]
    assert all(gap >= 0.4 - 0.05 for gap in gaps), gaps  # 0.05 s: loopback arrival jitter
    assert all(gap < 0.4 + 1.0 for gap in gaps), gaps  # the checks go on at their bound
    allowed = 1 + (quiet_until - quiet_from) / 0.4  # a check at the start, then one per 0.4 s
    assert len(starts) <= allowed, (len(starts), quiet_until - quiet_from)
    assert venue_checks >= checks


def test_a_check_asks_at_most_two_symbols_whatever_the_symbol_count(sim_factory):
    """Eight symbols, a quiet market after the close: each check sends at most CHECK_SYMBOLS (2)
    reqHistoricalData, not one per symbol (8), so checks stay inside IB's historical pacing
    (60 requests per 10 min for bars <= 30 s, fault_catalogue IB-23) however many symbols."""
    symbols = ("AAPL", "MSFT", "IBM", "SPY", "QQQ", "XOM", "JPM", "KO")
    sim, feed = _quiet_after_the_close(sim_factory, symbols)
    try:
        before = sim.request_count("ReqHistoricalData")
        checks_before = feed.health.venue_checks
        assert sim.wait_requests("ReqHistoricalData", before + 5 * CHECK_SYMBOLS, 10.0)
    finally:
        feed.close()
    requests = sim.request_count("ReqHistoricalData") - before
    checks = feed.health.venue_checks - checks_before
    # a check in flight when the counts were read may add its requests without its count
    assert requests <= CHECK_SYMBOLS * checks + CHECK_SYMBOLS, (requests, checks)
    assert checks >= 5 and feed.health.silences == 0


def test_an_end_that_passes_while_the_venue_is_down_ends_the_feed_not_the_outage(sim_factory, ib_log_guard):
    """The in-session alarm (NYSE open, no data, no newer bar) counts the link as down; ``end``
    passes 2 s later on the gateway's clock, well inside the 5 s outage bound. The feed ends
    there (FeedEnded, exit 0) instead of running out the outage bound (FeedStalled, exit 3)."""
    for pattern in DEAD_IN_SESSION:
        ib_log_guard.expect(pattern)
    n = 3
    sim = sim_factory(minute_bars(("AAPL",), n=n))  # step mode: after the last bar, wall time
    end = START + timedelta(minutes=n, seconds=2)
    feed = IBFeed(
        config_for(sim), ["AAPL"], heartbeat_seconds=0.1, silence_after=0.3, outage_timeout=5.0,
        end=end,
    )  # fmt: skip
    try:
        seen = start_and_read_bars(feed, n)
        down = read_until(feed, lambda e: isinstance(e, FeedDisconnected), 5, seen)
        last = read_until(feed, lambda e: isinstance(e, (FeedEnded, BackgroundTaskFailed)), 8, seen)
    finally:
        feed.close()
    assert "while XNYS is in session" in down.reason
    assert isinstance(last, FeedEnded), last
    assert "session end 2026-11-24T14:33:02+00:00 passed on the venue's clock" in last.reason


@pytest.mark.parametrize(
    ("exchange", "currency", "calendar"),
    [
        ("SMART", "USD", "XNYS"),
        ("NYSE", "USD", "XNYS"),
        ("island", "USD", "XNYS"),
        ("ARCA", "USD", "XNYS"),
        ("SEHK", "USD", None),  # a USD line on a foreign venue: its hours are not NYSE's
        ("LSE", "USD", None),
        ("SMART", "EUR", None),
        ("IBIS", "EUR", None),
    ],
)
def test_auto_session_calendar_is_nyse_only_for_usd_stocks_on_us_venues(exchange, currency, calendar):
    from ml4t_live.venues.ib.config import IBConfig

    feed = IBFeed(IBConfig(exchange=exchange, currency=currency), ["AAPL"])
    assert feed.session_calendar == calendar
    named = IBFeed(IBConfig(exchange=exchange, currency=currency), ["AAPL"], session_calendar="XLON")
    assert named.session_calendar == "XLON"  # a calendar named by the user is kept


def test_a_silent_stream_is_found_whichever_symbols_still_trade(sim_factory):
    """Three symbols; after the second minute only AAPL trades at the venue, and the real-time
    stream goes silent. With no session rule (``session_calendar=None``: a non-US line, or
    outside regular hours) only the quiet checks can find it. Each check asks the symbol with
    the newest real-time bar (IBM, the last subscribed) and one of the others in turn, so AAPL
    is asked within two checks: the stream is found silent, resubscribed, and AAPL's missed bars
    are backfilled. (Asking only the two symbols with the newest bars, IBM and MSFT, which no
    longer trade, it was taken for a quiet market for ever.)"""
    n = 8
    bars = minute_bars(("AAPL", "MSFT", "IBM"), n=n)
    bars = bars.filter((pl.col("asset") == "AAPL") | (pl.col("timestamp") < START + timedelta(minutes=2)))
    sim = sim_factory(bars, speed=240.0)
    sim.inject("silence_realtime_bars", at_bar=2)
    feed = IBFeed(
        config_for(sim), ["AAPL", "MSFT", "IBM"], heartbeat_seconds=0.1, silence_after=0.4,
        session_calendar=None, end=START + timedelta(minutes=n),
    )  # fmt: skip
    seen = events_to_end(feed)
    closed = [e for e in seen if isinstance(e, BarClosed)]
    assert [b.timestamp for b in closed] == [START + timedelta(minutes=i) for i in range(n)]
    assert feed.health.silences == 1
    backfilled = [b for b in closed if b.catch_up]
    assert backfilled and all(set(b.data) == {"AAPL"} for b in backfilled)
