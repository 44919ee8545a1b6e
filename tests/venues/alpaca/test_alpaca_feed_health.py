"""Alpaca feed health through alpaca-py against the simulated venue.

Short bounds (constructor parameters) stand in for the defaults: heartbeats every 0.1 s, a
silence check after 0.3 s without a bar, an outage bound of about a second. alpaca-py's own
``data_timeout`` is off: the feed's watchdog alone must catch a silent socket.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from alpaca.trading.client import TradingClient
from alpaca_helpers import SESSION_OPEN, config_for, inject, minute_bars
from ml4t.backtest import BacktestConfig

from ml4t_live import LiveEngine, ShadowBroker
from ml4t_live.errors import FeedStalled
from ml4t_live.events import (
    BackgroundTaskFailed,
    BarClosed,
    FeedDisconnected,
    FeedHeartbeat,
    FeedReconnected,
)
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.feed import AlpacaFeed
from tests.support.strategies import MACrossover

SYMBOLS = {"AAPL": 100.0, "MSFT": 200.0}


def minute(i: int):
    return SESSION_OPEN + timedelta(minutes=i)


@pytest.fixture
def venue() -> Iterator[SimulatedAlpaca]:
    sim = SimulatedAlpaca(minute_bars(12, SYMBOLS, skip={("MSFT", i) for i in range(1, 7)}))
    sim.start()
    yield sim
    sim.close()


def until(feed: AlpacaFeed, pred, seen: list, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        event = feed.next_event(max(0.0, deadline - time.monotonic()))
        if event is None:
            continue
        seen.append(event)
        if pred(event):
            return event
    raise AssertionError(f"no matching event within {timeout}s; saw {seen!r}")


def is_bar(event) -> bool:
    return isinstance(event, BarClosed)


def test_a_silent_data_socket_is_detected_replaced_and_no_bar_is_lost(venue):
    feed = AlpacaFeed(
        config_for(venue), ["AAPL", "MSFT"], group_grace=0.2, heartbeat_seconds=0.1,
        silence_after=0.3,
    )  # fmt: skip
    clock = TradingClient(venue.key_id, venue.secret_key, url_override=venue.base_url)
    seen: list = []
    feed.start()
    try:
        until(feed, is_bar, seen)  # minute 0, live
        inject(venue, "silence_data_stream")  # open, pings answered, nothing sent
        clock.get_clock()  # minute 1 goes out on the silent socket: lost there
        down = until(feed, lambda e: isinstance(e, FeedDisconnected), seen)
        back = until(feed, lambda e: isinstance(e, FeedReconnected), seen)
        for _ in range(2):  # the replaced socket carries live bars again
            clock.get_clock()
            until(feed, is_bar, seen)
    finally:
        feed.close()
    assert "bars REST has 1 newer minute" in down.reason
    bars = [e for e in seen if is_bar(e)]
    assert [b.timestamp for b in bars] == [minute(i) for i in range(4)]  # no bar lost
    assert [b.catch_up for b in bars] == [False, True, False, False]  # minute 1 backfilled
    assert back.missed_bars == 1
    assert feed.health.silences == 1
    state = venue.state()
    assert state["data_connections"] == 2 and state["muted_sockets"] == 0


def test_one_quiet_symbol_while_another_ticks_is_not_a_silent_socket(venue):
    """MSFT has no bar in minutes 1..6 (it did not trade) while AAPL ticks; each minute is
    released only after a heartbeat, so MSFT stays quiet well past ``silence_after``."""
    feed = AlpacaFeed(
        config_for(venue), ["AAPL", "MSFT"], group_grace=0.05, heartbeat_seconds=0.1,
        silence_after=0.3,
    )  # fmt: skip
    clock = TradingClient(venue.key_id, venue.secret_key, url_override=venue.base_url)
    seen: list = []
    feed.start()
    try:
        until(feed, is_bar, seen)
        started = time.monotonic()
        for _ in range(7):
            until(feed, lambda e: isinstance(e, FeedHeartbeat), seen)
            clock.get_clock()
            until(feed, is_bar, seen)
        msft_quiet = time.monotonic() - started
    finally:
        feed.close()
    bars = [e for e in seen if is_bar(e)]
    assert msft_quiet > 0.3 * 2
    assert [b.timestamp for b in bars] == [minute(i) for i in range(8)]
    assert [sorted(b.data) for b in bars[1:7]] == [["AAPL"]] * 6
    assert not any(b.catch_up for b in bars)
    assert not any(isinstance(e, FeedDisconnected) for e in seen)
    assert feed.health.silences == 0 and venue.state()["data_connections"] == 1


def test_a_data_socket_that_cannot_be_reestablished_ends_the_feed_within_its_bound():
    sim = SimulatedAlpaca(minute_bars(5, SYMBOLS))
    sim.start()
    feed = AlpacaFeed(
        config_for(sim, reconnect_initial_delay=0.1, reconnect_max_delay=0.3),
        ["AAPL"], heartbeat_seconds=0.2, silence_after=0.3, outage_timeout=1.0,
    )  # fmt: skip
    seen: list = []
    try:
        feed.start()
        until(feed, is_bar, seen)
        sim.close()  # the venue is gone: the socket closes and every reconnect is refused
        down = until(feed, lambda e: isinstance(e, FeedDisconnected), seen)
        failed = until(feed, lambda e: isinstance(e, BackgroundTaskFailed), seen)
        outage = time.monotonic() - feed.health.down_since  # from the outage's start, feed's clock
    finally:
        feed.close()
        sim.close()
    assert "not back after" in failed.error and "bound 1s" in failed.error
    assert outage >= 1.0, outage  # not before outage_timeout (a lower bound: load only adds)
    # Not after it either, counted in the feed's own cadence rather than in wall-clock time: while
    # down, a reminder goes out at most every heartbeat_seconds (0.2 s) from the outage's start,
    # so an outage ended at its 1 s bound has at most 4 (ended later, more; a loaded machine, fewer)
    reminders = [e for e in seen[seen.index(down) + 1 :] if isinstance(e, FeedDisconnected)]
    assert 1 <= len(reminders) <= 4, reminders
    assert all("still down" in e.reason for e in reminders)
    assert not any(isinstance(e, FeedHeartbeat) for e in seen[seen.index(down) :])


@pytest.mark.parametrize("heartbeat_seconds", [0.1, 0.0])
def test_bars_further_apart_than_the_stall_timeout_do_not_stall_a_healthy_feed(
    heartbeat_seconds,
):
    """Minutes ~0.7 s apart against a 0.4 s stall timeout: the scaled-down '150 s apart bars
    versus the 120 s heartbeat_timeout'. With heartbeats off the same run stalls (the control)."""
    n = 4
    sim = SimulatedAlpaca(minute_bars(n, {"AAPL": 100.0}), speed=60 / 0.7)
    sim.start()
    feed = AlpacaFeed(
        config_for(sim), ["AAPL"], heartbeat_seconds=heartbeat_seconds, end=minute(n)
    )
    engine = LiveEngine(
        MACrossover(), ShadowBroker(BacktestConfig()), feed, heartbeat_timeout=0.4,
        session_dir=False,
    )  # fmt: skip
    try:
        if heartbeat_seconds:
            result = engine.run()
            assert result.bars >= n - 1 and result.stopped_reason.startswith("end of the requested")
        else:
            with pytest.raises(FeedStalled, match="no bar and no heartbeat"):
                engine.run()
    finally:
        sim.close()


