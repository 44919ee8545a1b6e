"""AlpacaFeed through alpaca-py's StockDataStream / StockHistoricalDataClient against the simulator.

Step mode: the simulated venue sends the next minute bar after a GET /v2/clock (``tick``) or
``sim.advance()``; the feed's ``start()`` makes the first such call itself.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from alpaca.trading.client import TradingClient
from alpaca_helpers import SESSION_OPEN, config_for, inject, minute_bars

from ml4t_live.events import BarClosed, FeedDisconnected, FeedReconnected
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.feed import AlpacaFeed

SYMBOLS = {"AAPL": 100.0, "MSFT": 200.0}
KEYS = {"price", "open", "high", "low", "close", "volume", "signals"}


def minute(i: int):
    return SESSION_OPEN + timedelta(minutes=i)


@pytest.fixture
def venue() -> Iterator[SimulatedAlpaca]:
    sim = SimulatedAlpaca(minute_bars(12, SYMBOLS, skip={("MSFT", 2)}))
    sim.start()
    yield sim
    sim.close()


def read(feed: AlpacaFeed, sim: SimulatedAlpaca, n: int, *, step: bool = True) -> list:
    """The next ``n`` feed events; after each bar, tell the venue we caught up (GET /v2/clock)."""
    clock = TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url)
    out = []
    while len(out) < n:
        event = feed.next_event(5.0)
        assert event is not None, f"feed went quiet after {out!r}"
        out.append(event)
        if step and isinstance(event, BarClosed):
            clock.get_clock()
    return out


def test_minute_bars_are_labelled_by_their_start_in_the_backtest_shape(venue):
    feed = AlpacaFeed(config_for(venue), ["AAPL", "MSFT"], group_grace=0.2)
    feed.start()
    try:
        bars = read(feed, venue, 4)
    finally:
        feed.close()
    assert [b.timestamp for b in bars] == [minute(i) for i in range(4)]
    assert bars[0].timestamp.utcoffset() == timedelta(0)
    first = bars[0].data["AAPL"]
    assert set(first) == KEYS and first["signals"] == {}
    assert (
        first["open"],
        first["high"],
        first["low"],
        first["close"],
        first["price"],
    ) == (100, 101, 99, 100.5, 100.5)
    assert first["volume"] == 1000
    assert (
        sorted(bars[1].data) == ["AAPL", "MSFT"] and bars[1].data["MSFT"]["open"] == 201
    )
    assert sorted(bars[2].data) == [
        "AAPL"
    ]  # MSFT had no bar that minute: released after the grace


def test_labels_are_converted_to_the_requested_time_zone(venue):
    feed = AlpacaFeed(config_for(venue), ["AAPL"], tz="America/New_York")
    feed.start()
    try:
        (bar,) = read(feed, venue, 1)
    finally:
        feed.close()
    assert bar.timestamp == minute(0) and bar.timestamp.tzinfo == ZoneInfo(
        "America/New_York"
    )
    assert (bar.timestamp.hour, bar.timestamp.minute) == (9, 30)


def test_warm_up_bars_come_first_with_no_gap_and_no_duplicate_at_the_seam(venue):
    clock = TradingClient(venue.key_id, venue.secret_key, url_override=venue.base_url)
    for _ in range(5):  # bars 0..4 are replayed before anyone listens
        clock.get_clock()
    feed = AlpacaFeed(
        config_for(venue), ["AAPL", "MSFT"], warmup_bars=3, group_grace=0.2
    )
    feed.start()
    try:
        bars = read(feed, venue, 6)
    finally:
        feed.close()
    assert [b.timestamp for b in bars] == [minute(i) for i in range(2, 8)]
    assert sorted(bars[0].data) == ["AAPL"]  # the historical bar 2 has no MSFT either
    assert bars[3].data["AAPL"]["open"] == 105  # the first live bar
    assert [b.catch_up for b in bars] == [True] * 3 + [False] * 3  # warm-up from history


def test_other_bar_sizes_are_aggregated_from_minutes(venue):
    feed = AlpacaFeed(config_for(venue), ["AAPL"], bar_size="3Min", warmup_bars=0)
    feed.start()
    bars = []
    try:
        while len(bars) < 3:
            event = feed.next_event(0.1)
            if event is None:
                venue.advance()  # release the next minute (nobody calls the clock per minute)
            else:
                bars.append(event)
    finally:
        feed.close()
    assert [b.timestamp for b in bars] == [minute(0), minute(3), minute(6)]
    agg = bars[1].data["AAPL"]
    assert (agg["open"], agg["high"], agg["low"], agg["close"]) == (
        103,
        106,
        102,
        105.5,
    )
    assert agg["volume"] == 1003 + 1004 + 1005


def test_bars_missed_while_the_stream_was_down_are_backfilled_once(venue):
    feed = AlpacaFeed(
        config_for(venue, reconnect_initial_delay=0.5),
        ["AAPL", "MSFT"],
        group_grace=0.2,
    )
    feed.start()
    clock = TradingClient(venue.key_id, venue.secret_key, url_override=venue.base_url)
    try:
        (first,) = read(feed, venue, 1, step=False)
        inject(venue, "drop_data_stream")
        clock.get_clock()  # bar 1 goes out while the client is away
        events = read(feed, venue, 4)
    finally:
        feed.close()
    assert first.timestamp == minute(0)
    assert isinstance(events[0], FeedDisconnected)
    assert isinstance(events[1], BarClosed) and events[1].timestamp == minute(1)
    assert events[2] == FeedReconnected("alpaca", missed_bars=1)
    assert isinstance(events[3], BarClosed) and events[3].timestamp == minute(2)
    assert (first.catch_up, events[1].catch_up, events[3].catch_up) == (False, True, False)


def test_a_silent_data_socket_is_replaced_and_its_bars_backfilled(venue):
    feed = AlpacaFeed(
        config_for(venue, data_timeout=0.3), ["AAPL", "MSFT"], group_grace=0.2
    )
    feed.start()
    clock = TradingClient(venue.key_id, venue.secret_key, url_override=venue.base_url)
    try:
        (_first,) = read(feed, venue, 1, step=False)
        inject(venue, "silence_data_stream")
        clock.get_clock()  # bar 1 is not sent on the silent socket
        events = read(feed, venue, 3, step=False)
    finally:
        feed.close()
    bars = [e for e in events if isinstance(e, BarClosed)]
    assert [b.timestamp for b in bars] == [minute(1)]
    assert bars[0].catch_up  # backfilled from the REST
    assert any(isinstance(e, FeedReconnected) for e in events)
    assert venue.state()["data_connections"] == 2


def test_heartbeats_while_the_socket_is_up_and_a_quiet_market_is_not_a_silent_socket(venue):
    """Nobody releases the next minute (step mode): the venue has no newer bar, so the quiet is
    the market's. The feed keeps the engine informed and keeps its socket."""
    from ml4t_live.events import FeedHeartbeat

    feed = AlpacaFeed(
        config_for(venue), ["AAPL"], heartbeat_seconds=0.1, silence_after=0.3
    )
    feed.start()
    try:
        read(feed, venue, 1, step=False)  # the bar its own start released
        quiet = [feed.next_event(2.0) for _ in range(10)]  # ~1 s: three silence checks
    finally:
        feed.close()
    assert all(isinstance(e, FeedHeartbeat) for e in quiet), quiet
    assert feed.health.venue_checks >= 2 and feed.health.silences == 0
    assert venue.state()["data_connections"] == 1


