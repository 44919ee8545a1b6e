"""The two websockets through the real TradingStream / StockDataStream, and historical bars paging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgpack
import polars as pl
import pytest
import websockets
from alpaca.common.enums import Sort
from alpaca.data.models import Bar
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit
from alpaca.trading.enums import OrderSide, OrderStatus, TimeInForce
from alpaca.trading.models import TradeUpdate
from alpaca.trading.requests import (
    LimitOrderRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
)
from alpacasim_support import (
    DAY1,
    TIMEOUT,
    StockDataStream,
    StockHistoricalDataClient,
    StreamHarness,
    TradingClient,
    make_bars,
    price,
    settle,
    step,
)

from ml4t_live.bridge import LoopThread
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.sim.alpaca.payloads import pack, stream_bar

BUY = OrderSide.BUY


def test_trade_updates_new_fill_canceled_replaced(sim: SimulatedAlpaca, trading: TradingClient,
                                                  trade_stream: StreamHarness) -> None:
    step(sim, trading)
    order = trading.submit_order(MarketOrderRequest(symbol="AAPL", qty=2, side=BUY, time_in_force=TimeInForce.DAY,
                                                    client_order_id="t-1"))
    new = trade_stream.get_event("new")
    assert isinstance(new, TradeUpdate) and new.order.id == order.id and new.order.status is OrderStatus.NEW
    assert new.timestamp == datetime(2024, 3, 4, 14, 31, tzinfo=UTC)
    step(sim, trading)
    fill = trade_stream.get_event("fill")
    assert (fill.price, fill.qty, fill.position_qty) == (101.0, 2.0, 2.0)
    assert fill.execution_id is not None and fill.order.filled_qty == "2" and fill.order.status is OrderStatus.FILLED
    resting = trading.submit_order(LimitOrderRequest(symbol="AAPL", qty=1, side=BUY, time_in_force=TimeInForce.GTC,
                                                     limit_price=1))
    trading.replace_order_by_id(resting.id, ReplaceOrderRequest(limit_price=2))
    replaced = trade_stream.get_event("replaced")
    assert replaced.order.id == resting.id and replaced.order.status is OrderStatus.REPLACED
    successor = trade_stream.get_event("new")
    assert successor.order.replaces == resting.id and successor.order.limit_price == "2"
    trading.cancel_order_by_id(successor.order.id)
    canceled = trade_stream.get_event("canceled")
    assert canceled.order.id == successor.order.id and canceled.order.canceled_at is not None


def test_trade_updates_partial_fill_and_rejection(sim: SimulatedAlpaca, trading: TradingClient,
                                                  trade_stream: StreamHarness) -> None:
    step(sim, trading)
    sim.inject("partial_fill", parts=2)
    order = trading.submit_order(MarketOrderRequest(symbol="MSFT", qty=10, side=BUY, time_in_force=TimeInForce.DAY))
    step(sim, trading)
    partial = trade_stream.get_event("partial_fill")
    assert partial.order.id == order.id and partial.qty == 5.0 and partial.position_qty == 5.0
    assert partial.order.status is OrderStatus.PARTIALLY_FILLED and partial.order.filled_qty == "5"
    step(sim, trading)
    final = trade_stream.get_event("fill")
    assert final.qty == 5.0 and final.position_qty == 10.0 and final.order.filled_qty == "10"
    sim.inject("reject_next", reason="insufficient buying power")
    refused = trading.submit_order(MarketOrderRequest(symbol="AAPL", qty=1, side=BUY, time_in_force=TimeInForce.DAY))
    rejected = trade_stream.get_event("rejected")
    assert rejected.order.id == refused.id and rejected.order.status is OrderStatus.REJECTED
    assert trading.get_order_by_id(refused.id).status is OrderStatus.REJECTED


def test_trade_updates_expired_at_the_session_end(sim: SimulatedAlpaca, trading: TradingClient,
                                                  trade_stream: StreamHarness) -> None:
    step(sim, trading)
    order = trading.submit_order(LimitOrderRequest(symbol="AAPL", qty=1, side=BUY, time_in_force=TimeInForce.DAY,
                                                   limit_price=1))
    while sim.state()["now"].day != 5:  # replay the rest of the first session
        step(sim, trading)
    expired = trade_stream.get_event("expired")
    assert expired.order.id == order.id and expired.order.status is OrderStatus.EXPIRED
    assert expired.order.expired_at is not None


def test_trade_update_payload_uses_alpaca_types(sim: SimulatedAlpaca, trading: TradingClient,
                                                trade_stream: StreamHarness) -> None:
    """Money fields are strings, timestamps end in Z with nine digits, every event has a timestamp."""
    step(sim, trading)
    trading.submit_order(MarketOrderRequest(symbol="AAPL", qty=1, side=BUY, time_in_force=TimeInForce.DAY))
    step(sim, trading)
    settle(sim)
    sent = [o["order"] for o in sim.orders_received()]
    assert sent[0]["qty"] == "1" and sent[0]["filled_avg_price"] == "101"
    assert sent[0]["created_at"] == "2024-03-04T14:31:00.000000000Z" and sent[0]["order_class"] == ""
    assert trade_stream.get_event("fill").order.filled_avg_price == "101"


def test_data_stream_sends_minute_bars_after_they_close(sim: SimulatedAlpaca, trading: TradingClient,
                                                       data_stream: StreamHarness) -> None:
    step(sim, trading)  # bar 0 (09:30) is sent once its minute closed
    bars = sorted([data_stream.get(), data_stream.get()], key=lambda b: b.symbol)
    assert all(isinstance(b, Bar) for b in bars)
    aapl = bars[0]
    assert (aapl.symbol, aapl.timestamp) == ("AAPL", DAY1)  # labelled by its START, like the backtest
    assert (aapl.open, aapl.high, aapl.low, aapl.close, aapl.volume) == (100.0, 101.0, 99.0, 100.5, 1000.0)
    assert aapl.trade_count is None and aapl.vwap is None  # keys present (null): the recording has none
    step(sim, trading)
    assert {data_stream.get().timestamp for _ in range(2)} == {DAY1 + timedelta(minutes=1)}


def test_data_stream_frame_is_msgpack_with_timestamp_ext() -> None:
    frame = msgpack.unpackb(pack([stream_bar("AAPL", _Bar(), DAY1)]))
    assert isinstance(frame[0]["t"], msgpack.Timestamp) and frame[0]["t"].to_datetime() == DAY1
    assert {"n", "vw"} <= frame[0].keys() and frame[0]["T"] == "b"


class _Bar:
    open, high, low, close, volume, trade_count, vwap = 1.0, 2.0, 0.5, 1.5, 10.0, 7, 1.25


def test_quotes_trades_and_updated_bars_subscriptions(sim: SimulatedAlpaca, trading: TradingClient) -> None:
    stream = StockDataStream(sim.key_id, sim.secret_key, url_override=sim.data_stream_url)
    harness = StreamHarness(stream, "quotes")
    stream.subscribe_quotes(harness.handler, "AAPL")
    stream.subscribe_trades(harness.handler, "AAPL")
    stream.subscribe_updated_bars(harness.handler, "AAPL")
    stream.subscribe_daily_bars(harness.handler, "MSFT")
    harness.start()
    try:
        sim.wait_until(lambda s: s["data_subscribers"] == {"quotes": 1, "trades": 1, "updatedBars": 1,
                                                            "dailyBars": 1}, TIMEOUT)
        trading.get_clock()
        got = {type(harness.get()).__name__, type(harness.get()).__name__}
        assert got == {"Quote", "Trade"}
        while sim.state()["now"].day != 5:  # the first session ends: its daily bar follows
            step(sim, trading)
        seen = [harness.get() for _ in range(2 * 9)]  # quote + trade for bars 1..9
        daily = harness.get()
        assert [type(x).__name__ for x in seen].count("Bar") == 0
        assert (type(daily).__name__, daily.symbol, daily.timestamp) == ("Bar", "MSFT", datetime(2024, 3, 4, 5, 0,
                                                                                                 tzinfo=UTC))
        assert (daily.open, daily.close, daily.volume) == (400.0, 409.5, sum(1000.0 + i for i in range(10)))
    finally:
        harness.stop()


def test_only_one_data_connection_per_key(sim: SimulatedAlpaca, data_stream: StreamHarness) -> None:
    """Alpaca allows one market-data connection per key: a raw second client gets 406."""

    async def second_connection() -> list[dict]:
        async with websockets.connect(sim.data_stream_url, additional_headers={
                "Content-Type": "application/msgpack"}) as ws:
            greeting = msgpack.unpackb(await ws.recv())
            await ws.send(msgpack.packb({"action": "auth", "key": sim.key_id, "secret": sim.secret_key}))
            return greeting + msgpack.unpackb(await ws.recv())

    thread = LoopThread("alpacatest", "raw")
    thread.start()
    try:
        answers = thread.call(second_connection(), TIMEOUT)
    finally:
        thread.close()
    assert answers == [{"T": "success", "msg": "connected"},
                       {"T": "error", "code": 406, "msg": "connection limit exceeded"}]


def test_historical_bars_page_over_10000_and_never_show_the_future() -> None:
    days = [datetime(2024, 2, d, 14, 30, tzinfo=UTC) for d in (5, 6, 7, 8, 9, 12, 13, 14, 15, 16, 20, 21, 22, 23)]
    frames = []
    for start in days:
        frame = make_bars(390, 0, pre_market=False)
        shift = start - DAY1
        frames.append(frame.with_columns(frame["timestamp"] + shift))
    live = make_bars(3, 0, pre_market=False)
    bars = pl.concat([*frames, live])
    venue = SimulatedAlpaca(bars, rate_limit_per_minute=None, replay_from=DAY1)
    venue.start()
    try:
        client = StockHistoricalDataClient(venue.key_id, venue.secret_key, url_override=venue.base_url)
        result = client.get_stock_bars(StockBarsRequest(symbol_or_symbols=["AAPL", "MSFT"],
                                                        timeframe=TimeFrame.Minute, start=days[0]))
        assert len(result["AAPL"]) == len(result["MSFT"]) == 14 * 390  # 10 920 bars > one 10 000 page
        assert result["AAPL"][-1].timestamp == days[-1] + timedelta(minutes=389)  # nothing from the replay yet
        assert result["AAPL"][0].trade_count is None and result["AAPL"][0].vwap is None
        venue.advance()
        venue.wait_until(lambda s: s["bar_index"] == 0, TIMEOUT)
        latest = client.get_stock_bars(StockBarsRequest(symbol_or_symbols="AAPL", timeframe=TimeFrame.Minute,
                                                        start=DAY1 - timedelta(minutes=1)))
        assert [b.timestamp for b in latest["AAPL"]] == [DAY1]  # bar 0 has closed; bar 1 has not
        hourly = client.get_stock_bars(StockBarsRequest(symbol_or_symbols="AAPL",
                                                        timeframe=TimeFrame(1, TimeFrameUnit.Hour),
                                                        start=days[-1], end=days[-1] + timedelta(hours=2)))
        first = hourly["AAPL"][0]
        assert first.timestamp == days[-1].replace(minute=0)
        assert first.open == price("AAPL", 0)["open"] and first.close == price("AAPL", 29)["close"]
    finally:
        venue.close()


@pytest.mark.parametrize("sort", ["asc", "desc"])
def test_historical_bars_limit_and_sort(sort: str, history: StockHistoricalDataClient,
                                        sim: SimulatedAlpaca, trading: TradingClient) -> None:
    for _ in range(4):
        step(sim, trading)
    result = history.get_stock_bars(StockBarsRequest(symbol_or_symbols="AAPL", timeframe=TimeFrame.Minute,
                                                     start=DAY1, limit=3, sort=Sort(sort)))
    stamps = [b.timestamp for b in result["AAPL"]]
    expected = [DAY1 + timedelta(minutes=i) for i in range(4)]
    assert stamps == (expected[:3] if sort == "asc" else expected[::-1][:3])
