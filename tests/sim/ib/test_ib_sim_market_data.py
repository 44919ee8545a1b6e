"""Market data through real ib_async: 5-second bars that aggregate exactly to the recorded
bars, historical bars up to the virtual clock's now, warm-up bars, and the latency hooks."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from ib_async import MarketOrder, Stock
from ibsim_support import START, advance, make_bars, stock, until

from ml4t_live.errors import ConfigError
from ml4t_live.sim.bars import bar_groups, load_bars
from ml4t_live.sim.ib import SimulatedIBGateway


def _aggregate(rt):
    out = []
    for i in range(0, len(rt), 12):
        part = rt[i : i + 12]
        out.append((part[0].time, part[0].open_, max(b.high for b in part), min(b.low for b in part),
                    part[-1].close, sum(b.volume for b in part)))  # fmt: skip
    return out


def test_realtime_bars_aggregate_exactly_to_the_recorded_bars(client, gateway, bars):
    async def scenario(ib):
        aapl, msft = await stock(ib, "AAPL"), await stock(ib, "MSFT")
        rt_a = ib.reqRealTimeBars(aapl, 5, "TRADES", False)
        rt_m = ib.reqRealTimeBars(msft, 5, "TRADES", False)
        # every replayed symbol subscribed: the first bar starts without a reqCurrentTime
        await until(lambda: len(rt_a) >= 12 and len(rt_m) >= 12, what="first bar")
        for _ in range(9):
            await advance(ib, rt_a)
        await until(lambda: len(rt_m) == 120)
        times = [b.time for b in rt_a]
        return _aggregate(rt_a), _aggregate(rt_m), times

    agg_a, agg_m, times = client.run(scenario, timeout=30)
    recorded = {sym: [] for sym in ("AAPL", "MSFT")}
    for ts, group in bar_groups(load_bars(bars)):
        for sym, b in group.items():
            recorded[sym].append((ts, b.open, b.high, b.low, b.close, b.volume))
    assert agg_a == recorded["AAPL"]  # exact equality: no tolerance
    assert agg_m == recorded["MSFT"]
    assert times == [START + timedelta(seconds=5 * k) for k in range(120)]


def test_historical_bars_up_to_virtual_now(client):
    async def scenario(ib):
        aapl = await stock(ib, "AAPL")
        rt = ib.reqRealTimeBars(aapl, 5, "TRADES", False)
        before = await ib.reqHistoricalDataAsync(aapl, "", "1 D", "1 min", "TRADES", True, timeout=5)
        for _ in range(3):
            await advance(ib, rt)
        minute = await ib.reqHistoricalDataAsync(aapl, "", "3600 S", "1 min", "TRADES", True, timeout=5)
        two = await ib.reqHistoricalDataAsync(aapl, "", "1 D", "2 mins", "TRADES", True, timeout=5)
        five_s = await ib.reqHistoricalDataAsync(aapl, "", "1 D", "5 secs", "TRADES", False, timeout=5)
        epoch = await ib.reqHistoricalDataAsync(aapl, "", "1 D", "1 min", "TRADES", True,
                                                formatDate=2, timeout=5)  # fmt: skip
        return before, minute, two, five_s, epoch

    before, minute, two, five_s, epoch = client.run(scenario)
    assert list(before) == []  # nothing is complete before the first bar
    assert [(b.date.isoformat(), b.open, b.high, b.low, b.close) for b in minute] == [
        ("2024-01-03T09:30:00-05:00", 100.0, 101.0, 99.0, 100.5),
        ("2024-01-03T09:31:00-05:00", 100.5, 101.5, 100.0, 101.0),
        ("2024-01-03T09:32:00-05:00", 101.0, 103.0, 100.5, 102.5),
    ]
    assert str(minute[0].date.tzinfo) == "America/New_York"
    assert [(b.open, b.high, b.low, b.close, b.volume) for b in two] == [(100.0, 101.5, 99.0, 101.0, 2037.0)]
    assert len(five_s) == 36 and five_s[0].open == 100.0 and five_s[-1].close == 102.5
    assert [b.date for b in epoch] == [b.date for b in minute]


def test_head_timestamp_is_the_first_recorded_bar(client):
    async def scenario(ib):
        aapl = await stock(ib, "AAPL")
        return await asyncio.wait_for(ib.reqHeadTimeStampAsync(aapl, "TRADES", True, 2), 5)

    assert client.run(scenario) == START


def test_warmup_bars_are_history_and_replay_starts_after_them(gateway_factory, client_factory):
    gw = gateway_factory(warmup_bars=5)
    client = client_factory(3, port=gw.port)

    async def scenario(ib):
        aapl = await stock(ib, "AAPL")
        hist = await ib.reqHistoricalDataAsync(aapl, "", "1 D", "1 min", "TRADES", True, timeout=5)
        rt = ib.reqRealTimeBars(aapl, 5, "TRADES", False)
        await advance(ib, rt)
        return [b.date.minute for b in hist], rt[0].time

    minutes, first_live = client.run(scenario)
    assert minutes == [30, 31, 32, 33, 34]
    assert first_live == START + timedelta(minutes=5)  # no gap, no duplicate at the seam


def test_pacing_violation_162_ends_the_request_empty(client, gateway, ib_errors):
    ib_errors.expect(r"Error 162, reqId \d+: Historical Market Data Service error message")
    gateway.inject("pacing_violation", count=1)

    async def scenario(ib):
        aapl = await stock(ib, "AAPL")
        rt = ib.reqRealTimeBars(aapl, 5, "TRADES", False)
        await advance(ib, rt)
        first = await ib.reqHistoricalDataAsync(aapl, "", "1 D", "1 min", "TRADES", True, timeout=5)
        second = await ib.reqHistoricalDataAsync(aapl, "", "1 D", "1 min", "TRADES", True, timeout=5)
        return len(first), len(second)

    assert client.run(scenario) == (0, 1)


def test_latency_hooks_bar_sent_and_order_received(client, gateway):
    async def scenario(ib):
        aapl = await stock(ib, "AAPL")
        rt = ib.reqRealTimeBars(aapl, 5, "TRADES", False)
        for _ in range(3):
            await advance(ib, rt)
            ib.placeOrder(aapl, MarketOrder("BUY", 1, orderRef=f"lat-{len(rt)}"))
        await asyncio.wait_for(ib.reqCurrentTimeAsync(), 5)

    client.run(scenario)
    sent = gateway.bar_sent_ns
    received = gateway.orders_received
    assert [r.bar for r in received] == [START + timedelta(minutes=i) for i in range(3)]
    for r in received:
        assert r.perf_ns > sent[r.bar]


def test_speed_mode_streams_without_step_signals(gateway_factory, client_factory, bars):
    from ibsim_support import make_bars

    gw = gateway_factory(make_bars(3), speed=600.0)  # a 1-minute bar every 0.1 s
    client = client_factory(11, port=gw.port)

    async def scenario(ib):
        loop = asyncio.get_running_loop()
        aapl = await stock(ib, "AAPL")
        t0 = loop.time()
        rt = ib.reqRealTimeBars(aapl, 5, "TRADES", False)
        await until(lambda: len(rt) >= 36, timeout=10, what="three bars at 600x")
        return loop.time() - t0, [b.time for b in rt]

    elapsed, times = client.run(scenario)
    assert gw.wait_finished(5)
    assert times == [START + timedelta(seconds=5 * k) for k in range(36)]
    assert elapsed >= 35 * 5 / 600 * 0.9  # paced: 35 slot waits of 5/600 s after the first


def test_the_gateway_clock_goes_on_after_the_last_bar(gateway_factory, client_factory):
    """A real gateway's clock moves when the market has nothing more to send; so does the
    simulator's after its replay's last bar (here at 600x: ten virtual minutes per wall second),
    while no bar comes and the history ends with the recorded bars."""
    gw = gateway_factory(make_bars(3), speed=600.0)
    client = client_factory(12, port=gw.port)
    last_end = START + timedelta(minutes=3)

    async def scenario(ib):
        aapl = await stock(ib, "AAPL")
        rt = ib.reqRealTimeBars(aapl, 5, "TRADES", False)
        await until(lambda: len(rt) >= 36, timeout=10, what="three bars at 600x")
        assert await asyncio.to_thread(gw.wait_finished, 5)
        first = await asyncio.wait_for(ib.reqCurrentTimeAsync(), 5)
        later = first
        async with asyncio.timeout(5):  # each answer is a round trip; virtual time runs at 600x
            while later <= first + timedelta(seconds=60):
                later = await ib.reqCurrentTimeAsync()
        history = await ib.reqHistoricalDataAsync(aapl, "", "1800 S", "1 min", "TRADES", False, 2)
        return first, later, len(rt), history

    first, later, streamed, history = client.run(scenario)
    assert last_end <= first < later and later > first + timedelta(seconds=60)
    assert streamed == 36  # no bar after the last one
    assert [b.date for b in history] == [START + timedelta(minutes=i) for i in range(3)]


def test_bars_outside_nyse_regular_hours_are_not_replayed(gateway_factory, client_factory, bars):
    import polars as pl

    extra = bars.head(2).with_columns(
        pl.col("timestamp") - timedelta(hours=2),  # 07:30 New York: pre-market
    )
    holiday = bars.head(2).with_columns(pl.col("timestamp") - timedelta(days=2))  # 2024-01-01
    gw = gateway_factory(pl.concat([holiday, extra, bars.head(4)]))
    client = client_factory(12, port=gw.port)

    async def scenario(ib):
        aapl = await stock(ib, "AAPL")
        rt = ib.reqRealTimeBars(aapl, 5, "TRADES", False)
        await advance(ib, rt)
        return rt[0].time

    assert client.run(scenario) == START


def test_market_data_snapshot_and_stream_follow_the_replay(client):
    async def scenario(ib):
        aapl = await stock(ib, "AAPL")
        rt = ib.reqRealTimeBars(aapl, 5, "TRADES", False)
        await advance(ib, rt)
        await advance(ib, rt)
        [snap] = await asyncio.wait_for(ib.reqTickersAsync(aapl), 5)
        snap_values = (snap.last, snap.bid, snap.ask, snap.close)  # the Ticker object is reused
        ticker = ib.reqMktData(aapl)
        await advance(ib, rt)
        await until(lambda: ticker.last == 102.5, what="streamed last")
        return snap_values, (ticker.last, ticker.bid, ticker.ask)

    snap, stream = client.run(scenario)
    assert snap == (101.0, 100.99, 101.01, 100.5)  # bar 1's close; bar 0's close
    assert stream == (102.5, 102.49, 102.51)


def test_keep_up_to_date_history_grows_with_the_replay(client):
    async def scenario(ib):
        aapl = await stock(ib, "AAPL")
        rt = ib.reqRealTimeBars(aapl, 5, "TRADES", False)
        await advance(ib, rt)
        bars = await ib.reqHistoricalDataAsync(aapl, "", "1 D", "1 min", "TRADES", True,
                                               keepUpToDate=True, timeout=5)  # fmt: skip
        start = len(bars)
        await advance(ib, rt)
        await advance(ib, rt)
        await until(lambda: len(bars) == start + 2)
        return [(b.date.minute, b.open, b.high, b.low, b.close) for b in bars]

    assert client.run(scenario) == [
        (30, 100.0, 101.0, 99.0, 100.5), (31, 100.5, 101.5, 100.0, 101.0), (32, 101.0, 103.0, 100.5, 102.5),
    ]  # fmt: skip


def test_step_lead_sends_a_minutes_last_five_second_bar_after_the_others(gateway_factory, client_factory):
    """step_lead: the first eleven 5-second bars of a minute go out, then a pause, then the last
    one, and the minute's "sent" stamp is taken after the last one."""
    gw = gateway_factory(step_lead=0.3)
    client = client_factory(12, port=gw.port)

    async def scenario(ib):
        aapl, msft = await stock(ib, "AAPL"), await stock(ib, "MSFT")
        arrived: list[int] = []
        rt = ib.reqRealTimeBars(aapl, 5, "TRADES", False)
        rt.updateEvent += lambda bars, new: arrived.append(time.perf_counter_ns())
        ib.reqRealTimeBars(msft, 5, "TRADES", False)  # every symbol subscribed: bar 1 starts
        await until(lambda: len(rt) >= 12, what="the first minute")
        return arrived, [b.time for b in rt]

    arrived, times = client.run(scenario)
    sent = gw.bar_sent_ns[START]
    assert times == [START + timedelta(seconds=5 * k) for k in range(12)]
    assert arrived[11] - arrived[10] >= 0.25e9  # the pause before the last one
    assert sent - arrived[10] >= 0.25e9  # the stamp is the last one's, not the first eleven's


def test_step_lead_is_for_step_mode_only(bars):
    with pytest.raises(ConfigError, match="step_lead is for step mode only"):
        SimulatedIBGateway(bars, speed=30.0, step_lead=0.5)


def test_a_paced_client_subscribing_many_symbols_gets_the_first_bar_for_all(gateway_factory, client_factory):
    """ib_async paces requests at 45 a second, so 50 subscriptions come in bursts about a second
    apart: the replay waits for all of them (not a subset start, after which the "every symbol
    covered" release put the replay a bar ahead of the client for the rest of the session)."""
    symbols = tuple(f"S{i:02d}" for i in range(50))
    gw = gateway_factory(make_bars(3, symbols=symbols))
    client = client_factory(13, port=gw.port)

    async def scenario(ib):
        contracts = await asyncio.wait_for(
            ib.qualifyContractsAsync(*[Stock(s, "SMART", "USD") for s in symbols]), 10
        )
        subs = [ib.reqRealTimeBars(c, 5, "TRADES", False) for c in contracts]
        await until(lambda: all(len(rt) >= 12 for rt in subs), timeout=10, what="first minute")
        return [rt[0].time for rt in subs]

    assert client.run(scenario, timeout=20) == [START] * 50