def test_a_silent_socket_whose_replacement_is_refused_stops_the_engine_with_feed_stalled():
    """Speed mode: the data socket goes silent at bar 2 and every new data socket is refused
    (503 on the upgrade): detected after ``silence_after``, then the outage bound ends the run."""
    faults = [
        {"kind": "silence_data_stream", "at_bar": 2},
        {"kind": "refuse_data_stream", "at_bar": 2},
    ]
    sim = SimulatedAlpaca(minute_bars(200, {"AAPL": 100.0}), speed=60 / 0.1, faults=faults)
    sim.start()
    feed = AlpacaFeed(
        config_for(sim, reconnect_initial_delay=0.1, reconnect_max_delay=0.3),
        ["AAPL"], heartbeat_seconds=0.1, silence_after=0.3, outage_timeout=1.0,
    )  # fmt: skip
    engine = LiveEngine(
        MACrossover(), ShadowBroker(BacktestConfig()), feed, heartbeat_timeout=30.0,
        session_dir=False,
    )  # fmt: skip
    try:
        with pytest.raises(FeedStalled, match=r"not back after .*\(bound 1s\)"):
            engine.run()  # the CLI maps FeedStalled (a VenueError) to exit code 3
        outage = time.monotonic() - feed.health.down_since  # since the silence was found
        state = sim.state()
    finally:
        sim.close()
    # the silence was found (once), and the outage bound, not sooner, ended the run (that it ends
    # the run at the bound and not later: the test above, in the feed's reminder cadence)
    assert feed.health.silences == 1
    assert outage >= 1.0, outage
    assert {kind for kind, _ in state["faults_applied"]} == {f["kind"] for f in faults}
    assert state["data_connections"] == 1  # every replacement was refused