def test_a_vanished_venue_is_retried_with_growing_jittered_delays_not_a_storm():
    import logging
    import time

    from ml4t_live.events import FeedDisconnected

    sim = SimulatedAlpaca(minute_bars(5, SYMBOLS))
    sim.start()
    attempts: list[float] = []

    class Attempts(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "starting data websocket connection" in record.getMessage():
                attempts.append(time.monotonic())

    handler = Attempts(level=logging.INFO)
    lib = logging.getLogger("alpaca.data.live.websocket")
    old_level = lib.level
    lib.addHandler(handler)
    lib.setLevel(logging.INFO)
    feed = AlpacaFeed(
        config_for(sim, reconnect_initial_delay=0.1, reconnect_max_delay=0.8), ["AAPL"]
    )
    try:
        feed.start()
        read(feed, sim, 1, step=False)
        sim.close()  # the venue is gone: every reconnect is refused
        assert isinstance(feed.next_event(5.0), FeedDisconnected)
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            assert feed.next_event(deadline - time.monotonic()) is None
    finally:
        feed.close()
        lib.removeHandler(handler)
        lib.setLevel(old_level)
    retries = attempts[1:]  # the first attempt was the initial connection
    gaps = [b - a for a, b in itertools.pairwise(retries)]
    assert 2 <= len(retries) <= 8, retries  # a storm (alpaca-py#740) would be hundreds
    assert all(gap >= 0.05 for gap in gaps) and max(gaps) >= 0.4


def test_a_feed_with_wrong_keys_fails_to_start_with_a_clear_error(venue):
    from ml4t_live.errors import ConnectionFailed
    from ml4t_live.venues.alpaca.config import AlpacaConfig

    config = AlpacaConfig(
        key_id=venue.key_id,
        secret_key="wrong-secret-value",
        base_url=venue.base_url,
        stream_start_timeout=0.5,
        reconnect_initial_delay=0.1,
    )
    feed = AlpacaFeed(config, ["AAPL"])
    with pytest.raises(ConnectionFailed, match="key pair") as failed:
        feed.start()
    assert "wrong-secret-value" not in str(failed.value)
    feed.close()


def test_an_aggregated_warm_up_completes_the_first_live_bucket_from_history(venue):
    clock = TradingClient(venue.key_id, venue.secret_key, url_override=venue.base_url)
    for _ in range(7):  # minutes 0..6 are replayed before anyone listens
        clock.get_clock()
    feed = AlpacaFeed(config_for(venue), ["AAPL"], bar_size="3Min", warmup_bars=1)
    feed.start()  # minute 7 goes out: the first live minute, inside the bucket 6..8
    bars = []
    try:
        while len(bars) < 2:
            event = feed.next_event(0.1)
            if event is None:
                venue.advance()
            else:
                bars.append(event)
    finally:
        feed.close()
    assert [b.timestamp for b in bars] == [minute(3), minute(6)]
    assert [b.catch_up for b in bars] == [True, False]  # minute 8 (live) closes the second
    first_live = bars[1].data["AAPL"]  # minute 6 from history, 7 and 8 live
    assert (first_live["open"], first_live["close"], first_live["volume"]) == (
        106,
        108.5,
        1006 + 1007 + 1008,
    )
