"""IBFeed through the real ib_async against the simulated gateway (step mode).

The gateway's ``end_of_bar`` (reqCurrentTime on the order connection) is what advances the
simulated clock, exactly as the engine drives it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from ib_helpers import START, config_for, drain, minute_bars

from ml4t_live.events import BarClosed, FeedDisconnected, FeedReconnected
from ml4t_live.venues.ib import IBFeed, IBGateway

DROP_ERRORS = (
    r"Peer closed connection",
    r"API connection failed",
    r"Make sure API port",
)


def expected(bars, label):
    rows = bars.filter(bars["timestamp"] == label).to_dicts()
    return {
        r["asset"]: {
            "price": r["close"],
            "open": r["open"],
            "high": r["high"],
            "low": r["low"],
            "close": r["close"],
            "volume": r["volume"],
            "signals": {},
        }
        for r in rows
    }


@pytest.fixture
def pair():
    opened = []

    def make(sim, symbols, **feed_kw):
        gw = IBGateway(config_for(sim))
        gw.connect()
        opened.append(gw)
        feed = IBFeed(config_for(sim), symbols, **feed_kw)
        feed.start()
        opened.append(feed)
        return gw, feed

    yield make
    for obj in reversed(opened):
        obj.close()


def next_bar(feed, timeout=10.0):
    while True:
        ev = feed.next_event(timeout)
        assert ev is not None, "no feed event within the timeout"
        if isinstance(ev, BarClosed):
            return ev


def test_bars_are_aggregated_and_labelled_like_the_recorded_bars(sim_factory, pair):
    bars = minute_bars(("AAPL", "MSFT"), n=4)
    sim = sim_factory(bars)
    gw, feed = pair(sim, ["AAPL", "MSFT"])
    for i in range(4):
        ev = next_bar(feed)
        label = START + timedelta(minutes=i)
        assert ev.timestamp == label
        assert ev.data == expected(bars, label)
        gw.end_of_bar(ev.timestamp)


def test_warmup_bars_come_first_with_no_gap_and_no_duplicate(sim_factory, pair):
    bars = minute_bars(("AAPL",), n=8)
    sim = sim_factory(bars, warmup_bars=5)
    gw, feed = pair(sim, ["AAPL"], warmup_bars=3)
    labels, catch_up = [], []
    for _ in range(6):
        ev = next_bar(feed)
        labels.append(ev.timestamp)
        catch_up.append(ev.catch_up)
        assert ev.data == expected(bars, ev.timestamp)
        gw.end_of_bar(ev.timestamp)
    assert labels == [START + timedelta(minutes=i) for i in range(2, 8)]
    assert catch_up == [True] * 3 + [False] * 3  # warm-up from history; live from bar 5


def assert_backfill_marked(events):
    """Bars between FeedDisconnected and FeedReconnected came from history (catch-up, as many as
    FeedReconnected says); every other bar is live."""
    disconnected = next(
        i for i, e in enumerate(events) if isinstance(e, FeedDisconnected)
    )
    reconnected = next(i for i, e in enumerate(events) if isinstance(e, FeedReconnected))
    for i, ev in enumerate(events):
        if isinstance(ev, BarClosed):
            assert ev.catch_up == (disconnected < i < reconnected), (i, ev.timestamp)
    backfilled = [e for e in events[disconnected:reconnected] if isinstance(e, BarClosed)]
    assert len(backfilled) == events[reconnected].missed_bars


def test_feed_reconnects_and_backfills_the_bars_it_missed(
    sim_factory, pair, ib_log_guard
):
    for pattern in DROP_ERRORS:
        ib_log_guard.expect(pattern)
    bars = minute_bars(("AAPL",), n=8)
    sim = sim_factory(bars)
    gw, feed = pair(sim, ["AAPL"])
    first = next_bar(feed)
    assert first.timestamp == START
    sim.inject("drop_connection", client_id=feed.config.effective_feed_client_id)
    ev = feed.next_event(10)
    assert isinstance(ev, FeedDisconnected)
    gw.end_of_bar(first.timestamp)  # the venue moves on while the feed is away
    labels, events = collect_bars(feed, gw, bars, [first.timestamp], 8)
    assert labels == [START + timedelta(minutes=i) for i in range(8)]
    assert not first.catch_up
    assert_backfill_marked([ev, *events])


def test_a_reconnect_over_a_weekend_backfills_only_the_bars_after_the_last_one(
    sim_factory, pair, ib_log_guard
):
    """Friday's close to Monday's open: the seam asks IB for days of history (``3 D``) and keeps
    only what comes after the last bar delivered (Monday's missed bars), not Friday's again."""
    for pattern in DROP_ERRORS:
        ib_log_guard.expect(pattern)
    friday = minute_bars(("AAPL",), n=4, start=datetime(2026, 11, 20, 20, 56, tzinfo=UTC))
    monday = minute_bars(("AAPL",), n=6, start=datetime(2026, 11, 23, 14, 30, tzinfo=UTC))
    bars = pl.concat([friday, monday])
    sim = sim_factory(bars)
    gw, feed = pair(sim, ["AAPL"])
    labels, _ = collect_bars(feed, gw, bars, [], 3)
    last = next_bar(feed)  # Friday 15:59 New York, the venue not moved on yet
    labels.append(last.timestamp)
    sim.inject("drop_connection", client_id=feed.config.effective_feed_client_id)
    ev = feed.next_event(10)
    assert isinstance(ev, FeedDisconnected)
    gw.end_of_bar(last.timestamp)  # Monday's first bar comes while the feed is away
    labels, events = collect_bars(feed, gw, bars, labels, 10)
    assert labels == bars["timestamp"].to_list()  # each once, in order
    assert_backfill_marked([ev, *events])
    assert next(e for e in events if isinstance(e, FeedReconnected)).missed_bars >= 1


def collect_bars(feed, gw, bars, labels, n):
    """Read feed events until ``n`` bars; when nothing is in flight, advance the venue once
    (the feed is back but the venue waits for the engine's caught-up signal)."""
    events = []
    idle = 0
    while len(labels) < n:
        ev = feed.next_event(0.5)
        if ev is None:
            idle += 1
            assert idle < 20, f"stalled after {labels}"
            gw.end_of_bar(None)
            continue
        events.append(ev)
        if isinstance(ev, BarClosed):
            labels.append(ev.timestamp)
            assert ev.data == expected(bars, ev.timestamp)
            gw.end_of_bar(ev.timestamp)
    return labels, events


def test_nightly_reset_resubscribes_and_backfills(sim_factory, pair, ib_log_guard):
    ib_log_guard.expect(
        r"Error 110[012], reqId -1"
    )  # IB's connectivity notices are ERRORs in ib_async
    bars = minute_bars(("AAPL", "MSFT"), n=8)
    sim = sim_factory(bars)
    gw, feed = pair(sim, ["AAPL", "MSFT"])
    first = next_bar(feed)
    sim.inject("nightly_reset", bars=2)
    gw.end_of_bar(first.timestamp)
    labels, events = collect_bars(feed, gw, bars, [first.timestamp], 8)
    assert labels == [START + timedelta(minutes=i) for i in range(8)]
    kinds = [type(e).__name__ for e in events if not isinstance(e, BarClosed)]
    assert kinds == ["FeedDisconnected", "FeedReconnected"]
    reconnected = next(e for e in events if isinstance(e, FeedReconnected))
    assert reconnected.missed_bars >= 2
    assert_backfill_marked(events)
    broker_events = drain(gw.events, [])
    assert [type(e).__name__ for e in broker_events] == [
        "BrokerDisconnected",
        "BrokerReconnected",
    ]


def test_pacing_violation_on_the_warmup_request_is_retried(sim_factory, ib_log_guard):
    ib_log_guard.expect(r"Error 162, reqId \d+: Historical Market Data Service error")
    bars = minute_bars(("AAPL",), n=8)
    sim = sim_factory(bars, warmup_bars=5)
    gw = IBGateway(config_for(sim))
    feed = IBFeed(config_for(sim, history_retry_delay=0.05), ["AAPL"], warmup_bars=3)
    try:
        gw.connect()
        sim.inject("pacing_violation", count=1)
        feed.start()
        labels = []
        for _ in range(4):
            ev = next_bar(feed)
            labels.append(ev.timestamp)
            gw.end_of_bar(ev.timestamp)
        assert labels == [START + timedelta(minutes=i) for i in range(2, 6)]
    finally:
        feed.close()
        gw.close()


def test_five_minute_bars_from_a_speed_mode_replay_with_heartbeats(sim_factory):
    from ml4t_live.events import FeedHeartbeat

    bars = minute_bars(("AAPL",), n=10)
    sim = sim_factory(bars, speed=1200.0)  # a 5-second bar every ~4 ms
    feed = IBFeed(config_for(sim), ["AAPL"], bar_size="5 mins", heartbeat_seconds=0.05)
    try:
        feed.start()
        closed, heartbeats = [], 0
        while len(closed) < 2:
            ev = feed.next_event(10)
            assert ev is not None, "no feed event within the timeout"
            if isinstance(ev, FeedHeartbeat):
                heartbeats += 1
            elif isinstance(ev, BarClosed):
                closed.append(ev)
        assert [e.timestamp for e in closed] == [START, START + timedelta(minutes=5)]
        for ev in closed:
            rows = bars.filter(
                (bars["timestamp"] >= ev.timestamp)
                & (bars["timestamp"] < ev.timestamp + timedelta(minutes=5))
            )
            assert ev.data["AAPL"] == {
                "price": rows["close"][-1],
                "open": rows["open"][0],
                "high": rows["high"].max(),
                "low": rows["low"].min(),
                "close": rows["close"][-1],
                "volume": rows["volume"].sum(),
                "signals": {},
            }
        assert heartbeats >= 2  # a 5-minute bar takes ~0.25 s here: beats between bars
    finally:
        feed.close()


def test_a_subset_subscriber_gets_bars_and_heartbeats_while_no_bar_comes(sim_factory):
    """The simulator starts for a client that wants only some of its symbols, and the feed
    sends heartbeats while no bar flows (once the gateway answered its probe), so the engine
    sees it alive. (In step mode the probe, a reqCurrentTime, also releases the next bar.)"""
    from ml4t_live.events import FeedHeartbeat

    sim = sim_factory(minute_bars(("AAPL", "MSFT"), n=5))  # step mode: nobody calls end_of_bar
    feed = IBFeed(config_for(sim), ["AAPL"], heartbeat_seconds=0.2)
    try:
        feed.start()
        first = next_bar(feed)
        assert first.timestamp == START and set(first.data) == {"AAPL"}
        seen = []
        while not any(isinstance(e, FeedHeartbeat) for e in seen):
            ev = feed.next_event(10)
            assert ev is not None, f"no heartbeat within 10s; saw {seen}"
            seen.append(ev)
        assert all(set(e.data) == {"AAPL"} for e in seen if isinstance(e, BarClosed))
    finally:
        feed.close()