def test_refused_data_sockets_are_retried_until_the_refusal_ends(venue):
    """The simulator's refuse_data_stream knob through alpaca-py: 503 on every upgrade while it
    lasts (alpaca-py backs off and retries), served normally afterwards."""
    from ml4t_live.errors import ConnectionFailed

    inject(venue, "refuse_data_stream")  # for good
    refused = AlpacaFeed(config_for(venue, stream_start_timeout=0.5), ["AAPL"])
    with pytest.raises(ConnectionFailed, match="no authenticated connection"):
        refused.start()
    refused.close()
    assert venue.state()["data_connections"] == 0

    inject(venue, "refuse_data_stream", seconds=0.3)
    feed = AlpacaFeed(config_for(venue, stream_start_timeout=5.0), ["AAPL"])
    seen: list = []
    try:
        feed.start()  # retried through the refusal
        until(feed, is_bar, seen)
    finally:
        feed.close()
    assert venue.state()["data_connections"] == 1


def test_a_quiet_open_market_is_checked_at_the_documented_cadence_not_every_tick(venue):
    """Step mode, market open: after minute 0 no minute is released, so the bars REST has none
    newer and the market is quiet. Scaled-down bounds (a check after 0.2 s, waits doubling up to
    0.4 s): over ~2 s of quiet the feed asks the REST about once per 0.4 s. (Timed from the last
    bar, as before the fix, it asked on every 0.025 s tick once the quiet passed 0.4 s.)"""
    feed = AlpacaFeed(
        config_for(venue), ["AAPL", "MSFT"], group_grace=0.05, heartbeat_seconds=0.1,
        silence_after=0.2, max_check_interval=0.4,
    )  # fmt: skip
    seen: list = []
    feed.start()
    try:
        until(feed, is_bar, seen)
        quiet_from, checks_before = time.monotonic(), feed.health.venue_checks
        while time.monotonic() - quiet_from < 2.0:  # the heartbeats pace the reads
            until(feed, lambda e: isinstance(e, FeedHeartbeat), seen, timeout=2.0)
        checks = feed.health.venue_checks - checks_before  # read inside the measured quiet
        quiet = time.monotonic() - quiet_from
    finally:
        feed.close()
    assert 2 <= checks <= 1 + quiet / 0.4, (checks, quiet)  # one per 0.4 s at most, and on
    assert feed.health.silences == 0
    assert not any(isinstance(e, (FeedDisconnected, BarClosed)) for e in seen[1:])


def test_a_socket_silent_from_the_open_is_found_silence_after_past_the_open():
    """A run started before the open (as cron starts it): the venue's clock says closed for
    1.6 s, the data socket is muted before the open, the first minute goes out on it at the open.
    Before the open every check is 'quiet' (no REST call) and the waits double (0.2, 0.4, 0.8 s:
    the next one 1.4 s after the start); the check must still come silence_after (0.2 s) past the
    open, not 1.4 s after it, where the doubled waits put it (3.0 s after the start).

    Proved on the feed's own schedule, not on wall-clock time: the check that found the silence
    was scheduled (``health.next_check``, on the feed's monotonic clock) at most silence_after past
    the open the feed was told of. Every replacement socket is refused, so nothing reschedules
    the checks after the silence is found."""
    sim = SimulatedAlpaca(minute_bars(3, SYMBOLS), pre_open=1.6)
    sim.start()
    feed = AlpacaFeed(
        config_for(sim), ["AAPL", "MSFT"], group_grace=0.05, heartbeat_seconds=0.1,
        silence_after=0.2, max_check_interval=10.0,
    )  # fmt: skip
    seen: list = []
    try:
        feed.start()
        assert not feed.market_open() and feed.opens_in() is not None
        opens_at = time.monotonic() + feed.opens_in()  # the open the feed was told of, its clock
        inject(sim, "silence_data_stream")
        inject(sim, "refuse_data_stream")  # the replacement never comes: next_check stays put
        checks_before_open = feed.health.venue_checks
        down = until(feed, lambda e: isinstance(e, FeedDisconnected), seen, timeout=5.0)
        found_at = feed.health.next_check  # when the check that found the silence was due
    finally:
        feed.close()
        sim.close()
    assert checks_before_open == 0  # no REST call while the venue's clock said closed
    assert "bars REST has 1 newer minute" in down.reason
    assert feed.health.silences == 1
    # silence_after past the open, with 0.5 s for the two clock reads above (the doubled waits'
    # check is 1.4 s past the open)
    assert found_at <= opens_at + 0.2 + 0.5, found_at - opens_at
    assert not any(isinstance(e, BarClosed) for e in seen)
